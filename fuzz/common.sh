# The part of fuzz/run.sh and fuzz/run-tmf.sh that is the same for every target: argument parsing,
# building, seeding the corpus, running libFuzzer, and keeping what broke as regression fixtures.
# Sourced, not run. The caller sets, then calls `fuzz_run "$@"`:
#   name         the script's name, for messages
#   fuzzer       the libFuzzer binary; build: the script that builds it
#   corpus artifacts regressions ext   folders, and the extension kept regression inputs get
#   seeds        an array of seed files (globs expanded by the caller, with nullglob)
#   dict         the dictionary; flags: an array of target-specific libFuzzer flags (-max_len, …)
#   kinds        an array of artifact prefixes to keep (crash, leak, timeout, oom, …)

fuzz_run() {
  local iterations="${1:-1000000}" seconds="${2:-0}"
  shift $(($# < 2 ? $# : 2))
  [ "${1:-}" = "--" ] && shift
  local extra=("$@")

  if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$fuzzer" ]; then
    "$build"
  fi

  mkdir -p "$corpus" "$artifacts" "$regressions"
  # Seeds, under their own names (libFuzzer names the inputs it adds by their sha1).
  local seed copy
  for seed in ${seeds[@]+"${seeds[@]}"}; do
    copy="$corpus/seed-$(basename "$seed")"
    [ -e "$copy" ] || cp "$seed" "$copy"
  done

  # Swift's own crash backtracer (swift-backtrace) reads the crashed process's memory, which
  # AddressSanitizer reports as a second error, and can hang; libFuzzer's handler prints the stack.
  export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
  # LeakSanitizer runs after inputs that allocated more than they freed (libFuzzer's -detect_leaks).
  export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}"

  local start end status
  start=$(date +%s)
  set +e
  "$fuzzer" \
    -runs="$iterations" \
    -max_total_time="$seconds" \
    -rss_limit_mb=4096 \
    -timeout=10 \
    -dict="$dict" \
    -artifact_prefix="$artifacts/" \
    -print_final_stats=1 \
    ${flags[@]+"${flags[@]}"} \
    ${extra[@]+"${extra[@]}"} \
    "$corpus"
  status=$?
  set -e
  end=$(date +%s)

  # Keep every input that ever broke something as a regression fixture (by content: one copy each).
  local kept=0 kind artifact sha target
  shopt -s nullglob
  for kind in "${kinds[@]}"; do
    for artifact in "$artifacts/$kind"-*; do
      sha="$(sha1sum "$artifact" | cut -d' ' -f1)"
      target="$regressions/$kind-$sha.$ext"
      if [ ! -e "$target" ]; then
        cp "$artifact" "$target"
        echo "$name: kept $artifact as $target"
        kept=$((kept + 1))
      fi
    done
  done
  shopt -u nullglob

  echo "$name: libFuzzer exited with $status after $((end - start)) s; $kept new regression input(s)"
  return "$status"
}

# For the build scripts. SwiftPM cannot link an executable target with -sanitize=fuzzer (it wants
# the module's own main, libFuzzer brings its own), so SwiftPM compiles library targets with the
# sanitizers into .build-fuzz and swiftc links their objects with the fuzz target.
fuzz_config="${FUZZ_CONFIG:-release}"
fuzz_scratch="${root:?}/.build-fuzz"
fuzz_optimize=-O
[ "$fuzz_config" = debug ] && fuzz_optimize=-Onone

# fuzz_build_targets T…: one `swift build --target` each (given several --target flags, SwiftPM
# 6.3 builds only the last), instrumented with libFuzzer coverage and AddressSanitizer.
fuzz_build_targets() {
  local target
  for target in "$@"; do
    swift build -c "$fuzz_config" --scratch-path "$fuzz_scratch" -j "${FUZZ_BUILD_JOBS:-2}" --target "$target" \
      -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
  done
  bin="$(swift build -c "$fuzz_config" --scratch-path "$fuzz_scratch" --show-bin-path)"
}

# fuzz_collect_objects NAME T…: sets `objects` to the object files of targets T… (after
# fuzz_build_targets); NAME is the calling script, for the error message.
fuzz_collect_objects() {
  local name="$1" target source found
  shift
  objects=()
  for target in "$@"; do
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
      echo "$name: no object files in $bin/$target.build" >&2
      exit 1
    fi
    objects+=("${found[@]}")
  done
}

# fuzz_link OUT MODULE ARGS...: compiles and links a fuzzer with swiftc: libFuzzer and ASan, the
# objects fuzz_collect_objects found, the ONNX/protobuf-c/zlib module maps and libraries every
# fuzzer needs; ARGS are its sources and any extra module maps or libraries.
fuzz_link() {
  local out="$1" module="$2"
  shift 2
  swiftc -sanitize=fuzzer,address -parse-as-library "$fuzz_optimize" -g \
    -module-name "$module" \
    -module-cache-path "$bin/ModuleCache" \
    -I "$bin/Modules" \
    -Xcc -fmodule-map-file="$bin/ONNXProto.build/module.modulemap" \
    -Xcc -I -Xcc "$root/Sources/ONNXProto/include" \
    -Xcc -fmodule-map-file="$root/Sources/CProtobufC/module.modulemap" \
    -Xcc -fmodule-map-file="$root/Sources/CZlib/module.modulemap" \
    "$@" "${objects[@]}" \
    $(pkg-config --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c) -lz \
    -use-ld=lld -o "$out"
  echo "built $out"
}
