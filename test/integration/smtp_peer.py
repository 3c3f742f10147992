"""A scripted SMTP server on loopback for outbound tests: exact replies per command, a
record of every connection (the commands in the order received, how they arrived in
reads, whether TLS was on) and the messages received. Runs in a thread of the test.

    peer = Peer(rcpt=lambda addr: "550 5.1.1 no such user" if "bad" in addr else None)
    ... kasi delivers to 127.0.0.1:peer.port ...
    peer.messages  -> [(mail_from, [rcpts], data bytes)]
    peer.sessions  -> [Session(commands=[...], reads=[...], tls=bool)]

Hooks return a reply line (or several joined by CRLF) to override the default; None keeps
the default. `greeting`, `ehlo_caps`, `starttls_cert` (a (cert, key) pair) and `hostile`
(a callable given the socket, for broken behaviour) shape the server.
"""
import socket
import ssl
import threading
import time


class Session:
    def __init__(self):
        self.commands = []
        self.reads = []
        self.tls = False
        self.tls_version = None
        self.client = None  # (address, port) the client connected from


class Peer:
    def __init__(self, host="127.0.0.1", port=0, greeting="220 peer.test ESMTP", ehlo_caps=None,
                 mail=None, rcpt=None, data=None, dot=None, starttls_cert=None, hostile=None,
                 lmtp=False, after_dot_close=False, broken_tls=False, auth=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        caps = ["PIPELINING", "8BITMIME", "SIZE 10000000", "ENHANCEDSTATUSCODES"]
        if starttls_cert or broken_tls:
            caps.append("STARTTLS")
        if auth:
            caps.append("AUTH PLAIN LOGIN")
        self.ehlo_caps = caps if ehlo_caps is None else ehlo_caps
        self.hooks = {"mail": mail, "rcpt": rcpt, "data": data, "dot": dot}
        self.starttls_cert = starttls_cert
        self.hostile = hostile
        self.lmtp = lmtp
        self.after_dot_close = after_dot_close
        self.broken_tls = broken_tls
        self.auth = auth  # (user, password): AUTH PLAIN/LOGIN offered and required
        self.auth_ok = []
        self.messages = []
        self.sessions = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def wait_messages(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)

    def _accept(self):
        while not self.stopping:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True).start()

    def _hook(self, name, arg, default):
        fn = self.hooks.get(name)
        r = fn(arg) if fn else None
        return default if r is None else r

    def _serve(self, conn, addr=None):
        s = Session()
        s.client = addr
        with self.lock:
            self.sessions.append(s)
        if self.hostile:
            try:
                self.hostile(conn)
            except OSError:
                pass
            conn.close()
            return
        io = conn
        buf = b""

        def send(line):
            io.sendall((line + "\r\n").encode())

        def readline():
            nonlocal buf
            while b"\n" not in buf:
                chunk = io.recv(65536)
                if not chunk:
                    raise EOFError
                s.reads.append(chunk)
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            return line.rstrip(b"\r").decode("utf-8", "replace")

        try:
            send(self.greeting)
            mail_from, rcpts, accepted = None, [], []
            while True:
                line = readline()
                s.commands.append(line)
                verb = line.split(" ", 1)[0].upper()
                arg = line[len(verb):].strip()
                if verb in ("EHLO", "LHLO"):
                    caps = [c for c in self.ehlo_caps if not (s.tls and c == "STARTTLS")]
                    lines = ["peer.test hello"] + caps
                    for i, l in enumerate(lines):
                        send(("250 " if i == len(lines) - 1 else "250-") + l)
                elif verb == "HELO":
                    send("250 peer.test")
                elif verb == "STARTTLS":
                    if self.broken_tls:  # agrees, then answers the handshake with junk
                        send("220 2.0.0 go ahead")
                        io.recv(65536)
                        io.sendall(b"this is not TLS\r\n" * 4)
                        break
                    if not self.starttls_cert or s.tls:
                        send("454 4.7.0 TLS not available")
                        continue
                    send("220 2.0.0 go ahead")
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(*self.starttls_cert)
                    io = ctx.wrap_socket(conn, server_side=True)
                    s.tls = True
                    s.tls_version = io.version()
                    buf = b""
                elif verb == "AUTH":
                    import base64
                    parts = arg.split()
                    if parts and parts[0].upper() == "PLAIN":
                        blob = parts[1] if len(parts) > 1 else None
                        if blob is None:
                            send("334 ")
                            blob = readline()
                        _, u, pw = base64.b64decode(blob).decode().split("\0")
                    else:
                        send("334 VXNlcm5hbWU6")
                        u = base64.b64decode(readline()).decode()
                        send("334 UGFzc3dvcmQ6")
                        pw = base64.b64decode(readline()).decode()
                    if self.auth and (u, pw) == tuple(self.auth):
                        self.auth_ok.append((parts[0].upper(), u))
                        s.authed = True
                        send("235 2.7.0 ok")
                    else:
                        send("535 5.7.8 bad credentials")
                elif verb == "MAIL" and self.auth and not getattr(s, "authed", False):
                    send("530 5.7.0 authentication required")
                elif verb == "MAIL":
                    mail_from = arg[5:].strip() if arg.upper().startswith("FROM:") else arg
                    rcpts, accepted = [], []
                    send(self._hook("mail", mail_from, "250 2.1.0 ok"))
                elif verb == "RCPT":
                    addr = arg[3:].strip() if arg.upper().startswith("TO:") else arg
                    r = self._hook("rcpt", addr, "250 2.1.5 ok")
                    rcpts.append(addr)
                    if r.startswith("2"):
                        accepted.append(addr)
                    send(r)
                elif verb == "DATA":
                    r = self._hook("data", None, "354 go ahead" if accepted else
                                   "554 5.5.1 no valid recipients")
                    send(r)
                    if not r.startswith("354"):
                        continue
                    data = b""
                    while True:
                        l = readline()
                        if l == ".":
                            break
                        if l.startswith("."):  # RFC 5321 4.5.2 transparency
                            l = l[1:]
                        data += l.encode() + b"\r\n"
                    if self.lmtp:
                        for a in accepted:
                            r = self._hook("dot", a, "250 2.0.0 delivered")
                            if r.startswith("2"):
                                with self.lock:
                                    self.messages.append((mail_from, [a], data))
                            send(r)
                    else:
                        r = self._hook("dot", data, "250 2.0.0 queued")
                        if r.startswith("2"):
                            with self.lock:
                                self.messages.append((mail_from, list(accepted), data))
                        send(r)
                    if self.after_dot_close:
                        conn.close()
                        return
                elif verb == "RSET":
                    mail_from, rcpts, accepted = None, [], []
                    send("250 2.0.0 ok")
                elif verb == "NOOP":
                    send("250 2.0.0 ok")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    break
                else:
                    send("500 5.5.2 unknown command")
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            try:
                io.close()
            except OSError:
                pass
