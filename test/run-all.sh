#!/usr/bin/env bash
# Installs the dependencies, builds Kasi twice (optimised, and with ASan+UBSan), runs every
# unit and integration test in both builds, builds and tests the Debian package, runs each
# libFuzzer target for 10 s (a third build, clang: only the targets and the parsers they
# call; docs/fuzzing.md), and ends with one line "N passed, N failed" counted over all
# suites (each fuzz target counts as one). Exit status is non-zero on any failure.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash packaging/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
status=0
builds=()
setup() {  # dir, meson options...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir" || return 1
}
if setup build-test --buildtype=debugoptimized -Dtests=true; then
  builds+=(build-test)
else
  echo "build failed (build-test)"; status=1
fi
if setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dtests=true; then
  builds+=(build-asan)
else
  echo "build failed (build-asan)"; status=1
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for b in "${builds[@]}"; do
  echo "=== tests in $b"
  meson test -C "$b" --print-errorlogs --num-processes 1 || status=1
done
# The Debian package: built, linted, installed, run as the unit runs it, upgraded, purged.
echo "=== package"
mkdir -p build-deb
/usr/bin/python3 test/package/package_test.py --out build-deb --log build-deb/testlog.json || status=1
# Fuzzing: build-fuzz holds only `ninja fuzz` (fuzz/meson.build), each target runs 10 s.
echo "=== fuzz"
fuzzlog=build-fuzz/fuzz-run/testlog.json
rm -f "$fuzzlog"
if [ -f build-fuzz/build.ninja ] || CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dtests=false \
     --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
     >build-fuzz.setup.log 2>&1; then
  if ninja -C build-fuzz fuzz; then
    bash fuzz/run.sh "${FUZZ_SECONDS:-10}" build-fuzz || status=1
  else
    echo "build failed (build-fuzz)"; status=1
  fi
else
  cat build-fuzz.setup.log; echo "setup failed (build-fuzz)"; status=1
fi
python3 test/count_results.py "${builds[@]/%//meson-logs/testlog.json}" build-deb/testlog.json "$fuzzlog" || status=1
[ ${#builds[@]} -eq 2 ] || status=1
exit $status
