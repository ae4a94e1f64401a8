#!/usr/bin/env bash
# snapshot_differential.sh: a snapshot restores the same on either engine.
#
#   tests/kvm/snapshot_differential.sh [--engine=ENGINE] [--mask-memory-checksums]
#                                      VMFORK GUEST.elf [vmfork run options...]
#
# For each engine that takes the snapshot (soft, then ENGINE, default kvm):
# `VMFORK run GUEST.elf --engine <taker> --snapshot DIR [options]`, then
# `VMFORK restore DIR --clones 2 --memory-checksum` once with --engine soft and
# once with --engine ENGINE. The two restores must print the same stdout
# (lines sorted: clones print at once; it holds the `memory-checksum <vm>
# <hash>` lines) and end with the same exit status. The two runs that took
# the snapshots must print the same, and so must the soft restores of the
# two snapshots (a snapshot restores the same whichever engine took it).
# Runs vmfork directly:
# register it behind `run_kvm.sh --direct-only`, which skips (77) where
# /dev/kvm does not open. Stderr is shown on a mismatch only.
# --mask-memory-checksums: the memory-checksum lines must be there, but their
# hashes are not compared. For guests whose memory at the end depends on the
# timing even on one engine (snapshotme with several vCPUs: vCPU 1 and up
# count until the VM ends); without it, use guests whose restored clones end
# with the same memory whatever the timing.
set -u
engine=kvm
mask=0
while [ $# -gt 0 ]; do
  case $1 in
    --engine=*) engine=${1#*=}; shift ;;
    --mask-memory-checksums) mask=1; shift ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "usage: snapshot_differential.sh [--engine=ENGINE] [--mask-memory-checksums] VMFORK GUEST.elf [options...]" >&2
  exit 2
fi
vmfork=$1 guest=$2
shift 2

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

show() {
  for file in "$@"; do
    echo "--- $file:"
    cat "$dir/$file"
  done
}

normalize() {
  if [ "$mask" = 1 ]; then
    sed -E 's/^(memory-checksum [^ ]+) [0-9a-f]+$/\1 <masked>/' "$1" | LC_ALL=C sort
  else
    LC_ALL=C sort "$1"
  fi
}

failures=0
for taker in soft "$engine"; do
  snapshot=$dir/taken-on-$taker
  "$vmfork" --log-level warn run "$guest" --engine "$taker" --snapshot "$snapshot" "$@" \
    >"$dir/$taker.run.out" 2>"$dir/$taker.run.err"
  status=$?
  if [ "$status" -ne 0 ] || [ ! -f "$snapshot/state.json" ]; then
    echo "the run on $taker wrote no snapshot (status $status)"
    show "$taker.run.out" "$taker.run.err"
    exit 1
  fi
  for restorer in soft "$engine"; do
    "$vmfork" --log-level warn restore "$snapshot" --clones 2 --memory-checksum \
      --engine "$restorer" >"$dir/$taker.$restorer.out" 2>"$dir/$taker.$restorer.err"
    echo $? >"$dir/$taker.$restorer.status"
    normalize "$dir/$taker.$restorer.out" >"$dir/$taker.$restorer.sorted"
  done
  a=$taker.soft b=$taker.$engine
  if ! grep -q '^memory-checksum ' "$dir/$a.out"; then
    echo "taken on $taker: the soft restore printed no memory-checksum line"
    show "$a.out" "$a.err"
    failures=$((failures + 1))
  elif ! diff "$dir/$a.sorted" "$dir/$b.sorted"; then
    echo "taken on $taker: stdout of the restores differs (< soft, > $engine)"
    show "$a.err" "$b.err"
    failures=$((failures + 1))
  elif ! cmp -s "$dir/$a.status" "$dir/$b.status"; then
    echo "taken on $taker: exit status: soft $(cat "$dir/$a.status"), $engine $(cat "$dir/$b.status")"
    show "$a.err" "$b.err"
    failures=$((failures + 1))
  else
    echo "taken on $taker: soft and $engine restores agree (exit status $(cat "$dir/$a.status")):"
    cat "$dir/$a.sorted"
  fi
done
normalize "$dir/soft.run.out" >"$dir/soft.run.sorted"
normalize "$dir/$engine.run.out" >"$dir/$engine.run.sorted"
if ! diff "$dir/soft.run.sorted" "$dir/$engine.run.sorted"; then
  echo "stdout of the runs that took the snapshots differs (< soft, > $engine)"
  show soft.run.err "$engine.run.err"
  failures=$((failures + 1))
fi
if ! diff "$dir/soft.soft.sorted" "$dir/$engine.soft.sorted"; then
  echo "the soft restores differ (< of the snapshot taken on soft, > on $engine)"
  show soft.soft.err "$engine.soft.err"
  failures=$((failures + 1))
fi
[ "$failures" -eq 0 ]
