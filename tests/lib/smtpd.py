"""smtpd — a recording SMTP server for popsift's tests (aiosmtpd, Debian
python3-aiosmtpd; run with /usr/bin/python3).

    from smtpd import Recorder
    with Recorder() as srv:                       # 127.0.0.1:srv.port
        ... popsift forwards to srv.port ...
        m = srv.messages[0]
        m.mail_from, m.rcpt_tos, m.data           # data: bytes as received,
                                                  # CRLF, dot-unstuffed
        srv.connections                           # connections that sent mail

Behaviour, settable before or between runs (the handler reads them live):

    srv.mail_reply = "451 4.3.0 later"            # answer MAIL FROM with this
    srv.rcpt_replies["bad@x"] = "550 5.1.1 no"    # answer RCPT TO:<bad@x>
    srv.mail_replies["s@x"] = "550 5.7.1 no"      # answer MAIL FROM:<s@x>
    srv.data_reply = "554 5.6.0 no thanks"        # answer the end of data
    srv.drop_at_data = True                       # close instead of answering "."
    srv.data_delay = 5                            # seconds before answering "."
    srv.drop_kept_once = True                     # drop the connection at the next
                                                  # MAIL FROM after its first message
    srv.close_after_data = True                   # "421 closing" after each 250 to
                                                  # ".", then hang up

Recorder(users={"u": "pw"}, tokens={"u": "tok"}) offers AUTH PLAIN LOGIN
(tokens may be a function (user, token) -> bool, e.g. an OAuth2 server's check)
CRAM-MD5 XOAUTH2 and requires it; tls="starttls" (STARTTLS required) or
"on" (SMTPS) with certs=popsift_test.make_certs(dir); raw=True keeps the
bytes of each connection as the server read them (srv.raw[n]).
pipelining=False: EHLO does not offer PIPELINING (aiosmtpd alone never
does; Postfix and Exim do, so the default offers it).  coalesce=True
holds each reply while the next pipelined command is already read, as
Postfix and Exim do: a client then reads the reply to one message's end
and the next envelope's replies in one piece.

As a program, for benchmarks: smtpd.py --port N prints "ready", serves
until SIGTERM, then prints "messages=M connections=C bytes=B" on stdout
(C: connections that carried mail).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import itertools
import signal
import ssl
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popsift_test as pt  # noqa: E402


@dataclass
class Message:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    helo: str | None
    conn: int
    login: bytes | None = None
    mail_options: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, rec: "Recorder"):
        self.rec = rec

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.rec.pipelining:      # as Postfix and Exim do; aiosmtpd reads commands in order
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.rec.drop_kept_once and getattr(session, "mails", 0) > 0:
            # a kept connection the server dropped while the client idled
            self.rec.drop_kept_once = False
            server.transport.abort()
            return "421 4.4.2 dropped"   # never seen
        session.mails = getattr(session, "mails", 0) + 1
        if self.rec.mail_reply:
            return self.rec.mail_reply
        if address in self.rec.mail_replies:
            return self.rec.mail_replies[address]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rec.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rec = self.rec
        if rec.data_delay:
            await asyncio.sleep(rec.data_delay)
        if rec.drop_at_data:
            server.transport.abort()
            return "421 4.4.2 dropped"   # never seen: the transport is gone
        if rec.data_reply:
            return rec.data_reply
        if rec.close_after_data:
            # the 421 rides in the same write as the 250: deterministic
            asyncio.get_running_loop().call_soon(server.transport.close)
            status = "250 2.0.0 OK queued\r\n421 4.4.2 closing: too many messages"
        else:
            status = "250 2.0.0 OK queued"
        with rec.lock:
            rec.messages.append(Message(
                envelope.mail_from, list(envelope.rcpt_tos),
                bytes(envelope.original_content), session.host_name,
                getattr(server, "conn_no", 0), getattr(session.auth_data, "login", None),
                list(envelope.mail_options)))
            rec.bytes += len(envelope.original_content)
        return status

    # SASL mechanisms aiosmtpd lacks ("auth_CRAM__MD5" is CRAM-MD5)
    async def auth_CRAM__MD5(self, server, args):
        challenge = f"<{next(self.rec.serial)}.popsift@test>".encode()
        resp = await server.challenge_auth(challenge)
        if not isinstance(resp, bytes) or b" " not in resp:
            return AuthResult(success=False, handled=False)
        user, digest = resp.rsplit(b" ", 1)
        pw = self.rec.users.get(user.decode(errors="replace"))
        ok = pw is not None and hmac.compare_digest(
            digest, hmac.new(pw.encode(), challenge, "md5").hexdigest().encode())
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user, b""))

    async def auth_XOAUTH2(self, server, args):
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=False)
        parts = dict(p.split("=", 1) for p in blob.decode(errors="replace").split("\x01") if "=" in p)
        user, auth = parts.get("user", ""), parts.get("auth", "")
        if callable(self.rec.tokens):   # tokens(user, token) -> bool: a live check
            ok = auth.startswith("Bearer ") and self.rec.tokens(user, auth[7:])
        else:
            ok = self.rec.tokens.get(user) is not None and auth == f"Bearer {self.rec.tokens[user]}"
        return AuthResult(success=ok, handled=False,
                          auth_data=LoginPassword(user.encode(), b""))


class _SMTP(SMTP):
    """Numbers its connections and can keep what it read."""

    def __init__(self, handler, rec: "Recorder", **kw):
        with warnings.catch_warnings():
            # AUTH without TLS is what the loopback tests want
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(handler, **kw)
        self.rec = rec
        self.conn_no = 0
        self._held = bytearray()

    def connection_made(self, transport):
        with self.rec.lock:
            self.conn_no = next(self.rec.serial)
            self.rec.opened.append(self.conn_no)
        super().connection_made(transport)

    async def push(self, status):
        """With rec.coalesce, as Postfix and Exim do under PIPELINING:
        a reply waits while another complete command is already read,
        and goes out with the reply to the last one in one write."""
        if not self.rec.coalesce:
            return await super().push(status)
        if isinstance(status, str):
            status = status.encode("utf-8")
        self._held += status + b"\r\n"
        if b"\n" in self._reader._buffer:     # more pipelined commands wait
            return None
        held, self._held = bytes(self._held), bytearray()
        self._writer.write(held)
        await self._writer.drain()
        return None

    def data_received(self, data):
        if self.rec.raw_enabled:
            with self.rec.lock:
                self.rec.raw.setdefault(self.conn_no, bytearray()).extend(data)
        super().data_received(data)


class _Controller(Controller):
    def __init__(self, rec, handler, **kw):
        self.rec = rec
        super().__init__(handler, **kw)

    def factory(self):
        return _SMTP(self.handler, self.rec, **self.SMTP_kwargs)


def _server_ctx(certs) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs["cert"]), str(certs["key"]))
    return ctx


class Recorder:
    def __init__(self, port: int | None = None, users: dict | None = None,
                 tokens: dict | None = None, tls: str = "off", certs=None,
                 raw: bool = False, data_size_limit: int = 64 << 20,
                 pipelining: bool = True, coalesce: bool = False):
        self.port = port or pt.free_port()
        self.host = "127.0.0.1"
        self.users = dict(users or {})
        self.tokens = tokens if callable(tokens) else dict(tokens or {})
        self.lock = threading.Lock()
        self.serial = itertools.count(1)
        self.messages: list[Message] = []
        self.opened: list[int] = []
        self.raw: dict[int, bytearray] = {}
        self.raw_enabled = raw
        self.pipelining = pipelining
        self.coalesce = coalesce
        self.bytes = 0
        self.mail_reply = None
        self.rcpt_replies: dict[str, str] = {}
        self.mail_replies: dict[str, str] = {}
        self.data_reply = None
        self.drop_at_data = False
        self.drop_kept_once = False
        self.close_after_data = False
        self.data_delay = 0
        # ready_timeout: the controller's start-up on a busy machine (default 5 s)
        kw = dict(hostname="127.0.0.1", port=self.port, data_size_limit=data_size_limit,
                  ready_timeout=60,
                  enable_SMTPUTF8=True, decode_data=False, ident="popsift-test-smtpd")
        if self.users or self.tokens:
            # implicit TLS is invisible to aiosmtpd: only STARTTLS counts as TLS
            kw.update(auth_required=True, auth_require_tls=(tls == "starttls"),
                      authenticator=self._authenticate)
        if tls == "starttls":
            kw.update(tls_context=_server_ctx(certs), require_starttls=True)
        elif tls == "on":
            kw.update(ssl_context=_server_ctx(certs))
        self._ctl = _Controller(self, _Handler(self), **kw)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode(errors="replace")
        ok = self.users.get(user) == auth_data.password.decode(errors="replace")
        # handled=False: aiosmtpd answers 535 itself (its default is silence)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    @property
    def connections(self) -> int:
        """Connections that carried at least one message."""
        return len({m.conn for m in self.messages})

    def start(self) -> "Recorder":
        self._ctl.start()
        # the controller's own probe connection is not a client's
        with self.lock:
            self.opened.clear()
        return self

    def stop(self) -> None:
        self._ctl.stop()

    def __enter__(self) -> "Recorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    rec = Recorder(port=args.port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    rec.stop()
    print(f"messages={len(rec.messages)} connections={rec.connections} bytes={rec.bytes}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
