"""Integration-test harness: starts the real kasi binary on a copy of a config dir from
test/configs, on free loopback ports, and talks SMTP to it with raw sockets (so that
malformed input can be sent exactly). Each test module calls run(globals()); it runs every
function named test_*, prints one line per case and a final 'cases: N passed, M failed'.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

KASI = os.environ.get("KASI_BIN", "build/kasi")
KASICTL = os.environ.get("KASICTL_BIN", "build/kasictl")
ROOT = os.environ.get("KASI_TEST_ROOT", os.path.join(os.path.dirname(__file__), ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class DnsServer:
    """The project's DNS fixture (dns_fixture.py) serving `zone` (zone-file text) on a free
    loopback port; stop() ends it."""

    def __init__(self, zone):
        self.dir = tempfile.mkdtemp(prefix="kasi-dns-")
        path = os.path.join(self.dir, "zone")
        with open(path, "w") as f:
            f.write(zone)
        self.port = free_port()
        fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns_fixture.py")
        self.proc = subprocess.Popen(["/usr/bin/python3", fixture, "--zone", path, "--port",
                                      str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Skip(Exception):
    """Raised by a test that cannot run here; reported as skipped, never as passed."""


class Kasi:
    """A running kasi on a private copy of test/configs/<name>."""

    def __init__(self, config="basic", extra=None, workers=2):
        self.dir = tempfile.mkdtemp(prefix="kasi-it-")
        shutil.copytree(os.path.join(ROOT, "configs", config), os.path.join(self.dir, "config"))
        self.port = free_port()
        cfgdir = os.path.join(self.dir, "config")
        with open(os.path.join(cfgdir, "smtp.ini"), "a") as f:
            f.write(f"\nlisten=127.0.0.1:{self.port}\nnodes={workers}\n")
        for name, text in (extra or {}).items():
            with open(os.path.join(cfgdir, name), "a") as f:
                f.write(text)
        self.log = os.path.join(self.dir, "kasi.log")
        self.proc = None

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([KASI, "-c", self.dir], stdout=self.logf, stderr=self.logf)
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("kasi exited: " + self.read_log())
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    time.sleep(0.1)  # let the server see the probe go (connection counts)
                    return self
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError("kasi did not start: " + self.read_log())
        return self

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        # A graceful stop, so that a sanitizer build runs its leak check at exit.
        self.stop(signal.SIGTERM, timeout=5)  # a client left mid-DATA may hold it longer
        report = self.sanitizer_report()
        shutil.rmtree(self.dir, ignore_errors=True)
        if report:
            raise AssertionError("sanitizer report in kasi's log:\n" + report)

    def sanitizer_report(self):
        """The first sanitizer finding in the log (ASan, LSan, UBSan), or ''."""
        if not os.path.exists(self.log):
            return ""
        text = self.read_log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return ""

    def ctl(self, *args):
        r = subprocess.run([KASICTL, "-c", self.dir, *args], capture_output=True)
        # bytes decoded by hand: text mode would turn the message's CRLF into LF
        err = r.stderr.decode(errors="replace")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in err:
                raise AssertionError("sanitizer report from kasictl:\n" + err[:3000])
        return r.returncode, r.stdout.decode(errors="replace"), err

    def queued_ids(self):
        rc, out, err = self.ctl("list")
        assert rc == 0, err
        return [line.split("\t")[0] for line in out.splitlines() if line]

    def client(self, **kw):
        return Client(self.port, **kw)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()


class Client:
    def __init__(self, port, host="127.0.0.1", banner=True, timeout=10, source=None):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=src)
        self.buf = b""
        self.banner = self.reply() if banner else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        """One whole (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True if the server closes the connection (after any buffered replies)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    def send_message(self, mail_from, rcpts, body, ehlo="client.test"):
        """EHLO (once) + MAIL + RCPT* + DATA; returns the final reply."""
        if ehlo:
            code, _ = self.cmd("EHLO " + ehlo)
            assert code == 250, code
        code, lines = self.cmd(f"MAIL FROM:<{mail_from}>")
        if code != 250:
            return code, lines
        ok = 0
        for r in rcpts:
            code, lines = self.cmd(f"RCPT TO:<{r}>")
            ok += code == 250
        if not ok:
            return code, lines
        code, lines = self.cmd("DATA")
        if code != 354:
            return code, lines
        data = body.replace("\n", "\r\n")
        if not data.endswith("\r\n"):
            data += "\r\n"
        self.send(data + ".\r\n")
        return self.reply()


def message(subject="test", size=0):
    body = f"From: a@example.org\nTo: b@example.net\nSubject: {subject}\n\nhello\n"
    if size:
        body += ("x" * 70 + "\n") * (size // 71)
    return body


def run(ns):
    tests = [(n, f) for n, f in ns.items() if n.startswith("test_") and callable(f)]
    only = os.environ.get("KASI_CASES")  # a regex: run just the matching cases (by hand)
    if only:
        tests = [(n, f) for n, f in tests if re.search(only, n)]
    passed = failed = skipped = 0
    for name, fn in tests:
        t0 = time.time()
        try:
            fn()
            passed += 1
            print(f"PASS {name} ({time.time() - t0:.2f}s)", flush=True)
        except Skip as e:
            skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.time() - t0:.2f}s)", flush=True)
            traceback.print_exc()
    print(f"cases: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    sys.exit(1 if failed else 0)
