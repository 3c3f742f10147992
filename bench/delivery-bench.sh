#!/usr/bin/env bash
# End-to-end delivery benchmark: smtp-source -> kasi (durable spool) -> smtp-sink, the MX
# found through a DNS server on loopback (test/integration/dns_fixture.py). In the same
# invocation: smtp-source -> smtp-sink directly (the loopback ceiling) and, unless turned
# off, Postfix and Haraka as relays through ../shared/bench/relay-bench.sh.
#   bench/delivery-bench.sh [-m MSGS] [-s SESSIONS] [-l BYTES] [-r RUNS] [--no-postfix] [--no-haraka] [--lua] [--dkim]
# --lua: each run also measures kasi with a Lua policy on rcpt, data_post and get_mx
# (bench/lua-policy.lua) and reports the ratio to kasi without it.
# --dkim: each run also measures kasi signing every message (plugin dkim) with an RSA-2048
# key and with an Ed25519 key, and the invocation measures `openssl speed rsa2048 ed25519`
# (one core) to report RSA-signed delivered msg/s / RSA sign/s and Ed25519-signed / unsigned.
# Defaults: -m 20000 -s 20 -l 4096 -r 3. Loopback only. Per run and median: accepted msg/s
# (until smtp-source finished), delivered msg/s (until the sink counted every message),
# kasi CPU per message over the whole run, kasi peak RSS, and delivered/ceiling.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
SB=${SHARED_BENCH:-$top/../shared/bench}
MSGS=20000; SESS=20; LEN=4096; RUNS=3; POSTFIX=1; HARAKA=1; LUA=0; DKIM=0
while [ $# -gt 0 ]; do
  case "$1" in
    -m) MSGS=$2; shift 2;; -s) SESS=$2; shift 2;; -l) LEN=$2; shift 2;; -r) RUNS=$2; shift 2;;
    --no-postfix) POSTFIX=0; shift;; --no-haraka) HARAKA=0; shift;; --lua) LUA=1; shift;; --dkim) DKIM=1; shift;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
. "$top/bench/lib.sh"
bench_build
P_SINK=${P_SINK:-2636}; P_KASI=${P_KASI:-2635}; P_DNS=${P_DNS:-2653}
rate_of() { sed -n 's/.* rate=\([0-9]*\).*/\1/p'; }
res=$(mktemp -d /tmp/kasi-dbench.XXXXXX)
trap bench_cleanup EXIT

start_dns "$res" "$P_DNS" 127.0.0.1

kasi_run() {
  local d=$res/kasi-$1 label=${2:-kasi}
  kasi_config "$d" "$P_KASI" "$P_DNS"
  if [ "$label" = kasi_lua ]; then
    mkdir -p "$d/plugins"
    cp "$top/bench/lua-policy.lua" "$d/plugins/policy.lua"
    # first, so that its rcpt hook runs before relay's OK ends the chain
    { echo policy; cat "$d/config/plugins"; } > "$d/config/plugins.new"
    mv "$d/config/plugins.new" "$d/config/plugins"
  fi
  case "$label" in
    kasi_rsa|kasi_ed25519)
      echo dkim >> "$d/config/plugins"
      printf '[sign]\nenabled=true\n' > "$d/config/dkim.ini"
      "$top/build/kasictl" -c "$d" dkim keygen bench.test b1 \
        $([ "$label" = kasi_ed25519 ] && echo --ed25519) > /dev/null;;
  esac
  printf '[main]\nlevel=warn\n' > "$d/config/log.ini"
  printf '[main]\nlocal_mx_ok=true\nsmtp_port=%s\nenable_tls=false\n' "$P_SINK" > "$d/config/outbound.ini"
  "$SB/sink.sh" start "$P_SINK" >/dev/null
  run_kasi "$d" "$P_KASI"
  sleep 0.2
  local c0 t0; c0=$(cpu_ticks "$KPID"); t0=$(now_ms)
  local line; line=$("$SB/source.sh" -p "$P_KASI" -m "$MSGS" -s "$SESS" -l "$LEN")
  local t_acc=$(( $(now_ms) - t0 ))
  local n; n=$(wait_sink "$P_SINK" "$MSGS")
  local t_del=$(( $(now_ms) - t0 ))
  local c1; c1=$(cpu_ticks "$KPID")
  local rss; rss=$(peak_rss_kb "$KPID")
  kill -TERM "$KPID"; wait "$KPID" || true; KPID=
  "$SB/sink.sh" stop "$P_SINK" >/dev/null
  local left; left=$("$top/build/kasictl" -c "$d" count | awk '/^messages/{print $2}')
  local cpu_us; cpu_us=$(cpu_us_per_msg $((c1 - c0)) "$MSGS")
  echo "$label run=$1 accepted=$(awk -v m="$MSGS" -v t="$t_acc" 'BEGIN{printf "%.0f", m*1000/t}') delivered=$(awk -v m="$n" -v t="$t_del" 'BEGIN{printf "%.0f", m*1000/t}') cpu_us_per_msg=$cpu_us peak_rss_kb=$rss sink_count=$n left_in_spool=$left"
  grep -v '^\s*$' "$d/kasi.log" | grep -iv 'notice' | head -5 >&2 || true
  if grep -q 'dkim: not signed' "$d/kasi.log"; then echo "WARNING: $label: messages went unsigned" >&2; fi
  rm -rf "$d"
}

