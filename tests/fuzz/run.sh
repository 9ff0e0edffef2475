#!/bin/sh
# tests/fuzz/run.sh — run every libFuzzer target built in $FUZZDIR for
# $FUZZ_SECONDS seconds each, starting from the seed corpus in
# tests/fuzz/corpus/<target>/ (not written to: new inputs go to
# $FUZZDIR/corpus/<target>/).  Prints, per target, the run length and the
# number of executions (libFuzzer's final stats); exits 1 if any target
# found a crash, a leak, a timeout or an abort, leaving the reproducer in
# $FUZZDIR/crashes/ (copy the ones worth keeping to tests/fuzz/crashes/).
#
#   make fuzz FUZZ_SECONDS=60            # all targets
#   FUZZ_TARGETS="rules conf" make fuzz  # some of them
#   build/fuzz/fuzz-mime tests/fuzz/crashes/mime-...   # replay one input
set -u
here=$(cd "$(dirname "$0")" && pwd)
FUZZDIR=${FUZZDIR:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_FLAGS=${FUZZ_FLAGS:-}
targets=${FUZZ_TARGETS:-$(for b in "$FUZZDIR"/fuzz-*; do [ -x "$b" ] && basename "$b" | sed 's/^fuzz-//'; done)}
[ -n "$targets" ] || { echo "fuzz: no targets in $FUZZDIR (run make fuzz)" >&2; exit 2; }

mkdir -p "$FUZZDIR/crashes" "$FUZZDIR/logs"
# halt_on_error: any sanitizer report ends the run as a failure;
# detect_leaks: a leak is a failure too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

fail=0
printf '%-8s %8s %12s %10s  %s\n' target seconds executions exec/s result
for t in $targets; do
	bin=$FUZZDIR/fuzz-$t
	seeds=$here/corpus/$t
	work=$FUZZDIR/corpus/$t
	log=$FUZZDIR/logs/$t.log
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin missing" >&2
		fail=1
		continue
	fi
	mkdir -p "$work"
	dict=
	[ -f "$here/$t.dict" ] && dict=-dict=$here/$t.dict
	t0=$(date +%s)
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=2048 -max_len=16384 $dict \
		-artifact_prefix="$FUZZDIR/crashes/$t-" $FUZZ_FLAGS \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	wall=$(( $(date +%s) - t0 ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		res=ok
	else
		res="FAILED (exit $rc)"
		fail=1
	fi
	printf '%-8s %8s %12s %10s  %s\n' "$t" "${secs:-$wall}" "${execs:-?}" "${rate:-?}" "$res"
	if [ "$rc" -ne 0 ]; then
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" |
			sed 's/^/    /' | head -n 8
		echo "    full log: $log"
	fi
done
exit $fail
