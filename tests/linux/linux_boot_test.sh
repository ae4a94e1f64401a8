#!/usr/bin/env bash
# linux_boot_test.sh: boots Debian's own kernel with the initramfs of
# guests/linux on the kvm engine, inside tests/kvm/nested.sh's TCG guest, and
# checks what the guest printed and the exit status (issue 14).
#
#   tests/linux/linux_boot_test.sh MODE VMFORK INITRAMFS PROGRAM [NESTED_OPTIONS...]
#
# MODE is vmfork-linux-test's (guests/linux/vmfork_linux_test.c):
#   boot  "linux-guest: booted, 2 cpus online", the checksum of pattern 0,
#         status 0, and the kernel's "TSC deadline timer available" (every
#         mode checks these)
#   fork  the same, then exactly one "clone <k> running" line and one
#         "clone <k> checksum" line for each k in 1..4, with the checksum of
#         pattern k (all distinct), and "original
#         untouched checksum" with pattern 0's; status 0
#   snapshot  the same as boot, then the guest snapshots itself (port 0x511)
#         into a directory of the TCG guest's /tmp ("snapshot taken" with
#         pattern 0's checksum, status 0), and `vmfork restore` starts 2
#         clones of it on the kvm engine: exactly one "restored clone <k>
#         checksum" line with pattern 0's for k in 1..2, status 0
#   hostile  the same as boot, then forks 2 clones: clone 2 prints pattern
#         2's checksum; clone 1 reads all ones from ports no device answers
#         and triple-faults its kernel. vmfork exits with status 1 (clone 1's
#         error, which names the triple fault and vm0.1), after the original
#         found its memory untouched and ended with status 0
# PROGRAM is the host build of vmfork-linux-test: its `checksums` mode gives
# the values the guest must print. The kernel is the one nested.sh boots
# (/boot/vmlinuz-<newest version with modules>), given to it with --file.
# NESTED_OPTIONS go to nested.sh (--build-dir=..., --timeout=...). With
# LINUX_TEST_SHOW=1 in the environment, the console and stderr are printed on
# a pass too.
#
# Exit status: 0 when every check passes, 1 when one fails, 77 (ctest's skip)
# without /bin/busybox (busybox-static: no initramfs) or a kernel in /boot.
set -uo pipefail

readonly EXIT_SKIP=77
readonly VCPUS=2
readonly CLONES=4
readonly RESTORED=2
readonly HOSTILE_CLONES=2
readonly CMDLINE_BASE="console=ttyS0 reboot=k panic=-1 pci=off nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"

if [ $# -lt 4 ]; then
  echo "usage: linux_boot_test.sh MODE VMFORK INITRAMFS PROGRAM [NESTED_OPTIONS...]" >&2
  exit 2
fi
mode=$1 vmfork=$2 initramfs=$3 program=$4
shift 4
case $mode in
  boot | fork | snapshot | hostile) ;;
  *) echo "linux_boot_test.sh: MODE is boot, fork, snapshot or hostile, not '$mode'" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nested=$here/../kvm/nested.sh

fail() {
  echo "FAIL linux $mode: $*"
  exit 1
}

