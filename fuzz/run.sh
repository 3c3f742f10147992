#!/usr/bin/env bash
# Runs every libFuzzer target over its seed corpus for a bounded time, one process at a time
# (docs/fuzzing.md). Usage: fuzz/run.sh [SECONDS_PER_TARGET] [BUILD_DIR]
#   SECONDS_PER_TARGET  default 10 (CI); the long run is e.g. 300
#   BUILD_DIR           default build-fuzz (configured with -Dfuzz=true, `ninja fuzz` done)
# Environment: FUZZ_TARGETS="ini dns_message" runs a subset; FUZZ_OUT (default
# BUILD_DIR/fuzz-run) holds the new inputs (OUT/corpus/<target>: the committed corpus in
# fuzz/corpus is only read), the crash reproducers (OUT/findings/<target>-crash-...), one log
# per target and testlog.json (one line per target, the shape test/count_results.py reads);
# FUZZ_MAX_LEN overrides every target's -max_len (the defaults below keep CI short).
# Prints one result line per target; exit status 1 if any target crashed, timed out, ran
# out of memory or did not run.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
build=${2:-build-fuzz}
case $build in /*) ;; *) build=$top/$build ;; esac
out=${FUZZ_OUT:-$build/fuzz-run}
declare -A max_len=([smtp_command]=1024 [data_stream]=8192 [ini]=8192 [lua_helpers]=4096
                    [http_request]=8192 [json_body]=65536 [dns_message]=4096 [mime_scan]=16384
                    [proxy_protocol]=1024 [classify]=16384 [complaint]=16384 [bounce]=65536
                    [reputation_snapshot]=8192)
targets=${FUZZ_TARGETS:-smtp_command data_stream ini lua_helpers http_request json_body dns_message mime_scan proxy_protocol classify complaint bounce reputation_snapshot}
mkdir -p "$out/findings"
log_json=$out/testlog.json
: >"$log_json"
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$top/fuzz/ubsan.supp
status=0
for t in $targets; do
  exe=$build/fuzz/fuzz_$t
  log=$out/$t.log
  mkdir -p "$out/corpus/$t"
  if [ ! -x "$exe" ]; then
    line="fuzz_$t: FAILED: $exe not built (ninja -C $build fuzz)"
    rc=1
  else
    start=$(date +%s)
    "$exe" "$out/corpus/$t" "$top/fuzz/corpus/$t" -max_total_time="$secs" -timeout=5 \
      -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-${max_len[$t]:-4096}}" -print_final_stats=1 \
      -artifact_prefix="$out/findings/$t-" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ $rc -eq 0 ]; then
      line="fuzz_$t: ok, ${runs:-?} runs in ${took} s, coverage ${cov:-?} edges"
    else
      art=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | cut -d' ' -f5)
      why=$(grep -m1 -oE "ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer): [a-z-]+|runtime error: .*|FUZZ_CHECK failed: .*" "$log")
      line="fuzz_$t: FAILED after ${took} s: ${why:-exit $rc}; reproducer ${art:-none} (log $log)"
    fi
  fi
  echo "$line"
  [ $rc -eq 0 ] || status=1
  /usr/bin/python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "result": "OK" if sys.argv[2] == "0" else "FAIL", "stdout": sys.argv[3]}))' \
    "fuzz_$t" "$rc" "$line" >>"$log_json"
done
exit $status
