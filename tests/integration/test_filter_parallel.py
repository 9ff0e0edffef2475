"""Rules that run commands (`filter`, `pipe`) evaluated for several
messages at once (filter_parallel, src/filter-ahead.c), with a real
spamd (SpamAssassin's shipped rules, no network) and a real Dovecot.

How many filters ran at once is recorded by a wrapper around spamc
(counter files under flock): each copy counts itself in, waits until
`want` copies have been in at the same time (a barrier: no timing
assert; the deadline only bounds a failing run), then runs spamc on the
message and counts itself out.  With the messages handed over one at a
time the barrier is never met and the maximum stays 1."""
import re
import signal
import subprocess
import time

import pytest

import popsift_test as pt
from spamd import Spamd

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
BARRIER_DEADLINE = 100   # seconds; popsift's timeout (300) is longer

WRAPPER = r'''
import fcntl, os, signal, subprocess, sys, time
d, want, deadline, cmd = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
data = sys.stdin.buffer.read()
blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
if blocked:
    open(os.path.join(d, "blocked"), "a").write(f"{sorted(blocked)}\n")


def count(delta):
    with open(os.path.join(d, "lock"), "a+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        def get(n):
            try:
                return int(open(os.path.join(d, n)).read())
            except FileNotFoundError:
                return 0
        def put(n, v):   # whole for readers outside the lock (the test)
            with open(os.path.join(d, n + ".new"), "w") as f:
                f.write(str(v))
            os.replace(os.path.join(d, n + ".new"), os.path.join(d, n))
        now = get("now") + delta
        put("now", now)
        top = max(get("max"), now)
        put("max", top)
        put("calls", get("calls") + (delta > 0))
        return top


count(1)
end = time.monotonic() + deadline
while count(0) < want and time.monotonic() < end:
    time.sleep(0.02)
while os.path.exists(os.path.join(d, "hold")) and time.monotonic() < end:
    time.sleep(0.02)
if b"FAILME" in data:
    count(-1)
    sys.exit(1)
r = subprocess.run(cmd, input=data, stdout=subprocess.PIPE)
count(-1)
sys.stdout.buffer.write(r.stdout)
sys.exit(r.returncode)
'''


def _msg(i, spam=False, marker=""):
    body = f"Message {i}: see you at noon in the usual place.\n{marker}"
    if spam:
        body += GTUBE + "\n"
    return (f"Message-ID: <m{i}@parallel>\nFrom: Ann <ann@example.org>\nTo: bob@example.org\n"
            f"Date: Wed, 02 Dec 2026 10:00:00 +0000\nSubject: message {i}\n\n{body}").encode()


def _ids(mbox):
    return [int(re.search(rb"^Message-ID: <m(\d+)@parallel>", m, re.M).group(1))
            for m in pt.mbox_messages(mbox)]


@pytest.fixture(scope="module")
def spamd():
    with Spamd(children=4) as sd:
        yield sd


@pytest.fixture
def wrap(tmp, spamd):
    """wrap(want, *spamc_options) -> the command words; wrap.max() the
    most copies that ran at once, wrap.calls() how many ran."""
    script = tmp / "conc.py"
    script.write_text(WRAPPER)
    d = tmp / "conc"
    d.mkdir()

    def words(want, *opts):
        return (f"/usr/bin/python3 {script} {d} {want} {BARRIER_DEADLINE} "
                f"spamc {' '.join(opts)} {' '.join(spamd.spamc_args)}")
    words.dir = d
    words.max = lambda: int((d / "max").read_text())
    words.calls = lambda: int((d / "calls").read_text()) if (d / "calls").exists() else 0
    return words


def _run(run, config, rules, parallel):
    return run("-f", config(tls="off", rules=rules, received_header="no", timeout="300",
                            filter_parallel=str(parallel)), "run")


def test_spamc_four_at_once_sorted_in_order(dovecot, config, run, tmp, wrap):
    n = 12
    spam = {i for i in range(n) if i % 3 == 1}
    dovecot.add_messages("alice", [_msg(i, i in spam) for i in range(n)])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter {wrap(4, '-x')}\n"
                     f'match header "X-Spam-Flag" =~ /^YES/ mbox {tmp}/spam\n')
    r = _run(run, config, rules, 4)
    assert r.returncode == 0, r.stderr
    assert wrap.max() == 4, "four filters at once, never more"
    assert wrap.calls() == n
    assert not (wrap.dir / "blocked").exists(), "filters start with no signal blocked"
    # each once, sorted by the headers spamd added, in the server's order
    assert _ids(tmp / "spam") == sorted(spam)
    assert _ids(tmp / "inbox.mbox") == [i for i in range(n) if i not in spam]
    for m in pt.mbox_messages(tmp / "inbox.mbox"):
        assert re.search(rb"^X-Spam-Status: No, score=", m, re.M)
    assert dovecot.count("alice") == 0


