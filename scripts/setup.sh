#!/usr/bin/env bash
# Set-up shared by scripts/demo.sh, scripts/test.sh and .ci/run: nothing else installs anything.
#
#   bash scripts/setup.sh              system packages + the Python venv of the conformance suite
#   source scripts/setup.sh            (from a script) defines the functions below, runs nothing:
#     rebirth_setup_system             Swift present; apt packages the build needs (Linux)
#     rebirth_setup_venv               venv at $REBIRTH_VENV with Tests/conformance/requirements.txt
#
# Environment: REBIRTH_VENV (default ~/.cache/rebirth-venv). Safe to run again: each step checks
# first and does nothing when all is in place (apt-get update runs only if a package is missing;
# pip runs only when requirements.txt changed since the venv was last filled).
# The functions exit on failure; source this file from scripts, not from an interactive shell.

REBIRTH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REBIRTH_VENV="${REBIRTH_VENV:-$HOME/.cache/rebirth-venv}"
REBIRTH_APT_PACKAGES=(libprotobuf-c-dev protobuf-c-compiler libopenblas-dev liblapacke-dev
                      zlib1g-dev libisal-dev pkg-config unzip python3-venv)
REBIRTH_SWIFT_MIN=6.1   # swift-tools-version of Package.swift

rebirth_say() { printf '==> %s\n' "$*" >&2; }
rebirth_fail() { printf 'rebirth setup: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when root, else through sudo when there is one.
rebirth_as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else rebirth_fail "need root to run: $* (no sudo); run it as root, then again"
  fi
}

rebirth_check_swift() {
  command -v swift >/dev/null || rebirth_fail \
    "Swift $REBIRTH_SWIFT_MIN or newer is needed and 'swift' is not on PATH: install it from https://www.swift.org/install (swiftly), then run this again"
  local version
  version=$(swift --version 2>&1 | sed -n 's/.*Swift version \([0-9][0-9.]*\).*/\1/p' | head -n 1)
  [[ -n $version ]] || rebirth_fail "cannot read the Swift version from 'swift --version'"
  if [[ $(printf '%s\n%s\n' "$REBIRTH_SWIFT_MIN" "$version" | sort -V | head -n 1) != "$REBIRTH_SWIFT_MIN" ]]; then
    rebirth_fail "Swift $version found; rebirth needs $REBIRTH_SWIFT_MIN or newer (https://www.swift.org/install)"
  fi
}

rebirth_setup_system() {
  rebirth_check_swift
  case "$(uname -s)" in
    Linux)
      command -v dpkg >/dev/null || {
        rebirth_say "not a Debian/Ubuntu system: make sure these (or their equivalents) are installed: ${REBIRTH_APT_PACKAGES[*]}"
        return 0
      }
      local missing=() pkg
      for pkg in "${REBIRTH_APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
      done
      if ((${#missing[@]})); then
        rebirth_say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        rebirth_as_root apt-get update -q
        rebirth_as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
      fi
      ;;
    Darwin)
      # Accelerate provides BLAS/LAPACK; protobuf-c comes from Homebrew.
      if ! pkg-config --exists libprotobuf-c 2>/dev/null; then
        command -v brew >/dev/null || rebirth_fail "install Homebrew (https://brew.sh), then: brew install protobuf-c pkg-config"
        rebirth_say "installing protobuf-c with Homebrew"
        brew install protobuf-c pkg-config
      fi
      ;;
  esac
}

rebirth_setup_venv() {
  local requirements="$REBIRTH_ROOT/Tests/conformance/requirements.txt"
  local stamp="$REBIRTH_VENV/.rebirth-requirements"
  if [[ ! -x "$REBIRTH_VENV/bin/python" ]]; then
    command -v python3 >/dev/null || rebirth_fail "python3 is needed for the conformance suite"
    rebirth_say "creating the Python venv $REBIRTH_VENV"
    mkdir -p "$(dirname "$REBIRTH_VENV")"
    python3 -m venv "$REBIRTH_VENV" || rebirth_fail "python3 -m venv $REBIRTH_VENV failed (on Debian/Ubuntu: apt-get install python3-venv)"
  fi
  if ! cmp -s "$requirements" "$stamp"; then
    rebirth_say "installing $(basename "$requirements") into $REBIRTH_VENV"
    "$REBIRTH_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" </dev/null
    cp "$requirements" "$stamp"
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  rebirth_setup_system
  rebirth_setup_venv
  rebirth_say "set-up complete (venv: $REBIRTH_VENV)"
fi