for i in $(seq "$RUNS"); do
  "$SB/sink.sh" start "$P_SINK" >/dev/null
  echo "sink run=$i rate=$("$SB/source.sh" -p "$P_SINK" -m "$MSGS" -s "$SESS" -l "$LEN" | rate_of)" | tee -a "$res/lines"
  "$SB/sink.sh" stop "$P_SINK" >/dev/null
  kasi_run "$i" | tee -a "$res/lines"
  if [ "$LUA" = 1 ]; then
    kasi_run "$i" kasi_lua | tee -a "$res/lines"
  fi
  if [ "$DKIM" = 1 ]; then
    kasi_run "$i" kasi_rsa | tee -a "$res/lines"
    kasi_run "$i" kasi_ed25519 | tee -a "$res/lines"
  fi
done
sink=$(field sink rate); acc=$(field kasi accepted); del=$(field kasi delivered)
cpu=$(field kasi cpu_us_per_msg); rss=$(field kasi peak_rss_kb)
echo "median: ceiling(smtp-sink)=$sink msg/s  kasi accepted=$acc msg/s delivered=$del msg/s"
echo "median: kasi cpu=${cpu} us/msg  peak_rss=${rss} kB  delivered/ceiling=$(awk -v a="$del" -v b="$sink" 'BEGIN{printf "%.2f", a/b}')"
if [ "$LUA" = 1 ]; then
  ldel=$(field kasi_lua delivered); lacc=$(field kasi_lua accepted); lcpu=$(field kasi_lua cpu_us_per_msg)
  echo "median: kasi+lua accepted=$lacc msg/s delivered=$ldel msg/s cpu=${lcpu} us/msg  lua/plain delivered=$(awk -v a="$ldel" -v b="$del" 'BEGIN{printf "%.2f", a/b}') cpu=$(awk -v a="$lcpu" -v b="$cpu" 'BEGIN{printf "%.2f", a/b}')"
fi
if [ "$DKIM" = 1 ]; then
  rsa_sign=$(openssl speed -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/{print $6}')
  ed_sign=$(openssl speed -seconds 5 ed25519 2>/dev/null | awk '/Ed25519/{print $(NF-1)}')
  rdel=$(field kasi_rsa delivered); rcpu=$(field kasi_rsa cpu_us_per_msg)
  edel=$(field kasi_ed25519 delivered); ecpu=$(field kasi_ed25519 cpu_us_per_msg)
  echo "openssl speed (one core): rsa2048 sign=$rsa_sign/s ed25519 sign=$ed_sign/s"
  echo "median: kasi+dkim rsa2048 delivered=$rdel msg/s cpu=${rcpu} us/msg  delivered/rsa_sign_rate=$(awk -v a="$rdel" -v b="$rsa_sign" 'BEGIN{printf "%.2f", a/b}') (target >= 0.75)"
  echo "median: kasi+dkim ed25519 delivered=$edel msg/s cpu=${ecpu} us/msg  ed25519/unsigned delivered=$(awk -v a="$edel" -v b="$del" 'BEGIN{printf "%.2f", a/b}') (target >= 0.60)"
fi
echo "params: msgs=$MSGS sessions=$SESS len=$LEN runs=$RUNS"
if [ "$POSTFIX" = 1 ]; then
  echo "# postfix as relay (../shared/bench/relay-bench.sh)"
  "$SB/relay-bench.sh" postfix -m "$MSGS" -s "$SESS" -l "$LEN" -r "$RUNS" --relay-port 2637 --sink-port 2638 2>/dev/null | tail -2
fi
if [ "$HARAKA" = 1 ]; then
  echo "# haraka as relay (../shared/bench/relay-bench.sh)"
  "$SB/relay-bench.sh" haraka -m "$MSGS" -s "$SESS" -l "$LEN" -r "$RUNS" --relay-port 2639 --sink-port 2640 -- --loglevel warn 2>/dev/null | tail -2 || echo "haraka not installed (../shared/bench/haraka.sh install)"
fi
