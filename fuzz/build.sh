#!/usr/bin/env bash
# Builds the libFuzzer target for the ONNX importer: .build-fuzz/importer-fuzzer
#
#   fuzz/build.sh            release build (-O), instrumented with libFuzzer coverage + ASan
#   FUZZ_CONFIG=debug fuzz/build.sh   the same at -Onone (slower, more precise traces)
#
# SwiftPM cannot link an executable target with -sanitize=fuzzer (it wants the module's own
# main, libFuzzer brings its own), so: SwiftPM compiles the library targets (Graph, ONNXProto,
# Importers, Exporters) with the sanitizers into .build-fuzz, and swiftc compiles
# fuzz/ImporterFuzzer.swift (which exports LLVMFuzzerTestOneInput) and links it with their
# object files, libprotobuf-c and libFuzzer's main. Package.swift is not touched.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source "$root/fuzz/common.sh"

# Importers and Exporters pull in Graph and ONNXProto.
fuzz_build_targets Importers Exporters
fuzz_collect_objects build.sh Graph ONNXProto Importers Exporters

out="$fuzz_scratch/importer-fuzzer"
fuzz_link "$out" ImporterFuzzer "$root/fuzz/ImporterFuzzer.swift"
