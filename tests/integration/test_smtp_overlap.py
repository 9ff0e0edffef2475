"""Forwarding in the background (src/smtp-queue.c): the SMTP dialogue of
one message overlaps the POP3 download of the next ones, and the batch
commit waits for every outcome before it writes a state row or sends a
DELE.  These tests fail messages in the middle of batches and check that
exactly-once still holds: what the SMTP server did not accept stays on
the POP3 server as "deferred", everything else is forwarded once, and the
rerun forwards the rest once.

Run:  POPSIFT=/tmp/popsift /usr/bin/python3 -m pytest -q tests/integration/test_smtp_overlap.py
"""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import popsift_test as pt
from smtpd import Recorder, _Handler
from test_smtp import mkmsg, smtp_keys, states, wire

gen = pt.load_genmail()


class Faults(_Handler):
    """Answers the end of the data by the message's Subject: 451 for the
    ones in `defer`, a dropped connection for the ones in `drop` (once
    each), and for `vanish` the server stops listening and drops the
    connection, so every later message finds nobody there."""

    def __init__(self, rec, defer=(), drop=(), vanish=None):
        super().__init__(rec)
        self.defer, self.drop, self.vanish = set(defer), set(drop), vanish

    async def handle_DATA(self, server, session, envelope):
        m = re.search(rb"^Subject: (.*?)\r?$", envelope.original_content, re.M)
        subject = m.group(1).decode() if m else ""
        if subject in self.defer:
            return "451 4.3.0 try again later"
        if subject in self.drop:
            self.drop.discard(subject)
            server.transport.abort()
            return "421 4.4.2 dropped"             # never seen
        if subject == self.vanish:
            self.rec._ctl.server.close()           # no new connections
            server.transport.abort()
            return "421 4.4.2 gone"                # never seen
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtpd():
    servers = []

    def make(port=None, coalesce=False, **faults):
        rec = Recorder(port=port, coalesce=coalesce)
        rec._ctl.handler = Faults(rec, **faults)
        servers.append(rec.start())
        return rec

    yield make
    for s in servers:
        if s._ctl._thread is not None:             # not stopped by the test
            s.stop()


def subject(m: bytes) -> str:
    return pt.header_values(m, "Subject")[0]


def forwarded(srv) -> Counter:
    return Counter(m.data for m in srv.messages)


def test_451_in_the_middle_of_batches(dovecot, smtpd, config, run, tmp):
    msgs = [mkmsg(f"m{i}") for i in range(520)]             # batches hold 500
    # one spilled to a temp file (over 2 MB): the queue keeps its file open
    msgs[260] = mkmsg("m260", body=gen.message(0, seed=3, size=3 << 20).split(b"\n\n", 1)[1])
    dovecot.add_messages("alice", msgs)
    deferred = {"m3", "m250", "m499", "m500", "m515"}
    srv = smtpd(defer=deferred)
    cfg = config(**smtp_keys(srv))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert len(re.findall(r"message \d+ stays on the server: .* 451 4.3.0 try again later",
                          r.stderr)) == 5
    want = [wire(m) for m in msgs if subject(m) not in deferred]
    assert [m.data for m in srv.messages] == want          # in order, each once
    assert sorted(subject(m) for m in dovecot.messages("alice")) == sorted(deferred)
    st = states(tmp)
    assert Counter(s for s, _ in st.values()) == {"deleted": 515, "deferred": 5}
    assert all("451 4.3.0" in e for s, e in st.values() if s == "deferred")

    srv._ctl.handler.defer.clear()
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert forwarded(srv) == Counter(wire(m) for m in msgs)  # all of them, once
    assert [m.data for m in srv.messages[515:]] == [
        wire(m) for m in msgs if subject(m) in deferred]
    assert dovecot.count("alice") == 0
    assert srv.connections == 2                              # one per run


@pytest.mark.parametrize("coalesce", [False, True], ids=["apart", "coalesced"])
def test_connection_dropped_mid_run(dovecot, smtpd, config, run, tmp, coalesce):
    """c8's data and dot went out, then the connection dropped without a
    reply: the server may have taken it or not, so it is deferred (never
    sent again on a new connection in the same run, which could make a
    duplicate).  Whether c8's envelope replies came with c7's 250 or on
    their own must not matter: "coalesced" makes the server send them
    together (as Postfix does), which is what a busy machine did now and
    then and what once made popsift send c8 again."""
    msgs = [mkmsg(f"c{i}") for i in range(20)]
    dovecot.add_messages("alice", msgs)
    srv = smtpd(drop={"c8"}, coalesce=coalesce)
    cfg = config(**smtp_keys(srv))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert "deferred" in r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs if subject(m) != "c8"]
    assert srv.connections == 2                    # the rest went on over a new one
    assert [subject(m) for m in dovecot.messages("alice")] == ["c8"]
    st = states(tmp)
    assert Counter(s for s, _ in st.values()) == {"deleted": 19, "deferred": 1}

    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert forwarded(srv) == Counter(wire(m) for m in msgs)
    assert dovecot.count("alice") == 0


