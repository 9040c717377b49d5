#!/bin/sh
# The data in /var/lib/campuspay is never removed, not even on purge: it is
# money. Remove it by hand after a final backup.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
