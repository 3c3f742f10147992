#!/usr/bin/env bash
# HTTP injection benchmark: wrk -> kasi /api/v1/send (one message per request) and
# /api/v1/send/batch (BATCH messages per request) -> durable spool -> smtp-sink, beside, in
# the same invocation, smtp-source -> kasi over SMTP and smtp-source -> smtp-sink directly
# (the loopback ceiling). The MX is found through the DNS fixture on loopback.
#   bench/http-bench.sh [-d SECONDS] [-c CONNECTIONS] [-l BYTES] [-b BATCH] [-r RUNS] [-m SMTP_MSGS]
# Defaults: -d 5 -c 20 -l 4096 -b 100 -r 3 -m 20000. HTTP_EXTRA='batch_sessions=64\n' adds
# lines to http.ini's [main]. wrk runs for SECONDS with CONNECTIONS
# keep-alive connections (2 threads); the messages kasi spooled are read from its /metrics
# (kasi_messages_received_total), and delivered msg/s = spooled / time until the sink
# counted them all. Per run and median: accepted msg/s (spooled / wrk's duration),
# delivered msg/s, kasi CPU per message, peak RSS; delivered/ceiling.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
SB=${SHARED_BENCH:-$top/../shared/bench}
DUR=5; CONNS=20; LEN=4096; BATCH=100; RUNS=3; SMSGS=20000
while [ $# -gt 0 ]; do
  case "$1" in
    -d) DUR=$2; shift 2;; -c) CONNS=$2; shift 2;; -l) LEN=$2; shift 2;; -b) BATCH=$2; shift 2;;
    -r) RUNS=$2; shift 2;; -m) SMSGS=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
. "$top/bench/lib.sh"
bench_build
P_SINK=${P_SINK:-2646}; P_KASI=${P_KASI:-2645}; P_HTTP=${P_HTTP:-2647}; P_DNS=${P_DNS:-2654}
res=$(mktemp -d /tmp/kasi-hbench.XXXXXX)
trap bench_cleanup EXIT

start_dns "$res" "$P_DNS" 127.0.0.1

# The request bodies: one message of about LEN bytes, and BATCH of them.
/usr/bin/python3 - "$LEN" "$BATCH" "$res" <<'PY'
import json, sys
n, batch, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
line = "The quick brown fox jumps over the lazy dog, again and again and again.\n"
msg = {"from": "sender@bench.test", "to": "rcpt@example.test", "subject": "bench",
       "text": (line * (n // len(line) + 1))[:max(0, n - 300)]}
for name, body in (("one", msg), ("batch", {"messages": [msg] * batch})):
    with open(f"{d}/{name}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = {json.dumps(json.dumps(body))}\n')
PY

spooled() {
  curl -s "http://127.0.0.1:$P_HTTP/metrics" |
    awk '/^kasi_messages_received_total/{s+=$2} END{printf "%d", s}'
}

# kasi_run RUN LABEL: LABEL is smtp, http or batch.
kasi_run() {
  local d=$res/kasi-$1-$2 label=$2
  kasi_config "$d" "$P_KASI" "$P_DNS"
  printf '[main]\nlevel=warn\n' > "$d/config/log.ini"
  printf '[main]\nlocal_mx_ok=true\nsmtp_port=%s\nenable_tls=false\n' "$P_SINK" > "$d/config/outbound.ini"
  printf '[main]\nlisten=127.0.0.1:%s\nmax_body_bytes=%s\n%b[auth]\ntrusted=127.0.0.1\n' \
    "$P_HTTP" $(( (LEN + 1024) * BATCH + 65536 )) "${HTTP_EXTRA:-}" > "$d/config/http.ini"
  "$SB/sink.sh" start "$P_SINK" >/dev/null
  run_kasi "$d" "$P_HTTP"
  sleep 0.2
  local c0 t0; c0=$(cpu_ticks "$KPID"); t0=$(now_ms)
  local t_acc
  if [ "$label" = smtp ]; then
    "$SB/source.sh" -p "$P_KASI" -m "$SMSGS" -s 20 -l "$LEN" > "$d/load.out"
  else
    local path=/api/v1/send; [ "$label" = batch ] && path=/api/v1/send/batch
    wrk -t 2 -c "$CONNS" -d "${DUR}s" --timeout 30s -s "$res/$([ "$label" = batch ] && echo batch || echo one).lua" \
      "http://127.0.0.1:$P_HTTP$path" > "$d/load.out"
    grep -q "Non-2xx" "$d/load.out" && { echo "WARNING: $label: non-2xx answers" >&2; grep Non-2xx "$d/load.out" >&2; }
  fi
  t_acc=$(( $(now_ms) - t0 ))
  # requests wrk had in flight when it stopped are still being spooled: wait until the
  # count holds still
  local m prev=-1; m=$(spooled)
  while [ "$m" != "$prev" ]; do prev=$m; sleep 0.2; m=$(spooled); done
  local n; n=$(wait_sink "$P_SINK" "$m")
  local t_del=$(( $(now_ms) - t0 ))
  local c1; c1=$(cpu_ticks "$KPID")
  local rss; rss=$(peak_rss_kb "$KPID")
  kill -TERM "$KPID"; wait "$KPID" || true; KPID=
  "$SB/sink.sh" stop "$P_SINK" >/dev/null
  local cpu_us; cpu_us=$(cpu_us_per_msg $((c1 - c0)) "$m")
  echo "$label run=$1 spooled=$m accepted=$(awk -v m="$m" -v t="$t_acc" 'BEGIN{printf "%.0f", m*1000/t}') delivered=$(awk -v m="$n" -v t="$t_del" 'BEGIN{printf "%.0f", m*1000/t}') cpu_us_per_msg=$cpu_us peak_rss_kb=$rss sink_count=$n"
  grep -v '^\s*$' "$d/kasi.log" | grep -iv 'notice' | head -5 >&2 || true
  rm -rf "$d"
}

for i in $(seq "$RUNS"); do
  "$SB/sink.sh" start "$P_SINK" >/dev/null
  echo "sink run=$i rate=$("$SB/source.sh" -p "$P_SINK" -m "$SMSGS" -s 20 -l "$LEN" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')" | tee -a "$res/lines"
  "$SB/sink.sh" stop "$P_SINK" >/dev/null
  for l in smtp http batch; do kasi_run "$i" "$l" | tee -a "$res/lines"; done
done
sink=$(field sink rate)
echo "median: ceiling(smtp-sink)=$sink msg/s"
for l in smtp http batch; do
  del=$(field "$l" delivered)
  echo "median: kasi via $l: accepted=$(field "$l" accepted) msg/s delivered=$del msg/s cpu=$(field "$l" cpu_us_per_msg) us/msg peak_rss=$(field "$l" peak_rss_kb) kB delivered/ceiling=$(awk -v a="$del" -v b="$sink" 'BEGIN{printf "%.2f", a/b}')"
done
echo "params: wrk -t 2 -c $CONNS -d ${DUR}s, batch=$BATCH, len=$LEN, smtp msgs=$SMSGS, runs=$RUNS"
