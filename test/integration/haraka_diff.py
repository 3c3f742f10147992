"""Kasi against Haraka 3.3.4, side by side: both start on copies of one config directory
(only the listen address differs), the same scripted SMTP sessions are played against
each, and the reply codes must be equal, or the difference must be a row of the table
under "## Differential test" in docs/haraka-compat.md with exactly these codes (a
difference without a row is a bug, and so is a row that no longer differs).

Haraka comes from the npm registry (test/haraka/package.json) into a cache directory,
$KASI_HARAKA_HOME or ~/.cache/kasi-test/haraka, once; it needs Node.js 20 or later.

A session is a list of steps, each sending something and reading replies:
    "LINE"                     one command, one reply
    ("pipe", [LINE, ...])      sent in one write, one reply per line
    ("raw", b"...", N)         bytes as given, N replies
    ("tls",)                   the TLS handshake (after a 220 to STARTTLS)
    ("from", "127.0.0.2")      first step only: connect from that address (not relaying)
    ("proxy", b"PROXY ...")    next: sent before the greeting is read (a listed HAProxy host)
    ("cram", USER, PASSWORD)   AUTH CRAM-MD5 answered from the server's challenge (2 replies)
A reply's code is recorded; a closed connection is recorded as EOF and ends the session.
KASI_DIFF_PRINT=1 prints every session's codes side by side (to write a row)."""
import base64
import hmac
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from harness import KASI, ROOT, Skip, free_port, run
from pki import Pki

HOME = os.environ.get("KASI_HARAKA_HOME",
                      os.path.join(os.path.expanduser("~"), ".cache", "kasi-test", "haraka"))
DOC = os.path.join(ROOT, "..", "docs", "haraka-compat.md")
B64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731

LIMIT_INI = """[main]
tarpit_delay=0
[unrecognized_commands]
enabled=true
max=10
[errors]
enabled=true
max=10
"""


CONNECTION_INI = """[haproxy]
hosts[] = 127.0.0.3
[headers]
max_lines=1000
max_received=5
[max]
bytes=100000
mime_parts=1000
line_length=512
data_line_length=992
[message]
helo=Haraka is at your service.
close=closing connection. Have a jolly good day.
[uuid]
banner_chars=6
deny_chars=0
"""


def haraka_bin():
    """Haraka 3.3.4 from the npm registry, installed once into HOME."""
    exe = os.path.join(HOME, "node_modules", "Haraka", "bin", "haraka")
    if os.path.exists(exe):
        return exe
    node = shutil.which("node")
    if not node or not shutil.which("npm"):
        raise Skip("Node.js and npm are needed for the Haraka differential test")
    major = int(subprocess.run([node, "-p", "process.versions.node.split('.')[0]"],
                               capture_output=True, text=True).stdout.strip() or 0)
    if major < 20:
        raise Skip(f"Haraka 3.3.4 needs Node.js 20 or later (this is {major})")
    os.makedirs(HOME, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "haraka", "package.json"), HOME)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline"],
                       cwd=HOME, capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(exe):
        raise AssertionError("npm install of Haraka failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    return exe


def shared_config(pki):
    """The config directory both servers read (but smtp.ini, written per server)."""
    return {
        "me": "diff.test\n",
        "plugins": "tls\nrelay\nrcpt_to.in_host_list\nlimit\nauth/flat_file\n",
        "relay_acl_allow": "127.0.0.1/32\n",
        "relay.ini": "[relay]\nacl=true\n",
        "host_list": "local.test\n",
        "limit.ini": LIMIT_INI,
        "outbound.ini": "disabled=true\n",
        "auth_flat_file.ini": "[core]\nmethods=PLAIN,LOGIN,CRAM-MD5\n[users]\nalice=s3cret\n",
        "log.ini": "[main]\nlevel=info\n",
        "connection.ini": CONNECTION_INI,
        "tls_key.pem": open(pki.key).read(),
        "tls_cert.pem": open(pki.cert).read(),
        # Kasi only: its rDNS lookup would ask the system resolver
        "kasi.ini": "[smtp]\nrdns_lookup=false\n",
    }


class Server:
    def __init__(self, name, argv_for, files, env=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"kasi-diff-{name}-")
        self.port = free_port()
        os.makedirs(os.path.join(self.dir, "config"))
        os.makedirs(os.path.join(self.dir, "queue"))
        for fname, text in files.items():
            with open(os.path.join(self.dir, "config", fname), "w") as f:
                f.write(text)
        with open(os.path.join(self.dir, "config", "smtp.ini"), "w") as f:
            f.write(f"listen=127.0.0.1:{self.port}\n")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(argv_for(self.dir), stdout=self.log, stderr=self.log,
                                     env=env, cwd=self.dir)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited:\n" + self.read_log()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.2)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not start:\n" + self.read_log()[-3000:])

    def read_log(self):
        with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_reply(f, text=None):
    """The code of one reply (multi-line replies read whole); 'EOF' when the server closed.
    The last line's text is appended to `text` when a list is given."""
    while True:
        try:
            line = f.readline()
        except (ConnectionError, socket.timeout, ssl.SSLError):
            return "EOF"
        if not line:
            return "EOF"
        if len(line) < 4 or line[3:4] != b"-":
            if text is not None:
                text.append(line[4:].strip())
            return line[:3].decode(errors="replace")


