#!/usr/bin/env bash
# Runs every test of rebirth: builds the release binary, runs `swift test`, then the Python
# conformance suite (Tests/conformance) against the release binary. Installs what is missing
# first (scripts/setup.sh). Exits non-zero if any step fails; ends with each runner's summary.
#
#   bash scripts/test.sh                   everything
#   bash scripts/test.sh -k bad_inputs     extra arguments go to pytest
#
# Environment: REBIRTH_VENV (the suite's venv, default ~/.cache/rebirth-venv); REBIRTH_CORPUS
# (a folder of extra real models, see Tests/conformance/conftest.py); REBIRTH_SCRATCH_PATH
# (SwiftPM's build folder, default .build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
rebirth_setup_system
rebirth_setup_venv
swiftpm=(--scratch-path "${REBIRTH_SCRATCH_PATH:-.build}")

logs=$(mktemp -d "${TMPDIR:-/tmp}/rebirth-test.XXXXXX")
trap 'rm -rf "$logs"' EXIT
summary=()
failed=0

# run_step NAME COMMAND...: runs COMMAND, shows and keeps its output, returns its exit code.
run_step() {
  local name=$1
  shift
  printf '\n==> %s\n' "$*" >&2
  "$@" 2>&1 | tee "$logs/$name.log"
  return "${PIPESTATUS[0]}"
}

# note NAME EXIT_CODE PATTERN...: adds the step's summary: per PATTERN, the last line of its
# log that matches.
note() {
  local name=$1 code=$2 pattern line lines=""
  shift 2
  for pattern in "$@"; do
    line=$( (grep -E "$pattern" "$logs/$name.log" || true) | tail -n 1 \
      | sed 's/^[[:space:]=]*//; s/[[:space:]=]*$//')
    if [[ -n $line ]]; then lines+="${lines:+$'\n'}$line"; fi
  done
  if [[ $code -eq 0 ]]; then summary+=("$name: ok${lines:+ — ${lines//$'\n'/; }}")
  else summary+=("$name: FAILED (exit $code)${lines:+ — ${lines//$'\n'/; }}"); failed=1
  fi
}

# totals: prints "tests: N passed, M failed" over swift test and pytest, from their logs.
totals() {
  local passed=0 failing=0 n line
  if [[ -f $logs/swift-test.log ]]; then
    line=$(grep -E 'Test run with [0-9]+ tests?' "$logs/swift-test.log" | tail -n 1 || true)
    n=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$line")
    local bad
    bad=$(grep -cE '^✘ Test .* (failed|recorded an issue)' "$logs/swift-test.log" || true)
    if [[ -n $line ]]; then passed=$((passed + n - bad)); failing=$((failing + bad)); fi
    if [[ -z $line ]]; then failing=$((failing + 1)); fi
  fi
  if [[ -f $logs/conformance.log ]]; then
    line=$(grep -E '[0-9]+ (passed|failed)' "$logs/conformance.log" | tail -n 1 || true)
    n=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    passed=$((passed + ${n:-0}))
    n=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}' || true)
    failing=$((failing + ${n:-0}))
  fi
  printf 'tests: %d passed, %d failed\n' "$passed" "$failing"
}

print_summary() {
  printf '\n==> summary\n'
  printf '  %s\n' "${summary[@]}"
  if ((failed)); then printf 'FAILED\n'; else printf 'all tests passed\n'; fi
  totals
}

code=0
run_step build swift build -c release "${swiftpm[@]}" || code=$?
note build "$code" 'Build complete|^[^[:space:]|`].*error: '
if ((code)); then
  print_summary
  exit 1
fi
binary="$(swift build -c release "${swiftpm[@]}" --show-bin-path)/rebirth"

code=0
run_step swift-test swift test "${swiftpm[@]}" || code=$?
note swift-test "$code" 'Executed [0-9]+ tests?,' 'Test run with [0-9]+ tests?'

code=0
export REBIRTH_BIN="$binary"
run_step conformance \
  "$REBIRTH_VENV/bin/python" -m pytest Tests/conformance -q -rs -p no:cacheprovider "$@" || code=$?
note conformance "$code" '[0-9]+ (passed|failed|skipped|errors?|deselected|xfailed|xpassed)(,| in )|no tests ran'

print_summary
exit "$failed"
