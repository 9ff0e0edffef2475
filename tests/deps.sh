#!/bin/sh
# deps.sh — install what popsift needs to build, test and demo (Debian 12).
# Quiet when everything is present.  Extra package names given as arguments
# are checked too (bench/run.sh: sh tests/deps.sh mpop fetchmail fdm ...).
#
# Installing dovecot-core may start a system-wide Dovecot on 110/995/143/993;
# that is harmless: the tests start their own on free loopback ports with
# their own base_dir.  Likewise exim4-daemon-light (the MTA of the
# forwarding tests, started with its own config: tests/lib/exim.py).  And
# mailutils-pop3d (GNU pop3d, tests/integration/test_compat.py; its system
# service may fail to bind 110 next to Dovecot: the tests do not need it).
set -eu

PKGS="gcc make pkg-config libcurl4-openssl-dev libpcre2-dev libsqlite3-dev
dovecot-pop3d python3-aiosmtpd python3-pytest openssl procps exim4-daemon-light
fetchmail mpop getmail6 groff-base man-db mailutils-pop3d $*"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: missing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root:" >&2
	echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$missing" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	$missing >/dev/null

still=""
for p in $missing; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		still="$still $p"
done
if [ -n "$still" ]; then
	echo "deps: could not install:$still" >&2
	exit 1
fi
echo "deps: installed:$missing" >&2