# The kernel nested.sh itself boots (its newest_kernel()): the newest version
# in /boot that has modules.
newest_kernel() {
  local k v best=""
  for k in /boot/vmlinuz-*; do
    [ -e "$k" ] || continue
    v=${k#/boot/vmlinuz-}
    [ -e "/lib/modules/$v/modules.dep" ] || continue
    best=$(printf '%s\n%s\n' "$best" "$v" | sed '/^$/d' | sort -V | tail -n 1)
  done
  printf '%s' "$best"
}

if [ ! -x /bin/busybox ]; then
  echo "SKIP linux $mode: no /bin/busybox (Debian: busybox-static), so no initramfs"
  exit "$EXIT_SKIP"
fi
version=$(newest_kernel)
if [ -z "$version" ]; then
  echo "SKIP linux $mode: no /boot/vmlinuz-<version> with /lib/modules/<version> (Debian: linux-image-amd64)"
  exit "$EXIT_SKIP"
fi
kernel=/boot/vmlinuz-$version
for file in "$vmfork" "$initramfs" "$program"; do
  [ -f "$file" ] || fail "$file is missing (build the targets vmfork and linux_initramfs)"
done

# pattern_checksum P: the checksum of pattern P, computed on the host.
expected=$("$program" checksums) || fail "$program checksums failed"
pattern_checksum() {
  sed -nE "s/^pattern $1 checksum (0x[0-9a-f]{16})$/\1/p" <<<"$expected"
}

out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
run_linux=("$vmfork" --log-level warn run --engine kvm --kernel "$kernel" --initrd "$initramfs"
  --cmdline "$CMDLINE_BASE vmfork.test=$mode" --vcpus "$VCPUS" --mem 512M)
if [ "$mode" = snapshot ]; then
  # Two commands in the TCG guest: busybox sh runs them, with vmfork given
  # as a --file so that its shared libraries come along. The snapshot lives
  # in the TCG guest's /tmp and is gone with it.
  snapshot_dir=/tmp/linux-snapshot
  bash "$nested" "$@" --file="$kernel" --file="$vmfork" -- sh -c \
    '"$@" --snapshot "$0" && "$1" --log-level warn restore "$0" --clones '"$RESTORED"' --engine kvm' \
    "$snapshot_dir" "${run_linux[@]}" >"$out" 2>"$err"
else
  bash "$nested" "$@" --file="$kernel" -- "${run_linux[@]}" >"$out" 2>"$err"
fi
status=$?

# The guest's tty writes CR LF; the lines are looked for anywhere in a
# console line, whatever prefix vmfork puts before each VM's lines.
console=$(tr -d '\r' <"$out")
show() {
  echo "--- console (stdout)"
  printf '%s\n' "$console"
  echo "--- stderr"
  cat "$err"
}
check() {
  if ! "$@"; then
    show
    exit 1
  fi
}
# lines REGEX: the console lines that match (the match only, from "linux-guest:").
lines() {
  grep -oE "linux-guest: $1" <<<"$console" || true
}
expect_one() {
  local found
  found=$(lines "$1")
  if [ "$(printf '%s' "$found" | grep -c '')" -ne 1 ]; then
    echo "FAIL linux $mode: expected exactly one line matching 'linux-guest: $1', got:"
    printf '%s\n' "${found:-(none)}"
    return 1
  fi
}
checksum_of() {
  lines "$1" | grep -oE '0x[0-9a-f]{16}$'
}
expect_checksum() {
  local what=$1 regex=$2 want=$3 got
  got=$(checksum_of "$regex")
  if [ "$got" != "$want" ]; then
    echo "FAIL linux $mode: $what checksum ${got:-(none)}, expected $want"
    return 1
  fi
}

if [ "$status" -eq 125 ]; then
  echo "FAIL linux $mode: nested.sh could not run vmfork (status 125)"
  show
  exit 1
fi
pattern0=$(pattern_checksum 0)
check expect_one "booted, $VCPUS cpus online"
# Each vCPU's CPUID offers the in-kernel LAPIC's TSC-deadline timer
# (vmm/kvm/kvm_machine.cc): without it Linux calibrates the LAPIC timer
# against the PIT, and on a loaded host may disable it and stall.
timer_ok() {
  if ! grep -q "TSC deadline timer available" <<<"$console" ||
    grep -q "APIC timer disabled" <<<"$console"; then
    echo "FAIL linux $mode: the kernel did not find the TSC-deadline timer (or disabled the LAPIC timer)"
    return 1
  fi
}
check timer_ok
check expect_one "checksum 0x[0-9a-f]{16}"
check expect_checksum "boot" "checksum 0x[0-9a-f]{16}" "$pattern0"
if [ "$mode" = fork ]; then
  check expect_one "forking $CLONES clones"
  for k in $(seq 1 "$CLONES"); do
    check expect_one "clone $k running"
    check expect_one "clone $k checksum 0x[0-9a-f]{16}"
    check expect_checksum "clone $k" "clone $k checksum 0x[0-9a-f]{16}" "$(pattern_checksum "$k")"
  done
  check expect_one "original untouched checksum 0x[0-9a-f]{16}"
  check expect_checksum "original" "original untouched checksum 0x[0-9a-f]{16}" "$pattern0"
  clone_lines=$(lines "clone [0-9]+ checksum 0x[0-9a-f]{16}")
  distinct=$( (grep -oE '0x[0-9a-f]{16}$' <<<"$clone_lines"; echo "$pattern0") | sort -u | grep -c '')
  if [ "$(grep -c '' <<<"$clone_lines")" -ne "$CLONES" ] || [ "$distinct" -ne $((CLONES + 1)) ]; then
    echo "FAIL linux $mode: expected $CLONES clone lines with checksums distinct from each other and the original's"
    show
    exit 1
  fi
fi
if [ "$mode" = snapshot ]; then
  check expect_one "taking a snapshot"
  check expect_one "snapshot taken, checksum 0x[0-9a-f]{16}"
  check expect_checksum "snapshot" "snapshot taken, checksum 0x[0-9a-f]{16}" "$pattern0"
  for k in $(seq 1 "$RESTORED"); do
    check expect_one "restored clone $k checksum 0x[0-9a-f]{16}"
    check expect_checksum "restored clone $k" "restored clone $k checksum 0x[0-9a-f]{16}" "$pattern0"
  done
  if [ "$(lines "restored clone [0-9]+ checksum" | grep -c '')" -ne "$RESTORED" ]; then
    echo "FAIL linux $mode: expected exactly $RESTORED restored clones"
    show
    exit 1
  fi
fi
expected_status=0
if [ "$mode" = hostile ]; then
  expected_status=1
  check expect_one "forking $HOSTILE_CLONES clones, clone 1 hostile"
  check expect_one "hostile clone 1 read pci 0xffffffff com2 0xff port 0x1234 0xffff"
  check expect_one "hostile clone 1 triple-faulting"
  check expect_one "clone 2 checksum 0x[0-9a-f]{16}"
  check expect_checksum "clone 2" "clone 2 checksum 0x[0-9a-f]{16}" "$(pattern_checksum 2)"
  check expect_one "original untouched checksum 0x[0-9a-f]{16}"
  check expect_checksum "original" "original untouched checksum 0x[0-9a-f]{16}" "$pattern0"
  if [ -n "$(lines "clone 1 checksum")" ]; then
    echo "FAIL linux $mode: the hostile clone 1 printed a checksum"
    show
    exit 1
  fi
  # Clone 1's error ("vmfork: vm0.1 vCPU 0: triple fault ..."), and no line
  # naming vm0 or vm0.2.
  if ! grep -q "vm0\.1 vCPU [0-9]*: triple fault" "$err" ||
    grep -qE "(^|[^.0-9])vm0(\.2)?[ :]" "$err"; then
    echo "FAIL linux $mode: expected an error naming vm0.1's triple fault, and no message of vm0 or vm0.2"
    show
    exit 1
  fi
fi
if [ "$status" -ne "$expected_status" ]; then
  echo "FAIL linux $mode: vmfork exited with status $status, expected $expected_status"
  show
  exit 1
fi
if [ "${LINUX_TEST_SHOW:-0}" = 1 ]; then show; fi
echo "PASS linux $mode"
