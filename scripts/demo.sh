#!/usr/bin/env bash
# The first thing to run: installs what is missing (scripts/setup.sh), builds rebirth in release
# mode, and runs it on a shipped fixture (a GoogLeNet stem): inspect, optimize, inspect the result.
#
#   bash scripts/demo.sh          writes /tmp/rebirth-demo/out.onnx
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
rebirth_setup_system

printf '==> swift build -c release\n' >&2
swift build -c release
binary="$(swift build -c release --show-bin-path)/rebirth"
out_dir=/tmp/rebirth-demo
mkdir -p "$out_dir"

# show COMMAND...: prints the command as a user would type it, then runs it.
show() {
  printf '\n$ rebirth %s\n' "$*"
  "$binary" "$@"
}

show inspect fixtures/googlenet_stem.onnx
show optimize fixtures/googlenet_stem.onnx "$out_dir/out.onnx" --report "$out_dir/report.txt"
show diff fixtures/googlenet_stem.onnx "$out_dir/out.onnx"
show optimize fixtures/googlenet_stem.onnx "$out_dir/out.tmf"
show verify fixtures/googlenet_stem.onnx "$out_dir/out.tmf"
printf '\nwrote %s and %s; every change is listed in %s\n' "$out_dir/out.onnx" "$out_dir/out.tmf" "$out_dir/report.txt"
