"""fakepop — a scripted fake POP3 server for fault-injection tests.

Standard library only (socket + threading), listens on 127.0.0.1, plain TCP
(popsift config: `tls off`, `auth user`; `auth any` works too since CAPA
lists USER and no SASL unless `sasl=` is given).

    from fakepop import FakePop

    with FakePop([msg1, msg2], uidls=["a", "b"], err={"QUIT"}) as srv:
        ... run popsift against 127.0.0.1:srv.port (user alice, password secret)
        srv.log          # every command received, in order, all connections
        srv.deleted      # original message numbers removed by a successful QUIT
        srv.remaining()  # messages still on the server (bytes, as given)
        srv.connections  # connections accepted

State persists across connections of one instance: messages deleted by a
committed QUIT are gone in the next session, and the remaining ones are
renumbered 1..n as on a real server.  Message numbers in fault knobs
(`drop_msg`, `err` sets) are the numbers *in the session*; `.deleted`
holds the *original* numbers (1-based index into `messages`).

Messages may be given with LF or CRLF line ends; on the wire they are CRLF,
dot-stuffed, terminated by ".".  LIST sizes are the CRLF sizes (before
stuffing) unless `list_sizes` lies.

Fault knobs (keyword arguments; all default to "behave"):

  user, password      credentials accepted (default alice / secret); USER/PASS,
                      APOP (when the greeting has a timestamp) and, when
                      sasl includes it, AUTH PLAIN
  greeting            text after "+OK " (default "fakepop ready")
  apop                True: append an APOP timestamp "<pid.n@fakepop>"
  greeting_line       bytes: the whole raw greeting line, overriding both
  capa                False: answer CAPA with -ERR
  uidl, top           False: UIDL / TOP unsupported (-ERR, not in CAPA)
  pipelining          False: PIPELINING not in CAPA (the server still copes)
  sasl                list of SASL mechanisms to advertise, e.g. ["PLAIN"]
  capa_extra          list of extra CAPA lines
  drop                close the connection at a step: "greeting" (before
                      sending it), "after_login" (after +OK to PASS/APOP/AUTH),
                      or a command name ("USER", "PASS", "UIDL", "LIST",
                      "TOP", "RETR", "DELE", "QUIT", "STAT", "CAPA" ...).
                      For a multi-line command the +OK and `drop_after` bytes
                      of the payload are sent first (default: half of it);
                      `drop_msg=N` limits RETR/TOP/DELE drops to message N.
                      drop="QUIT" commits nothing; `quit_commits=True` makes
                      the server commit the deletes before it drops.
  err                 commands answered with -ERR: an iterable of names
                      ({"QUIT", "DELE"}) or a dict name -> True | iterable of
                      message numbers ({"RETR": {2}}).  -ERR to QUIT commits
                      no deletes.
  raw                 dict name -> bytes sent *instead of* the reply
                      (e.g. {"UIDL": b"HELLO\\r\\n"}), or name -> {msgnum:
                      bytes} for one message only ({"RETR": {2: b"HELLO\\r\\n"}});
                      malformed="UIDL" is a shorthand for {"UIDL": b"HELLO\\r\\n"}
  unterminated        command name: its multi-line reply is sent without the
                      terminating "." and the server then goes silent
                      (connection left open until stop())
  long_line           command name: its status line is "+OK " followed by
                      `long_line_size` bytes (default 10 MB) of "x"; with
                      long_line_where="data" it is the first payload line
  list_sizes          dict num -> size (or a list) that LIST/STAT report
                      instead of the true sizes
  uidl_lines          dict num -> the text of message num's line in the UIDL
                      listing (and after "+OK " for `UIDL num`) instead of
                      "num uid", e.g. {3: "3"} for a message without a UID
  hold_greeting       N: each session waits before its greeting until N
                      sessions wait at once, then all N go on (or until
                      `hold_timeout` seconds, default 60, pass: counted in
                      .hold_timeouts); .max_held is the most that ever
                      waited at once: a client's parallelism, shown
                      without timing
  stall               "accept": accept and never send the greeting; or a
                      command name: from that command on, answer nothing
                      (connection held open until stop())
  stall_msg           with stall="RETR": stall mid-body of this message
                      instead (after the +OK and half the body)
  trickle             command name: its reply is sent one byte at a time,
                      `trickle_delay` seconds apart (default 0.5), like a
                      server that keeps a connection busy without ever
                      finishing; `trickle_msg=N` limits it to message N
  extra_line          dict name -> {msgnum: bytes} (or name -> bytes for
                      every one): sent right after that command's whole
                      reply, e.g. {"RETR": {2: b"+OK\r\n"}} shifts every
                      later reply by one line
  no_terminator       dict name -> iterable of message numbers: the
                      multi-line reply is sent without its "." and the
                      server goes on with the next command (one reply line
                      too few)
  skip_reply          dict name -> iterable of message numbers: the
                      command is carried out but gets no reply at all
  dele_log            (attribute, not a knob) srv.dele_log lists, per
                      DELE received, (session, original number)
  faulty_sessions     connection numbers (1-based) in which the faults above
                      apply; None (default) = every connection.  E.g. {1}
                      breaks only the first session, so a rerun succeeds.
                      Outside those sessions *every* knob is at its default
                      (capability knobs such as uidl=False included).

Faults may also be changed between sessions: srv.set(drop=None) or
srv.clear_faults().  srv.uidls may be reassigned (a UIDL list that changes
between sessions; indexes are original message numbers - 1).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time

__all__ = ["FakePop"]

_FAULT_DEFAULTS = dict(
    greeting="fakepop ready", apop=False, greeting_line=None, capa=True,
    uidl=True, top=True, pipelining=True, sasl=None, capa_extra=None,
    drop=None, drop_after=None, drop_msg=None, quit_commits=False,
    err=None, raw=None, malformed=None, unterminated=None,
    long_line=None, long_line_size=10 * 1024 * 1024, long_line_where="status",
    list_sizes=None, stall=None, stall_msg=None, faulty_sessions=None,
    uidl_lines=None, trickle=None, trickle_delay=0.5, trickle_msg=None,
    extra_line=None, no_terminator=None, skip_reply=None,
    hold_greeting=None, hold_timeout=60.0,
)

_MULTI = {"UIDL", "LIST", "TOP", "RETR", "CAPA"}


class _Drop(Exception):
    """Close the connection now."""


class _Stall(Exception):
    """Go silent until the server stops."""


class _Sink:
    """A socket stand-in that swallows a reply (skip_reply)."""

    def sendall(self, data: bytes) -> None:
        pass


def _crlf(msg: bytes) -> bytes:
    """Normalise line ends to CRLF; a final line without one gets one."""
    lines = msg.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(ln[:-1] + b"\r\n" if ln.endswith(b"\r") else ln + b"\r\n"
                    for ln in lines)


def _stuff(crlf: bytes) -> bytes:
    """Dot-stuff CRLF text: every line starting with '.' gets another."""
    if crlf.startswith(b"."):
        crlf = b"." + crlf
    return crlf.replace(b"\r\n.", b"\r\n..")


class FakePop:
    def __init__(self, messages=(), uidls=None, *, user: str = "alice",
                 password: str = "secret", **faults):
        unknown = set(faults) - set(_FAULT_DEFAULTS)
        if unknown:
            raise TypeError(f"FakePop: unknown knobs {sorted(unknown)}")
        self.user = user
        self.password = password
        self.messages = [bytes(m) for m in messages]
        self.uidls = list(uidls) if uidls is not None else None
        self.gone: set[int] = set()   # original indexes (0-based) removed
        self.log: list[str] = []
        self.session_logs: list[list[str]] = []
        self.connections = 0
        self.dele_log: list[tuple[int, int]] = []
        self.errors: list[str] = []   # exceptions inside the server (test bugs)
        self._faults = dict(_FAULT_DEFAULTS)
        self.set(**faults)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._sock: socket.socket | None = None
        self.port: int | None = None
        self.host = "127.0.0.1"
        self._held = threading.Condition()
        self.holding = 0          # sessions waiting for their greeting now
        self.max_held = 0         # the most that ever waited at once
        self.hold_timeouts = 0    # sessions greeted only because hold_timeout passed
        self._hold_gen = 0

    # -- configuration ----------------------------------------------------

    def set(self, **faults) -> "FakePop":
        unknown = set(faults) - set(_FAULT_DEFAULTS)
        if unknown:
            raise TypeError(f"FakePop: unknown knobs {sorted(unknown)}")
        self._faults.update(faults)
        return self

    def clear_faults(self) -> "FakePop":
        """Back to a well-behaved server (greeting/capability knobs too)."""
        self._faults = dict(_FAULT_DEFAULTS)
        return self

    def add(self, msg: bytes, uidl: str | None = None) -> int:
        """Add a message; returns its original number."""
        with self._lock:
            self.messages.append(bytes(msg))
            if self.uidls is not None:
                self.uidls.append(uidl if uidl is not None else f"uid{len(self.messages)}")
            return len(self.messages)

    @property
    def deleted(self) -> set[int]:
        """Original message numbers (1-based) removed by a committed QUIT."""
        return {i + 1 for i in self.gone}

    def remaining(self) -> list[bytes]:
        return [m for i, m in enumerate(self.messages) if i not in self.gone]

    @property
    def users(self) -> dict[str, str]:
        """{user: password}, so that popsift_test.account_config(srv, "alice",
        tls="off", auth="user", ...) works as with a Dovecot."""
        return {self.user: self.password}

    def count(self) -> int:
        return len(self.messages) - len(self.gone)

    def commands(self, name: str) -> list[str]:
        """Commands received whose verb is name (case-insensitive)."""
        name = name.upper()
        return [c for c in self.log if c.split(" ", 1)[0].upper() == name]

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> "FakePop":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(0.2)
        self._sock = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name=f"fakepop-{self.port}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            for f in (lambda: c.shutdown(socket.SHUT_RDWR), c.close):
                try:
                    f()
                except OSError:
                    pass
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(timeout=5)

    def __enter__(self) -> "FakePop":
        if self._sock is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FakePop 127.0.0.1:{self.port} msgs={self.count()} conns={self.connections}>"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                n = self.connections
                self._conns.append(c)
                slog: list[str] = []
                self.session_logs.append(slog)
            t = threading.Thread(target=self._serve, args=(c, n, slog),
                                 name=f"fakepop-{self.port}-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def _hold(self, n: int, timeout: float) -> None:
        """Wait until n sessions wait here at once (then all go on), or
        timeout: proof that a client opened n connections in parallel."""
        with self._held:
            gen = self._hold_gen
            self.holding += 1
            self.max_held = max(self.max_held, self.holding)
            if self.holding >= n:
                self._hold_gen += 1
                self.holding = 0
                self._held.notify_all()
                return
            if not self._held.wait_for(lambda: self._hold_gen != gen or self._stop.is_set(),
                                       timeout):
                self.hold_timeouts += 1
                self.holding -= 1

    # -- one session ----------------------------------------------------------

    def _serve(self, c: socket.socket, n: int, slog: list[str]) -> None:
        try:
            _Session(self, c, n, slog).run()
        except (_Drop, ConnectionError, BrokenPipeError, OSError):
            pass
        except _Stall:
            self._stop.wait()
        except Exception as e:  # a bug in the fake: make it visible
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            try:
                c.close()
            except OSError:
                pass
            with self._lock:
                if c in self._conns:
                    self._conns.remove(c)


class _Session:
    def __init__(self, srv: FakePop, c: socket.socket, n: int, slog: list[str]):
        self.srv = srv
        self.c = c
        self.n = n
        self.slog = slog
        active = srv._faults["faulty_sessions"]
        self.f = dict(srv._faults if active is None or n in active else _FAULT_DEFAULTS)
        if self.f["malformed"]:
            raw = dict(self.f["raw"] or {})
            raw.setdefault(self.f["malformed"].upper(), b"HELLO\r\n")
            self.f["raw"] = raw
        with srv._lock:
            # the maildrop for this session: (original index, message)
            self.box = [(i, m) for i, m in enumerate(srv.messages) if i not in srv.gone]
        self.dele: set[int] = set()      # session numbers marked deleted
        self.authed = False
        self.user: str | None = None
        self.stamp = f"<{os.getpid()}.{n}.{int(time.time())}@fakepop>"
        self.buf = b""
        self.trickling = False
        self.verb: str | None = None
        self.num: int | None = None

    # helpers

    def send(self, data: bytes) -> None:
        if not self.trickling:
            self.c.sendall(data)
            return
        for i in range(len(data)):
            if self.srv._stop.wait(self.f["trickle_delay"]):
                raise _Drop()
            self.c.sendall(data[i:i + 1])

    def selected(self, knob: str, verb: str, num: int | None):
        """The value of dict knob for verb/num: a dict {num: v}, a set of
        numbers or a plain value; None when it does not apply."""
        v = self.f[knob]
        if not v:
            return None
        sel = {k.upper(): x for k, x in v.items()}.get(verb)
        if isinstance(sel, dict):
            return sel.get(num)
        if isinstance(sel, (set, list, tuple, frozenset)):
            return True if num in sel else None
        return sel

    def ok(self, text: str = "") -> None:
        self.send(b"+OK" + (b" " + text.encode() if text else b"") + b"\r\n")

    def err(self, text: str = "error") -> None:
        self.send(b"-ERR " + text.encode() + b"\r\n")

    def lines(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                yield line.rstrip(b"\r").decode("latin-1")
                continue
            if len(self.buf) > 65536:
                raise _Drop()
            data = self.c.recv(65536)
            if not data:
                return
            self.buf += data

    def msg(self, num: int):
        """(original index, CRLF text) of session message num, or None."""
        if 1 <= num <= len(self.box) and num not in self.dele:
            i, m = self.box[num - 1]
            return i, _crlf(m)
        return None

    def size(self, num: int, crlf: bytes) -> int:
        ls = self.f["list_sizes"]
        if isinstance(ls, dict) and num in ls:
            return ls[num]
        if isinstance(ls, (list, tuple)) and num <= len(ls):
            return ls[num - 1]
        return len(crlf)

    def uid_of(self, orig: int) -> str:
        u = self.srv.uidls
        if u is not None and orig < len(u):
            return u[orig]
        return f"fake-{hashlib.md5(self.srv.messages[orig]).hexdigest()[:12]}-{orig + 1}"

    def matches(self, knob: str, verb: str, num: int | None) -> bool:
        """Does fault knob (name or iterable or dict) apply to verb / num?"""
        v = self.f[knob]
        if not v:
            return False
        if isinstance(v, str):
            return v.upper() == verb
        if isinstance(v, dict):
            for k, sel in v.items():
                if k.upper() != verb:
                    continue
                if sel is True or sel is None:
                    return True
                if num is not None and num in set(sel):
                    return True
            return False
        return verb in {x.upper() for x in v}

    def dropping(self, verb: str, num: int | None) -> bool:
        d = self.f["drop"]
        if not d or d.upper() != verb:
            return False
        dm = self.f["drop_msg"]
        return dm is None or num is None or dm == num

    def multi(self, verb: str, status: str, payload: bytes, num: int | None = None) -> None:
        """Send a multi-line reply (payload already stuffed CRLF), applying
        drop / unterminated / long-line / stall faults."""
        head = b"+OK" + (b" " + status.encode() if status else b"") + b"\r\n"
        if self.f["long_line"] and self.f["long_line"].upper() == verb:
            big = b"x" * self.f["long_line_size"]
            if self.f["long_line_where"] == "data":
                payload = big + b"\r\n" + payload
            else:
                head = b"+OK " + big + b"\r\n"
        if self.dropping(verb, num):
            cut = self.f["drop_after"]
            if cut is None:
                cut = len(payload) // 2
            self.send(head + payload[:cut])
            raise _Drop()
        if self.f["stall"] and self.f["stall"].upper() == verb and self.f["stall_msg"] is not None:
            if num == self.f["stall_msg"]:
                self.send(head + payload[: len(payload) // 2])
                raise _Stall()
        if self.f["unterminated"] and self.f["unterminated"].upper() == verb:
            self.send(head + payload)
            raise _Stall()
        if self.selected("no_terminator", verb, num):
            self.send(head + payload)
            return
        self.send(head + payload + b".\r\n")

    # the protocol

    def run(self) -> None:
        f = self.f
        if f["stall"] == "accept":
            raise _Stall()
        if f["drop"] == "greeting":
            raise _Drop()
        if f["hold_greeting"]:
            self.srv._hold(f["hold_greeting"], f["hold_timeout"])
        if f["greeting_line"] is not None:
            self.send(f["greeting_line"])
        else:
            g = f["greeting"] + (" " + self.stamp if f["apop"] else "")
            self.ok(g)
        for line in self.lines():
            self.slog.append(line)
            with self.srv._lock:
                self.srv.log.append(line)
            parts = line.split()
            verb = parts[0].upper() if parts else ""
            args = parts[1:]
            num = None
            if args and args[0].isdigit() and verb in ("RETR", "TOP", "DELE", "LIST", "UIDL"):
                num = int(args[0])
            if f["stall"] and f["stall"] != "accept" and f["stall"].upper() == verb \
                    and f["stall_msg"] is None:
                raise _Stall()
            self.trickling = bool(f["trickle"]) and f["trickle"].upper() == verb and \
                f["trickle_msg"] in (None, num)
            if self.selected("skip_reply", verb, num):
                real = self.c
                self.c = _Sink()
                try:
                    if self.dispatch(verb, args, num) == "quit":
                        return
                finally:
                    self.c = real
                continue
            if self.dispatch(verb, args, num) == "quit":
                return
            extra = self.selected("extra_line", verb, num)
            if extra:
                self.trickling = False
                self.send(extra)

    def dispatch(self, verb: str, args, num):
        """One command's reply, faults applied; "quit" ends the session."""
        f = self.f
        if f["raw"]:
            raw = {k.upper(): v for k, v in f["raw"].items()}
            r = raw.get(verb)
            if isinstance(r, dict):
                r = r.get(num)
            if r is not None:
                self.send(r)
                return None
        if self.dropping(verb, num) and verb not in _MULTI and verb != "QUIT":
            raise _Drop()
        if self.matches("err", verb, num) and verb != "QUIT":
            self.err(f"{verb} failed (fakepop fault)")
            return None
        if f["long_line"] and f["long_line"].upper() == verb and verb not in _MULTI:
            self.send(b"+OK " + b"x" * f["long_line_size"] + b"\r\n")
            return None
        handler = getattr(self, "do_" + verb, None)
        if handler is None or not verb.isalpha():
            self.err("unknown command")
            return None
        if not self.authed and verb not in ("CAPA", "USER", "PASS", "APOP", "AUTH", "QUIT"):
            self.err("not logged in")
            return None
        return handler(args)

    def login_ok(self) -> None:
        self.authed = True
        self.ok(f"logged in, {len(self.box)} messages")
        if self.f["drop"] == "after_login":
            raise _Drop()

    def do_CAPA(self, args) -> None:
        f = self.f
        if not f["capa"]:
            self.err("CAPA not supported")
            return
        caps = ["USER", "RESP-CODES", "EXPIRE NEVER"]
        if f["top"]:
            caps.append("TOP")
        if f["uidl"]:
            caps.append("UIDL")
        if f["pipelining"]:
            caps.append("PIPELINING")
        if f["sasl"]:
            caps.append("SASL " + " ".join(f["sasl"]))
        caps += list(f["capa_extra"] or [])
        self.multi("CAPA", "capability list follows",
                   b"".join(c.encode() + b"\r\n" for c in caps))

    def do_USER(self, args) -> None:
        if self.authed:
            self.err("already logged in")
            return
        self.user = args[0] if args else ""
        self.ok("send PASS")

    def do_PASS(self, args) -> None:
        if self.authed or self.user is None:
            self.err("USER first")
            return
        pw = " ".join(args)
        if self.user == self.srv.user and pw == self.srv.password:
            self.login_ok()
        else:
            self.user = None
            self.err("[AUTH] authentication failed")

    def do_APOP(self, args) -> None:
        if self.authed or not self.f["apop"] or len(args) != 2:
            self.err("APOP not available")
            return
        want = hashlib.md5((self.stamp + self.srv.password).encode()).hexdigest()
        if args[0] == self.srv.user and args[1].lower() == want:
            self.login_ok()
        else:
            self.err("[AUTH] authentication failed")

    def do_AUTH(self, args) -> None:
        mechs = [m.upper() for m in (self.f["sasl"] or [])]
        if self.authed or not args or args[0].upper() not in mechs or args[0].upper() != "PLAIN":
            self.err("mechanism not supported")
            return
        if len(args) >= 2:
            blob = args[1]
        else:
            self.send(b"+ \r\n")
            blob = next(self.lines(), "")
            self.slog.append(blob)
        try:
            parts = base64.b64decode(blob).split(b"\0")
        except Exception:
            parts = []
        if len(parts) == 3 and parts[1].decode() == self.srv.user \
                and parts[2].decode() == self.srv.password:
            self.login_ok()
        else:
            self.err("[AUTH] authentication failed")

    def do_STAT(self, args) -> None:
        nums = [k for k in range(1, len(self.box) + 1) if k not in self.dele]
        total = sum(self.size(k, self.msg(k)[1]) for k in nums)
        self.ok(f"{len(nums)} {total}")

    def do_LIST(self, args) -> None:
        if args:
            k = int(args[0]) if args[0].isdigit() else 0
            m = self.msg(k)
            if m is None:
                self.err("no such message")
            else:
                self.ok(f"{k} {self.size(k, m[1])}")
            return
        out = []
        for k in range(1, len(self.box) + 1):
            m = self.msg(k)
            if m is not None:
                out.append(f"{k} {self.size(k, m[1])}\r\n".encode())
        self.multi("LIST", f"{len(out)} messages", b"".join(out))

    def uidl_line(self, k: int, orig: int) -> str:
        lines = self.f["uidl_lines"] or {}
        return lines[k] if k in lines else f"{k} {self.uid_of(orig)}"

    def do_UIDL(self, args) -> None:
        if not self.f["uidl"]:
            self.err("UIDL not supported")
            return
        if args:
            k = int(args[0]) if args[0].isdigit() else 0
            m = self.msg(k)
            if m is None:
                self.err("no such message")
            else:
                self.ok(self.uidl_line(k, m[0]))
            return
        out = []
        for k in range(1, len(self.box) + 1):
            m = self.msg(k)
            if m is not None:
                out.append(f"{self.uidl_line(k, m[0])}\r\n".encode("latin-1"))
        self.multi("UIDL", "", b"".join(out))

    def do_TOP(self, args) -> None:
        if not self.f["top"]:
            self.err("TOP not supported")
            return
        if len(args) != 2 or not args[0].isdigit() or not args[1].isdigit():
            self.err("usage: TOP msg n")
            return
        k, nlines = int(args[0]), int(args[1])
        m = self.msg(k)
        if m is None:
            self.err("no such message")
            return
        text = m[1]
        i = text.find(b"\r\n\r\n")
        if i < 0:
            out = text
        else:
            head, body = text[:i + 4], text[i + 4:]
            out = head + b"".join(body.splitlines(keepends=True)[:nlines])
        self.multi("TOP", "", _stuff(out), k)

    def do_RETR(self, args) -> None:
        k = int(args[0]) if args and args[0].isdigit() else 0
        m = self.msg(k)
        if m is None:
            self.err("no such message")
            return
        self.multi("RETR", f"{len(m[1])} octets", _stuff(m[1]), k)

    def do_DELE(self, args) -> None:
        k = int(args[0]) if args and args[0].isdigit() else 0
        if self.msg(k) is None:
            self.err("no such message")
            return
        self.dele.add(k)
        with self.srv._lock:
            self.srv.dele_log.append((self.n, self.box[k - 1][0] + 1))
        self.ok(f"message {k} deleted")

    def do_NOOP(self, args) -> None:
        self.ok()

    def do_RSET(self, args) -> None:
        self.dele.clear()
        self.ok()

    def commit(self) -> None:
        with self.srv._lock:
            for k in self.dele:
                self.srv.gone.add(self.box[k - 1][0])

    def do_QUIT(self, args) -> str:
        if self.authed and self.dropping("QUIT", None):
            if self.f["quit_commits"]:
                self.commit()
            raise _Drop()
        if self.authed and self.matches("err", "QUIT", None):
            self.err("some deleted messages not removed (fakepop fault)")
            return "quit"
        if self.authed:
            self.commit()
        self.ok("bye")
        return "quit"
