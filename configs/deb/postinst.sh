#!/bin/sh
# The data folders belong to the daemons' user, owner-only (0700): they hold
# the SQLite files, keys and journals. The service is not started: edit the
# configuration in /etc/campuspay first, then `systemctl enable --now UNIT`.
set -e
if [ "$1" = configure ]; then
	for d in /var/lib/campuspay /var/lib/campuspay/authorizer /var/lib/campuspay/terminald; do
		if [ -d "$d" ]; then
			chown campuspay:campuspay "$d"
			chmod 0700 "$d"
		fi
	done
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
fi
exit 0
