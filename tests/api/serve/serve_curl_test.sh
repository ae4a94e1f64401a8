#!/usr/bin/env bash
# `vmfork serve` over its real UNIX socket, driven by curl as a user drives it.
# Usage: serve_curl_test.sh CASE VMFORK GUESTS_DIR
# Exit 0 when every check of CASE passed, 77 when CASE cannot run here (ctest
# SKIP_RETURN_CODE), 1 otherwise; each failed check prints its request and the
# response. No timing thresholds: conditions are polled for up to WAIT_S
# seconds, because sanitizer builds are 5-20x slower.
set -euo pipefail

readonly CASE=${1:?case}
readonly VMFORK=${2:?vmfork binary}
readonly GUESTS=${3:?guests dir}
readonly WORKER="$GUESTS/api_worker.elf"
readonly WAIT_S=120

TMP=$(mktemp -d /tmp/serve_curl.XXXXXX)
readonly TMP
readonly SOCK="$TMP/api.sock"
DAEMON_PID=""
BACKGROUND=()
FAILURES=0

cleanup() {
  local pid
  {
    for pid in "${BACKGROUND[@]}"; do kill -9 "$pid" || true; done
    if [[ -n $DAEMON_PID ]]; then kill -9 "$DAEMON_PID" || true; fi
    wait || true
  } 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

note() { printf '%s [%ss]: %s\n' "$CASE" "$SECONDS" "$*"; }

# A failed check: what was asked, what came back. The case goes on so that
# one run reports every broken check, and fails at the end.
fail() {
  FAILURES=$((FAILURES + 1))
  printf 'FAIL: %s\n' "$1"
  [[ -n ${REQ:-} ]] && printf '  request:  %s\n' "$REQ"
  [[ -n ${STATUS:-} ]] && printf '  response: %s\n' "$STATUS"
  # The headers only belong to the check when it was the last request made.
  [[ ${REQ:-} == "${HTTP_REQ:-}" && -f ${HEADERS_FILE:-/nonexistent} ]] && sed 's/^/    /' "$HEADERS_FILE" | tr -d '\r'
  [[ -n ${BODY:-} ]] && printf '  body:     %s\n' "$(head -c 2000 <<<"$BODY")"
  return 0
}

finish() {
  if ((FAILURES > 0)); then
    note "$FAILURES check(s) failed"
    exit 1
  fi
  note "ok"
  exit 0
}

start_daemon() {
  local log=${2:-$TMP/daemon.log}
  "$VMFORK" serve --api-sock "$SOCK" --engine "${1:-soft}" --pool 1G >"$log" 2>&1 &
  DAEMON_PID=$!
  local i
  for ((i = 0; i < WAIT_S * 10; ++i)); do
    if curl -s --max-time 5 --unix-socket "$SOCK" http://localhost/ >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      note "the daemon exited before answering:"
      cat "$log"
      exit 1
    fi
    sleep 0.1
  done
  note "the daemon did not answer within ${WAIT_S}s"
  exit 1
}

# req METHOD PATH [BODY] [curl args...]: sets STATUS, BODY, HEADERS_FILE, REQ.
req() {
  local method=$1 path=$2 body=${3-}
  shift 2
  (($# > 0)) && shift
  HEADERS_FILE="$TMP/last_headers"
  REQ="$method $path${body:+ $body}${*:+ (curl $*)}"
  HTTP_REQ=$REQ
  local args=(-s --max-time 300 --unix-socket "$SOCK" -X "$method" -D "$HEADERS_FILE" -o "$TMP/last_body" -w '%{http_code}')
  [[ -n $body ]] && args+=(--data-binary "$body")
  STATUS=$(curl "${args[@]}" "$@" "http://localhost$path") || STATUS="curl failed ($?)"
  BODY=$(cat "$TMP/last_body" 2>/dev/null || true)
}

# expect WANT METHOD PATH [BODY] [curl args...]
expect() {
  local want=$1
  shift
  req "$@"
  [[ $STATUS == "$want" ]] || fail "expected HTTP $want"
}

# expect_fault WANT WORD METHOD PATH [BODY] [curl args...]: the status, and a
# JSON fault_message naming WORD (the field or the id at fault).
expect_fault() {
  local want=$1 word=$2
  shift 2
  req "$@"
  if [[ $STATUS != "$want" ]]; then
    fail "expected HTTP $want"
    return 0
  fi
  local message
  message=$(json 'j["fault_message"]' <<<"$BODY" 2>/dev/null) || {
    fail "expected a JSON body with fault_message"
    return 0
  }
  [[ $message == *"$word"* ]] || fail "expected fault_message naming '$word'"
}

# json EXPR: a Python expression over the JSON on stdin (bound to j).
json() {
  python3 -c 'import json, sys
j = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None else v)' "$1"
}

# wait_until DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_until() {
  local what=$1
  shift
  local i
  for ((i = 0; i < WAIT_S * 4; ++i)); do
    if "$@"; then return 0; fi
    sleep 0.25
  done
  REQ="" STATUS="" BODY=""
  fail "timed out after ${WAIT_S}s waiting for $what"
  return 1
}

stream_ended() { ! kill -0 "$1" 2>/dev/null; }
vm_field() { # vm_field ID EXPR
  curl -s --max-time 60 --unix-socket "$SOCK" "http://localhost/vms/$1" | json "$2" 2>/dev/null
}
console_of() { curl -s --max-time 60 --unix-socket "$SOCK" "http://localhost/vms/$1/console"; }
console_has() { [[ $(console_of "$1") == *"$2"* ]]; }
state_is() { [[ $(vm_field "$1" 'j["state"]') == "$2" ]]; }
metric() { curl -s --max-time 60 --unix-socket "$SOCK" http://localhost/metrics | json "$1"; }
daemon_answers() {
  expect 200 GET /
  [[ $(json 'j["name"]' <<<"$BODY" 2>/dev/null) == vmfork ]] || fail "GET / names vmfork"
}

create_worker() { # create_worker [VCPUS] [extra JSON fields]: sets VM
  local vcpus=${1:-2} extra=${2:-}
  expect 201 POST /vms "{\"guest\":\"$WORKER\",\"vcpus\":$vcpus,\"mem\":\"64M\"$extra}"
  VM=$(json 'j["id"]' <<<"$BODY" 2>/dev/null) || VM=""
}

# Clones' ids from a fork or load answer, checked to carry latency_ns.
clone_ids() {
  json '" ".join(c["id"] for c in j["clones"])' <<<"$BODY"
}

# Every clone Exited with status 0 and saying its counters were right.
check_clones_end_well() {
  local id k
  for id in "$@"; do
    k=${id##*.}
    wait_until "$id to exit" state_is "$id" Exited || continue
    [[ $(vm_field "$id" 'j["status"]') == 0 ]] || {
      REQ="GET /vms/$id" STATUS="" BODY=$(curl -s --unix-socket "$SOCK" "http://localhost/vms/$id")
      fail "$id exits with status 0"
    }
    # The daemon numbers a load's clones from 1 as it numbers a fork's.
    wait_until "$id's console to say clone $k is ok" console_has "$id" "api_worker clone $k: counters ok" ||
      { REQ="GET /vms/$id/console" STATUS="" BODY=$(console_of "$id"); fail "console of $id"; }
  done
}

# events_have EVENT:VM ...: the events file holds these, in this order.
events_have() {
  python3 - "$TMP/events" "$@" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.endswith("\n")]
want = [tuple(w.split(":")) for w in sys.argv[2:]]
i = 0
for e in lines:
    if i < len(want) and (e.get("event"), e.get("vm")) == want[i]:
        i += 1
sys.exit(0 if i == len(want) else 1)
EOF
}

# GET /events into $TMP/events from now on, in the background. The daemon
# subscribes the stream just after it has written the response's headers, so
# waiting for them leaves only that short window, in which no request of the
# case is in flight (a few round trips follow before the first event).
follow_events() {
  curl -sN --unix-socket "$SOCK" -D "$TMP/events.headers" http://localhost/events >"$TMP/events" 2>/dev/null &
  BACKGROUND+=($!)
  disown $!
  wait_until "the /events stream's headers" grep -qs '^HTTP/1.1 200' "$TMP/events.headers"
}

# clones_exited_events PARENT N: N clones of PARENT have an "exited" event
# with status 0, in whatever order they ended.
clones_exited_events() {
  python3 - "$TMP/events" "$1." "$2" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.endswith("\n")]
ok = {e["vm"] for e in ev if e["event"] == "exited" and e["vm"].startswith(sys.argv[2]) and e.get("status") == 0}
sys.exit(0 if len(ok) == int(sys.argv[3]) else 1)
EOF
}

# Every line of the events file is a JSON object and seq strictly increases.
events_seq_increasing() {
  python3 - "$TMP/events" <<'EOF'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1]) if l.endswith("\n")]
