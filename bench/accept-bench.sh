#!/usr/bin/env bash
# Acceptance benchmark: smtp-source -> kasi accepting into its durable spool, with, in the
# same invocation, smtp-source -> smtp-sink directly (the loopback ceiling) and
# smtp-source -> a private Postfix relay accepting into its own queue.
#   bench/accept-bench.sh [-m MSGS] [-s SESSIONS] [-l BYTES] [-r RUNS] [--no-postfix]
#                         [--suppressions N | --no-suppression]
# --suppressions N loads N entries into kasi's suppression list before each run (none of
# them a recipient of the run: every RCPT is looked up and let through); --no-suppression
# turns the list off (suppression.ini enabled=false).
# Defaults: -m 20000 -s 20 -l 4096 -r 3. Needs root for Postfix. Loopback only. Prints one
# line per run and target, then medians: msg/s, kasi CPU per message, kasi peak RSS, and
# kasi's rate as a fraction of the ceiling.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
SB=${SHARED_BENCH:-$top/../shared/bench}
MSGS=20000; SESS=20; LEN=4096; RUNS=3; POSTFIX=1; SUPP=; NOSUPP=0
while [ $# -gt 0 ]; do
  case "$1" in
    -m) MSGS=$2; shift 2;; -s) SESS=$2; shift 2;; -l) LEN=$2; shift 2;; -r) RUNS=$2; shift 2;;
    --no-postfix) POSTFIX=0; shift;;
    --suppressions) SUPP=$2; shift 2;;
    --no-suppression) NOSUPP=1; shift;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
. "$top/bench/lib.sh"
bench_build
P_SINK=${P_SINK:-2626}; P_KASI=${P_KASI:-2625}; P_PF=${P_PF:-2627}
rate_of() { sed -n 's/.* rate=\([0-9]*\).*/\1/p'; }
res=$(mktemp -d /tmp/kasi-bench.XXXXXX)
cleanup() {
  [ -n "${KPID:-}" ] && kill -9 "$KPID" 2>/dev/null || true
  "$SB/sink.sh" stop "$P_SINK" >/dev/null 2>&1 || true
  "$SB/postfix-relay.sh" stop --port "$P_PF" >/dev/null 2>&1 || true
  rm -rf "$res"
}
trap cleanup EXIT

kasi_run() {
  local d=$res/kasi-$1
  mkdir -p "$d/config"
  cp -r "$top/examples/quickstart/config/." "$d/config/"
  printf 'listen=127.0.0.1:%s\nnodes=cpus\n' "$P_KASI" > "$d/config/smtp.ini"
  printf '[main]\nlevel=warn\n' > "$d/config/log.ini"
  printf '[main]\ndisabled=true\n' > "$d/config/outbound.ini"  # acceptance only: nothing leaves
  printf '[smtp]\nrdns_lookup=false\n' > "$d/config/kasi.ini"   # no DNS off loopback
  rm -f "$d/config/queue_dir"
  [ "$NOSUPP" = 1 ] && printf '[main]\nenabled=false\n' > "$d/config/suppression.ini"
  if [ -n "$SUPP" ]; then
    [ -f "$res/supp.csv" ] || awk -v n="$SUPP" 'BEGIN{print "address,scope,reason,created,expires,event";
      for(i=0;i<n;i++) printf "u%d@suppressed%d.example,,hard_bounce,1700000000,0,bench\n", i, i%1000}' > "$res/supp.csv"
    "$top/build/kasictl" -c "$d" suppress import "$res/supp.csv" >/dev/null
  fi
  run_kasi "$d" "$P_KASI"
  local c0; c0=$(cpu_ticks "$KPID")
  local line; line=$("$SB/source.sh" -p "$P_KASI" -m "$MSGS" -s "$SESS" -l "$LEN")
  local c1; c1=$(cpu_ticks "$KPID")
  local rss; rss=$(peak_rss_kb "$KPID")
  kill -TERM "$KPID"; wait "$KPID" || true; KPID=
  local queued; queued=$("$top/build/kasictl" -c "$d" count | awk '/^messages/{print $2}')
  local r; r=$(echo "$line" | rate_of)
  local cpu_us; cpu_us=$(cpu_us_per_msg $((c1 - c0)) "$MSGS")
  echo "kasi run=$1 rate=$r cpu_us_per_msg=$cpu_us peak_rss_kb=$rss queued=$queued"
  [ "$queued" = "$MSGS" ] || echo "WARNING: $queued of $MSGS messages in the spool" >&2
  rm -rf "$d"
}

for i in $(seq "$RUNS"); do
  "$SB/sink.sh" start "$P_SINK" >/dev/null
  echo "sink run=$i rate=$("$SB/source.sh" -p "$P_SINK" -m "$MSGS" -s "$SESS" -l "$LEN" | rate_of)" | tee -a "$res/lines"
  kasi_run "$i" | tee -a "$res/lines"
  if [ "$POSTFIX" = 1 ]; then
    "$SB/postfix-relay.sh" start --port "$P_PF" --sink-port "$P_SINK" --no-log >/dev/null
    echo "postfix run=$i rate=$("$SB/source.sh" -p "$P_PF" -m "$MSGS" -s "$SESS" -l "$LEN" | rate_of)" | tee -a "$res/lines"
    "$SB/postfix-relay.sh" stop --port "$P_PF" >/dev/null
  fi
  "$SB/sink.sh" stop "$P_SINK" >/dev/null
done
sink=$(awk '/^sink/{sub("rate=","",$3); print $3}' "$res/lines" | median)
kasi=$(awk '/^kasi/{sub("rate=","",$3); print $3}' "$res/lines" | median)
cpu=$(awk '/^kasi/{sub("cpu_us_per_msg=","",$4); print $4}' "$res/lines" | median)
rss=$(awk '/^kasi/{sub("peak_rss_kb=","",$5); print $5}' "$res/lines" | median)
pf=$(awk '/^postfix/{sub("rate=","",$3); print $3}' "$res/lines" | median)
echo "median: ceiling(smtp-sink)=$sink msg/s  kasi=$kasi msg/s (durable spool)  postfix=$pf msg/s"
echo "median: kasi cpu=${cpu} us/msg  peak_rss=${rss} kB  kasi/ceiling=$(awk -v a="$kasi" -v b="$sink" 'BEGIN{printf "%.2f", a/b}')"
echo "params: msgs=$MSGS sessions=$SESS len=$LEN runs=$RUNS"