def test_failing_filter_leaves_only_its_message(dovecot, config, run, tmp, wrap):
    n = 9
    dovecot.add_messages("alice", [_msg(i, marker="FAILME\n" if i == 5 else "")
                                   for i in range(n)])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter {wrap(4, '-x')}\n")
    r = _run(run, config, rules, 4)
    assert r.returncode == 75, r.stderr
    assert "message 6 stays on the server" in r.stderr   # POP3 numbers from 1
    assert wrap.max() == 4
    assert _ids(tmp / "inbox.mbox") == [i for i in range(n) if i != 5]
    left = dovecot.messages("alice")
    assert len(left) == 1 and b"FAILME" in left[0] and b"X-Spam" not in left[0]


def test_pipe_verdicts_three_at_once(dovecot, config, run, tmp, wrap):
    n = 7
    spam = {0, 4}
    dovecot.add_messages("alice", [_msg(i, i in spam) for i in range(n)])
    rules = tmp / "r.rules"
    rules.write_text(f'match pipe "{wrap(3, "-c")}" returns 1 mbox {tmp}/spam\n')
    r = _run(run, config, rules, 3)
    assert r.returncode == 0, r.stderr
    assert wrap.max() == 3
    assert _ids(tmp / "spam") == sorted(spam)
    assert _ids(tmp / "inbox.mbox") == [i for i in range(n) if i not in spam]
    # a verdict leaves the message alone
    assert pt.mbox_messages(tmp / "spam")[0] == _msg(0, True)
    assert dovecot.count("alice") == 0


def test_filter_parallel_1_is_one_at_a_time(dovecot, config, run, tmp, wrap):
    n = 5
    dovecot.add_messages("alice", [_msg(i) for i in range(n)])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter {wrap(1, '-x')}\n")
    r = _run(run, config, rules, 1)
    assert r.returncode == 0, r.stderr
    assert wrap.max() == 1 and wrap.calls() == n
    assert _ids(tmp / "inbox.mbox") == list(range(n))


def test_duplicate_lookups_beside_parallel_filters(dovecot, config, run, tmp, wrap):
    """`duplicate` asks the state database from the workers while the
    fetch writes its journal: a second copy of a delivered message is
    recognised."""
    dovecot.add_messages("alice", [_msg(i) for i in range(4)])
    rules = tmp / "r.rules"
    rules.write_text(f"match duplicate mbox {tmp}/dups\n"
                     f"match all filter {wrap(1, '-x')}\n")
    r = _run(run, config, rules, 4)
    assert r.returncode == 0, r.stderr
    dovecot.add_messages("alice", [_msg(i) for i in range(2, 8)])
    r = _run(run, config, rules, 4)
    assert r.returncode == 0, r.stderr
    assert _ids(tmp / "dups") == [2, 3]
    assert _ids(tmp / "inbox.mbox") == [0, 1, 2, 3] + [4, 5, 6, 7]
    assert dovecot.count("alice") == 0


def _until(cond, what, deadline=120):
    end = time.monotonic() + deadline
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_with_filters_running(dovecot, config, run, tmp, wrap, popsift):
    """SIGTERM while two filters run and six messages wait for theirs:
    the two finish and are delivered, the others are left on the server
    untouched; the next run delivers them, each message once, in order."""
    n = 8
    dovecot.add_messages("alice", [_msg(i) for i in range(n)])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter {wrap(2, '-x')}\n")
    cfg = config(tls="off", rules=rules, received_header="no", timeout="300",
                 filter_parallel="2")
    (wrap.dir / "hold").touch()
    proc = subprocess.Popen([str(popsift), "-f", str(cfg), "run"], stderr=subprocess.PIPE)
    try:
        _until(lambda: wrap.calls() == 2, "two filters running")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)   # not for correctness: lets the signal land before the filters end
        (wrap.dir / "hold").unlink()
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode(errors="replace")
    assert wrap.calls() == 2, "no filter started after the signal"
    assert _ids(tmp / "inbox.mbox") == [0, 1], err
    assert dovecot.count("alice") >= n - 2
    r = _run(run, config, rules, 2)
    assert r.returncode == 0, r.stderr
    assert _ids(tmp / "inbox.mbox") == list(range(n))
    assert dovecot.count("alice") == 0
