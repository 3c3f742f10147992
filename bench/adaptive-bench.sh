#!/usr/bin/env bash
# Adaptive traffic shaping against the provider simulator (test/integration/provider_sim.py):
# one mixed batch (600 messages to Gmail, Outlook.com, Yahoo and a domain of no known
# provider) through a fresh Kasi per mode — none (outbound defaults), static-published
# (kasi.throttle's shipped profiles), static-tuned (throttle limits set just under the
# simulator's), adaptive (plugin adaptive, shipped rules) — from two egress sources
# (127.0.0.2, 127.0.0.3). Per run and mode: time until every recipient is delivered or
# bounced (or the cap), Kasi's TransientFailure events, the simulator's deferrals, penalty
# boxes, peak penalty, blocks, and the Adaptive events; then a table of medians and whether
# adaptive met its target (docs/benchmarks.md).
#   bench/adaptive-bench.sh [-r RUNS] [-t CAP_SECONDS] [--modes a,b,...] [--keep DIR]
#                           [--log-level LEVEL] [--sim JSON] [--seed N]
# Defaults: -r 1 -t 240, all four modes (about 8 minutes). --keep DIR keeps each mode's
# directory (config, kasi.log, events, the simulator's timeline, kasictl adaptive
# snapshots); --sim merges JSON into the simulator's profiles (a diagnostic, not the
# benchmark). Loopback only. The driver, the simulator's limits and why they were chosen:
# bench/adaptive_bench.py.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ARGS=(); KEEP=
while [ $# -gt 0 ]; do
  case "$1" in
    -r|-t|--modes|--seed|--sim|--log-level) ARGS+=("$1" "$2"); shift 2;;
    --keep) KEEP=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
. "$top/bench/lib.sh"
bench_build
P_KASI=${P_KASI:-2671}; P_DNS=${P_DNS:-2672}
res=$(mktemp -d /tmp/kasi-abench.XXXXXX)
cleanup() {
  [ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null || true
  if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp -r "$res/." "$KEEP/"; fi
  rm -rf "$res"
}
trap cleanup EXIT

/usr/bin/python3 "$top/bench/adaptive_bench.py" --zone "$res/zone"
start_dns_zone "$res" "$P_DNS"
kasi_config "$res/template" "$P_KASI" "$P_DNS"
mkdir -p "$res/modes"
/usr/bin/python3 "$top/bench/adaptive_bench.py" --template "$res/template" --build "$top/build" \
  --kasi-port "$P_KASI" --out "$res/modes" ${KEEP:+--keep} "${ARGS[@]}"
