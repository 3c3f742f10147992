# Helpers shared by the bench scripts (sourced after `top` and `SB` are set): the release
# build, timing and medians, the DNS fixture on loopback, a kasi config directory on the
# quickstart defaults, and the process figures (CPU ticks, peak RSS).

# Builds build/ (release, no tests) when needed and brings kasi and kasictl up to date.
bench_build() {
  [ -x "$top/build/kasi" ] || { meson setup "$top/build" --buildtype=release -Dtests=false >/dev/null; }
  ninja -C "$top/build" kasi kasictl >/dev/null
}

CLK=$(getconf CLK_TCK)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END{if(NR==0){print "-"} else {print a[int((NR+1)/2)]}}'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # user + system of PID
peak_rss_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
# field NAME KEY: the median of KEY=VALUE over the lines of $res/lines that start with NAME
field() { awk -v k="$2" '$1==v{for(i=2;i<=NF;i++){split($i,a,"="); if(a[1]==k) print a[2]}}' v="$1" "$res/lines" | median; }
# CPU microseconds per message: cpu_us_per_msg TICKS MESSAGES
cpu_us_per_msg() { awk -v c="$1" -v t="$CLK" -v m="$2" 'BEGIN{printf "%.1f", c/t*1e6/m}'; }

# start_dns DIR PORT MX_IP: the DNS fixture answering example.test's MX (mx.example.test
# at MX_IP) on 127.0.0.1:PORT; sets DPID (the caller's cleanup kills it).
start_dns() {
  printf '$TTL 300\nexample.test. IN MX 10 mx.example.test.\nmx.example.test. IN A %s\n' "$3" > "$1/zone"
  start_dns_zone "$1" "$2"
}

# start_dns_zone DIR PORT: the same, answering from the zone file DIR/zone (sets DPID).
start_dns_zone() {
  /usr/bin/python3 "$top/test/integration/dns_fixture.py" --zone "$1/zone" --port "$2" > "$1/dns.out" &
  DPID=$!
  for _ in $(seq 100); do grep -q ready "$1/dns.out" 2>/dev/null && break; sleep 0.05; done
}

# kasi_config DIR SMTP_PORT DNS_PORT: DIR/config from examples/quickstart, listening on
# SMTP_PORT with one loop per CPU, resolving through the fixture, spool in DIR/queue.
kasi_config() {
  mkdir -p "$1/config"
  cp -r "$top/examples/quickstart/config/." "$1/config/"
  rm -f "$1/config/queue_dir"
  printf 'listen=127.0.0.1:%s\nnodes=cpus\n' "$2" > "$1/config/smtp.ini"
  printf '[main]\nservers=127.0.0.1:%s\n' "$3" > "$1/config/dns.ini"
  # KASI_BENCH_CONFIG=DIR: files copied over the config (e.g. reputation.ini to compare)
  if [ -n "${KASI_BENCH_CONFIG:-}" ]; then cp -r "$KASI_BENCH_CONFIG/." "$1/config/"; fi
}

# wait_port PORT: until something accepts connections on 127.0.0.1:PORT (5 s at most).
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && break; sleep 0.05; done
}

# run_kasi DIR PORT: kasi -c DIR in the background (KPID; its log DIR/kasi.log) until PORT
# accepts connections.
run_kasi() {
  "$top/build/kasi" -c "$1" > "$1/kasi.log" 2>&1 &
  KPID=$!
  wait_port "$2"
}

# bench_cleanup: kills kasi (KPID) and the DNS fixture (DPID), stops the sink on $P_SINK and
# removes $res. Installed with `trap bench_cleanup EXIT` where that is all there is to undo.
bench_cleanup() {
  [ -n "${KPID:-}" ] && kill -9 "$KPID" 2>/dev/null || true
  [ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null || true
  "$SB/sink.sh" stop "$P_SINK" >/dev/null 2>&1 || true
  rm -rf "$res"
}

# wait_sink PORT N: until the sink on PORT counted N messages (5 minutes at most); prints
# the count reached.
wait_sink() {
  local n=0 deadline=$(( $(date +%s) + 300 ))
  while :; do
    n=$("$SB/sink.sh" count "$1"); [ "$n" -ge "$2" ] && break
    [ "$(date +%s)" -ge "$deadline" ] && { echo "timeout: sink has $n of $2" >&2; break; }
    sleep 0.02
  done
  echo "$n"
}
