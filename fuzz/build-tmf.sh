#!/usr/bin/env bash
# Builds the libFuzzer target for the .tmf reader: .build-fuzz/tmf-fuzzer
#
#   fuzz/build-tmf.sh                   release build (-O), libFuzzer coverage + ASan
#   FUZZ_CONFIG=debug fuzz/build-tmf.sh the same at -Onone
#
# As fuzz/build.sh does for the importer: SwiftPM compiles the library targets the reader needs
# (Graph, and Exporters for the rewrite check, which brings ONNXProto) with the sanitizers into
# .build-fuzz; swiftc compiles fuzz/TMFReaderFuzzer.swift together with the reader's own sources
# (Sources/Runtime/TMF*.swift, which import only Graph, CZlib and CISAL) and links them with those
# objects, zlib, ISA-L (the reader's CRC-32), libprotobuf-c and libFuzzer's main. Package.swift is not touched.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source "$root/fuzz/common.sh"

fuzz_build_targets Exporters
fuzz_collect_objects build-tmf.sh Graph ONNXProto Exporters

out="$fuzz_scratch/tmf-fuzzer"
fuzz_link "$out" TMFReaderFuzzer \
  -Xcc -fmodule-map-file="$root/Sources/CISAL/module.modulemap" \
  "$root/fuzz/TMFReaderFuzzer.swift" "$root"/Sources/Runtime/TMF*.swift -lisal
