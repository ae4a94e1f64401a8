#!/usr/bin/env bash
# Checks the Promela model of the COW fault protocol (tests/model/README.md):
#   1. every code excerpt the model's steps quote still occurs in the file
#      it names (the model follows the code, or this fails);
#   2. the protocol (with unshare copying, see README) has no violation,
#      exhaustively;
#   3. each weakened variant and mutant has a counterexample.
# Arguments, if any, name the checks of 2-3 to run (protocol, EAGER_RELEASE,
# IN_PLACE, ...). Exit 0 when all hold, 1 otherwise, 77 (ctest:
# skipped) without spin.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=$here/cow_protocol.pml
cc=${CC:-cc}
only=" $* "

if ! command -v spin >/dev/null 2>&1; then
  echo "check_model: spin is not installed (apt-get install spin; .ci/install-deps does): skipped"
  exit 77
fi
command -v "$cc" >/dev/null 2>&1 || { echo "check_model: no C compiler ($cc)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# --- 1. The code excerpts. A step's comment reads
#     /* path/file.cc Class::function[, step N]: `exact excerpt` */
echo "== code excerpts"
anchors=0
while IFS=: read -r line text; do
  file=$(grep -oE '(ept|guestmm|vmm|tests)/[A-Za-z0-9_/]+\.(cc|h)' <<<"$text" | head -1 || true)
  excerpt=$(sed -E 's/^[^`]*`([^`]*)`.*$/\1/' <<<"$text")
  if [ -z "$file" ]; then
    fail "cow_protocol.pml:$line quotes code without naming its file"
    continue
  fi
  function=$(sed -E "s|^.*$file ([A-Za-z_:~]*[A-Za-z_]).*$|\1|" <<<"$text")
  function=${function##*::}
  if [ ! -f "$root/$file" ]; then
    fail "cow_protocol.pml:$line names $file, which does not exist"
  elif ! grep -qF -- "$excerpt" "$root/$file"; then
    fail "cow_protocol.pml:$line: \`$excerpt\` is no longer in $file"
  elif ! grep -qF -- "$function" "$root/$file"; then
    fail "cow_protocol.pml:$line: function $function is no longer in $file"
  fi
  anchors=$((anchors + 1))
done < <(grep -n '`' "$model")
echo "$anchors excerpts checked"

# --- Running pan.
# A trail as the code it stands for: each step's vCPU and the excerpt its
# model line quotes (init is process 0; then A, B, C, D as init runs them).
summarize_trail() {
  awk -v model="$model" '
    BEGIN {
      split("A B C D", names, " ")
      n = 0
      while ((getline text < model) > 0) {
        n++
        if (match(text, /(ept|guestmm|vmm|tests)\/[A-Za-z0-9_\/]+\.(cc|h) [^`]*`[^`]*`/)) {
          anchor[n] = substr(text, RSTART, RLENGTH)
        }
      }
    }
    /trail ends after/ { exit }
    match($0, /^ *[0-9]+:[ \t]+proc +[0-9]+ /) {
      split(substr($0, RSTART, RLENGTH), f, /[: \t]+/)
      pid = f[4]
      if (match($0, /cow_protocol\.pml:[0-9]+/)) {
        line = substr($0, RSTART + 17, RLENGTH - 17) + 0
        if (pid > 0 && (line in anchor)) {
          out = names[pid] "  " anchor[line]
          if (out != last) print "    " out
          last = out
        }
      }
    }'
}

# run NAME EXPECT [spin -D flags...]; EXPECT is pass or fail.
run() {
  local name=$1 expect=$2
  shift 2
  [ "$only" = "  " ] || [[ $only == *" $name "* ]] || return 0
  local dir=$tmp/$name
  mkdir -p "$dir"
  cp "$model" "$dir/"
  echo
  echo "== $name: spin $* ($expect)"
  (
    cd "$dir"
    spin "$@" -a cow_protocol.pml >spin.log 2>&1 || { cat spin.log; exit 1; }
    # Exhaustive: COLLAPSE stores states compressed, exactly (nothing is
    # hashed away). A counterexample is the shortest (-i: iterative search;
    # REACH keeps it exact).
    if [ "$expect" = pass ]; then
      "$cc" -DSAFETY -DCOLLAPSE -O2 -w -o pan pan.c
      ./pan -m200000 -w25 >pan.log 2>&1 || true
    else
      "$cc" -DSAFETY -DCOLLAPSE -DREACH -O2 -w -o pan pan.c
      ./pan -m200000 -w25 -i >pan.log 2>&1 || true
    fi
  ) || { fail "$name: spin or the compiler failed"; return; }
  local log=$dir/pan.log errors
  errors=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' "$log" | tail -1)
  if [ -z "$errors" ]; then
    cat "$log"
    fail "$name: pan did not finish"
    return
  fi
  grep -E 'states, stored|states, matched|transitions \(|depth reached|elapsed time' "$log" |
    sed 's/^ */    /'
  if [ "$errors" -eq 0 ]; then
    grep -q 'Search not completed' "$log" && fail "$name: search not completed"
    case $expect in
      pass) echo "  no violation" ;;
      *) fail "$name: no counterexample found" ;;
    esac
    return
  fi
  local violated trail
  violated=$(grep -m1 -E 'assertion violated|invalid end state|acceptance cycle' "$log" |
    sed -E 's/^pan:[0-9]+: //')
  trail=$(cd "$dir" && spin "$@" -t -p cow_protocol.pml 2>&1)
  local at
  at=$(grep -m1 -oE 'cow_protocol\.pml:[0-9]+, Error' <<<"$trail" | grep -oE '[0-9]+' || true)
  if [ -n "$at" ]; then
    echo "  counterexample: cow_protocol.pml:$at: $(sed -n "${at}p" "$model" | sed -E 's/^ +//')"
  else
    echo "  counterexample: $violated"
  fi
  echo "  $(grep -m1 -oE 'trail ends after [0-9]+ steps' <<<"$trail"), the last of them:"
  summarize_trail <<<"$trail" | tail -n 30
  if grep -q 'invalid end state' <<<"$violated"; then
    echo "  blocked:"
    sed -n '/trail ends after/,$p' <<<"$trail" | grep -E 'proc +[1-9]' |
      sed -E 's/^ *[0-9]+:[ \t]+proc +([0-9]+) \(([A-Za-z]+):[0-9]+\) cow_protocol\.pml:([0-9]+).*/\1 \3/' |
      while read -r pid line; do
        # The wait the process is in: the first quoted code from its line on.
        echo "    $(cut -d' ' -f"$pid" <<<"A B C D")  $(awk -v from="$line" 'NR >= from && match($0, /(ept|guestmm|vmm|tests)\/[A-Za-z0-9_\/]+\.(cc|h) [^`]*`[^`]*`/) { print substr($0, RSTART, RLENGTH); exit }' "$model")"
      done
  fi
  case $expect in
    pass) fail "$name: the protocol has a counterexample" ;;
  esac
}

# --- 2. The protocol.
run protocol pass
# --- 3. The variants of the race tests, then mutants: the check can fail.
for variant in EAGER_RELEASE SINGLE_STAGE NO_GRACE NO_ACK_WAIT NO_SERVICE NO_W_CLEAR IN_PLACE; do
  run "$variant" fail "-D$variant"
done

echo
if [ "$failures" -ne 0 ]; then
  echo "check_model: $failures failure(s)"
  exit 1
fi
echo "check_model: all checks hold"
