#!/bin/sh
# Stops the package's unit before its files go (UNIT is filled in by mkdeb).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop @UNIT@ >/dev/null 2>&1 || true
	systemctl disable @UNIT@ >/dev/null 2>&1 || true
fi
exit 0
