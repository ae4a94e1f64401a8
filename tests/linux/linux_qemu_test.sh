#!/usr/bin/env bash
# linux_qemu_test.sh: boots Debian's own kernel with the initramfs of
# guests/linux under plain qemu (TCG, no vmfork), to check the initramfs, its
# /init and vmfork-linux-test apart from the VMM (issue 14).
#
#   tests/linux/linux_qemu_test.sh CASE INITRAMFS PROGRAM
#
# CASE:
#   exit      vmfork.test=boot with qemu's isa-debug-exit at port 0xF4 (out
#             VALUE exits qemu with (VALUE << 1) | 1): "booted, 2 cpus online",
#             the checksum of pattern 0 (PROGRAM's `checksums` mode computes
#             it on the host), and qemu's status 1, i.e. the guest's 0
#   fallback  the same without isa-debug-exit: the out to 0xF4 goes nowhere,
#             so vmfork-linux-test says so and returns, and /init reboots;
#             with -no-reboot qemu exits 0
# Exit status: 0 when every check passes, 1 when one fails, 77 (ctest's skip)
# without qemu-system-x86_64, /bin/busybox or a readable kernel in /boot.
set -uo pipefail

readonly EXIT_SKIP=77
readonly CMDLINE="console=ttyS0 reboot=k panic=-1 pci=off nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd vmfork.test=boot"

if [ $# -ne 3 ]; then
  echo "usage: linux_qemu_test.sh exit|fallback INITRAMFS PROGRAM" >&2
  exit 2
fi
case=$1 initramfs=$2 program=$3
qemu_options=(-accel tcg -smp 2 -m 512 -nographic -no-reboot)
case $case in
  exit) qemu_options+=(-device "isa-debug-exit,iobase=0xf4,iosize=4"); want_status=1 ;;
  fallback) want_status=0 ;;
  *) echo "linux_qemu_test.sh: CASE is exit or fallback, not '$case'" >&2; exit 2 ;;
esac

fail() {
  echo "FAIL linux qemu $case: $*"
  exit 1
}

command -v qemu-system-x86_64 >/dev/null ||
  { echo "SKIP: no qemu-system-x86_64 (Debian: qemu-system-x86)"; exit "$EXIT_SKIP"; }
[ -x /bin/busybox ] || { echo "SKIP: no /bin/busybox (Debian: busybox-static)"; exit "$EXIT_SKIP"; }
kernel=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -readable 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "SKIP: no readable /boot/vmlinuz-*"; exit "$EXIT_SKIP"; }
for file in "$initramfs" "$program"; do
  [ -f "$file" ] || fail "$file is missing (build the target linux_initramfs)"
done
pattern0=$("$program" checksums | sed -nE 's/^pattern 0 checksum (0x[0-9a-f]{16})$/\1/p')
[ -n "$pattern0" ] || fail "$program checksums printed no checksum of pattern 0"

console=$(timeout 600 qemu-system-x86_64 "${qemu_options[@]}" -kernel "$kernel" \
  -initrd "$initramfs" -append "$CMDLINE" </dev/null 2>&1 | tr -d '\r')
status=${PIPESTATUS[0]}
show_and_fail() {
  echo "FAIL linux qemu $case: $*"
  echo "--- console"
  printf '%s\n' "$console"
  exit 1
}
grep -qx "linux-guest: booted, 2 cpus online" <<<"$console" || show_and_fail "no boot line"
grep -qx "linux-guest: checksum $pattern0" <<<"$console" ||
  show_and_fail "no line 'linux-guest: checksum $pattern0'"
if [ "$case" = fallback ]; then
  grep -qx "linux-guest: out 0 to port 0xf4 did not end the VM" <<<"$console" ||
    show_and_fail "vmfork-linux-test did not say that port 0xF4 did not end the VM"
  grep -q "^linux-guest: /init: vmfork-linux-test boot returned 3 .*; rebooting$" <<<"$console" ||
    show_and_fail "/init did not say why it reboots"
fi
[ "$status" -eq "$want_status" ] || show_and_fail "qemu exited with status $status, expected $want_status"
echo "PASS linux qemu $case"
