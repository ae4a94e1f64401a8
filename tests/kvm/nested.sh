#!/usr/bin/env bash
# nested.sh: runs a command with a working /dev/kvm on a host that has none.
#
#   tests/kvm/nested.sh [OPTIONS] [--] CMD [ARGS...]
#
# Boots Debian's kernel (/boot/vmlinuz-<newest version with modules>; its
# uncompressed image through the PVH entry when it can be extracted, which
# saves seconds) under
#   qemu-system-x86_64 -accel tcg -cpu <model> -smp 2 -m <memory> -nographic -no-reboot
# (TCG emulates AMD SVM with nested paging) with a busybox initramfs whose
# /init mounts proc, sys, devtmpfs and a tmpfs on /tmp (unless --file put
# something there), insmods kvm and kvm-amd with their dependencies (modinfo
# -F depends; the 9p modules too when a directory is shared), runs CMD as root
# in the caller's working directory with stdin from /dev/null, and powers off.
# The kernel is quiet (loglevel=1); its console is shown only on a failure,
# or always with --verbose.
#
# Options (each also as --option=VALUE):
#   --file PATH        Make PATH available inside at the same absolute path (a
#                      relative PATH is taken from the caller's working
#                      directory; symlinks along the way are reproduced; a
#                      directory is copied whole). If PATH is a dynamically
#                      linked executable, the shared libraries and the loader
#                      that ldd names come along. Repeatable.
#   --share DIR        Mount host directory DIR read-write inside at the same
#                      absolute path (9p virtfs, security_model=none). Repeatable.
#   --build-dir DIR    The project build directory, shared like --share.
#                      Default: <repository root>/build, if it exists.
#   --no-build-dir     Do not share the build directory.
#   --env NAME=VALUE   Set an environment variable for CMD. Repeatable.
#                      CMD otherwise sees only HOME=/root, PATH, TERM=dumb.
#   --memory SIZE      Guest RAM, in qemu -m syntax (2048, 4G). Default 2048 (MiB).
#   --cpu MODEL        qemu's -cpu (default max). max,-npt hides nested paging:
#                      the guest's KVM then shadows its guests' page tables.
#                      Linux guests need it (tests/linux): QEMU 7.2's TCG,
#                      emulating nested paging, was seen to send the guest
#                      kernel's own instruction fetches (in kvm_amd's text)
#                      through its guest's nested page table after a #VMEXIT,
#                      a triple fault that resets the machine, and to end
#                      nested Linux VMs in triple faults about one boot in two.
#   --timeout SECONDS  Give up after this long, boot included. Default 900.
#   --verbose          Also print the guest's console (kernel log, /init) on stderr.
#   -h, --help         Print this help.
#
# CMD itself: if CMD contains a '/' and names an executable file on the host,
# it is treated as if given with --file (so its shared libraries come along;
# the file itself is copied unless a shared directory already holds it).
# Relative paths in ARGS need no conversion: CMD runs in the same working
# directory (created inside if it is not in a shared directory). Files written
# inside a shared directory persist; everything else is lost at power-off.
# Inside, busybox provides the usual tools (after anything given with --file).
#
# Output: CMD's stdout on stdout and its stderr on stderr, byte for byte, each
# through a serial port of its own (the kernel console is a third one, the
# exit status a fourth). nested.sh's own messages go to stderr, prefixed
# "nested.sh:". Nothing is streamed: output appears when CMD has ended.
#
# Exit status: CMD's, or 125 when nested.sh cannot give one: bad usage,
# missing packages that apt-get cannot install, qemu failing, the guest kernel
# panicking, /dev/kvm not appearing inside, a share failing to mount, the
# guest stopping without reporting CMD's status, or the timeout passing (the
# output CMD had produced so far is printed first).
#
# Missing packages (qemu-system-x86, linux-image-amd64, busybox-static, cpio, kmod)
# are installed with `apt-get install -y --no-install-recommends` (through sudo
# when not root). The base initramfs (busybox, /init, modules) is cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/vmfork-nested/<kernel version>/ and rebuilt
# when the kernel, busybox or this script changes; each run appends a small
# second cpio archive (the command, --file files and their libraries), built
# in a temporary directory under ${TMPDIR:-/tmp}.
# Timings inside are meaningless (TCG); results are real.
set -euo pipefail

