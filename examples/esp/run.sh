#!/usr/bin/env bash
# The ESP example: tenants, region pinning, IP warm-up and provider throttling on loopback
# addresses. Installs the dependencies, builds Kasi and runs it in the foreground on this
# directory: SMTP on 127.0.0.1:2526, delivery held (outbound.ini disabled=true) until you
# configure dns.ini. Ctrl-C stops it cleanly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bash "$top/packaging/install-deps.sh"
[ -d "$top/build" ] || meson setup "$top/build" --buildtype=release -Dtests=false >/dev/null
ninja -C "$top/build" kasi kasictl >/dev/null
"$top/build/kasi" -c "$here" --check-config
exec "$top/build/kasi" -c "$here"
