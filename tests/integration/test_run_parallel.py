"""`popsift run` polls accounts in parallel (up to max_parallel, one child
process per account) with the sequential run's output, order and exit
code; `--shard K/N` splits a config's accounts between hosts."""

import json
import re
import signal
import subprocess
import time

import pytest

import popsift_test as pt

MSG = b"From: a@example.org\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody %s\n"


def msg(tag: str) -> bytes:
    return MSG.replace(b"%s", tag.encode())


def block(name: str, **keys) -> str:
    return f"account {name}\n" + "".join(f"{k} {v}\n" for k, v in keys.items())


def dovecot_account(dc, name, user, deliver, password=None, **keys):
    return block(name, host=dc.host, port=dc.port, tls="off", auth="user", user=user,
                 password=password or dc.users[user], deliver=deliver, **keys)


def fake_account(srv, name, deliver, **keys):
    return block(name, host=srv.host, port=srv.port, tls="off", auth="user",
                 user=srv.user, password=srv.password, deliver=deliver, **keys)


def write(tmp, body, *, max_parallel=None, state=None, name="config"):
    head = f"defaults\nstate {state or tmp / 'state.db'}\n"
    if max_parallel is not None:
        head = f"max_parallel {max_parallel}\n" + head
    return pt.write_config(tmp / name, head + "\n" + body, 0o600)


def summary(stderr: str) -> list[str]:
    """The per-account lines, with what varies between runs (times, and
    numbers inside error texts such as ports, and the config file a refused
    login names) masked."""
    return [re.sub(r"\(/\S+/config:", "(CONFIG:", re.sub(r"[0-9.]+ s\b", "T s", line))
            for line in stderr.splitlines() if line]


def json_accounts(stdout: str):
    doc = json.loads(stdout)
    for a in doc["accounts"]:
        a.pop("seconds")
    return doc


@pytest.fixture
def mixed(make_dovecot, tmp):
    """Six accounts on one Dovecot: good ones with mail, a refused login,
    a closed port (nothing listening) and an empty mailbox."""
    users = {f"u{i}": "secret" for i in range(1, 6)}
    dc = make_dovecot(users=users, ssl=False)
    for i in (1, 2, 4):
        for k in range(3):
            dc.add_message(f"u{i}", msg(f"u{i}-{k}"))

    def config(where, max_parallel, keep="yes"):
        closed = pt.free_port()
        body = "".join([
            dovecot_account(dc, "one", "u1", f"mbox {where}/one.mbox", keep=keep),
            dovecot_account(dc, "refused", "u3", f"mbox {where}/r.mbox", password="wrong"),
            dovecot_account(dc, "two", "u2", f"maildir {where}/two/", keep=keep),
            block("closed", host="127.0.0.1", port=closed, tls="off", auth="user",
                  user="x", password="y", deliver=f"mbox {where}/c.mbox"),
            dovecot_account(dc, "empty", "u5", f"mbox {where}/e.mbox", keep=keep),
            dovecot_account(dc, "four", "u4", f"mbox {where}/four.mbox", keep=keep),
        ])
        where.mkdir(exist_ok=True)
        return write(where, body, max_parallel=max_parallel)
    return dc, config


NAMES = ["one", "refused", "two", "closed", "empty", "four"]


def mask_ports(lines):
    return [re.sub(r"127\.0\.0\.1:\d+|port \d+|\d+ ms\b", "ADDR",
                   re.sub(r"\(/\S+/config:", "(CONFIG:", l)) for l in lines]


def test_parallel_matches_sequential(mixed, run, tmp):
    dc, config = mixed
    seq = run("-f", config(tmp / "seq", 1), "run")
    par = run("-f", config(tmp / "par", 6), "run")
    assert seq.returncode == par.returncode == 77, (seq.stderr, par.stderr)   # refused wins
    s, p = mask_ports(summary(seq.stderr)), mask_ports(summary(par.stderr))
    assert s == p, (seq.stderr, par.stderr)
    # in config order, every account
    order = [l.split(":", 1)[0] for l in p]
    assert [n for n in NAMES if n in order] == sorted(set(order), key=order.index)
    assert set(order) == set(NAMES)
    for name in ("one", "four"):
        assert len(pt.mbox_messages(tmp / "par" / f"{name}.mbox")) == 3
        assert len(pt.mbox_messages(tmp / "seq" / f"{name}.mbox")) == 3
    assert len(pt.maildir_messages(tmp / "par" / "two")) == 3


