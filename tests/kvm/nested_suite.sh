#!/usr/bin/env bash
# nested_suite.sh: runs many guest tests in one boot of nested.sh's TCG guest
# (hardware KVM semantics: nested SVM), where a boot per test would cost a
# boot each.
#
#   tests/kvm/nested_suite.sh CASES_FILE RUN_GUEST VMFORK
#
# CASES_FILE holds one case per six lines (kvm/CMakeLists.txt writes it):
# the name, the guest ELF, the expected-output file, the exit status, the
# stderr regex (may be empty) and the `vmfork run` options (words separated
# by spaces). Each case runs through RUN_GUEST (tests/run/run_guest.sh).
# Prints PASS or FAIL per case (a failure with its output), then a closing
# "N passed, N failed" line. Exit status 0 when every case passed. A case
# that runs longer than NESTED_CASE_TIMEOUT seconds (default 600: nested TCG
# on a busy host is slow, but no case needs minutes) fails as timed out, so a
# hang names its case and the others still run.
set -u
if [ $# -ne 3 ]; then
  echo "usage: nested_suite.sh CASES_FILE RUN_GUEST VMFORK" >&2
  exit 2
fi
cases=$1 run_guest=$2 vmfork=$3
# Bash's process substitution (run_guest.sh's diff) needs /dev/fd, which a
# bare devtmpfs lacks.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd 2>/dev/null || true

case_timeout=${NESTED_CASE_TIMEOUT:-600}
passed=0 failed=0
while IFS= read -r name && IFS= read -r guest && IFS= read -r expected &&
  IFS= read -r status && IFS= read -r stderr_regex && IFS= read -r options; do
  read -r -a words <<<"$options"
  started=$SECONDS
  output=$(timeout -k 10 "$case_timeout" bash "$run_guest" "$vmfork" "$guest" \
    "$expected" "$status" "$stderr_regex" ${words[@]+"${words[@]}"} 2>&1)
  result=$?
  if [ "$result" -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS $name ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1))
    if [ $((SECONDS - started)) -ge "$case_timeout" ]; then  # busybox's timeout: 143
      echo "FAIL $name: timed out after $case_timeout s"
    else
      echo "FAIL $name:"
    fi
    [ -z "$output" ] || printf '%s\n' "$output" | sed 's/^/    /'
  fi
done <"$cases"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
