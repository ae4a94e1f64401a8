#!/usr/bin/env bash
# make_initramfs.sh: builds the Linux guest's initramfs, a gzip'd newc cpio
# archive, without root.
#
#   guests/linux/make_initramfs.sh [--program PATH] [--init PATH] [--busybox PATH] OUT
#
# The archive holds /init (--init; default: init next to this script),
# /bin/vmfork-linux-test (--program; default: vmfork-linux-test next to OUT),
# /bin/busybox (--busybox; default /bin/busybox, which must be statically
# linked: Debian's busybox-static) with symlinks for a few applets, the empty
# mount points /proc, /sys, /dev, and the device nodes /dev/console and
# /dev/ttyS0 (the kernel opens /dev/console for init before devtmpfs is
# mounted; without it init has no stdout).
#
# Device nodes need root to create, not to archive: the files go through GNU
# cpio from a staging directory, and the nodes are a second newc archive
# written here byte by byte; the kernel unpacks concatenated archives in
# order. Owners are root, times 0: the archive depends on its inputs only.
set -euo pipefail

die() {
  echo "make_initramfs.sh: error: $*" >&2
  exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
program="" init="$script_dir/init" busybox=/bin/busybox out=""
while [ $# -gt 0 ]; do
  case $1 in
    --program) program=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --busybox) busybox=$2; shift 2 ;;
    --program=*) program=${1#*=}; shift ;;
    --init=*) init=${1#*=}; shift ;;
    --busybox=*) busybox=${1#*=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$out" ] || die "one OUT only (see --help)"; out=$1; shift ;;
  esac
done
[ -n "$out" ] || die "no OUT given (see --help)"
[ -n "$program" ] || program="$(dirname "$out")/vmfork-linux-test"
for file in "$init" "$program" "$busybox"; do
  [ -f "$file" ] || die "$file: no such file"
done
command -v cpio >/dev/null || die "cpio is needed (Debian package cpio)"
# A dynamically linked busybox (Debian's busybox, not busybox-static) would
# find no libc in the initramfs, and the kernel could not run /init.
if command -v readelf >/dev/null && LC_ALL=C readelf -lW "$busybox" | grep -q 'program interpreter'; then
  die "$busybox is dynamically linked: install busybox-static"
fi

# Applets /init and a person at the console may use.
applets=(sh mount umount cat echo reboot poweroff sleep ls dmesg ps mkdir)

stage=$(mktemp -d "${TMPDIR:-/tmp}/vmfork-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root"/{bin,dev,proc,sys}
install -m 0755 "$busybox" "$root/bin/busybox"
install -m 0755 "$program" "$root/bin/vmfork-linux-test"
install -m 0755 "$init" "$root/init"
for applet in "${applets[@]}"; do
  ln -s busybox "$root/bin/$applet"
done
find "$root" -exec touch -h -d @0 {} +

# newc_entry NAME MODE RDEV_MAJOR RDEV_MINOR: one header and name of an
# entry without data (the format: the kernel's
# Documentation/driver-api/early-userspace/buffer-format.rst). The header is
# 110 bytes of ASCII; name and data are each padded to 4 bytes.
newc_ino=0x7000
newc_entry() {
  local name=$1 mode=$2 major=$3 minor=$4
  local namesize=$((${#name} + 1))
  newc_ino=$((newc_ino + 1))
  # magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  # rdevmajor, rdevminor, namesize, check
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$newc_ino" "$mode" 0 0 1 0 0 0 0 "$major" "$minor" "$namesize" 0
  printf '%s\0' "$name"
  local pad=$(((4 - (110 + namesize) % 4) % 4))
  [ "$pad" -eq 0 ] || printf '\0%.0s' $(seq "$pad")
}

tmp_out=$out.tmp
{
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible)
  # Character devices (S_IFCHR 0020000): console 5:1, ttyS0 4:64.
  newc_entry dev/console $((0020000 | 0600)) 5 1
  newc_entry dev/ttyS0 $((0020000 | 0660)) 4 64
  newc_entry 'TRAILER!!!' 0 0 0
} | gzip -n -9 >"$tmp_out"
mv "$tmp_out" "$out"