def test_server_gone_mid_run(dovecot, smtpd, config, run, tmp):
    msgs = [mkmsg(f"g{i}") for i in range(20)]
    dovecot.add_messages("alice", msgs)
    srv = smtpd(vanish="g5")
    cfg = config(**smtp_keys(srv))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert f"cannot forward through 127.0.0.1:{srv.port}" in r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs[:5]]
    assert sorted(subject(m) for m in dovecot.messages("alice")) == sorted(
        subject(m) for m in msgs[5:])
    st = states(tmp)
    assert Counter(s for s, _ in st.values()) == {"deleted": 5, "deferred": 15}
    srv.stop()

    again = smtpd(port=srv.port)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [m.data for m in again.messages] == [wire(m) for m in msgs[5:]]
    assert again.connections == 1
    assert dovecot.count("alice") == 0


def test_mixed_destinations_keep_order_and_undo(dovecot, smtpd, config, run, tmp):
    """Forward-only messages go to the sending thread; a forward with a
    local copy waits its turn behind them (deliver_to()'s order: a failed
    forward writes no local copy); two forward targets are tried in order
    and the second not at all when the first defers."""
    rules = tmp / "r.rules"
    rules.write_text(f'match header "Subject" =~ /^copy/ mbox {tmp / "copy.mbox"} continue\n'
                     'match header "Subject" =~ /^two/ forward phone@example.net continue\n'
                     f'match header "Subject" =~ /^local/ mbox {tmp / "local.mbox"}\n')
    names = ["f0", "copy1", "two2", "local3", "f4", "copy5", "two6", "f7"]
    msgs = {n: mkmsg(n) for n in names}
    dovecot.add_messages("alice", list(msgs.values()))
    srv = smtpd(defer={"copy5", "two6"})
    cfg = config(**smtp_keys(srv, rules=rules))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert [(subject(m.data.replace(b"\r\n", b"\n")), m.rcpt_tos) for m in srv.messages] == [
        ("f0", ["bob@example.org"]), ("copy1", ["bob@example.org"]),
        ("two2", ["phone@example.net"]), ("two2", ["bob@example.org"]),
        ("f4", ["bob@example.org"]), ("f7", ["bob@example.org"])]
    assert pt.mbox_messages(tmp / "copy.mbox") == [msgs["copy1"]]
    assert pt.mbox_messages(tmp / "local.mbox") == [msgs["local3"]]
    assert sorted(subject(m) for m in dovecot.messages("alice")) == ["copy5", "two6"]

    srv._ctl.handler.defer.clear()
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [(subject(m.data.replace(b"\r\n", b"\n")), m.rcpt_tos) for m in srv.messages[6:]] == [
        ("copy5", ["bob@example.org"]), ("two6", ["phone@example.net"]),
        ("two6", ["bob@example.org"])]
    assert pt.mbox_messages(tmp / "copy.mbox") == [msgs["copy1"], msgs["copy5"]]
    assert dovecot.count("alice") == 0


def _filter_case(tmp) -> dict:
    """The filter scenario itself; runs in a network namespace of its own
    (see the test below), where it can have port 25."""
    rec = Recorder(port=25)
    rec._ctl.handler = Faults(rec, defer={"x3"})
    rec.start()
    try:
        rules = tmp / "r.rules"
        rules.write_text(f'match header "Subject" =~ /^x/ forward bob@example.org continue\n'
                         f'match all mbox {tmp / "all.mbox"}\n')
        files = []
        for i in range(6):
            p = tmp / f"{i}.eml"
            p.write_bytes(mkmsg(f"x{i}" if i % 2 else f"y{i}"))
            files.append(p)
        r = pt.run_popsift(["filter", "-r", rules, *files])
    finally:
        rec.stop()
    return {"rc": r.returncode, "stderr": r.stderr,
            "forwarded": [subject(m.data.replace(b"\r\n", b"\n")) for m in rec.messages],
            "local": [subject(m) for m in pt.mbox_messages(tmp / "all.mbox")]}


def test_filter_forwards_in_order_with_local_copies(tmp):
    """`popsift filter` forwards through the same sending thread and waits
    for each message.  With no account it forwards to localhost:25, which
    a machine's own MTA may hold: the case runs under `unshare -n`, in a
    network namespace with only its own loopback."""
    here = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=f"{here.parent / 'lib'}:{here}",
               POPSIFT=str(pt.popsift_path()))
    r = subprocess.run(["unshare", "-n", sys.executable, __file__, str(tmp)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["rc"] == 75, got["stderr"]
    assert "451 4.3.0 try again later" in got["stderr"]
    assert got["forwarded"] == ["x1", "x5"]
    # the refused forward wrote no local copy either
    assert got["local"] == ["y0", "x1", "y2", "y4", "x5"]


if __name__ == "__main__":      # inside `unshare -n`, from the test above
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(json.dumps(_filter_case(Path(sys.argv[1]))))