def cram_md5(sock, f, codes, user, password):
    """AUTH CRAM-MD5 (RFC 2195): the answer is the user and the HMAC-MD5 of the challenge."""
    sock.sendall(b"AUTH CRAM-MD5\r\n")
    text = []
    codes.append(read_reply(f, text))
    if codes[-1] != "334":
        return
    challenge = base64.b64decode(text[-1])
    digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
    sock.sendall(base64.b64encode(f"{user} {digest}".encode()) + b"\r\n")
    codes.append(read_reply(f))


def play(port, steps):
    codes = []
    src = None
    if steps and isinstance(steps[0], tuple) and steps[0][0] == "from":
        src = (steps[0][1], 0)
        steps = steps[1:]
    sock = socket.create_connection(("127.0.0.1", port), timeout=4, source_address=src)
    f = sock.makefile("rb")
    if steps and isinstance(steps[0], tuple) and steps[0][0] == "proxy":
        sock.sendall(steps[0][1])  # before the greeting, as a load balancer does
        steps = steps[1:]
    codes.append(read_reply(f))
    try:
        for step in steps:
            if codes[-1] == "EOF":
                break
            if isinstance(step, str):
                sock.sendall(step.encode("utf-8", "surrogateescape") + b"\r\n")
                codes.append(read_reply(f))
            elif step[0] == "pipe":
                sock.sendall(b"".join(s.encode() + b"\r\n" for s in step[1]))
                for _ in step[1]:
                    codes.append(read_reply(f))
                    if codes[-1] == "EOF":
                        break
            elif step[0] == "raw":
                sock.sendall(step[1])
                for _ in range(step[2]):
                    codes.append(read_reply(f))
                    if codes[-1] == "EOF":
                        break
            elif step[0] == "cram":
                cram_md5(sock, f, codes, step[1], step[2])
            elif step[0] == "tls":
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock, server_hostname="diff.test")
                f = sock.makefile("rb")
    except (ConnectionError, BrokenPipeError, socket.timeout, ssl.SSLError):
        codes.append("EOF")
    finally:
        sock.close()
    return " ".join(codes)


MSG = "Subject: diff\r\n\r\nhello\r\n."
EHLO = "EHLO client.test"
MAIL = "MAIL FROM:<a@client.test>"
RCPT = "RCPT TO:<b@remote.test>"

