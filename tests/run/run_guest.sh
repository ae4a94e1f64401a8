#!/usr/bin/env bash
# Runs a guest under `vmfork run` and checks its console output and exit
# status. Lines of VMs running at once interleave, so both sides are sorted;
# the only varying figures (forkdemo's TSC ticks) are masked first.
#
#   run_guest.sh [--launcher WORD... --] VMFORK GUEST.elf EXPECTED.txt STATUS STDERR_REGEX
#                [vmfork run options...]
#
# STDERR_REGEX (extended, may be empty) must match a line of stderr.
# --launcher: the words up to `--` (none of them `--`) go before VMFORK, as in
# `--launcher tests/kvm/run_kvm.sh --build-dir=build --`.
set -u
launcher=()
if [ "${1-}" = --launcher ]; then
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    launcher+=("$1")
    shift
  done
  if [ $# -eq 0 ]; then
    echo "run_guest.sh: --launcher needs a closing --" >&2
    exit 2
  fi
  shift
fi
vmfork=$1 guest=$2 expected=$3 want_status=$4 stderr_regex=$5
shift 5
stderr=$(mktemp)
trap 'rm -f "$stderr"' EXIT
actual=$(${launcher[@]+"${launcher[@]}"} "$vmfork" --log-level warn run "$guest" "$@" 2>"$stderr")
status=$?
normalize() { sed -E 's/fork latency: [0-9]+ ticks/fork latency: <ticks> ticks/' | LC_ALL=C sort; }
if ! diff <(normalize <"$expected") <(if [ -n "$actual" ]; then printf '%s\n' "$actual"; fi | normalize); then
  echo "console output differs (< expected, > actual); stderr was:"
  cat "$stderr"
  exit 1
fi
if [ "$status" -ne "$want_status" ]; then
  echo "exit status $status, expected $want_status; stderr was:"
  cat "$stderr"
  exit 1
fi
if [ -n "$stderr_regex" ] && ! grep -Eq -- "$stderr_regex" "$stderr"; then
  echo "no line of stderr matches /$stderr_regex/; stderr was:"
  cat "$stderr"
  exit 1
fi