sys.exit(0 if all(a < b for a, b in zip(seqs, seqs[1:])) else 1)
EOF
}

# --- cases -------------------------------------------------------------------

lifecycle() {
  local engine=$1
  if [[ $engine == kvm ]]; then
    # Skip when this host cannot make a KVM VM of the project's guests.
    [[ -r /dev/kvm && -w /dev/kvm ]] || { note "no usable /dev/kvm"; exit 77; }
  fi
  start_daemon "$engine"
  follow_events
  daemon_answers
  [[ $(json 'j["engine"]' <<<"$BODY") == "$engine" ]] || fail "GET / names engine $engine"

  local base_launched base_copies
  base_launched=$(metric 'j["vms"]["launched"]')
  base_copies=$(metric 'j["faults"].get("copies", 0)')

  req POST /vms "{\"guest\":\"$WORKER\",\"vcpus\":2,\"mem\":\"64M\"}"
  if [[ $engine == kvm && $STATUS != 201 ]]; then
    note "--engine kvm cannot create a VM here: $STATUS $BODY"
    exit 77
  fi
  [[ $STATUS == 201 ]] || fail "expected HTTP 201"
  [[ $(json 'j["id"]' <<<"$BODY") == vm0 ]] || fail "the first VM is vm0"
  expect 200 GET /vms/vm0
  [[ $(json 'j["state"]' <<<"$BODY") == Running ]] || fail "vm0 Running"
  [[ $(json 'j["vcpus"]' <<<"$BODY") == 2 ]] || fail "vm0 has 2 vCPUs"
  [[ $(json 'j["mem_bytes"]' <<<"$BODY") == 67108864 ]] || fail "vm0 has 64 MiB"
  wait_until "vm0's console to say running" console_has vm0 "api_worker: running"

  expect 204 PATCH /vms/vm0 '{"state":"Paused"}'
  expect_fault 409 vm0 PATCH /vms/vm0 '{"state":"Paused"}'
  expect 200 GET /vms/vm0
  [[ $(json 'j["state"]' <<<"$BODY") == Paused ]] || fail "vm0 Paused"

  expect 200 POST /vms/vm0/fork '{"count":8}'
  local forked
  forked=$(clone_ids 2>/dev/null) || forked=""
  [[ $forked == "vm0.1 vm0.2 vm0.3 vm0.4 vm0.5 vm0.6 vm0.7 vm0.8" ]] || fail "fork 8 answers vm0.1 .. vm0.8"
  [[ $(json 'all("latency_ns" in c for c in j["clones"]) and len(j["clones"]) == 8' <<<"$BODY" 2>/dev/null) == True ]] ||
    fail "every clone has latency_ns"
  # shellcheck disable=SC2086
  check_clones_end_well $forked
  note "8 forked clones ended well"

  mkdir -p "$TMP/snaps"
  local snap="$TMP/snaps/full"
  expect 200 PUT /vms/vm0/snapshot "{\"path\":\"$snap\",\"type\":\"Full\"}"
  local f
  for f in config.json state.json memory; do
    [[ -e $snap/$f ]] || fail "snapshot file $snap/$f exists"
  done

  expect 200 POST /snapshots/load "{\"path\":\"$snap\",\"clones\":8}"
  local loaded
  loaded=$(clone_ids 2>/dev/null) || loaded=""
  [[ $(wc -w <<<"$loaded") == 8 ]] || fail "load 8 answers 8 clone ids"
  [[ $(json 'all("latency_ns" in c for c in j["clones"]) and len(j["clones"]) == 8' <<<"$BODY" 2>/dev/null) == True ]] ||
    fail "every restored clone has latency_ns"
  # shellcheck disable=SC2086
  check_clones_end_well $loaded
  note "8 restored clones ended well"

  # A load left paused: its clone is held until PATCH Resumed starts it.
  expect 200 POST /snapshots/load "{\"path\":\"$snap\",\"clones\":1,\"resume\":false}"
  local held
  held=$(clone_ids 2>/dev/null) || held=""
  expect 200 GET "/vms/$held"
  [[ $(json 'j["state"]' <<<"$BODY" 2>/dev/null) == Paused ]] || fail "a clone loaded with resume false is Paused"
  expect 204 PATCH "/vms/$held" '{"state":"Resumed"}'
  check_clones_end_well "$held"
  wait_until "$held's exited event" events_have "exited:$held" || true
  REQ="GET /events" STATUS="" BODY=$(grep "\"$held\"" "$TMP/events" || true)
  # A paused load emits "created" then "restored" once per clone, as a
  # resumed one does (it once emitted "restored" twice).
  [[ $(grep -c '"event":"restored"' <<<"$BODY") == 1 ]] || fail "one restored event per clone of a paused load"

  req GET /metrics
  local m=$BODY
  REQ="GET /metrics"
  [[ $(json "j['vms']['launched'] - $base_launched" <<<"$m") -ge 18 ]] || fail "vms.launched grows by 1 + 8 + 8 + 1"
  [[ $(json "j['faults']['copies'] > $base_copies" <<<"$m") == True ]] || fail "faults.copies grows (the clones write)"
  [[ $(json 'j["latency"]["fork"]["count"]' <<<"$m") -ge 8 ]] || fail "latency.fork.count >= 8"
  [[ $(json 'j["latency"]["restore"]["count"]' <<<"$m") -ge 8 ]] || fail "latency.restore.count >= 8"
  [[ $(json 'j["latency"]["snapshot_pause"]["count"]' <<<"$m") == 1 ]] || fail "latency.snapshot_pause.count == 1"

  expect 200 GET '/metrics?format=prometheus'
  grep -q 'vmfork_vm_faults_total{vm="vm0.1",kind="copies"}' <<<"$BODY" || fail "Prometheus text has vm0.1's copies"
  grep -q '_bucket{.*le=' <<<"$BODY" || fail "Prometheus text has histogram buckets"
  grep -q '_count' <<<"$BODY" || fail "Prometheus text has histogram counts"
  expect 200 GET /metrics '' -H 'Accept: text/plain'
  grep -qi '^content-type: text/plain' "$HEADERS_FILE" || fail "Accept: text/plain gets Prometheus text"

  expect 204 PATCH /vms/vm0 '{"state":"Resumed"}'
  expect 200 GET /vms/vm0
  [[ $(json 'j["state"]' <<<"$BODY") == Running ]] || fail "vm0 Running after Resumed"
  expect 204 DELETE /vms/vm0
  expect_fault 404 vm0 GET /vms/vm0

  local seq=(created:vm0 paused:vm0)
  for k in 1 2 3 4 5 6 7 8; do seq+=("created:vm0.$k"); done
  note "vm0 deleted"
  wait_until "vm0's exited event" events_have "${seq[@]}" exited:vm0 || true
  REQ="GET /events" STATUS="" BODY=$(cat "$TMP/events")
  events_have "${seq[@]}" forked:vm0 snapshotted:vm0 deleted:vm0 ||
    fail "events: created vm0, paused, created vm0.1 .. vm0.8, forked, snapshotted, deleted in order"
  events_have paused:vm0 forked:vm0 || fail "events: a forked event of vm0 after paused"
  events_have snapshotted:vm0 deleted:vm0 || fail "events: snapshotted then deleted vm0"
  clones_exited_events vm0 8 || fail "events: 8 clones exited with status 0"
  events_seq_increasing || fail "events: seq strictly increasing"
  events_have exited:vm0 || fail "events: vm0 exited after DELETE"
  finish
}