# Sessions: (name, steps). Written for this test; each says what it tries.
SESSIONS = [
    # greeting and hello
    ("ehlo", [EHLO, "QUIT"]),
    ("helo", ["HELO client.test", "QUIT"]),
    ("ehlo without a name", ["EHLO", "QUIT"]),
    ("helo without a name", ["HELO", "QUIT"]),
    ("ehlo with an address literal", ["EHLO [127.0.0.1]", "QUIT"]),
    ("ehlo twice", [EHLO, EHLO, "QUIT"]),
    ("lower-case verbs", ["ehlo client.test", "mail from:<a@client.test>",
                          "rcpt to:<b@remote.test>", "quit"]),
    ("mail before hello", [MAIL, "QUIT"]),
    ("8-bit helo", ["HELO cli\u00e9nt.test", "QUIT"]),
    ("latin-1 helo", [("raw", b"HELO cli\xe9nt.test\r\n", 1), "QUIT"]),
    ("helo with more words", ["HELO client.test and more", "QUIT"]),
    ("invalid utf-8 ehlo", [("raw", b"EHLO cl\xc3\x28ent.test\r\n", 1), "QUIT"]),
    ("8-bit mail from", [EHLO, ("raw", b"MAIL FROM:<j\xf6s@client.test>\r\n", 1), "QUIT"]),
    ("control character in helo", [("raw", b"HELO client\x01.test\r\n", 1), "QUIT"]),
    ("ehlo with a trailing space", ["EHLO client.test ", "QUIT"]),
    # MAIL and RCPT syntax
    ("relayed message", [EHLO, MAIL, RCPT, "DATA", MSG, "QUIT"]),
    ("mail without brackets", [EHLO, "MAIL FROM:a@client.test", "QUIT"]),
    ("rcpt without brackets", [EHLO, MAIL, "RCPT TO:b@remote.test", "QUIT"]),
    ("mail with a space after the colon", [EHLO, "MAIL FROM: <a@client.test>", "QUIT"]),
    ("rcpt with a space after the colon", [EHLO, MAIL, "RCPT TO: <b@remote.test>", "QUIT"]),
    ("null sender", [EHLO, "MAIL FROM:<>", RCPT, "QUIT"]),
    ("empty mail from", [EHLO, "MAIL FROM:", "QUIT"]),
    ("mail without from", [EHLO, "MAIL <a@client.test>", "QUIT"]),
    ("rcpt without to", [EHLO, MAIL, "RCPT <b@remote.test>", "QUIT"]),
    ("rcpt before mail", [EHLO, RCPT, "QUIT"]),
    ("second mail", [EHLO, MAIL, "MAIL FROM:<c@client.test>", "QUIT"]),
    ("unknown mail parameter", [EHLO, "MAIL FROM:<a@client.test> X-FOO=bar", "QUIT"]),
    ("unknown rcpt parameter", [EHLO, MAIL, "RCPT TO:<b@remote.test> X-FOO=bar", "QUIT"]),
    ("notify on rcpt", [EHLO, MAIL, "RCPT TO:<b@remote.test> NOTIFY=NEVER", "QUIT"]),
    ("size", [EHLO, "MAIL FROM:<a@client.test> SIZE=1000", RCPT, "QUIT"]),
    ("size over the limit", [EHLO, "MAIL FROM:<a@client.test> SIZE=999999999", "QUIT"]),
    ("size not a number", [EHLO, "MAIL FROM:<a@client.test> SIZE=abc", "QUIT"]),
    ("size without a value", [EHLO, "MAIL FROM:<a@client.test> SIZE", "QUIT"]),
    ("body 8bitmime", [EHLO, "MAIL FROM:<a@client.test> BODY=8BITMIME", "QUIT"]),
    ("body unknown", [EHLO, "MAIL FROM:<a@client.test> BODY=9BIT", "QUIT"]),
    ("body lower case", [EHLO, "MAIL FROM:<a@client.test> body=8bitmime", "QUIT"]),
    ("smtputf8", [EHLO, "MAIL FROM:<a@client.test> SMTPUTF8", "QUIT"]),
    ("smtputf8 with a value", [EHLO, "MAIL FROM:<a@client.test> SMTPUTF8=yes", "QUIT"]),
    ("parameters after helo", ["HELO client.test", "MAIL FROM:<a@client.test> SIZE=10",
                               "QUIT"]),
    ("long parameter", [EHLO, "MAIL FROM:<a@client.test> X-TAG=" + "x" * 470, "QUIT"]),
    ("too long command line", [EHLO, "MAIL FROM:<a@client.test> X-TAG=" + "x" * 600, "QUIT"]),
    ("long local part", [EHLO, MAIL, "RCPT TO:<" + "l" * 70 + "@remote.test>", "QUIT"]),
    ("address with a space", [EHLO, "MAIL FROM:<a b@client.test>", "QUIT"]),
    ("mail from postmaster", [EHLO, "MAIL FROM:<postmaster>", "QUIT"]),
    ("long local part in mail", [EHLO, "MAIL FROM:<" + "l" * 65 + "@client.test>", "QUIT"]),
    ("spaces inside the brackets", [EHLO, "MAIL FROM:< a@client.test >", "QUIT"]),
    ("utf-8 sender without smtputf8", [EHLO, "MAIL FROM:<j\u00f6s@client.test>", "QUIT"]),
    ("utf-8 sender with smtputf8", [EHLO, "MAIL FROM:<j\u00f6s@client.test> SMTPUTF8", RCPT,
                                    "QUIT"]),
    ("relaying: postmaster", [EHLO, MAIL, "RCPT TO:<postmaster>", "QUIT"]),
    ("vrfy without an argument", [EHLO, "VRFY", "QUIT"]),
    # relay tricks (not relaying: from 127.0.0.2)
    ("not relaying: remote rcpt", [("from", "127.0.0.2"), EHLO, MAIL, RCPT, "QUIT"]),
    ("not relaying: local rcpt", [("from", "127.0.0.2"), EHLO, MAIL, "RCPT TO:<u@local.test>",
                                  "QUIT"]),
    ("not relaying: percent hack", [("from", "127.0.0.2"), EHLO, MAIL,
                                    "RCPT TO:<u%remote.test@local.test>", "QUIT"]),
    ("not relaying: bang path", [("from", "127.0.0.2"), EHLO, MAIL,
                                 "RCPT TO:<remote.test!u@local.test>", "QUIT"]),
    ("not relaying: source route", [("from", "127.0.0.2"), EHLO, MAIL,
                                    "RCPT TO:<@local.test:u@remote.test>", "QUIT"]),
    ("not relaying: null rcpt", [("from", "127.0.0.2"), EHLO, MAIL, "RCPT TO:<>", "QUIT"]),
    ("not relaying: postmaster", [("from", "127.0.0.2"), EHLO, MAIL, "RCPT TO:<postmaster>",
                                  "QUIT"]),
    ("not relaying: quoted at", [("from", "127.0.0.2"), EHLO, MAIL,
                                 "RCPT TO:<\"u@remote.test\"@local.test>", "QUIT"]),
    ("not relaying: trailing dot", [("from", "127.0.0.2"), EHLO, MAIL,
                                    "RCPT TO:<u@local.test.>", "QUIT"]),
    # DATA
    ("data without rcpt", [EHLO, MAIL, "DATA", "QUIT"]),
    ("data with an argument", [EHLO, MAIL, RCPT, "DATA x", "QUIT"]),
    ("empty message", [EHLO, MAIL, RCPT, "DATA", ".", "QUIT"]),
    ("message too big", [EHLO, MAIL, RCPT, "DATA",
                         "Subject: big\r\n\r\n" + ("y" * 900 + "\r\n") * 120 + ".", "QUIT"]),
    ("too many received headers", [EHLO, MAIL, RCPT, "DATA",
                                   "".join(f"Received: from h{i}\r\n" for i in range(8)) +
                                   "Subject: loop\r\n\r\nx\r\n.", "QUIT"]),
    ("dot stuffing", [EHLO, MAIL, RCPT, "DATA", "Subject: d\r\n\r\n..leading\r\n.", "QUIT"]),
    ("long line in data", [EHLO, MAIL, RCPT, "DATA", "Subject: l\r\n\r\n" + "z" * 2000 + "\r\n.",
                           "QUIT"]),
    ("bdat", [EHLO, MAIL, RCPT, ("raw", b"BDAT 21 LAST\r\nSubject: b\r\n\r\nhello\r\n", 1),
              "QUIT"]),
    ("too many mime parts", [EHLO, MAIL, RCPT, "DATA",
                             "Subject: parts\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
                             "".join("--b\r\nContent-Type: text/plain\r\n\r\np\r\n"
                                     for _ in range(1001)) + "--b--\r\n.", "QUIT"]),
    ("bdat over the size limit", [EHLO, MAIL, RCPT,
                                  ("raw", b"BDAT 150000 LAST\r\n" + b"x" * 149998 + b"\r\n", 1),
                                  "QUIT"]),
    ("too many header lines", [EHLO, MAIL, RCPT, "DATA",
                               "".join(f"X-H{i}: v\r\n" for i in range(1100)) + "\r\nx\r\n.",
                               "QUIT"]),
    ("proxy header from a listed host", [("from", "127.0.0.3"),
                                         ("proxy", b"PROXY TCP4 192.0.2.1 127.0.0.1 1 25\r\n"),
                                         EHLO, MAIL, RCPT, "QUIT"]),
    ("no proxy header from a listed host", [("from", "127.0.0.3"), EHLO, "QUIT"]),
    ("proxy header from an unlisted host", [("raw", b"PROXY TCP4 192.0.2.1 127.0.0.1 1 25\r\n", 1),
                                            "QUIT"]),
    ("header without a body", [EHLO, MAIL, RCPT, "DATA", "Subject: only\r\n.", "QUIT"]),
    ("transaction after a message", [EHLO, MAIL, RCPT, "DATA", MSG, MAIL, RCPT, "DATA", MSG,
                                     "QUIT"]),
    ("rset then data", [EHLO, MAIL, RCPT, "RSET", "DATA", "QUIT"]),
    # pipelining
    ("pipelined transaction", [EHLO, ("pipe", [MAIL, RCPT, "DATA"]), MSG, "QUIT"]),
    ("pipelined after data", [EHLO, MAIL, RCPT, "DATA",
                              ("raw", (MSG + "\r\nMAIL FROM:<c@client.test>\r\n").encode(), 2),
                              "QUIT"]),
    ("pipelined with every rcpt refused", [("from", "127.0.0.2"), EHLO,
                                           ("pipe", [MAIL, RCPT, "DATA"]), "QUIT"]),
    ("pipelined with a refused rcpt", [("from", "127.0.0.2"), EHLO,
                                       ("pipe", [MAIL, RCPT, "RCPT TO:<u@local.test>", "DATA"]),
                                       MSG, "QUIT"]),
    # other commands
    ("noop rset help vrfy", [EHLO, "NOOP", "RSET", "HELP", "VRFY a", "QUIT"]),
    ("expn", [EHLO, "EXPN list", "QUIT"]),
    ("noop with an argument", [EHLO, "NOOP hello", "QUIT"]),
    ("rset with an argument", [EHLO, "RSET now", "QUIT"]),
    ("quit with an argument", [EHLO, "QUIT now"]),
    ("empty command line", [EHLO, "", "QUIT"]),
    ("unknown command", [EHLO, "FOO", "QUIT"]),
    ("unknown commands past the limit", [EHLO] + [f"FOO{i}" for i in range(12)] + ["NOOP"]),
    ("unknown commands across transactions", [EHLO] + sum(([f"FOO{i}", MAIL, "RSET"]
                                                           for i in range(12)), []) + ["NOOP"]),
    ("errors past the limit", [EHLO] + ["RCPT TO:<x@remote.test>"] * 12 + [MAIL, "NOOP"]),
    ("errors across transactions", [EHLO] + sum(([MAIL, "DATA x", "RSET"] for _ in range(12)),
                                                []) + [MAIL, "NOOP"]),
    # STARTTLS and AUTH
    ("starttls", [EHLO, "STARTTLS", ("tls",), EHLO, MAIL, RCPT, "QUIT"]),
    ("starttls before ehlo", ["STARTTLS", "QUIT"]),
    ("starttls after helo", ["HELO client.test", "STARTTLS", "QUIT"]),
    ("starttls with an argument", [EHLO, "STARTTLS now", "QUIT"]),
    ("starttls twice", [EHLO, "STARTTLS", ("tls",), EHLO, "STARTTLS", "QUIT"]),
    ("auth without tls", [EHLO, "AUTH PLAIN " + B64("\0alice\0s3cret"), "QUIT"]),
    ("auth plain", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH PLAIN " + B64("\0alice\0s3cret"),
                    "QUIT"]),
    ("auth plain wrong password", [EHLO, "STARTTLS", ("tls",), EHLO,
                                   "AUTH PLAIN " + B64("\0alice\0nope"), "QUIT"]),
    ("auth plain malformed", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH PLAIN !!!notbase64",
                              "QUIT"]),
    ("auth login", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH LOGIN", B64("alice"), B64("s3cret"),
                    "QUIT"]),
    ("auth login cancelled", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH LOGIN", "*", "QUIT"]),
    ("auth cram-md5 wrong answer", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH CRAM-MD5",
                                    B64("alice 0123456789abcdef0123456789abcdef"), "QUIT"]),
    ("auth unknown mechanism", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH XOAUTH9", "QUIT"]),
    ("auth twice", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH PLAIN " + B64("\0alice\0s3cret"),
                    "AUTH PLAIN " + B64("\0alice\0s3cret"), "QUIT"]),
    ("auth then relay", [("from", "127.0.0.2"), EHLO, "STARTTLS", ("tls",), EHLO,
                         "AUTH PLAIN " + B64("\0alice\0s3cret"), MAIL, RCPT, "DATA", MSG,
                         "QUIT"]),
    ("failed auth, no relay", [("from", "127.0.0.2"), EHLO, "STARTTLS", ("tls",), EHLO,
                               "AUTH PLAIN " + B64("\0alice\0nope"), MAIL, RCPT, "QUIT"]),
    ("auth after helo", ["HELO client.test", "AUTH PLAIN " + B64("\0alice\0s3cret"), "QUIT"]),
    ("auth before hello", ["AUTH PLAIN " + B64("\0alice\0s3cret"), "QUIT"]),
    ("auth cram-md5", [EHLO, "STARTTLS", ("tls",), EHLO, ("cram", "alice", "s3cret"), "QUIT"]),
    ("auth cram-md5 wrong password", [EHLO, "STARTTLS", ("tls",), EHLO,
                                      ("cram", "alice", "nope"), "QUIT"]),
    ("auth cram-md5 then relay", [("from", "127.0.0.2"), EHLO, "STARTTLS", ("tls",), EHLO,
                                  ("cram", "alice", "s3cret"), MAIL, RCPT, "DATA", MSG, "QUIT"]),
    ("auth plain without initial response", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH PLAIN",
                                             B64("\0alice\0s3cret"), "QUIT"]),
    ("auth login with the user on the line", [EHLO, "STARTTLS", ("tls",), EHLO,
                                              "AUTH LOGIN " + B64("alice"), B64("s3cret"), "QUIT"]),
    ("auth lower-case mechanism", [EHLO, "STARTTLS", ("tls",), EHLO,
                                   "auth plain " + B64("\0alice\0s3cret"), "QUIT"]),
    # what relays and applications add that Haraka lets through
    ("mail with auth=<>", [EHLO, "MAIL FROM:<a@client.test> AUTH=<>", RCPT, "QUIT"]),
    ("mail with ret and envid", [EHLO, "MAIL FROM:<a@client.test> RET=HDRS ENVID=q1", RCPT,
                                 "QUIT"]),
    ("rcpt with notify and orcpt", [EHLO, MAIL,
                                    "RCPT TO:<b@remote.test> NOTIFY=SUCCESS,FAILURE "
                                    "ORCPT=rfc822;b@remote.test", "QUIT"]),
    ("rcpt with a display name", [EHLO, MAIL, "RCPT TO:Bob <b@remote.test>", "QUIT"]),
    ("mail with text after the bracket", [EHLO, "MAIL FROM:<a@client.test>x", "QUIT"]),
    ("mail with a tab after the colon", [EHLO, "MAIL FROM:\t<a@client.test>", "QUIT"]),
    ("helo with a bare address", ["HELO 127.0.0.1", "QUIT"]),
    ("many recipients", [EHLO, MAIL] + [f"RCPT TO:<r{i}@remote.test>" for i in range(120)]
     + ["QUIT"]),
    ("bare lf in data", [EHLO, MAIL, RCPT, "DATA",
                         ("raw", b"Subject: x\n\nhello\n.\r\n", 1), "QUIT"]),
    # 8-bit after HELO: a 7-bit session
    ("8-bit mail after helo", ["HELO client.test",
                               ("raw", b"MAIL FROM:<j\xc3\xb6s@client.test>\r\n", 1), "QUIT"]),
    ("8-bit rcpt after helo", ["HELO client.test", MAIL,
                               ("raw", b"RCPT TO:<j\xc3\xb6s@remote.test>\r\n", 1), "QUIT"]),
    ("8-bit noop after helo", ["HELO client.test", ("raw", b"NOOP \xc3\xa9\r\n", 1), "QUIT"]),
    ("8-bit noop after ehlo", [EHLO, ("raw", b"NOOP \xc3\xa9\r\n", 1), "QUIT"]),
    ("8-bit helo after helo", ["HELO client.test", ("raw", b"HELO cli\xc3\xa9nt.test\r\n", 1),
                               "QUIT"]),
    ("tls handshake on the plain port", [("raw", b"\x16\x03\x01\x02\x00\x01\xfc\x03\x03\r\n", 1),
                                         "QUIT"]),
    ("nul byte in a command", [EHLO, ("raw", b"NOOP a\x00b\r\n", 1), "QUIT"]),
    ("ehlo inside a transaction", [EHLO, MAIL, EHLO, RCPT, "QUIT"]),
    ("rset inside a transaction", [EHLO, MAIL, RCPT, "RSET", RCPT, "QUIT"]),
    ("relaying: null rcpt", [EHLO, MAIL, "RCPT TO:<>", "QUIT"]),
    ("relaying: source route", [EHLO, MAIL, "RCPT TO:<@relay.test:b@remote.test>", "QUIT"]),
    ("mail with size zero", [EHLO, "MAIL FROM:<a@client.test> SIZE=0", RCPT, "QUIT"]),
    ("mail with two sizes", [EHLO, "MAIL FROM:<a@client.test> SIZE=10 SIZE=20", "QUIT"]),
    ("auth plain cancelled", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH PLAIN", "*", "QUIT"]),
    ("auth plain empty response", [EHLO, "STARTTLS", ("tls",), EHLO, "AUTH PLAIN =", "QUIT"]),
    ("data line of spaces", [EHLO, MAIL, RCPT, "DATA", "Subject: s\r\n\r\n   \r\n.", "QUIT"]),
    ("dot inside a line", [EHLO, MAIL, RCPT, "DATA", "Subject: s\r\n\r\na\r\n.x\r\n.", "QUIT"]),
    ("etrn", [EHLO, "ETRN local.test", "QUIT"]),
    ("turn", [EHLO, "TURN", "QUIT"]),
]


