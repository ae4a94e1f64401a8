#!/usr/bin/env bash
# Runs a command under a limit on the number of threads (ulimit -u LIMIT),
# counted in a user namespace of its own, so that only the command's own
# processes and threads count against it (not the same user's elsewhere on
# the host). Root ignores RLIMIT_NPROC, so as root the command runs as
# nobody (65534): the build tree must be readable by all.
#
#   thread_limit.sh LIMIT COMMAND [ARGS...]
#
# Exits 77 (ctest's skip) where user namespaces cannot be made.
set -u
limit=$1
shift
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
namespace=("${as_user[@]}" unshare --user --map-root-user --)
if ! "${namespace[@]}" true 2>/dev/null; then
  echo "thread_limit.sh: skipped: cannot make a user namespace here" >&2
  exit 77
fi
exec "${namespace[@]}" bash -c 'ulimit -u "$1" || exit 2; shift; exec "$@"' thread_limit "$limit" "$@"
