#!/usr/bin/env bash
# run_kvm.sh: runs a command that needs /dev/kvm, the way the kvm test suite
# does on any host.
#
#   tests/kvm/run_kvm.sh [--OPTION=VALUE | --FLAG]... [--] CMD [ARGS...]
#
# If /dev/kvm is a character device that opens read-write (hardware KVM, or
# PVM's: the kvm_pvm module, KVM without hardware virtualization, where
# vmfork's guests run natively too, vmm/kvm/pvm.h), execs CMD directly and
# ignores the options. Otherwise execs tests/kvm/nested.sh with the options
# and CMD, which boots a TCG guest with a working /dev/kvm and runs CMD there
# (see nested.sh --help for the options, e.g. --build-dir=DIR,
# --timeout=SECONDS, --file=PATH). Options must be single words (--name=value
# or a flag), so that a launcher prefix such as
#   run_kvm.sh --build-dir=build --timeout=240
# never contains `--` and the first word that is not an option starts CMD.
#
# RUN_KVM_NESTED=1 in the environment takes the nested path even when
# /dev/kvm works (hardware KVM semantics on a PVM host, or nested.sh on a KVM
# host); RUN_KVM_NESTED=0 takes the direct path or fails.
#
# --direct-only (handled here, not passed on): run CMD directly when /dev/kvm
# opens, whatever serves it, and exit 77 (ctest's skip) when it does not. For
# the tests that check the kvm engine against the host's own kernel.
#
# Exit status: CMD's; 125 when nested.sh cannot run CMD; 77 for --direct-only
# without /dev/kvm.
set -euo pipefail

options=()
direct_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    --direct-only) direct_only=1; shift ;;
    --*=* | --no-build-dir | --verbose) options+=("$1"); shift ;;
    -*) echo "run_kvm.sh: error: '$1': options are --name=value or a flag (see --help)" >&2; exit 125 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "run_kvm.sh: error: no command given (see --help)" >&2
  exit 125
fi

# -c first: opening a missing /dev/kvm read-write would create a file.
kvm_opens() { [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; }
if [ "$direct_only" = 1 ]; then
  if kvm_opens; then
    exec "$@"
  fi
  echo "run_kvm.sh: /dev/kvm does not open here: skipped (--direct-only)" >&2
  exit 77
fi
case ${RUN_KVM_NESTED:-auto} in
  1) ;;
  0)
    if kvm_opens; then exec "$@"; fi
    echo "run_kvm.sh: error: RUN_KVM_NESTED=0 but /dev/kvm does not open" >&2
    exit 125
    ;;
  *) if kvm_opens; then exec "$@"; fi ;;
esac
exec "$(dirname "${BASH_SOURCE[0]}")/nested.sh" ${options[@]+"${options[@]}"} -- "$@"
