#!/bin/sh
# bench/run.sh — `make bench`: popsift against mpop, fetchmail and fdm.
#
# Installs the peers (Debian packages) when missing, then runs
# bench/bench.py with Debian's python3, which starts a throwaway Dovecot on
# 127.0.0.1, measures every scenario and writes doc/bench.md (and
# doc/bench.png when gnuplot is installed).  Needs root.  See bench.py for
# the knobs (BENCH_RUNS, BENCH_ONLY, BENCH_KEEP, ...).
set -eu
cd "$(dirname "$0")/.."

# mpop, fetchmail, fdm: the peers; time: GNU time for peak RSS; libssl-dev:
# bench/floor.c (the raw pipelined client) is built with OpenSSL.
sh tests/deps.sh mpop fetchmail fdm time libssl-dev

# the chart is optional: no gnuplot, no PNG
if ! command -v gnuplot >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	echo "bench: installing gnuplot-nox for the chart" >&2
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1 ||
	  { apt-get update -q >/dev/null 2>&1 &&
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1; }; } ||
		echo "bench: gnuplot-nox not installed: no chart" >&2
fi

[ -x ./popsift ] || make popsift
/usr/bin/python3 bench/bench.py "$@"

# The runs below print their own tables (stdout; progress on stderr).  A
# full run (no BENCH_ONLY) also appends them to doc/bench.md, which
# bench.py has just rewritten, so one file holds the whole run.
more=$(mktemp)
trap 'rm -f "$more"' EXIT
# 300 accounts, nothing new, 20 ms RTT: run (parallel) against run with
# max_parallel 1, fetchmail (sequential) and fdm (parallel-accounts)
/usr/bin/python3 bench/accounts.py | tee -a "$more"
# 1,000 accounts in the daemon, interval 60 s, 5 minutes (issue 16)
/usr/bin/python3 bench/daemon.py --mode scale | tee -a "$more"
# 1,000 messages through spamc (spamd up): popsift's `filter` against
# fetchmail + procmail `:0fw | spamc`
if command -v spamd >/dev/null 2>&1 && command -v procmail >/dev/null 2>&1; then
	/usr/bin/python3 bench/spamc.py | tee -a "$more"
else
	echo "bench: spamd or procmail missing: no spamc run (tests/deps.sh)" >&2
fi
if [ -z "${BENCH_ONLY:-}" ]; then
	{
		printf '\n## Many accounts, the daemon at scale, spamc\n\n'
		printf 'bench/accounts.py, `bench/daemon.py --mode scale` and bench/spamc.py, '
		printf 'in the same run as the scenarios above:\n\n```\n'
		cat "$more"
		printf '```\n'
	} >>doc/bench.md
fi
