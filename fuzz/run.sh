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
source "$root/fuzz/common.sh"

name=run.sh
scratch="$root/.build-fuzz"
fuzzer="$scratch/importer-fuzzer"
build="$root/fuzz/build.sh"
corpus="${FUZZ_CORPUS:-$scratch/corpus}"
artifacts="$scratch/artifacts"
regressions="$root/fixtures/fuzz-regressions"
ext=onnx
dict="$root/fuzz/onnx.dict"
flags=(-max_len=131072)
kinds=(crash leak timeout oom)
shopt -s nullglob
seeds=(fixtures/*.onnx fixtures/bad/*.onnx "$regressions"/*.onnx)
shopt -u nullglob

# The folder inputs are imported from: external data named 'external_data.onnx.data' resolves
# to a copy of the fixture's data file, so the external-data reader is reached too.
modeldir="$scratch/model-dir"
mkdir -p "$modeldir"
cp -f fixtures/external_data.onnx.data "$modeldir/"
export REBIRTH_FUZZ_MODEL_DIR="$modeldir"

fuzz_run "$@"