def expected_differences():
    """{session name: (haraka codes, kasi codes)} from docs/haraka-compat.md."""
    out = {}
    with open(DOC) as f:
        text = f.read()
    section = text.split("## Differential test", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0] or cells[0] in ("session",) or set(cells[0]) <= {"-"}:
            continue
        name = cells[0].strip("`")
        out[name] = (cells[1].strip("`"), cells[2].strip("`"))
    return out


_SERVERS = None


def servers():
    global _SERVERS
    if _SERVERS is None:
        exe = haraka_bin()
        pki = Pki(tempfile.mkdtemp(prefix="kasi-diff-pki-"))
        pki.key, pki.cert = pki.leaf("diff", "diff.test")
        files = shared_config(pki)
        init = tempfile.mkdtemp(prefix="kasi-diff-init-")
        shutil.rmtree(init)
        subprocess.run(["node", exe, "-i", init], check=True, capture_output=True, cwd=HOME)
        # Haraka's own defaults (connection.ini, ...) under ours, for both servers
        base = {}
        for name in os.listdir(os.path.join(init, "config")):
            p = os.path.join(init, "config", name)
            if os.path.isfile(p):
                base[name] = open(p, errors="replace").read()
        shutil.rmtree(init)
        base.update(files)
        haraka = Server("haraka", lambda d: ["node", exe, "-c", d], base)
        kasi = Server("kasi", lambda d: [os.path.abspath(KASI), "-c", d], base)
        _SERVERS = (haraka, kasi)
    return _SERVERS


