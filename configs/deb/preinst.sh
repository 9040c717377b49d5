#!/bin/sh
# Creates the system user both daemons run as (no login, no home of its own).
set -e
if [ "$1" = install ] || [ "$1" = upgrade ]; then
	if ! getent group campuspay >/dev/null; then
		groupadd --system campuspay
	fi
	if ! getent passwd campuspay >/dev/null; then
		useradd --system --gid campuspay --home-dir /var/lib/campuspay --no-create-home \
			--shell /usr/sbin/nologin --comment "campus e-wallet daemons" campuspay
	fi
fi
exit 0
