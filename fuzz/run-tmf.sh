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
source "$root/fuzz/common.sh"

name=run-tmf.sh
scratch="$root/.build-fuzz"
fuzzer="$scratch/tmf-fuzzer"
build="$root/fuzz/build-tmf.sh"
corpus="${FUZZ_CORPUS:-$scratch/corpus-tmf}"
artifacts="$scratch/artifacts-tmf"
regressions="$root/fixtures/fuzz-regressions-tmf"
ext=tmf
dict="$root/fuzz/tmf.dict"
flags=(-max_len=65536 -malloc_limit_mb=1024)
kinds=(crash leak timeout oom slow-unit)
shopt -s nullglob
seeds=(fixtures/bad-tmf/*.tmf "$regressions"/*.tmf)
shopt -u nullglob

fuzz_run "$@"
