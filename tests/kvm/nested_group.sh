#!/usr/bin/env bash
# nested_group.sh: runs one nested group, nested_suite.sh in one boot of
# nested.sh, and boots again, at most twice, when the nested guest's own
# kernel stops answering.
#
#   nested_group.sh BOOT_TIMEOUT CASES RUN_GUEST VMFORK -- NESTED_OPTIONS...
#
# Seen on this project's machines (2026-12-03): now and then, during a long
# kvm case, QEMU TCG's nested guest stops running user space altogether, so
# that even nested_suite.sh's per-case watchdog never runs and nested.sh's
# time limit passes with the suite unfinished. When that happens, this
# prints which case was running, writes the cases that have not passed to
# CASES.remaining (next to CASES, so the guest sees it) and boots again for
# them. A case that FAILs is never retried: the suite's own verdict stands.
# Exit status: the suite's, or 1 when three boots did not finish it.
set -uo pipefail
if [ $# -lt 5 ] || [ "$5" != -- ]; then
  echo "usage: nested_group.sh BOOT_TIMEOUT CASES RUN_GUEST VMFORK -- NESTED_OPTIONS..." >&2
  exit 2
fi
boot_timeout=$1 cases=$2 run_guest=$3 vmfork=$4
shift 5
here=$(cd "$(dirname "$0")" && pwd)
remaining=$cases.remaining
cp "$cases" "$remaining"
out=$(mktemp)
trap 'rm -f "$out" "$remaining"' EXIT

for boot in 1 2 3; do
  bash "$here/nested.sh" "$@" --timeout="$boot_timeout" -- /bin/bash "$here/nested_suite.sh" \
    "$remaining" "$run_guest" "$vmfork" | tee "$out"
  status=${PIPESTATUS[0]}
  if grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then
    exit "$status"
  fi
  # Unfinished: keep every case that has not passed.
  passed=$(sed -nE 's/^PASS ([^ ]+).*$/\1/p' "$out")
  next=$(mktemp)
  while IFS= read -r name && IFS= read -r guest && IFS= read -r expected &&
    IFS= read -r want && IFS= read -r stderr_regex && IFS= read -r options; do
    if ! grep -qxF -- "$name" <<<"$passed"; then
      printf '%s\n' "$name" "$guest" "$expected" "$want" "$stderr_regex" "$options" >>"$next"
    fi
  done <"$remaining"
  mv "$next" "$remaining"
  echo "nested_group: boot $boot did not finish (the nested guest stopped answering during" \
    "$(head -1 "$remaining")); booting again for the $(($(wc -l <"$remaining") / 6)) case(s)" \
    "not yet passed"
done
echo "nested_group: three boots did not finish the group"
exit 1
