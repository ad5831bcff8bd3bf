#!/usr/bin/env bash
# Runs the importer fuzzer (builds it first with fuzz/build.sh).
#
#   fuzz/run.sh [ITERATIONS] [SECONDS] [-- extra libFuzzer flags...]
#
# ITERATIONS  inputs to run (libFuzzer -runs); default 1000000; -1 = no limit.
# SECONDS     wall-time limit (libFuzzer -max_total_time); default 0 = no limit.
#
# The corpus lives in .build-fuzz/corpus (kept between runs, never committed), seeded with
# fixtures/*.onnx, fixtures/bad/*.onnx and fixtures/fuzz-regressions/*.onnx. Crash, leak,
# timeout and out-of-memory inputs go to .build-fuzz/artifacts/ and are copied into
# fixtures/fuzz-regressions/<kind>-<sha1>.onnx, where FuzzRegressionTests replays them.
# Environment: FUZZ_SKIP_BUILD=1 skips the build; FUZZ_CONFIG=debug builds at -Onone;
# FUZZ_CORPUS=<dir> uses another corpus folder (e.g. a fresh one: only the seeds).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
iterations="${1:-1000000}"
seconds="${2:-0}"
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
extra=("$@")

scratch="$root/.build-fuzz"
fuzzer="$scratch/importer-fuzzer"
corpus="${FUZZ_CORPUS:-$scratch/corpus}"
artifacts="$scratch/artifacts"
modeldir="$scratch/model-dir"
regressions="$root/fixtures/fuzz-regressions"

if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$fuzzer" ]; then
  "$root/fuzz/build.sh"
fi

mkdir -p "$corpus" "$artifacts" "$modeldir" "$regressions"
# Seeds, under their own names (libFuzzer names the inputs it adds by their sha1).
shopt -s nullglob
for seed in fixtures/*.onnx fixtures/bad/*.onnx "$regressions"/*.onnx; do
  copy="$corpus/seed-$(basename "$seed")"
  [ -e "$copy" ] || cp "$seed" "$copy"
done
shopt -u nullglob
# The folder inputs are imported from: external data named 'external_data.onnx.data' resolves
# to a copy of the fixture's data file, so the external-data reader is reached too.
cp -f fixtures/external_data.onnx.data "$modeldir/"
export REBIRTH_FUZZ_MODEL_DIR="$modeldir"

# Swift's own crash backtracer (swift-backtrace) reads the crashed process's memory, which
# AddressSanitizer reports as a second error, and can hang; libFuzzer's handler prints the stack.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
# LeakSanitizer runs after inputs that allocated more than they freed (libFuzzer's -detect_leaks).
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}"

start=$(date +%s)
set +e
"$fuzzer" \
  -runs="$iterations" \
  -max_total_time="$seconds" \
  -max_len=131072 \
  -rss_limit_mb=4096 \
  -timeout=10 \
  -dict="$root/fuzz/onnx.dict" \
  -artifact_prefix="$artifacts/" \
  -print_final_stats=1 \
  ${extra[@]+"${extra[@]}"} \
  "$corpus"
status=$?
set -e
end=$(date +%s)

# Keep every input that ever broke something as a regression fixture (by content: one copy each).
kept=0
shopt -s nullglob
for artifact in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
  kind="$(basename "$artifact" | cut -d- -f1)"
  sha="$(sha1sum "$artifact" | cut -d' ' -f1)"
  target="$regressions/$kind-$sha.onnx"
  if [ ! -e "$target" ]; then
    cp "$artifact" "$target"
    echo "run.sh: kept $artifact as $target"
    kept=$((kept + 1))
  fi
done
shopt -u nullglob

echo "run.sh: libFuzzer exited with $status after $((end - start)) s; $kept new regression input(s)"
exit "$status"