bad_requests() {
  start_daemon soft
  create_worker 1
  [[ $VM == vm0 ]] || fail "the first VM is vm0"
  wait_until "vm0 running" console_has vm0 "api_worker: running"

  expect_fault 400 '' POST /vms '{"guest": '
  expect_fault 400 '' POST /vms '[1, 2]'
  expect_fault 400 bogus POST /vms "{\"guest\":\"$WORKER\",\"bogus\":1}"
  expect_fault 400 vcpus POST /vms "{\"guest\":\"$WORKER\",\"vcpus\":\"2\"}"
  expect_fault 400 paused POST /vms "{\"guest\":\"$WORKER\",\"paused\":1}"
  expect_fault 400 mem POST /vms "{\"guest\":\"$WORKER\",\"mem\":true}"
  expect_fault 400 count POST /vms/vm0/fork '{"count":-1}'
  expect_fault 400 vcpus POST /vms "{\"guest\":\"$WORKER\",\"vcpus\":0}"
  expect_fault 400 vcpus POST /vms "{\"guest\":\"$WORKER\",\"vcpus\":65}"
  expect_fault 400 count POST /vms/vm0/fork '{"count":0}'
  expect_fault 400 guest POST /vms '{"vcpus":1}'
  expect_fault 400 guest POST /vms '{"guest":"build/guests/api_worker.elf"}'
  printf 'not an ELF\n' >"$TMP/text_guest"
  expect_fault 400 "$TMP/text_guest" POST /vms "{\"guest\":\"$TMP/text_guest\"}"
  expect_fault 400 "$TMP/no_such_guest" POST /vms "{\"guest\":\"$TMP/no_such_guest\"}"
  expect_fault 400 engine POST /vms "{\"guest\":\"$WORKER\",\"engine\":\"qemu\"}"
  expect_fault 404 vm99 GET /vms/vm99
  expect_fault 404 vm99 DELETE /vms/vm99
  expect_fault 404 vm99 POST /vms/vm99/fork '{"count":1}'
  expect_fault 404 /nothing/here GET /nothing/here
  expect_fault 405 DELETE DELETE /vms
  grep -qi '^allow: .*GET' "$HEADERS_FILE" || fail "405 carries an Allow header naming GET"
  grep -qi '^allow: .*POST' "$HEADERS_FILE" || fail "405 carries an Allow header naming POST"
  expect_fault 405 PUT PUT /vms/vm0/fork '{"count":1}'
  grep -qi '^allow: .*POST' "$HEADERS_FILE" || fail "405 carries an Allow header naming POST"
  expect_fault 400 state PATCH /vms/vm0 '{"state":"Frozen"}'
  expect_fault 400 path PUT /vms/vm0/snapshot '{"path":"snaps/x","type":"Full"}'
  expect_fault 409 vm0 PUT /vms/vm0/snapshot "{\"path\":\"$TMP/diff\",\"type\":\"Diff\"}"
  mkdir -p "$TMP/not_a_snapshot"
  expect_fault 400 path POST /snapshots/load "{\"path\":\"$TMP/not_a_snapshot\"}"
  local big
  big=$(python3 -c 'print("{\"guest\":\"" + "x" * 70000 + "\"}")')
  printf '%s' "$big" >"$TMP/big.json"
  REQ="POST /vms (70000-byte body)"
  STATUS=$(curl -s --max-time 60 --unix-socket "$SOCK" -o "$TMP/last_body" -w '%{http_code}' \
    -X POST --data-binary @"$TMP/big.json" http://localhost/vms) || true
  BODY=$(cat "$TMP/last_body")
  [[ $STATUS == 413 ]] || fail "expected HTTP 413"
  [[ $(json 'j["fault_message"]' <<<"$BODY" 2>/dev/null) == *65536* ]] || fail "the 413 names the limit"
  expect_fault 415 text/plain POST /vms "{\"guest\":\"$WORKER\"}" -H 'Content-Type: text/plain'
  expect_fault 400 offset GET '/vms/vm0/console?offset=abc'
  expect_fault 400 format GET '/metrics?format=xml'

  # An exited VM: a clone that checked its counters and ended.
  expect 200 POST /vms/vm0/fork '{"count":1}'
  wait_until "vm0.1 to exit" state_is vm0.1 Exited
  expect_fault 409 vm0.1 POST /vms/vm0.1/fork '{"count":1}'
  expect_fault 409 vm0.1 PUT /vms/vm0.1/snapshot "{\"path\":\"$TMP/exited\",\"type\":\"Full\"}"
  expect_fault 409 vm0.1 PATCH /vms/vm0.1 '{"state":"Paused"}'

  # Created paused: not started, so not forkable; Resumed starts it.
  expect 201 POST /vms "{\"guest\":\"$WORKER\",\"vcpus\":1,\"mem\":\"64M\",\"paused\":true}"
  local held
  held=$(json 'j["id"]' <<<"$BODY")
  expect_fault 409 "$held" POST "/vms/$held/fork" '{"count":1}'
  expect 204 PATCH "/vms/$held" '{"state":"Resumed"}'
  wait_until "$held running" state_is "$held" Running
  wait_until "$held's console to say running" console_has "$held" "api_worker: running"

  daemon_answers
  expect 200 GET /vms/vm0
  [[ $(json 'j["state"]' <<<"$BODY") == Running ]] || fail "vm0 still Running after the bad requests"
  finish
}

many_clients() {
  start_daemon soft
  follow_events
  create_worker 2
  wait_until "vm0 running" console_has vm0 "api_worker: running"
  mkdir -p "$TMP/clients"
  local c pids=()
  for ((c = 0; c < 64; ++c)); do
    (
      for _ in 1 2 3; do
        for p in /vms /metrics; do
          code=$(curl -s --max-time 300 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' "http://localhost$p") || code="curl-failed"
          echo "$p $code"
        done
      done >"$TMP/clients/$c"
    ) &
    pids+=($!)
  done
  expect 200 POST /vms/vm0/fork '{"count":8}'
  local forked
  forked=$(clone_ids 2>/dev/null) || forked=""
  for c in "${pids[@]}"; do wait "$c" || true; done
  local bad
  bad=$(cat "$TMP/clients"/* | grep -v ' 200$' || true)
  [[ $(cat "$TMP/clients"/* | wc -l) == $((64 * 6)) ]] || fail "every client made its 6 requests"
  [[ -z $bad ]] || { BODY=$bad; fail "every concurrent response is 200"; }
  # shellcheck disable=SC2086
  check_clones_end_well $forked
  wait_until "the 8 clones' exited events" clones_exited_events vm0 8 ||
    { REQ="GET /events" STATUS="" BODY=$(cat "$TMP/events"); fail "events of the fork"; }
  REQ="GET /events" STATUS="" BODY=$(cat "$TMP/events")
  events_seq_increasing || fail "events: seq strictly increasing under 64 clients"
  daemon_answers
  finish
}

killed_clients() {
  start_daemon soft
  create_worker 1
  wait_until "vm0 running" console_has vm0 "api_worker: running"
  local i pid
  for ((i = 0; i < 20; ++i)); do
    # A request cut off in its body: the client sends part and dies.
    python3 - "$SOCK" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'POST /vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"gue')
s.close()
EOF
    # Streams whose readers are killed.
    curl -sN --unix-socket "$SOCK" http://localhost/events >/dev/null 2>&1 &
    pid=$!
    curl -sN --unix-socket "$SOCK" 'http://localhost/vms/vm0/console?follow=true' >"$TMP/follow" 2>/dev/null &
    local pid2=$!
    # Killed once it has streamed: the console replays from offset 0.
    wait_until "the console stream to start" grep -q "api_worker: running" "$TMP/follow" || true
    kill -9 "$pid" "$pid2" 2>/dev/null || true
    wait "$pid" "$pid2" 2>/dev/null || true
  done
  daemon_answers
  expect 200 GET /vms
  [[ $(json 'len(j["vms"])' <<<"$BODY") == 1 ]] || fail "no VM was created by the half requests"
  expect 200 GET /vms/vm0
  [[ $(json 'j["state"]' <<<"$BODY") == Running ]] || fail "vm0 still Running"
  finish
}

sigterm() {
  local signal status stream
  for signal in TERM INT; do
    start_daemon soft
    REQ="stat $SOCK" STATUS="" BODY=$(stat -c '%a %F' "$SOCK")
    [[ $BODY == "600 socket" ]] || fail "the API socket is a socket of mode 0600"
    create_worker 2
    create_worker 1
    wait_until "vm0 running" console_has vm0 "api_worker: running"
    curl -sN --max-time 300 --unix-socket "$SOCK" http://localhost/events >/dev/null 2>&1 &
    stream=$!
    curl -sN --max-time 300 --unix-socket "$SOCK" 'http://localhost/vms/vm0/console?follow=true' >/dev/null 2>&1 &
    local stream2=$!
    sleep 0.5
    kill -s "$signal" "$DAEMON_PID"
    status=0
    wait "$DAEMON_PID" || status=$?
    DAEMON_PID=""
    REQ="kill -$signal vmfork serve" STATUS="exit $status" BODY=$(cat "$TMP/daemon.log")
    [[ $status == 0 ]] || fail "SIG$signal: the daemon exits 0"
    [[ ! -e $SOCK ]] || fail "SIG$signal: the socket file is removed"
    wait_until "the /events curl to end after SIG$signal" stream_ended "$stream" || kill -9 "$stream" 2>/dev/null || true
    wait_until "the console curl to end after SIG$signal" stream_ended "$stream2" || kill -9 "$stream2" 2>/dev/null || true
    wait "$stream" "$stream2" 2>/dev/null || true
  done

  # A second daemon on a live socket refuses, naming the path.
  start_daemon soft
  status=0
  "$VMFORK" serve --api-sock "$SOCK" --engine soft --pool 1G >"$TMP/second.log" 2>&1 || status=$?
  REQ="a second vmfork serve --api-sock $SOCK" STATUS="exit $status" BODY=$(cat "$TMP/second.log")
  [[ $status != 0 ]] || fail "a second daemon on a live socket exits non-zero"
  grep -qF "$SOCK" "$TMP/second.log" || fail "the second daemon's message names the path"
  daemon_answers

  # A socket file left by a killed daemon is replaced.
  kill -9 "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
  [[ -S $SOCK ]] || note "(the killed daemon left no socket file)"
  start_daemon soft "$TMP/third.log"
  daemon_answers
  finish
}

# run_cli WANT_STATUS ARGS...: `vmfork vm ARGS --api-sock SOCK`; sets OUT.
run_cli() {
  local want=$1 status=0
  shift
  OUT=$("$VMFORK" vm "$@" --api-sock "$SOCK" 2>&1) || status=$?
  REQ="vmfork vm $* --api-sock SOCK" STATUS="exit $status" BODY=$OUT
  [[ $status == "$want" ]] || fail "expected exit $want"
}

cli_client() {
  start_daemon soft
  run_cli 0 create "$WORKER" --vcpus 2 --mem 64M
  [[ $OUT == *vm0* ]] || fail "create prints vm0"
  wait_until "vm0 running" console_has vm0 "api_worker: running"
  run_cli 0 ls
  [[ $OUT == *vm0* && $OUT == *Running* ]] || fail "ls shows vm0 Running"
  run_cli 0 ls --json
  python3 -m json.tool <<<"$OUT" >/dev/null || fail "ls --json parses"
  run_cli 0 console vm0
  [[ $OUT == *"api_worker: running"* ]] || fail "console prints the guest's output"
  run_cli 0 pause vm0
  run_cli 1 pause vm0
  [[ $OUT == *"vmfork: "*"(HTTP 409)"* ]] || fail "a 409 prints 'vmfork: ... (HTTP 409)'"
  run_cli 0 fork vm0 --count 2
  [[ $OUT == *vm0.1* && $OUT == *vm0.2* ]] || fail "fork prints the clones' ids"
  check_clones_end_well vm0.1 vm0.2
  run_cli 0 snapshot vm0 "$TMP/snap"
  [[ -e $TMP/snap/memory ]] || fail "snapshot writes the directory"
  run_cli 0 restore "$TMP/snap" --clones 2
  local restored
  restored=$(grep -o 'vm[0-9]*\.[0-9]*' <<<"$OUT" | tr '\n' ' ')
  [[ $(wc -w <<<"$restored") == 2 ]] || fail "restore prints 2 clone ids"
  # shellcheck disable=SC2086
  check_clones_end_well $restored
  run_cli 0 resume vm0
  run_cli 0 rm vm0
  run_cli 1 rm vm0
  [[ $OUT == *"(HTTP 404)"* ]] || fail "an unknown id prints (HTTP 404)"
  run_cli 1 fork vm0.1 --count 1
  [[ $OUT == *"vmfork: "*"(HTTP 409)"* ]] || fail "forking an exited VM prints 'vmfork: ... (HTTP 409)'"
  finish
}

case $CASE in
  lifecycle_soft) lifecycle soft ;;
  lifecycle_kvm) lifecycle kvm ;;
  bad_requests | many_clients | killed_clients | sigterm | cli_client) "$CASE" ;;
  *)
    echo "unknown case: $CASE" >&2
    exit 2
    ;;
esac
