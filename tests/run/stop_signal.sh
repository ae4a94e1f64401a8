#!/usr/bin/env bash
# `vmfork run` stopped by a signal: every VM is stopped cleanly, each
# prints what is left of its console line, the monitor prints its summary,
# and the exit status is 128 + the signal's number.
#
#   stop_signal.sh VMFORK GUEST.elf SIGNAL [vmfork run options...]
#
# GUEST is console_tail (guests/console_tail.c): the signal is sent once the
# clone's "tail: ready" line shows, by when the original's unfinished line
# is out. Bounds are generous (the host may be loaded): 120 s to get ready,
# 120 s to stop.
set -u
vmfork=$1 guest=$2 signal=$3
shift 3
out=$(mktemp)
err=$(mktemp)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
  rm -f "$out" "$err"
}
trap cleanup EXIT
fail() {
  echo "$1"
  echo "--- stdout:"
  cat "$out"
  echo "--- stderr:"
  cat "$err"
  exit 1
}

"$vmfork" --log-level warn run "$guest" "$@" >"$out" 2>"$err" &
pid=$!
for ((i = 0; i < 1200; i++)); do
  grep -qx '\[vm0\.1\] tail: ready' "$out" && break
  kill -0 "$pid" 2>/dev/null || fail "vmfork ended before the guest was ready"
  sleep 0.1
done
grep -qx '\[vm0\.1\] tail: ready' "$out" || fail "the guest was not ready after 120 s"

kill "-$signal" "$pid"
for ((i = 0; i < 1200; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "vmfork still runs 120 s after SIG$signal"
wait "$pid"
status=$?
pid=

want=$((128 + $(kill -l "$signal")))
[ "$status" -eq "$want" ] || fail "exit status $status, expected $want"
grep -qx '\[vm0\] tail: unfinished line' "$out" ||
  fail "the original's unfinished console line was lost"
grep -q "^vmfork: stopped by SIG$signal: 2 VM(s) ran, 2 ended with a non-zero status\$" "$err" ||
  fail "no summary on stderr"
exit 0
