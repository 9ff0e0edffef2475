"""A full disk (RLIMIT_FSIZE stands in for it): the delivery fails
cleanly, the message stays on the server, the exit code says so, and
the next run with room delivers everything exactly once (issue 6)."""
import resource
import subprocess

import popsift_test as pt


def _limit(nbytes):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def _msgs():
    small = [f"Message-ID: <df{i}@t>\nSubject: s{i}\n\nsmall\n".encode() for i in range(3)]
    big = b"Message-ID: <dfbig@t>\nSubject: big\n\n" + b"y" * 400_000 + b"\n"
    return small[:2] + [big] + small[2:]


def _run_limited(popsift, cfg, nbytes):
    return subprocess.run([str(popsift), "-f", str(cfg), "run"], capture_output=True,
                          text=True, preexec_fn=_limit(nbytes), timeout=60)


def test_mbox_full_disk(dovecot, config, popsift, run, tmp):
    dovecot.add_messages("alice", _msgs())
    cfg = config(tls="off")
    r = _run_limited(popsift, cfg, 100_000)
    assert r.returncode == 75, r.stderr
    assert "test: " in r.stderr and "File too large" in r.stderr
    assert dovecot.count("alice") >= 1, "the message that did not fit stays on the server"
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    ids = [pt.header_values(m, "Message-ID")[0] for m in pt.mbox_messages(tmp / "inbox.mbox")]
    assert sorted(ids) == sorted([f"<df{i}@t>" for i in range(3)] + ["<dfbig@t>"])
    assert len(ids) == len(set(ids)) == 4
    assert dovecot.count("alice") == 0


def test_maildir_full_disk(dovecot, config, popsift, run, tmp):
    dovecot.add_messages("alice", _msgs())
    cfg = config(tls="off", deliver=f"maildir {tmp / 'md'}")
    r = _run_limited(popsift, cfg, 100_000)
    assert r.returncode == 75, r.stderr
    assert dovecot.count("alice") >= 1
    assert not list((tmp / "md" / "tmp").iterdir()), "no half-written file left in tmp/"
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    ids = [pt.header_values(m, "Message-ID")[0] for m in pt.maildir_messages(tmp / "md")]
    assert len(ids) == len(set(ids)) == 4
    assert dovecot.count("alice") == 0
