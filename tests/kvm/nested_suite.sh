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
program=${vmfork##*/}

# After case_timeout seconds: appends to LOG where every thread of every
# vmfork process waits (a hang's diagnosis), then kills them and RUNNER.
watchdog() {
  local runner=$1 log=$2 task nap
  sleep "$case_timeout" &
  nap=$!
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  wait "$nap"
  for task in /proc/[0-9]*/task/[0-9]*; do
    [ "$(cat "${task%/task/*}/comm" 2>/dev/null)" = "$program" ] || continue
    echo "thread ${task##*/} of ${task%/task/*}: $(cut -d' ' -f3 "$task/stat" 2>/dev/null)" \
      "wchan $(cat "$task/wchan" 2>/dev/null) syscall $(cut -d' ' -f1 "$task/syscall" 2>/dev/null)"
  done >>"$log"
  pkill -KILL -x "$program" 2>/dev/null
  kill -KILL "$runner" 2>/dev/null
}
passed=0 failed=0
while IFS= read -r name && IFS= read -r guest && IFS= read -r expected &&
  IFS= read -r status && IFS= read -r stderr_regex && IFS= read -r options; do
  read -r -a words <<<"$options"
  started=$SECONDS
  log=$(mktemp)
  bash "$run_guest" "$vmfork" "$guest" "$expected" "$status" "$stderr_regex" \
    ${words[@]+"${words[@]}"} >"$log" 2>&1 &
  runner=$!
  watchdog "$runner" "$log" &
  dog=$!
  wait "$runner"
  result=$?
  kill "$dog" 2>/dev/null
  wait "$dog" 2>/dev/null
  output=$(cat "$log")
  rm -f "$log"
  if [ "$result" -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS $name ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1))
    if [ $((SECONDS - started)) -ge "$case_timeout" ]; then
      echo "FAIL $name: timed out after $case_timeout s"
    else
      echo "FAIL $name:"
    fi
    [ -z "$output" ] || printf '%s\n' "$output" | sed 's/^/    /'
  fi
done <"$cases"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
