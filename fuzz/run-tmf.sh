#!/usr/bin/env bash
# Runs the .tmf reader fuzzer (builds it first with fuzz/build-tmf.sh).
#
#   fuzz/run-tmf.sh [ITERATIONS] [SECONDS] [-- extra libFuzzer flags...]
#
# ITERATIONS  inputs to run (libFuzzer -runs); default 1000000; -1 = no limit.
# SECONDS     wall-time limit (libFuzzer -max_total_time); default 0 = no limit.
#
# The corpus lives in .build-fuzz/corpus-tmf (kept between runs, never committed), seeded with
# fixtures/bad-tmf/*.tmf (a good file, its encoded variants and every hand-made damage) and
# fixtures/fuzz-regressions-tmf/*.tmf. Crash, leak, timeout and out-of-memory inputs go to
# .build-fuzz/artifacts-tmf/ and are copied into fixtures/fuzz-regressions-tmf/<kind>-<sha1>.tmf,
# where TMFFuzzRegressionTests replays them.
# Environment: FUZZ_SKIP_BUILD=1 skips the build; FUZZ_CORPUS=<dir> uses another corpus folder.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
iterations="${1:-1000000}"
seconds="${2:-0}"
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
extra=("$@")

scratch="$root/.build-fuzz"
fuzzer="$scratch/tmf-fuzzer"
corpus="${FUZZ_CORPUS:-$scratch/corpus-tmf}"
artifacts="$scratch/artifacts-tmf"
regressions="$root/fixtures/fuzz-regressions-tmf"

if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$fuzzer" ]; then
  "$root/fuzz/build-tmf.sh"
fi

mkdir -p "$corpus" "$artifacts" "$regressions"
shopt -s nullglob
for seed in fixtures/bad-tmf/*.tmf "$regressions"/*.tmf; do
  copy="$corpus/seed-$(basename "$seed")"
  [ -e "$copy" ] || cp "$seed" "$copy"
done
shopt -u nullglob

export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}"

start=$(date +%s)
set +e
"$fuzzer" \
  -runs="$iterations" \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -rss_limit_mb=4096 \
  -malloc_limit_mb=1024 \
  -timeout=10 \
  -dict="$root/fuzz/tmf.dict" \
  -artifact_prefix="$artifacts/" \
  -print_final_stats=1 \
  ${extra[@]+"${extra[@]}"} \
  "$corpus"
status=$?
set -e
end=$(date +%s)

kept=0
shopt -s nullglob
for artifact in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/slow-unit-*; do
  kind="$(basename "$artifact" | cut -d- -f1)"
  sha="$(sha1sum "$artifact" | cut -d' ' -f1)"
  target="$regressions/$kind-$sha.tmf"
  if [ ! -e "$target" ]; then
    cp "$artifact" "$target"
    echo "run-tmf.sh: kept $artifact as $target"
    kept=$((kept + 1))
  fi
done
shopt -u nullglob

echo "run-tmf.sh: libFuzzer exited with $status after $((end - start)) s; $kept new regression input(s)"
exit "$status"
