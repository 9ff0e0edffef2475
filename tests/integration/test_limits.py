"""max_size and max_messages: bounded runs, nothing lost (issue 6)."""
import popsift_test as pt


def _msg(i, size):
    return (f"Message-ID: <lim{i}@test>\nSubject: m{i}\n\n" + "x" * size + "\n").encode()


def test_max_size_leaves_big_mail_on_server(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [_msg(0, 100), _msg(1, 20000), _msg(2, 100)])
    cfg = config(tls="off", max_size="10K")
    for _ in range(2):
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert "larger than max_size" in r.stderr and r.stderr.startswith("test: ")
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert len(got) == 2, "the two small ones, once each"
    assert dovecot.count("alice") == 1, "the big one stays on the server"


def test_max_messages_spreads_over_runs(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [_msg(i, 50) for i in range(5)])
    cfg = config(tls="off", max_messages=2)
    counts = []
    for _ in range(3):
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        counts.append(len(pt.mbox_messages(tmp / "inbox.mbox")))
    assert counts == [2, 4, 5]
    assert dovecot.count("alice") == 0


def test_bad_size_is_config_error(dovecot, config, run):
    cfg = config(tls="off", max_size="lots")
    r = run("-f", cfg, "run")
    assert r.returncode == 78 and "expected a size" in r.stderr
