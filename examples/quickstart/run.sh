#!/usr/bin/env bash
# Installs the dependencies, builds Kasi and runs it in the foreground on this directory's
# config: SMTP on 127.0.0.1:2525, relaying for loopback clients, spool in ./queue, log on
# stderr. Ctrl-C stops it cleanly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bash "$top/packaging/install-deps.sh"
[ -d "$top/build" ] || meson setup "$top/build" --buildtype=release -Dtests=false >/dev/null
ninja -C "$top/build" kasi kasictl >/dev/null
exec "$top/build/kasi" -c "$here"
