#!/usr/bin/env bash
# Deferred-queue scale: inject N messages for a site that refuses connections, so every
# one is deferred (retries an hour away), then report kasi's memory with N deferred
# messages, and the time and memory of a restart that reloads them from the spool.
#   bench/deferred-scale.sh [-n MESSAGES] [-l BYTES] [-s SESSIONS]
# Defaults: -n 1000000 -l 1024 -s 20. Loopback only (DNS fixture, closed port on 127.0.0.2).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
SB=${SHARED_BENCH:-$top/../shared/bench}
N=1000000; LEN=1024; SESS=20
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;; -l) LEN=$2; shift 2;; -s) SESS=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
. "$top/bench/lib.sh"
bench_build
P_KASI=${P_KASI:-2645}; P_DNS=${P_DNS:-2654}; P_DEAD=${P_DEAD:-2646}
d=$(mktemp -d /tmp/kasi-scale.XXXXXX)
cleanup() {
  [ -n "${KPID:-}" ] && kill -9 "$KPID" 2>/dev/null || true
  [ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null || true
  rm -rf "$d"
}
trap cleanup EXIT
start_dns "$d" "$P_DNS" 127.0.0.2
kasi_config "$d" "$P_KASI" "$P_DNS"
printf '[main]\nlevel=info\n' > "$d/config/log.ini"
printf '[main]\nlocal_mx_ok=true\nsmtp_port=%s\ntemp_fail_intervals=1h*5\nevents_file=off\n' "$P_DEAD" > "$d/config/outbound.ini"
summary() { cat "$d/queue/queues.json" 2>/dev/null || echo '{}'; }
num() { summary | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
start_kasi() {
  "$top/build/kasi" -c "$d" >> "$d/kasi.log" 2>&1 &
  KPID=$!
}
wait_scheduled() {  # until every message is deferred (scheduled) and nothing is in flight
  local deadline=$(( $(date +%s) + 1800 ))
  while :; do
    local s; s=$(num scheduled); [ "${s:-0}" -ge "$N" ] && break
    [ "$(date +%s)" -ge "$deadline" ] && { echo "timeout: scheduled=${s:-0}" >&2; exit 1; }
    sleep 0.2
  done
}
rss_kb() { awk '/VmRSS/{print $2}' /proc/$KPID/status; }
hwm_kb() { peak_rss_kb "$KPID"; }

start_kasi
wait_port "$P_KASI"
t0=$(now_ms)
"$SB/source.sh" -p "$P_KASI" -m "$N" -s "$SESS" -l "$LEN" >/dev/null
t_acc=$(( $(now_ms) - t0 ))
wait_scheduled
echo "injected: $N messages of $LEN bytes in $((t_acc / 1000)) s; all deferred"
echo "with $N deferred: rss=$(( $(rss_kb) / 1024 )) MiB peak=$(( $(hwm_kb) / 1024 )) MiB spool=$(du -sm "$d/queue" | cut -f1) MiB"
t0=$(now_ms); kill -TERM "$KPID"; wait "$KPID" || true; KPID=
echo "stop: $(( $(now_ms) - t0 )) ms"
rm -f "$d/queue/queues.json"
t0=$(now_ms)
start_kasi
for _ in $(seq 2000); do (exec 3<>/dev/tcp/127.0.0.1/$P_KASI) 2>/dev/null && break; sleep 0.01; done
t_listen=$(( $(now_ms) - t0 ))
wait_scheduled
t_loaded=$(( $(now_ms) - t0 ))
echo "restart: listening after $t_listen ms; all $N messages scheduled after $t_loaded ms"
echo "after reload: rss=$(( $(rss_kb) / 1024 )) MiB peak=$(( $(hwm_kb) / 1024 )) MiB"
grep -i 'recovered\|error\|heap' "$d/kasi.log" | tail -3
kill -TERM "$KPID"; wait "$KPID" || true; KPID=
