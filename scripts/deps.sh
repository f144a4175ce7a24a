#!/bin/sh
# deps.sh — install the Debian packages siyu needs, when any is missing.
#
# Idempotent: it asks dpkg first and only calls apt-get for what is absent.
# Uses sudo when not root.  Called by `make run` and `make test`.
#
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh bench    also the benchmark peers (wrk, nginx-light)
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libsodium-dev libroaring-dev
      libcmocka-dev libcurl4-openssl-dev curl sqlite3 libcsv-dev"
if [ "${1:-}" = bench ]; then
    PKGS="$PKGS wrk nginx-light"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once when an
# install fails for that reason.
if ! $SUDO apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends $missing
fi
