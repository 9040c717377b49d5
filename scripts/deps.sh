#!/usr/bin/env bash
# Installs the Debian packages that building and testing need, only those
# that are missing, so it is cheap to run before every `make test`.
set -euo pipefail

pkgs=(
  gcc pkg-config            # cgo: go-sqlite3, gocv
  libsqlite3-dev            # sqlite3.h for server/walbuf (the SQLite itself is go-sqlite3's)
  libopencv-dev             # gocv v0.31.0 builds against Debian's OpenCV 4.6
  mosquitto mosquitto-clients  # external-broker tests start their own mosquitto
  postgresql                # server binaries (/usr/lib/postgresql/*/bin) and the postgres user:
                            # wallet/ledger PostgreSQL tests start throw-away clusters (pgtest)
  chromium                  # display page and web wallet tests (chromedp)
  mbpoll                    # independent Modbus master for the valve twin
  zbar-tools qrencode       # independent QR decoder / encoder peers
  fonts-wqy-microhei        # CJK glyphs for the display page and web wallet in Chromium
  ca-certificates
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
# The Debian mosquitto and postgresql services are not used: tests start
# their own broker and throw-away PostgreSQL clusters.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
  $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
