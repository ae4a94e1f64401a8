#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ (see README.md there), each for a bounded time over a
# copy of its committed corpus, and fails if one finds a crash, a leak or a timeout.
#
#   tests/fuzz/run_fuzzers.sh [--seconds N] [--build-dir DIR] [--jobs N] [--merge] [TARGET...]
#
#   --seconds N      how long each target runs (default 30); a long run is --seconds 3600
#   --build-dir DIR  the clang fuzz tree (default: build-fuzz at the top of the repository),
#                    configured (-DVMFORK_FUZZ=ON, clang++) and built if needed
#   --jobs N         build parallelism (default 2)
#   --merge          afterwards, add the inputs of the run that reach new coverage to the
#                    committed corpus (tests/fuzz/corpus/TARGET/), to be reviewed and committed
#   TARGET           fuzz_elf_loader, fuzz_interpreter (default: both)
#
# Prints, per target, libFuzzer's final statistics (executions, executions per second). An input
# that fails is kept in DIR/fuzz-artifacts/TARGET/ and named in the output; replay it with
#   DIR/fuzz/TARGET DIR/fuzz-artifacts/TARGET/crash-<sha1>
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=30
build_dir="$root/build-fuzz"
jobs=2
merge=0
targets=()
all_targets=(fuzz_elf_loader fuzz_interpreter)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a directory}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --merge) merge=1; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "run_fuzzers.sh: unknown option $1" >&2; usage 2 >&2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
case "$seconds" in '' | *[!0-9]*) echo "run_fuzzers.sh: --seconds wants whole seconds" >&2; exit 2 ;; esac
build_dir=$(mkdir -p "$build_dir" && cd "$build_dir" && pwd)

# Inputs longer than the seeds' few KiB add little: the interpreter's RAM image is cut at
# 64 KiB and an ELF header's fields are in its first bytes. An input runs in milliseconds, so
# 10 s means a hang (or a machine far too busy).
max_len() {
  case "$1" in
    fuzz_elf_loader) echo 16384 ;;
    fuzz_interpreter) echo 12288 ;;
    *) echo "run_fuzzers.sh: unknown target $1 (known: ${all_targets[*]})" >&2; exit 2 ;;
  esac
}
for target in "${targets[@]}"; do max_len "$target" > /dev/null; done

# The fuzz tree: clang, its own build directory.
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  command -v clang++ > /dev/null ||
    { echo "run_fuzzers.sh: clang++ not found (bash .ci/install-deps installs it)" >&2; exit 1; }
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DVMFORK_FUZZ=ON
elif ! grep -q '^VMFORK_FUZZ:BOOL=ON$' "$build_dir/CMakeCache.txt"; then
  echo "run_fuzzers.sh: $build_dir is not a fuzz tree (VMFORK_FUZZ=ON); choose another --build-dir" >&2
  exit 1
fi
cmake --build "$build_dir" --target "${targets[@]}" -j "$jobs"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmfork-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()
for target in "${targets[@]}"; do
  binary="$build_dir/fuzz/$target"
  corpus="$root/tests/fuzz/corpus/$target"
  artifacts="$build_dir/fuzz-artifacts/$target"
  run_corpus="$work/$target-corpus"
  log="$work/$target.log"
  mkdir -p "$artifacts" "$run_corpus"
  # A copy: libFuzzer adds what it finds to its first corpus directory.
  cp "$corpus"/* "$run_corpus"/
  options=(-max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10
           -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
  echo
  echo "=== $target: ${seconds} s over a copy of tests/fuzz/corpus/$target ($(ls "$corpus" | wc -l) inputs)"
  echo "    $binary ${options[*]} <corpus copy>"
  status=0
  (cd "$work" && "$binary" "${options[@]}" "$run_corpus") > "$log" 2>&1 || status=$?
  stats=$(grep '^stat::' "$log" || true)
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' <<< "$stats")
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' <<< "$stats")
  new_units=$(sed -n 's/^stat::new_units_added: *//p' <<< "$stats")
  echo "$stats" | sed 's/^/    /'
  if [ "$status" -ne 0 ]; then
    echo "--- $target FAILED (libFuzzer exit status $status); the end of its log:"
    tail -n 80 "$log"
    for file in $(grep -o 'Test unit written to [^ ]*' "$log" | sed 's/Test unit written to //'); do
      echo "    reproduce: $binary $file"
    done
    failed+=("$target")
    summary+=("$target: FAILED after ${executions:-?} executions")
    continue
  fi
  summary+=("$target: ${executions:-?} executions in ${seconds} s, ${per_second:-?} exec/s, ${new_units:-?} new inputs")
  if [ "$merge" -eq 1 ]; then
    before=$(ls "$corpus" | wc -l)
    "$binary" -merge=1 -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
      "$corpus" "$run_corpus" > "$work/$target-merge.log" 2>&1 ||
      { tail -n 40 "$work/$target-merge.log"; failed+=("$target (merge)"); continue; }
    after=$(ls "$corpus" | wc -l)
    echo "    merged $((after - before)) new inputs into tests/fuzz/corpus/$target (now $after)"
  fi
done

echo
echo "=== summary"
printf '    %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_fuzzers.sh: failed: ${failed[*]} (inputs in $build_dir/fuzz-artifacts/)" >&2
  exit 1
fi
