#!/usr/bin/env bash
# Mutation tests (README.md here): each mutants/NAME.patch is a small bug put
# into the production code of ept/ or guestmm/; the tests of tests/ept,
# tests/guestmm and tests/race must catch every one of them.
#
#   run_mutants.sh [--build-dir DIR] [--timeout SECONDS] [--jobs N] [NAME...]
#
# --build-dir DIR  scratch directory (kept, and reused incrementally by the
#                  next run); default: a temporary directory, removed at exit.
# --timeout S      limit of each ctest run (default 90); a mutant that makes
#                  the tests run longer is killed by timeout.
# --jobs N         parallel builds and tests (default 2).
# NAME...          mutants to run (file names in mutants/, .patch optional);
#                  default: all of them.
#
# Exit status: 0 when every mutant was killed; 1 when one survived, its patch
# no longer applies, or it does not build; 2 when the unmutated tests fail or
# the script cannot run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_root=$(cd "${here}/../.." && pwd)
mutants_dir="${here}/mutants"
test_dirs=(ept guestmm race)

scratch=""
keep_scratch=0
run_timeout=90
jobs=2
names=()

die() {
  echo "run_mutants: $*" >&2
  exit 2
}

while (($# > 0)); do
  case "$1" in
    --build-dir)
      (($# >= 2)) || die "--build-dir needs a directory"
      scratch=$2
      keep_scratch=1
      shift 2
      ;;
    --timeout)
      (($# >= 2)) || die "--timeout needs a number of seconds"
      run_timeout=$2
      shift 2
      ;;
    --jobs)
      (($# >= 2)) || die "--jobs needs a number"
      jobs=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $1" ;;
    *)
      names+=("${1%.patch}")
      shift
      ;;
  esac
done

for tool in cmake ninja ctest patch timeout tar cmp; do
  command -v "${tool}" > /dev/null || die "${tool} is not installed"
done

if ((${#names[@]} == 0)); then
  for file in "${mutants_dir}"/*.patch; do
    [[ -e "${file}" ]] || die "no mutant in ${mutants_dir}"
    name=$(basename "${file}")
    names+=("${name%.patch}")
  done
fi
for name in "${names[@]}"; do
  [[ -f "${mutants_dir}/${name}.patch" ]] || die "no mutant ${mutants_dir}/${name}.patch"
done

if [[ -z "${scratch}" ]]; then
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/vmfork-mutation.XXXXXX")
fi
mkdir -p "${scratch}"
scratch=$(cd "${scratch}" && pwd)
cleanup() {
  if ((keep_scratch == 0)); then rm -rf "${scratch}"; fi
}
trap cleanup EXIT

src="${scratch}/src"
build="${scratch}/build"
logs="${scratch}/logs"
mkdir -p "${src}" "${logs}"

# The source tree without .git or build directories (any directory holding a
# CMakeCache.txt, the scratch directory included when it lies inside the
# tree). When the scratch directory is reused, only files whose content
# changed are rewritten, with a fresh mtime, so the build stays incremental
# and can never keep objects of a mutant that a killed run left applied.
sync_source() {
  local fresh="${scratch}/fresh"
  rm -rf "${fresh}"
  mkdir -p "${fresh}"
  tar -C "${source_root}" --exclude=./.git --exclude-tag-all=CMakeCache.txt \
    --exclude="./${scratch#"${source_root}"/}" -cf - . | tar -C "${fresh}" -xmf -
  local file
  while IFS= read -r -d '' file; do
    if ! cmp -s "${fresh}/${file}" "${src}/${file}"; then
      mkdir -p "$(dirname "${src}/${file}")"
      cp "${fresh}/${file}" "${src}/${file}"
    fi
  done < <(cd "${fresh}" && find . -type f -print0)
  while IFS= read -r -d '' file; do
    [[ -e "${fresh}/${file}" ]] || rm -f "${src}/${file}"
  done < <(cd "${src}" && find . -type f -print0)
  rm -rf "${fresh}"
}

echo "== source ${source_root} -> ${src}"
sync_source
echo "== configure (Release, Ninja) in ${build}"
cmake -S "${src}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DVMFORK_MUTATION_TESTS=OFF > "${logs}/configure.log" 2>&1 ||
  { cat "${logs}/configure.log" >&2; die "configure failed"; }

# The test executables of tests/ept, tests/guestmm and tests/race, and a ctest
# regex for their tests (gtest_discover_tests names them EXECUTABLE.Suite.Test).
dir_pattern=$(IFS='|' && echo "${test_dirs[*]}")
mapfile -t targets < <(ninja -C "${build}" -t targets all |
  sed -n -E "s#^(tests/(${dir_pattern})/[A-Za-z0-9_]+): CXX_EXECUTABLE_LINKER.*#\\1#p")
((${#targets[@]} > 0)) || die "no test executable found in tests/{${dir_pattern//|/,}}"
executables=()
for target in "${targets[@]}"; do executables+=("$(basename "${target}")"); done
all_tests="^($(IFS='|' && echo "${executables[*]}"))\\."

build_tests() {
  ninja -C "${build}" -j "${jobs}" "${targets[@]}" > "$1" 2>&1
}

# Runs ctest with the given selection; sets `outcome` to "passed", "failed"
# (with `failed_tests`) or "timeout" (with the tests still running).
run_tests() {
  local log=$1
  shift
  local status=0
  timeout -k 10 "${run_timeout}" ctest --test-dir "${build}" --output-on-failure \
    --stop-on-failure -j "${jobs}" "$@" > "${log}" 2>&1 || status=$?
  failed_tests=""
  if ((status == 0)); then
    outcome=passed
  elif ((status == 124 || status == 137)); then
    outcome=timeout
    # Started but never finished: what hung.
    failed_tests=$(awk '
      /^ *Start +[0-9]+: / { running[$3] = 1 }
      /Test +#[0-9]+: / { sub(/^.*Test +#[0-9]+: /, ""); sub(/ .*/, ""); delete running[$0] }
      END { for (t in running) printf "%s ", t }' "${log}")
  else
    outcome=failed
    failed_tests=$(sed -n -E '/The following tests FAILED:/,$ s/^[[:space:]]+[0-9]+ - ([^ ]+) .*/\1/p' \
      "${log}" | tr '\n' ' ')
    [[ -n "${failed_tests}" ]] || failed_tests="(ctest status ${status}, see ${log})"
  fi
  failed_tests=${failed_tests% }
}

count_tests() {
  ctest --test-dir "${build}" -N "$@" 2> /dev/null | sed -n -E 's/^Total Tests: ([0-9]+)$/\1/p'
}

# Files a patch changes, as paths from the repository root.
patched_files() {
  sed -n -E 's#^\+\+\+ [ab]/([^[:space:]]+).*#\1#p' "$1"
}

echo "== build ${#targets[@]} test executables (${dir_pattern//|/, })"
start=${SECONDS}
build_tests "${logs}/build-baseline.log" ||
  { tail -40 "${logs}/build-baseline.log" >&2; die "the unmutated tree does not build"; }
total=$(count_tests -R "${all_tests}")
run_tests "${logs}/tests-baseline.log" -R "${all_tests}"
if [[ "${outcome}" != passed ]]; then
  tail -40 "${logs}/tests-baseline.log" >&2
  die "the unmutated tests do not pass (${outcome}: ${failed_tests})"
fi
echo "   baseline: ${total} tests pass ($((SECONDS - start)) s)"

rows=()
failures=0
for name in "${names[@]}"; do
  patch_file="${mutants_dir}/${name}.patch"
  what=$(sed -n -E 's/^# what: *//p' "${patch_file}" | head -1)
  kill=$(sed -n -E 's/^# kill: *//p' "${patch_file}" | head -1)
  mutant_start=${SECONDS}
  result=""
  echo "== ${name}: ${what}"
  if [[ -z "${what}" || -z "${kill}" ]]; then
    result="ERROR: no '# what:' or '# kill:' line"
  elif [[ "$(count_tests -R "${kill}")" == 0 ]]; then
    result="ERROR: '# kill: ${kill}' names no test"
  elif ! patch -d "${src}" -p1 -s --dry-run --no-backup-if-mismatch -r - < "${patch_file}" \
    > "${logs}/${name}-patch.log" 2>&1; then
    result="ERROR: patch does not apply (update it)"
  else
    patch -d "${src}" -p1 -s --no-backup-if-mismatch -r - < "${patch_file}"
    if ! build_tests "${logs}/${name}-build.log"; then
      result="ERROR: mutant does not build (${logs}/${name}-build.log)"
    else
      run_tests "${logs}/${name}-kill.log" -R "${kill}"
      if [[ "${outcome}" == passed ]]; then
        run_tests "${logs}/${name}-rest.log" -R "${all_tests}" -E "${kill}"
        [[ "${outcome}" == passed ]] || failed_tests="${failed_tests} (not a '# kill:' test)"
      fi
      case "${outcome}" in
        passed) result="SURVIVED" ;;
        failed) result="killed: ${failed_tests}" ;;
        timeout) result="killed by timeout (${run_timeout} s): ${failed_tests}" ;;
      esac
    fi
    patch -d "${src}" -p1 -s -R --no-backup-if-mismatch -r - < "${patch_file}" ||
      die "cannot revert ${name}"
    while IFS= read -r file; do
      cmp -s "${source_root}/${file}" "${src}/${file}" ||
        die "reverting ${name} did not restore ${file}"
    done < <(patched_files "${patch_file}")
  fi
  seconds=$((SECONDS - mutant_start))
  [[ "${result}" == killed* ]] || failures=$((failures + 1))
  echo "   ${result} (${seconds} s)"
  rows+=("${name}"$'\t'"${result}"$'\t'"${seconds}")
done

echo
echo "== mutants: $((${#names[@]} - failures)) of ${#names[@]} killed, $((SECONDS - start)) s in all"
printf '%s\n' $'mutant\tkilled by\tseconds' $'---\t---\t---:' "${rows[@]}" |
  awk -F '\t' '{ printf "| %-30s | %s | %s |\n", $1, $2, $3 }'
if ((keep_scratch == 1)); then echo "logs: ${logs}"; fi
((failures == 0)) || exit 1