def test_parallel_json_matches_sequential(mixed, run, tmp):
    dc, config = mixed
    seq = run("-f", config(tmp / "seq", 1), "run", "--json")
    par = run("-f", config(tmp / "par", 4), "run", "--json")
    assert seq.returncode == par.returncode == 77
    js, jp = json_accounts(seq.stdout), json_accounts(par.stdout)
    for a in js["accounts"] + jp["accounts"]:
        a["error"] = a["error"] and mask_ports([a["error"]])[0]
    assert js == jp
    assert [a["account"] for a in jp["accounts"]] == NAMES
    assert jp["exit"] == 77
    assert [a["delivered"] for a in jp["accounts"]] == [3, 0, 3, 0, 0, 3]
    # the JSON document is the whole of stdout, as before
    assert par.stdout.startswith('{"accounts":[') and par.stdout.endswith("}\n")


def test_named_accounts_in_parallel(mixed, run, tmp):
    dc, config = mixed
    r = run("-f", config(tmp / "p", 8, keep="no"), "run", "--json", "four", "one")
    assert r.returncode == 0, r.stderr
    assert [a["account"] for a in json.loads(r.stdout)["accounts"]] == ["one", "four"]
    assert dc.count("u1") == dc.count("u4") == 0 and dc.count("u2") == 3


def test_accounts_really_run_at_once(fake, run, tmp):
    """Four accounts, max_parallel 4: the fake server greets nobody until
    four sessions are open at the same time."""
    srv = fake([], hold_greeting=4)
    body = "".join(fake_account(srv, f"a{i}", f"mbox {tmp}/a{i}.mbox") for i in range(4))
    r = run("-f", write(tmp, body, max_parallel=4), "run")
    assert r.returncode == 0, r.stderr
    assert srv.max_held == 4 and srv.hold_timeouts == 0
    assert [l.split(":")[0] for l in summary(r.stderr)] == ["a0", "a1", "a2", "a3"]


def test_max_parallel_is_a_ceiling(fake, run, tmp):
    """max_parallel 2: never three sessions at once (the fake waits for a
    third in vain: each pair is greeted after hold_timeout)."""
    srv = fake([], hold_greeting=3, hold_timeout=1.0)
    body = "".join(fake_account(srv, f"a{i}", f"mbox {tmp}/a{i}.mbox") for i in range(4))
    r = run("-f", write(tmp, body, max_parallel=2), "run")
    assert r.returncode == 0, r.stderr
    assert srv.max_held == 2 and srv.hold_timeouts == 4


def test_max_parallel_1_is_sequential(fake, run, tmp):
    srv = fake([], hold_greeting=2, hold_timeout=1.0)
    body = "".join(fake_account(srv, f"a{i}", f"mbox {tmp}/a{i}.mbox") for i in range(3))
    r = run("-f", write(tmp, body, max_parallel=1), "run")
    assert r.returncode == 0, r.stderr
    assert srv.max_held == 1 and srv.hold_timeouts == 3


def test_a_poll_that_dies_is_its_accounts_error(make_dovecot, run, tmp):
    """A poll's process killed before it sends its result: that account
    fails with EX_SOFTWARE; every other account, before and after it, is
    polled and reported (a new process takes the dead one's place)."""
    dc = make_dovecot(users={f"u{i}": "secret" for i in range(1, 5)}, ssl=False)
    for i in range(1, 5):
        dc.add_message(f"u{i}", msg(f"m{i}"))
    body = (dovecot_account(dc, "first", "u1", f"mbox {tmp}/1.mbox") +
            block("dies", host=dc.host, port=dc.port, tls="off", auth="user", user="u1",
                  password_command="sh -c 'kill -KILL $PPID'", deliver=f"mbox {tmp}/d.mbox") +
            "".join(dovecot_account(dc, f"a{i}", f"u{i}", f"mbox {tmp}/{i}.mbox")
                    for i in range(2, 5)))
    r = run("-f", write(tmp, body, max_parallel=2), "run", "--json")
    assert r.returncode == 70, r.stderr
    doc = json.loads(r.stdout)
    assert [a["account"] for a in doc["accounts"]] == ["first", "dies", "a2", "a3", "a4"]
    assert [a["exit"] for a in doc["accounts"]] == [0, 70, 0, 0, 0]
    assert "killed by signal 9" in doc["accounts"][1]["error"]
    for i in range(1, 5):
        assert len(pt.mbox_messages(tmp / f"{i}.mbox")) == 1
        assert dc.count(f"u{i}") == 0