readonly EXIT_NESTED=125
readonly DEFAULT_MEMORY=2048
readonly DEFAULT_CPU=max
readonly DEFAULT_TIMEOUT=900
readonly PACKAGES_NEEDED="qemu-system-x86 linux-image-amd64 busybox-static cpio kmod"
# kvm-amd because TCG emulates SVM, not VMX. The 9p set mounts shares.
readonly KVM_MODULES="kvm kvm-amd"
readonly SHARE_MODULES="virtio_pci 9pnet_virtio 9p"

script_path=$(realpath "${BASH_SOURCE[0]}")
script_dir=$(dirname "$script_path")
repo_root=$(realpath "$script_dir/../..")

die() {
  echo "nested.sh: error: $*" >&2
  exit "$EXIT_NESTED"
}
note() { echo "nested.sh: $*" >&2; }

usage() {
  # The header above, from its second line to the line before `set -euo`.
  sed -n '2,/^set -euo pipefail$/{/^set -euo/d;s/^# \{0,1\}//;p}' "$script_path"
}

# ---------------------------------------------------------------- arguments
files=()
shares=()
envs=()
build_dir="$repo_root/build"
build_dir_given=0
share_build_dir=1
memory=$DEFAULT_MEMORY
cpu=$DEFAULT_CPU
timeout=$DEFAULT_TIMEOUT
verbose=0

need_value() { [ "$2" -ge 2 ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    --file) need_value "$1" $#; files+=("$2"); shift 2 ;;
    --file=*) files+=("${1#*=}"); shift ;;
    --share) need_value "$1" $#; shares+=("$2"); shift 2 ;;
    --share=*) shares+=("${1#*=}"); shift ;;
    --build-dir) need_value "$1" $#; build_dir=$2; build_dir_given=1; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; build_dir_given=1; shift ;;
    --no-build-dir) share_build_dir=0; shift ;;
    --env) need_value "$1" $#; envs+=("$2"); shift 2 ;;
    --env=*) envs+=("${1#*=}"); shift ;;
    --memory) need_value "$1" $#; memory=$2; shift 2 ;;
    --memory=*) memory=${1#*=}; shift ;;
    --cpu) need_value "$1" $#; cpu=$2; shift 2 ;;
    --cpu=*) cpu=${1#*=}; shift ;;
    --timeout) need_value "$1" $#; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --verbose | -v) verbose=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || die "no command given (see --help)"
