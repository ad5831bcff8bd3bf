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
config="${FUZZ_CONFIG:-release}"
scratch="$root/.build-fuzz"
jobs="${FUZZ_BUILD_JOBS:-2}"

sanitize=(-Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)

# One `swift build --target` per target: given several --target flags, SwiftPM 6.3 builds only
# the last. Importers and Exporters pull in Graph and ONNXProto.
for target in Importers Exporters; do
  swift build -c "$config" --scratch-path "$scratch" -j "$jobs" --target "$target" "${sanitize[@]}"
done

bin="$(swift build -c "$config" --scratch-path "$scratch" --show-bin-path)"
objects=()
for target in Graph ONNXProto Importers Exporters; do
  found=()
  if [ -f "$bin/$target.build/sources" ]; then
    # A Swift target: one object per current source file (stale objects of removed files are
    # left out), named after it.
    while IFS= read -r source; do
      [ -n "$source" ] && found+=("$bin/$target.build/$(basename "$source").o")
    done < "$bin/$target.build/sources"
  else
    shopt -s nullglob
    found=("$bin/$target.build"/*.o)
    shopt -u nullglob
  fi
  if [ "${#found[@]}" -eq 0 ]; then
    echo "build.sh: no object files in $bin/$target.build" >&2
    exit 1
  fi
  objects+=("${found[@]}")
done

optimize=-O
[ "$config" = debug ] && optimize=-Onone

out="$scratch/importer-fuzzer"
swiftc -sanitize=fuzzer,address -parse-as-library "$optimize" -g \
  -module-name ImporterFuzzer \
  -module-cache-path "$bin/ModuleCache" \
  -I "$bin/Modules" \
  -Xcc -fmodule-map-file="$bin/ONNXProto.build/module.modulemap" \
  -Xcc -I -Xcc "$root/Sources/ONNXProto/include" \
  -Xcc -fmodule-map-file="$root/Sources/CProtobufC/module.modulemap" \
  "$root/fuzz/ImporterFuzzer.swift" "${objects[@]}" \
  $(pkg-config --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c) \
  -use-ld=lld -o "$out"

echo "built $out"