def test_sigterm_mid_run_stops_safely(make_dovecot, fake, popsift, tmp):
    """TERM while one poll is stuck mid-message and others wait their turn:
    run stops (in bounded time), reports every account, and a rerun
    delivers every message exactly once."""
    dc = make_dovecot(users={f"u{i}": "secret" for i in range(1, 4)}, ssl=False)
    for i in range(1, 4):
        for k in range(2):
            dc.add_message(f"u{i}", msg(f"u{i}-{k}"))
    srv = fake([msg("f1"), msg("f2")], stall="RETR")
    body = (fake_account(srv, "stuck", f"mbox {tmp}/stuck.mbox") +
            "".join(dovecot_account(dc, f"d{i}", f"u{i}", f"mbox {tmp}/d{i}.mbox")
                    for i in range(1, 4)))
    cfg = write(tmp, body, max_parallel=2)
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "run", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not srv.commands("RETR") and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert srv.commands("RETR"), "the stuck poll never reached RETR"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    doc = json.loads(out)
    assert [a["account"] for a in doc["accounts"]] == ["stuck", "d1", "d2", "d3"]
    # as in a sequential run: the poll stops between replies, the rest waits
    assert "stopped by a signal" in doc["accounts"][0]["error"], out
    assert all(a["error"] and "stopped by a signal" in a["error"]
               for a in doc["accounts"] if a["exit"]), out
    assert srv.count() == 2   # nothing deleted from the stuck server
    srv.clear_faults()
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(tmp / "stuck.mbox")) == 2
    for i in range(1, 4):
        assert len(pt.mbox_messages(tmp / f"d{i}.mbox")) == 2
        assert dc.count(f"u{i}") == 0


# ---- --shard K/N ----

def closed_accounts(tmp, names):
    port = pt.free_port()   # nothing listens: each poll fails at once, by name
    return "".join(block(n, host="127.0.0.1", port=port, tls="off", auth="user", user="x",
                         password="y", deliver=f"mbox {tmp}/x.mbox") for n in names)


def shard_of_run(run, cfg, k, n, *extra):
    r = run("-f", cfg, "run", "--json", "--shard", f"{k}/{n}", *extra)
    assert r.returncode in (0, 69), r.stderr
    return [a["account"] for a in json.loads(r.stdout)["accounts"]]


def test_shards_partition_the_accounts(run, tmp):
    names = [f"user{i}@example.{i % 3}" for i in range(24)]
    cfg = write(tmp, closed_accounts(tmp, names), max_parallel=8)
    parts = [shard_of_run(run, cfg, k, 3) for k in (1, 2, 3)]
    seen = [n for p in parts for n in p]
    assert sorted(seen) == sorted(names)         # each account in exactly one shard
    assert all(parts), parts                     # 24 names spread over all three
    for p in parts:                              # config order kept within a shard
        assert p == [n for n in names if n in p]
    # more accounts, reordered: the old ones stay where they were
    more = names[::-1] + [f"new{i}" for i in range(10)]
    cfg2 = write(tmp, closed_accounts(tmp, more), max_parallel=8, name="config2")
    parts2 = [shard_of_run(run, cfg2, k, 3) for k in (1, 2, 3)]
    for k in range(3):
        assert set(parts[k]) == set(parts2[k]) & set(names)
    assert sorted(n for p in parts2 for n in p) == sorted(more)


def test_shard_1_of_1_is_everything(run, tmp):
    names = ["a", "b", "c"]
    cfg = write(tmp, closed_accounts(tmp, names))
    assert shard_of_run(run, cfg, 1, 1) == names


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "a/b", "1/3x", "13", "", "-1/2"])
def test_bad_shard_is_a_usage_error(run, tmp, spec):
    cfg = write(tmp, closed_accounts(tmp, ["a"]))
    r = run("-f", cfg, "run", "--shard", spec)
    assert r.returncode == 64, r.stderr


def test_shard_is_for_run_and_daemon(run, tmp):
    cfg = write(tmp, closed_accounts(tmp, ["a"]))
    assert run("-f", cfg, "check", "--shard", "1/2").returncode == 64


def test_named_account_outside_the_shard(run, tmp):
    names = [f"n{i}" for i in range(8)]
    cfg = write(tmp, closed_accounts(tmp, names))
    inside = shard_of_run(run, cfg, 1, 2)
    outside = [n for n in names if n not in inside]
    assert inside and outside
    r = run("-f", cfg, "run", "--shard", "1/2", outside[0])
    assert r.returncode == 64 and "shard 2/2" in r.stderr, r.stderr
    assert shard_of_run(run, cfg, 1, 2, inside[0]) == [inside[0]]


def test_daemon_polls_only_its_shard(popsift, tmp):
    names = [f"n{i}" for i in range(8)]
    cfg = write(tmp, closed_accounts(tmp, names))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "daemon", "--shard", "2/2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sched = tmp / "state.db.sched"
    deadline = time.monotonic() + 60
    while not sched.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    started = [l for l in err.splitlines() if "daemon started" in l]
    r = pt.run_popsift(["-f", cfg, "run", "--json", "--shard", "2/2"], binary=popsift)
    want = [a["account"] for a in json.loads(r.stdout)["accounts"]]
    assert started and f"{len(want)} account" in started[0], err
    polled = {l.split(":")[0] for l in err.splitlines() if l.split(":")[0] in names}
    assert polled <= set(want), err
