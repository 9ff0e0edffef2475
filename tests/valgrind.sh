#!/bin/sh
# valgrind.sh — `make valgrind`: memcheck over every unit test and over
# popsift itself in a few integration runs (real Dovecot, fault server).
# tests/valgrind.supp holds the glibc loader and PCRE2 JIT false alarms.
set -u
cd "$(dirname "$0")/.." || exit 2
VG="valgrind -q --suppressions=$PWD/tests/valgrind.supp --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
fail=0
for t in build/obj/unit/test-*; do
	if $VG "$t" >/dev/null 2>"tests/out/vg-$(basename "$t").log"; then
		echo "valgrind: $(basename "$t") clean"
	else
		echo "valgrind: $(basename "$t") FAILED (tests/out/vg-$(basename "$t").log)"
		fail=1
	fi
done
# popsift under memcheck: any error makes it exit 99, which the tests see
wrap="$PWD/tests/out/popsift-vg"
printf '#!/bin/sh\nexec %s %s/popsift "$@"\n' "$VG" "$PWD" > "$wrap"
chmod +x "$wrap"
POPSIFT="$wrap" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	tests/integration/test_fetch.py tests/integration/test_faults.py \
	-k "mbox or maildir or mboxrd or drop or malformed or no_uidl" || fail=1
exit $fail
