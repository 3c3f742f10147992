#!/usr/bin/env bash
# Installs what Kasi needs to build, run and test on Debian 12 (as root); clang and
# libclang-rt-14-dev (libFuzzer, the sanitizer runtimes) are for the fuzz targets in fuzz/.
# Idempotent: does nothing when everything is already installed. No daemon is started: postfix is installed
# without a configuration (only smtp-source/smtp-sink are used), and on machines without
# /usr/sbin/policy-rc.d one is put in place for the duration of the install.
set -euo pipefail
PKGS=(meson ninja-build pkg-config g++ libuv1-dev libssl-dev libluajit-5.1-dev libldns-dev ldnsutils
      libhiredis-dev libhttp-parser-dev rapidjson-dev libre2-dev libpq-dev libfmt-dev catch2 cmake redis-server postgresql postfix swaks libnet-ssleay-perl libio-socket-ssl-perl python3
      python3-dkim python3-dnslib opendkim-tools debhelper dpkg-dev lintian logrotate clang-format openssl publicsuffix libidn2-dev
      clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
[ $made_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
