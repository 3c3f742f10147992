#!/usr/bin/env bash
# Builds the kasi Debian package from this checkout: the tracked (and new, not ignored)
# files are staged with packaging/debian as debian/, then `dpkg-buildpackage -b -us -uc`
# runs there. The .deb, .buildinfo and .changes land in OUT (default build-deb/), and
# lintian reports on the .deb (exit status non-zero on an error).
#   bash packaging/build-deb.sh [OUT]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$top/build-deb}" && cd "${1:-$top/build-deb}" && pwd)
work=$(mktemp -d /tmp/kasi-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
version=$(sed -n '1s/^kasi (\([^)]*\)).*/\1/p' "$top/packaging/debian/changelog")
stage="$work/kasi-$version"
mkdir -p "$stage"
(cd "$top" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$top" && xargs -0 cp --parents -t "$stage" 2>/dev/null || true)
cp -r "$top/packaging/debian" "$stage/debian"
(cd "$stage" && dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
  tail -50 "$work/build.log"; exit 1; }
rm -f "$out"/kasi_*.deb "$out"/kasi_*.changes "$out"/kasi_*.buildinfo "$out"/kasi-dbgsym_*
mv "$work"/kasi_*.deb "$work"/kasi_*.changes "$work"/kasi_*.buildinfo "$out"/
mv "$work"/kasi-dbgsym_* "$out"/ 2>/dev/null || true
echo "built: $(ls "$out"/kasi_*.deb)"
lintian --fail-on error --info "$out"/kasi_*.deb
