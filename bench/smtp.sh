#!/bin/sh
# bench/smtp.sh — issue 4's measurement: forwarding 1000 messages over SMTP
# in one run (to aiosmtpd and to exim4 on loopback) vs delivering them to
# an mbox.  Needs root (Dovecot, exim4).  Knobs: BENCH_N, BENCH_RUNS,
# BENCH_KB, POPSIFT — see bench/smtp.py.
set -eu
cd "$(dirname "$0")/.."
sh tests/deps.sh
[ -x "${POPSIFT:-./popsift}" ] || make popsift
exec /usr/bin/python3 bench/smtp.py "$@"
