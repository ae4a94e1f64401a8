#!/usr/bin/env bash
# run_kvm.sh: runs a command that needs /dev/kvm, the way the kvm test suite
# does on any host.
#
#   tests/kvm/run_kvm.sh [--OPTION=VALUE | --FLAG]... [--] CMD [ARGS...]
#
# If /dev/kvm is a character device that opens read-write, execs CMD
# directly and ignores the options. Otherwise execs tests/kvm/nested.sh with
# the options and CMD, which boots a TCG guest with a working /dev/kvm and
# runs CMD there (see nested.sh --help for the options, e.g. --build-dir=DIR,
# --timeout=SECONDS, --file=PATH). Options must be single words (--name=value
# or a flag), so that a launcher prefix such as
#   run_kvm.sh --build-dir=build --timeout=240
# never contains `--` and the first word that is not an option starts CMD.
#
# RUN_KVM_NESTED=1 in the environment takes the nested path even when
# /dev/kvm works (to test nested.sh on a KVM host).
#
# Exit status: CMD's; 125 when nested.sh cannot run CMD.
set -euo pipefail

options=()
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
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
if [ "${RUN_KVM_NESTED:-0}" != 1 ] && [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; then
  exec "$@"
fi
exec "$(dirname "${BASH_SOURCE[0]}")/nested.sh" ${options[@]+"${options[@]}"} -- "$@"
