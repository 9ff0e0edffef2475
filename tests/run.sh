#!/bin/sh
# run.sh — what `make check` runs once everything is built: the unit test
# binaries tests/unit/test-*, then the integration tests (pytest against a
# real Dovecot).  The very last line is "N passed, N failed" (plus
# ", N skipped" when tests were skipped; skipped tests count as failed).
# Exit status non-zero on any failure.
#
# Environment: PYTEST_ARGS adds pytest arguments (e.g. PYTEST_ARGS="-k tls -x");
# POPSIFT overrides the binary under test; POPSIFT_KEEP_TMP=1 keeps the
# Dovecot directories of the tests.
set -u
cd "$(dirname "$0")/.." || exit 2

PY=/usr/bin/python3
OUT=tests/out
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1
# `make check SANITIZE=1` hands SANITIZE=1 to every make below it, through
# MAKEFLAGS and in the environment (make exports command-line variables):
# the tests that build the tree themselves (make dist, make install, the
# Debian package) must see a plain make, as a user would.  POPSIFT_SANITIZE
# tells the tests.
unset MAKEFLAGS MFLAGS MAKELEVEL SANITIZE

# ---------------------------------------------------------------- unit tests
u_pass=0 u_fail=0 u_bins=0 u_bad=""
for t in "${UNITDIR:-build/obj/unit}"/test-*; do
	if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
	case "$t" in *.c|*.h|*.o|*.d) continue ;; esac
	u_bins=$((u_bins + 1))
	name=$(basename "$t")
	log="$OUT/$name.log"
	"$t" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok [0-9]' "$log")
	f=$(grep -c '^not ok [0-9]' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1   # crashed or failed without saying which check
		if [ "$rc" -gt 128 ]; then
			echo "not ok - $name died with signal $((rc - 128))" >>"$log"
		else
			echo "not ok - $name exited $rc" >>"$log"
		fi
	fi
	u_pass=$((u_pass + p))
	u_fail=$((u_fail + f))
	if [ "$f" -gt 0 ]; then
		u_bad="$u_bad $name"
		echo "--- $name (exit $rc):"
		grep -E '^(not ok|#)' "$log" | sed 's/^/    /'
		tail -n 5 "$log" | grep -vE '^(ok|not ok|#)' | sed 's/^/    | /'
	fi
done
echo "unit: $u_bins binaries, $u_pass passed, $u_fail failed${u_bad:+ (failing:$u_bad)}"

# --------------------------------------------------------- integration tests
JUNIT="$OUT/junit.xml"
rm -f "$JUNIT"
i_pass=0 i_fail=0 i_skip=0
if [ -d tests/integration ]; then
	# shellcheck disable=SC2086
	$PY -m pytest -q -p no:cacheprovider tests/integration --junitxml="$JUNIT" ${PYTEST_ARGS:-}
	prc=$?
	if [ "$prc" -eq 5 ]; then
		echo "integration: no tests collected"
	elif [ -s "$JUNIT" ]; then
		# one outcome per test case: failure/error > skipped > passed
		counts=$($PY - "$JUNIT" <<'EOF'
import sys, xml.etree.ElementTree as ET
p = f = s = 0
reasons = []
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    tags = {c.tag for c in tc}
    if tags & {"failure", "error"}:
        f += 1
    elif "skipped" in tags:
        s += 1
        sk = tc.find("skipped")
        reasons.append(f"{tc.get('classname')}::{tc.get('name')}: {sk.get('message') or 'no reason'}")
    else:
        p += 1
for r in reasons:
    print("skipped:", r, file=sys.stderr)
print(p, f, s)
EOF
)
		# shellcheck disable=SC2086
		set -- $counts
		i_pass=${1:-0} i_fail=${2:-1} i_skip=${3:-0}
		# pytest failed but no test case says so (e.g. a collection error
		# is reported as an error case; a crash may not be)
		if [ "$prc" -ne 0 ] && [ "$i_fail" -eq 0 ] && [ "$i_skip" -eq 0 ]; then
			i_fail=1
		fi
	else
		echo "integration: pytest exited $prc without a report"
		i_fail=1
	fi
	echo "integration: $i_pass passed, $i_fail failed, $i_skip skipped (pytest exit $prc)"
fi

# --------------------------------------------------------------------- total
passed=$((u_pass + i_pass))
failed=$((u_fail + i_fail + i_skip))
[ "$i_skip" -gt 0 ] && echo "note: skipped tests count as failed"
if [ "$i_skip" -gt 0 ]; then
	echo "$passed passed, $failed failed, $i_skip skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
