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
# Likewise dante-server and tinyproxy (the SOCKS and HTTP proxies of
# tests/integration/test_proxy.py, started there with their own configs on
# free loopback ports; their system services are not used).  procmail's
# lockfile(1) and liblockfile-bin's dotlockfile make the mbox locks of
# tests/integration/test_dotlock.py.
#
# POP3 servers that cannot be installed next to dovecot-pop3d (they declare
# Conflicts: pop3-server) are only unpacked: `apt-get download` and
# `dpkg-deb -x` into $POPSIFT_DEB_CACHE/PKG (default
# /var/cache/popsift-test/popa3d, ...), with PKG/.unpacked naming the
# version; nothing of them is configured or started (the compatibility
# tests start them: tests/lib/servers.py, doc/compat.md).  Their libraries
# are ordinary packages, in PKGS.
set -eu

CACHE=${POPSIFT_DEB_CACHE:-/var/cache/popsift-test}
UNPACK="popa3d solid-pop3d courier-pop courier-base cyrus-pop3d cyrus-common"

PKGS="gcc make pkg-config libcurl4-openssl-dev libpcre2-dev libsqlite3-dev
dovecot-pop3d dovecot-imapd dovecot-lmtpd spamassassin spamc bogofilter procmail dante-server tinyproxy liblockfile-bin python3-aiosmtpd python3-pytest openssl procps exim4-daemon-light
fetchmail mpop getmail6 groff-base man-db mailutils-pop3d libpam0g liblockfile1
courier-authlib courier-authlib-userdb libcourier-unicode4 libidn12 libgnutls30 libgdbm6
libical3 libxapian30 libicu72 libjansson4 libkrb5-3 libldap-2.5-0 libpq5 libwrap0 libpcre3
libssl3 libxml2 libsasl2-2 libsasl2-modules sasl2-bin util-linux dpkg-dev debhelper lintian zsh logrotate systemd $*"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
unpack=""
for p in $UNPACK; do
	[ -f "$CACHE/$p/.unpacked" ] || unpack="$unpack $p"
done
[ -z "$missing" ] && [ -z "$unpack" ] && exit 0

[ -n "$missing" ] && echo "deps: missing:$missing" >&2
[ -n "$unpack" ] && echo "deps: to unpack in $CACHE:$unpack" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root:" >&2
	[ -n "$missing" ] &&
		echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$missing" >&2
	[ -n "$unpack" ] && echo "  sh tests/deps.sh   (unpacks$unpack)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		$missing >/dev/null
fi

for p in $unpack; do
	work=$(mktemp -d)
	if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$p" >/dev/null); then
		rm -rf "$work"
		echo "deps: could not download $p" >&2
		exit 1
	fi
	deb=$(ls "$work"/*.deb)
	mkdir -p "$CACHE"
	rm -rf "${CACHE:?}/$p.new"
	dpkg-deb -x "$deb" "$CACHE/$p.new"
	dpkg-deb -f "$deb" Package Version >"$CACHE/$p.new/.unpacked"
	rm -rf "${CACHE:?}/$p" "$work"
	mv "$CACHE/$p.new" "$CACHE/$p"
	echo "deps: unpacked $p in $CACHE/$p" >&2
done
[ -z "$missing" ] && exit 0

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