def test_sessions_give_haraka_codes_or_a_documented_difference():
    haraka, kasi = servers()
    table = expected_differences()
    problems, seen = [], set()
    show = os.environ.get("KASI_DIFF_PRINT")
    for name, steps in SESSIONS:
        h, k = play(haraka.port, steps), play(kasi.port, steps)
        if show:
            print(f"| {name} | `{h}` | `{k}` |", flush=True)
        row = table.get(name)
        if row:
            seen.add(name)
        if h == k:
            if row:
                problems.append(f"{name}: the table lists a difference, both now say {h}")
        elif not row:
            problems.append(f"{name}: Haraka {h}, Kasi {k}, and no row in the table")
        elif row != (h, k):
            problems.append(f"{name}: Haraka {h}, Kasi {k}; the table says {row[0]} / {row[1]}")
    stale = set(table) - {n for n, _ in SESSIONS}
    problems += [f"{n}: a row for a session that does not exist" for n in sorted(stale)]
    assert not problems, "\n".join(problems)


def test_the_servers_ran_clean():
    haraka, kasi = servers()
    log = kasi.read_log()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in log, log[log.find(marker) - 200:][:3000]
    assert kasi.proc.poll() is None and haraka.proc.poll() is None


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if _SERVERS:
            for s in _SERVERS:
                s.stop()