[[ $memory =~ ^[1-9][0-9]*[MG]?$ ]] || die "--memory '$memory': expected a size like 2048 or 4G"
[[ $cpu =~ ^[A-Za-z0-9_.,=+-]+$ ]] || die "--cpu '$cpu': expected a qemu CPU model like max or max,-npt"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout '$timeout': expected a number of seconds"
for e in ${envs[@]+"${envs[@]}"}; do
  [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env '$e': expected NAME=VALUE"
done

# Paths travel through line-based files and qemu options: refuse newlines.
for p in ${files[@]+"${files[@]}"} ${shares[@]+"${shares[@]}"} "$build_dir" "$PWD"; do
  [[ $p != *$'\n'* ]] || die "paths with newlines are not supported"
done

if [ "$share_build_dir" -eq 1 ]; then
  if [ -d "$build_dir" ]; then
    shares+=("$build_dir")
  elif [ "$build_dir_given" -eq 1 ]; then
    die "--build-dir '$build_dir': not a directory"
  fi
fi

# Shares by physical path, deduplicated; a share inside another is dropped.
share_paths=()
for s in ${shares[@]+"${shares[@]}"}; do
  [ -d "$s" ] || die "--share '$s': not a directory"
  share_paths+=("$(realpath "$s")")
done
if [ ${#share_paths[@]} -gt 0 ]; then
  mapfile -t share_paths < <(printf '%s\n' "${share_paths[@]}" | LC_ALL=C sort -u)
  kept=()
  for s in "${share_paths[@]}"; do
    inside=0
    for k in ${kept[@]+"${kept[@]}"}; do
      if [ "$k" = / ] || [[ $s == "$k"/* ]]; then inside=1; fi
    done
    [ "$inside" -eq 1 ] || kept+=("$s")
  done
  share_paths=("${kept[@]}")
fi

# Whether host path $1 (physical) lies in a shared directory.
in_share() {
  local s
  for s in ${share_paths[@]+"${share_paths[@]}"}; do
    if [ "$s" = / ] || [ "$1" = "$s" ] || [[ $1 == "$s"/* ]]; then return 0; fi
  done
  return 1
}

# CMD's program counts as a --file when it is a host path.
if [[ $1 == */* ]] && [ -f "$1" ] && [ -x "$1" ]; then
  files+=("$1")
fi

# ---------------------------------------------------------------- packages
sudo_prefix=()
[ "$(id -u)" -eq 0 ] || sudo_prefix=(sudo)

newest_kernel() {
  local v best=""
  for k in /boot/vmlinuz-*; do
    [ -e "$k" ] || continue
    v=${k#/boot/vmlinuz-}
    [ -e "/lib/modules/$v/modules.dep" ] || continue
    best=$(printf '%s\n%s\n' "$best" "$v" | sed '/^$/d' | sort -V | tail -n 1)
  done
  printf '%s' "$best"
}

missing_packages() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v modinfo >/dev/null || missing+=(kmod)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  [ -n "$(newest_kernel)" ] || missing+=(linux-image-amd64)
  echo ${missing[@]+"${missing[@]}"}
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -n "$missing" ] || return 0
  command -v apt-get >/dev/null || die "missing packages ($missing) and no apt-get to install them"
  note "installing $missing (apt-get; takes a few minutes)"
  local apt=("${sudo_prefix[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  # shellcheck disable=SC2086 # $missing is a list of package names
  if ! "${apt[@]}" install -y -qq --no-install-recommends $missing >&2; then
    "${apt[@]}" update -qq >&2 || die "apt-get update failed"
    # shellcheck disable=SC2086
    "${apt[@]}" install -y -qq --no-install-recommends $missing >&2 ||
      die "apt-get install $missing failed (needed: $PACKAGES_NEEDED)"
  fi
  missing=$(missing_packages)
  [ -z "$missing" ] || die "still missing after apt-get install: $missing"
}

for tool in realpath flock timeout ldd sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is needed and missing"
done

# Per-run files; removed at exit, and qemu with them if still running.
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/vmfork-nested.XXXXXX")
qemu_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'note "interrupted"; exit $EXIT_NESTED' INT TERM HUP

cache_root="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vmfork-nested"
mkdir -p "$cache_root" || die "cannot create the cache directory $cache_root"
# One lock for installing and for building the base archive: ctest -j runs
# several copies of this script at once.
exec 9>"$cache_root/lock"
flock -w 1800 9 || die "waited 30 minutes for $cache_root/lock (held by another nested.sh?)"
install_packages

kernel_version=$(newest_kernel)
kernel=/boot/vmlinuz-$kernel_version
[ -r "$kernel" ] || die "cannot read $kernel (it is readable by root only on some systems: run as root)"

# ---------------------------------------------------------------- staging
# stage_path STAGE PATH: copies host path PATH (absolute) into STAGE at the
# same path. Symlinks met on the way (merged /usr, library version links) are
# reproduced as symlinks and followed, so both the given path and the physical
# one work inside. A directory at the end is copied whole.
stage_path() {
  local stage=$1 path=$2 depth=${3:-0}
  [ "$depth" -lt 40 ] || die "too many levels of symlinks at $path"
  local rest=${path#/} current="" component target
  while [ -n "$rest" ]; do
    component=${rest%%/*}
    if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=""; fi
    if [ -z "$component" ] || [ "$component" = . ]; then continue; fi
    current="$current/$component"
    if [ -L "$current" ]; then
      if [ ! -L "$stage$current" ] && [ ! -e "$stage$current" ]; then
        mkdir -p "$stage$(dirname "$current")"
        cp -P "$current" "$stage$current"
      fi
      target=$(readlink "$current")
      [[ $target == /* ]] || target="$(dirname "$current")/$target"
      target=$(realpath -m -s "$target")
      stage_path "$stage" "$target${rest:+/$rest}" $((depth + 1))
      return
    fi
    if [ -n "$rest" ]; then
      mkdir -p "$stage$current"
    elif [ -d "$current" ]; then
      mkdir -p "$stage$current"
      cp -a "$current/." "$stage$current/"
    elif [ -e "$current" ]; then
      mkdir -p "$stage$(dirname "$current")"
      cp -p "$current" "$stage$current"
    else
      die "$current: no such file"
    fi
  done
}

# stage_dir STAGE PATH: like stage_path, for a directory whose contents stay
# behind (a working directory, a mount point).
stage_dir() {
  local stage=$1 path=$2 physical
  physical=$(realpath -m "$path")
  mkdir -p "$stage$physical"
  if [ "$physical" != "$(realpath -m -s "$path")" ]; then
    # Reproduce the symlinks of the logical path, not the contents.
    local rest=${path#/} current=""
    while [ -n "$rest" ]; do
      current="$current/${rest%%/*}"
      if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=""; fi
      if [ -L "$current" ] && [ ! -e "$stage$current" ] && [ ! -L "$stage$current" ]; then
        mkdir -p "$stage$(dirname "$current")"
        cp -P "$current" "$stage$current"
      fi
    done
  fi
}

# The shared libraries and loader of executable $1 (nothing for static
# executables and scripts), one absolute path a line.
library_paths() {
  local out
  out=$(ldd "$1" 2>/dev/null) || return 0
  if grep -q "not found" <<<"$out"; then
    die "--file $1: ldd cannot find: $(grep "not found" <<<"$out" | awk '{print $1}' | tr '\n' ' ')"
  fi
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"
}

write_cpio() { # write_cpio STAGE OUTPUT
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2"
}

# Module files of $@ and their dependencies, dependencies first.
module_order() {
  local -A seen=()
  local out=()
  visit() {
    local name=${1//-/_} file dep
    [ -z "${seen[$name]:-}" ] || return 0
    seen[$name]=1
    file=$(modinfo -k "$kernel_version" -F filename "$1" 2>/dev/null) ||
      die "kernel $kernel_version has no module $1"
    for dep in $(modinfo -k "$kernel_version" -F depends "$1" | tr ',' ' '); do
      visit "$dep"
    done
    case $file in
      /*.ko) out+=("$file") ;;
      "(builtin)" | "") ;;
      *) die "module $1 is $file: only uncompressed .ko files are supported" ;;
    esac
  }
  local m
  for m in "$@"; do visit "$m"; done
  printf '%s\n' ${out[@]+"${out[@]}"}
}

# /init of the base archive. Reads /nested/run.env, /nested/shares and
# /nested/cmd from the per-run archive. Serial ports: ttyS0 the kernel
# console, ttyS1 CMD's stdout, ttyS2 its stderr, ttyS3 reports for the host
# ("<nonce> <word> ..." lines).
write_init() {
  cat >"$1" <<'INIT'
#!/nested/bin/sh
export PATH=/nested/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /tmp
mount -t tmpfs tmpfs /dev/shm
# Files given with --file under /tmp live in the initramfs (itself a tmpfs).
[ -n "$(ls -A /tmp)" ] || mount -t tmpfs tmpfs /tmp
. /nested/run.env
for port in /dev/ttyS1 /dev/ttyS2 /dev/ttyS3; do stty -F "$port" raw -echo; done
report() { echo "$NESTED_NONCE $*" >/dev/ttyS3; }
fail() { report "$@"; poweroff -f; }
report booted
for module in /nested/modules/kvm/*.ko; do
  out=$(insmod "$module" 2>&1) || report "insmod-failed ${module##*/}: $out"
done
[ -c /dev/kvm ] || fail "no-kvm $(dmesg | grep -iE 'kvm|svm' | tail -n 3 | tr '\n' ' ')"
if [ -s /nested/shares ]; then
  for module in /nested/modules/9p/*.ko; do
    out=$(insmod "$module" 2>&1) || report "insmod-failed ${module##*/}: $out"
  done
  while read -r tag path; do
    mkdir -p "$path"
    out=$(mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 "$tag" "$path" 2>&1) ||
      fail "share-failed $path: $out"
  done </nested/shares
fi
mkdir -p "$NESTED_CWD" 2>/dev/null
cd "$NESTED_CWD" 2>/dev/null || cd "$NESTED_CWD_PHYSICAL" || fail "no-cwd $NESTED_CWD"
report started
exec 5>/dev/ttyS1 6>/dev/ttyS2
/nested/bin/sh /nested/cmd <"/dev/null" >&5 2>&6 5>&- 6>&-
status=$?
# The last close of a serial port waits until its output has been sent.
exec 5>&- 6>&-
sync
report "status $status"
poweroff -f
INIT
  chmod 755 "$1"
}

busybox=/bin/busybox
base_dir="$cache_root/$kernel_version"
base_cpio="$base_dir/base.cpio"
base_key=$(
  {
    sha256sum "$script_path" | cut -d' ' -f1
    stat -L -c '%n %s %Y' "$kernel" "/lib/modules/$kernel_version/modules.dep" "$busybox"
  } | sha256sum | cut -d' ' -f1
)
if [ ! -f "$base_cpio" ] || [ "$(cat "$base_dir/key" 2>/dev/null)" != "$base_key" ]; then
  note "building the base initramfs for kernel $kernel_version in $base_dir"
  mkdir -p "$base_dir"
  stage=$(mktemp -d "$base_dir/stage.XXXXXX")
  mkdir -p "$stage"/{nested/bin,nested/modules/kvm,nested/modules/9p,proc,sys,dev,tmp,root}
  # Merged /usr (bin -> usr/bin, ...) as on the host, so ldd's paths resolve.
  for top in bin sbin lib lib32 lib64 libx32; do
    [ -L "/$top" ] && cp -P "/$top" "$stage/$top"
  done
  cp "$busybox" "$stage/nested/bin/busybox"
  libs=$(library_paths "$busybox") || exit "$EXIT_NESTED"
  for lib in $libs; do stage_path "$stage" "$lib"; done
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$stage/nested/bin/$applet"
  done
  mkdir -p "$stage/usr/bin"
  ln -s /nested/bin/busybox "$stage/usr/bin/sh"
  # shellcheck disable=SC2086 # lists of module names
  kvm_modules=$(module_order $KVM_MODULES) || exit "$EXIT_NESTED"
  # shellcheck disable=SC2086
  share_modules=$(module_order $SHARE_MODULES) || exit "$EXIT_NESTED"
  i=10
  for ko in $kvm_modules; do
    cp "$ko" "$stage/nested/modules/kvm/$i-$(basename "$ko")"
    i=$((i + 1))
  done
  for ko in $share_modules; do
    cp "$ko" "$stage/nested/modules/9p/$i-$(basename "$ko")"
    i=$((i + 1))
  done
  write_init "$stage/init"
  write_cpio "$stage" "$base_cpio.tmp"
  rm -rf "$stage"
  # Booting the uncompressed kernel through its PVH entry skips the
  # decompression and real-mode setup, which take seconds under TCG.
  # Replaced by rename, never removed first: another run may be about to open it.
  kernel_key=$(stat -L -c '%n %s %Y' "$kernel")
  extracted=0
  if [ -f "$base_dir/vmlinux" ] && [ "$(cat "$base_dir/vmlinux.key" 2>/dev/null)" = "$kernel_key" ]; then
    extracted=1
  elif grep -q '^CONFIG_PVH=y' "/boot/config-$kernel_version" 2>/dev/null && command -v xz >/dev/null; then
    offset=$(LC_ALL=C grep -abo -m1 -P '\xfd7zXZ\x00' "$kernel" | head -n 1 | cut -d: -f1 || true)
    if [ -n "$offset" ]; then
      # xz stops at the end of its stream and complains about what follows.
      tail -c +$((offset + 1)) "$kernel" | xz -dc >"$base_dir/vmlinux.tmp" 2>/dev/null || true
      if [ "$(head -c 4 "$base_dir/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        mv "$base_dir/vmlinux.tmp" "$base_dir/vmlinux"
        echo "$kernel_key" >"$base_dir/vmlinux.key"
        extracted=1
      fi
      rm -f "$base_dir/vmlinux.tmp"
    fi
  fi
  [ "$extracted" -eq 1 ] || rm -f "$base_dir/vmlinux" "$base_dir/vmlinux.key"
  mv "$base_cpio.tmp" "$base_cpio"
  echo "$base_key" >"$base_dir/key"
fi
boot_kernel=$kernel
[ ! -f "$base_dir/vmlinux" ] || boot_kernel="$base_dir/vmlinux"
# A copy: a run of another version of this script may rebuild the cache.
cp "$base_cpio" "$run_dir/base.cpio"
flock -u 9

# ---------------------------------------------------------------- this run

quote() { # POSIX single quoting
  printf "'%s'" "${1//\'/\'\\\'\'}"
}

stage="$run_dir/stage"
mkdir -p "$stage/nested"
nonce="nested-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
{
  echo "NESTED_NONCE=$(quote "$nonce")"
  echo "NESTED_CWD=$(quote "$PWD")"
  echo "NESTED_CWD_PHYSICAL=$(quote "$(pwd -P)")"
} >"$stage/nested/run.env"
{
  echo "export HOME=/root TERM=dumb"
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/nested/bin"
  for e in ${envs[@]+"${envs[@]}"}; do echo "export ${e%%=*}=$(quote "${e#*=}")"; done
  printf 'exec'
  for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
  echo
} >"$stage/nested/cmd"
virtfs=()
: >"$stage/nested/shares"
i=0
for s in ${share_paths[@]+"${share_paths[@]}"}; do
  echo "share$i $s" >>"$stage/nested/shares"
  virtfs+=(-virtfs "local,path=${s//,/,,},mount_tag=share$i,security_model=none,multidevs=remap")
  stage_dir "$stage" "$s"
  i=$((i + 1))
done
in_share "$(pwd -P)" || stage_dir "$stage" "$PWD"
for f in ${files[@]+"${files[@]}"}; do
  [ -e "$f" ] || die "--file '$f': no such file"
  # Not normalized: a/../b needs a inside too.
  if [[ $f == /* ]]; then abs=$f; else abs="$PWD/$f"; fi
  in_share "$(realpath "$f")" || stage_path "$stage" "$abs"
  if [ -f "$f" ] && [ -x "$f" ]; then
    libs=$(library_paths "$f") || exit "$EXIT_NESTED"
    for lib in $libs; do stage_path "$stage" "$lib"; done
  fi
done
initrd="$run_dir/initrd.cpio"
write_cpio "$stage" "$run_dir/run.cpio"
cat "$run_dir/base.cpio" "$run_dir/run.cpio" >"$initrd"
rm -rf "$stage"

chardev() { # chardev ID FILE: a serial port written to FILE
  printf 'file,id=%s,path=%s' "$1" "${2//,/,,}"
}
# Quiet, and a panic or oops ends qemu at once (-no-reboot). tsc=reliable:
# TCG's TSCs are fine, and the fallback (HPET) makes every clock read an MMIO
# access. The rest trims boot time.
kernel_args="console=ttyS0 quiet loglevel=1 panic=-1 oops=panic mitigations=off tsc=reliable"
kernel_args+=" no_timer_check cryptomgr.notests audit=0 nowatchdog noresume"
qemu=(
  qemu-system-x86_64 -accel tcg -cpu "$cpu" -smp 2 -m "$memory" -nographic -no-reboot
  -monitor none -parallel none -nic none
  -kernel "$boot_kernel" -initrd "$initrd"
  -append "$kernel_args"
  -chardev "$(chardev console "$run_dir/console")" -serial chardev:console
  -chardev "$(chardev stdout "$run_dir/stdout")" -serial chardev:stdout
  -chardev "$(chardev stderr "$run_dir/stderr")" -serial chardev:stderr
  -chardev "$(chardev report "$run_dir/report")" -serial chardev:report
  ${virtfs[@]+"${virtfs[@]}"}
)
# Debugging only: NESTED_QEMU_EXTRA adds qemu options, split on spaces
# (e.g. "-d int -D FILE" logs every interrupt and exception of both levels).
# shellcheck disable=SC2206
[ -z "${NESTED_QEMU_EXTRA:-}" ] || qemu+=(${NESTED_QEMU_EXTRA})
timeout --kill-after=10 "$timeout" "${qemu[@]}" </dev/null >"$run_dir/qemu.out" 2>&1 &
qemu_pid=$!
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""

# "<nonce> <word> ..." lines of the report port, without the nonce.
reports() {
  tr -d '\r' <"$run_dir/report" 2>/dev/null | sed -n "s/^$nonce //p"
}
# The console from its first sign of a kernel failure, else its last lines.
console_excerpt() {
  local first
  first=$(tr -d '\r' <"$run_dir/console" 2>/dev/null |
    grep -n -m1 -E 'Kernel panic|BUG:|Oops|general protection fault' | cut -d: -f1 || true)
  if [ -n "$first" ]; then
    echo "nested.sh: the guest console, from line $first:" >&2
    tr -d '\r' <"$run_dir/console" | tail -n +"$first" | head -n 40 | sed 's/^/  | /' >&2
  else
    echo "nested.sh: the guest console ended with:" >&2
    tr -d '\r' <"$run_dir/console" 2>/dev/null | tail -n 30 | sed 's/^/  | /' >&2
  fi
}
print_output() {
  cat "$run_dir/stdout" 2>/dev/null || true
  cat "$run_dir/stderr" >&2 2>/dev/null || true
}
if [ "$verbose" -eq 1 ]; then
  note "guest console:"
  tr -d '\r' <"$run_dir/console" 2>/dev/null | sed 's/^/  | /' >&2
fi
reports | sed -n 's/^insmod-failed /nested.sh: insmod failed: /p' >&2

if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
  if reports | grep -q '^started'; then
    print_output
    die "timed out after $timeout s; CMD was still running (its output so far is above): $*"
  fi
  console_excerpt
  die "timed out after $timeout s before CMD started"
fi
if [ "$qemu_status" -ne 0 ]; then
  sed 's/^/  | /' "$run_dir/qemu.out" >&2
  die "qemu-system-x86_64 failed with status $qemu_status"
fi
status_line=$(reports | grep -m1 '^status ' || true)
if [ -n "$status_line" ]; then
  print_output
  exit "${status_line#status }"
fi
if tr -d '\r' <"$run_dir/console" 2>/dev/null | grep -q "Kernel panic"; then
  console_excerpt
  die "the guest kernel panicked"
fi
failure=$(reports | grep -m1 -E '^(no-kvm|share-failed|no-cwd)' || true)
case $failure in
  no-kvm*) die "/dev/kvm did not appear in the guest (kernel messages: ${failure#no-kvm })" ;;
  share-failed*) die "could not mount a shared directory: ${failure#share-failed }" ;;
  no-cwd*) die "could not enter the working directory ${failure#no-cwd } in the guest" ;;
esac
print_output
console_excerpt
if reports | grep -q '^started'; then
  die "the guest stopped without reporting CMD's exit status"
fi
die "the guest stopped before CMD started"
