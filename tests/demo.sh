#!/bin/sh
# demo.sh — what `make demo` runs after building ./popsift: a throwaway
# Dovecot with sample mail, an example config with two accounts (mbox and
# Maildir), two runs of popsift, what landed where.  See tests/lib/demo.py.
# Exits non-zero if popsift failed or the result is not what it should be.
set -u
cd "$(dirname "$0")/.." || exit 2
if [ ! -x "${POPSIFT:-./popsift}" ]; then
	echo "demo: ${POPSIFT:-./popsift} is not built; run: make demo" >&2
	exit 1
fi
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 tests/lib/demo.py "$@"
