"""spamd — SpamAssassin's daemon (Debian spamd) for popsift's tests.

    from spamd import Spamd
    with Spamd() as sd:                       # 127.0.0.1:sd.port
        ["spamc", *sd.spamc_args, ...]        # -p PORT -d 127.0.0.1

Started as root it runs its children as `nobody`; its shipped rules
(/usr/share/spamassassin), no network: --local, no DNS, no Razor/Pyzor,
no Bayes, no sa-update, no user preferences (--nouser-config), a site
configuration of its own in a temp dir of /tmp (spamd reads it as
nobody: pytest's own temp dirs are not traversable by other users).  report_safe 0: spam keeps its body
and only gains X-Spam-* headers, as ham does.  Loading the rules takes
tens of seconds on a busy machine: start waits up to `deadline` for a
PONG.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popsift_test as pt  # noqa: E402

LOCAL_CF = """\
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
report_safe 0
"""


class Spamd:
    def __init__(self, deadline: float = 240.0, children: int = 2):
        self.children = children   # --max-children: how many messages it scans at once
        self.dir = Path(tempfile.mkdtemp(prefix="popsift-spamd-"))
        self.deadline = deadline
        self.port = pt.free_port()
        self.proc = None

    @property
    def spamc_args(self) -> list[str]:
        return ["-p", str(self.port), "-d", "127.0.0.1"]

    def _configure(self) -> Path:
        site, home = self.dir / "site", self.dir / "home"
        site.mkdir()
        home.mkdir()
        for pre in glob.glob("/etc/spamassassin/*.pre"):   # the plugins (Check...)
            shutil.copy(pre, site)
        (site / "local.cf").write_text(LOCAL_CF)
        for d in (self.dir, site):
            os.chmod(d, 0o755)
        shutil.chown(home, "nobody")
        return site

    def start(self) -> "Spamd":
        site = self._configure()
        args = ["spamd", "--local", f"--listen=127.0.0.1:{self.port}", "--nouser-config",
                f"--siteconfigpath={site}", f"--helper-home-dir={self.dir / 'home'}",
                "--syslog=stderr", f"--max-children={self.children}", "--min-children=1"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.log = open(self.dir / "log", "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.monotonic() + self.deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spamd exited: {self.log_text()[-2000:]}")
            r = subprocess.run(["spamc", "-K", *self.spamc_args], capture_output=True)
            if r.returncode == 0 and b"SPAMD" in r.stdout:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"spamd not ready in {self.deadline} s: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        return (self.dir / "log").read_text(errors="replace")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
