#!/usr/bin/env bash
# differential.sh: runs one guest on the soft engine (directly) and on the
# kvm engine (through run_kvm.sh) and checks that both give the same console
# output, the same memory checksum per VM and the same exit status.
#
#   tests/kvm/differential.sh [--engine=ENGINE] [RUN_KVM_OPTION...] VMFORK GUEST.elf
#                             [vmfork run options...]
#
# Both runs are `VMFORK --log-level warn run GUEST.elf --memory-checksum
# [options]`, with --engine soft and --engine ENGINE (default kvm); only the
# second goes through run_kvm.sh, with the RUN_KVM_OPTIONs (--name=value
# words, e.g. --build-dir=build --timeout=240). stdout is compared after the
# normalization run_guest.sh applies (TSC ticks masked, lines sorted: VMs print
# at once); it holds the `memory-checksum <vm> <hash>` lines. Stderr is shown
# on a mismatch only. Use it for guests whose soft runs agree with each other.
set -u
here=$(dirname "${BASH_SOURCE[0]}")
engine=kvm
run_kvm_options=()
while [ $# -gt 0 ]; do
  case $1 in
    --engine=*) engine=${1#*=}; shift ;;
    --*) run_kvm_options+=("$1"); shift ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "usage: differential.sh [--engine=ENGINE] [RUN_KVM_OPTION...] VMFORK GUEST.elf [options...]" >&2
  exit 2
fi
vmfork=$1 guest=$2
shift 2

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$vmfork" --log-level warn run "$guest" --memory-checksum --engine soft "$@" \
  >"$dir/soft.out" 2>"$dir/soft.err"
soft_status=$?
"$here/run_kvm.sh" ${run_kvm_options[@]+"${run_kvm_options[@]}"} \
  "$vmfork" --log-level warn run "$guest" --memory-checksum --engine "$engine" "$@" \
  >"$dir/test.out" 2>"$dir/test.err"
test_status=$?

show_stderr() {
  echo "--- stderr of the soft run:"
  cat "$dir/soft.err"
  echo "--- stderr of the $engine run:"
  cat "$dir/test.err"
}
# Kept in step with run_guest.sh's normalize.
normalize() { sed -E 's/fork latency: [0-9]+ ticks/fork latency: <ticks> ticks/' "$1" | LC_ALL=C sort; }
if ! grep -q '^memory-checksum ' "$dir/soft.out"; then
  echo "the soft run printed no memory-checksum line (status $soft_status)"
  show_stderr
  exit 1
fi
if ! diff <(normalize "$dir/soft.out") <(normalize "$dir/test.out"); then
  echo "stdout differs (< soft, > $engine)"
  show_stderr
  exit 1
fi
if [ "$soft_status" -ne "$test_status" ]; then
  echo "exit status: soft $soft_status, $engine $test_status"
  show_stderr
  exit 1
fi
echo "soft and $engine agree (exit status $soft_status):"
cat "$dir/soft.out"
