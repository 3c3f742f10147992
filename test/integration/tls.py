"""The tls plugin: STARTTLS (RFC 3207) with a reset session and no plaintext injection,
TLS 1.2 as the floor, SNI certificate choice from config/tls/, implicit TLS on the smtps
port, handshake failures and timeouts, and config errors. Clients are Python's ssl module
(OpenSSL) and swaks."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from harness import Client, Kasi, Skip, free_port, message, run, KASI
from pki import Pki

_PKI = None


def pki():
    global _PKI
    if _PKI is None:
        _PKI = Pki(tempfile.mkdtemp(prefix="kasi-pki-"))
        _PKI.default = _PKI.leaf("default", "mx.kasi.test")
        _PKI.alpha = _PKI.leaf("alpha", "mx.alpha.test", kind="rsa")
        _PKI.beta = _PKI.leaf("beta", "*.beta.test", sans=["*.beta.test", "beta.test"])
    return _PKI


def tls_kasi(extra_ini="", sni=True, extra=None):
    p = pki()
    cfg = {"plugins": "tls\n", "tls.ini": extra_ini}
    cfg.update(extra or {})
    k = Kasi(extra=cfg)
    cdir = os.path.join(k.dir, "config")
    shutil.copy(p.default[0], os.path.join(cdir, "tls_key.pem"))
    shutil.copy(p.default[1], os.path.join(cdir, "tls_cert.pem"))
    if sni:
        os.makedirs(os.path.join(cdir, "tls"))
        # alpha as a bundle (key + certificate in one file), beta as a key/cert pair
        with open(os.path.join(cdir, "tls", "alpha.pem"), "w") as f:
            f.write(open(p.alpha[0]).read() + open(p.alpha[1]).read())
        shutil.copy(p.beta[0], os.path.join(cdir, "tls", "beta.key"))
        shutil.copy(p.beta[1], os.path.join(cdir, "tls", "beta.crt"))
    return k


def client_ctx(**kw):
    ctx = ssl.create_default_context(cafile=pki().ca_cert)
    ctx.check_hostname = False
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def starttls(c, server_hostname="mx.kasi.test", ctx=None):
    code, lines = c.cmd("STARTTLS")
    assert code == 220 and "Go ahead" in lines[0], lines
    assert c.buf == b""
    c.sock = (ctx or client_ctx()).wrap_socket(c.sock, server_hostname=server_hostname)
    return c.sock


def ehlo_caps(c, host="client.test"):
    code, lines = c.cmd("EHLO " + host)
    assert code == 250, lines
    return [line[4:] for line in lines[1:]]


def cn_of(sock):
    cert = sock.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_starttls_advertised_upgrades_and_resets_session():
    with tls_kasi() as k:
        c = k.client()
        assert "STARTTLS" in ehlo_caps(c)
        c.cmd("MAIL FROM:<a@example.org>")
        s = starttls(c)
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        # The session was reset: no MAIL survives, EHLO is required again
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 503
        caps = ehlo_caps(c)
        assert "STARTTLS" not in caps, caps
        assert c.cmd("STARTTLS")[0] == 503  # already active
        code, lines = c.send_message("a@example.org", ["x@kasi.test"], message(), ehlo=None)
        assert code == 250, lines
        c.cmd("QUIT")
        ids = k.queued_ids()
        assert len(ids) == 1
        rc, out, _ = k.ctl("show", ids[0], "--body")
        assert "with ESMTPS id" in out and "tls TLSv1." in out, out
        assert "tls=Y" in k.read_log()


def test_plaintext_pipelined_after_starttls_is_discarded():
    with tls_kasi() as k:
        c = k.client()
        ehlo_caps(c)
        # An attacker's injection rides behind STARTTLS in the same packet
        c.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        code, lines = c.reply()
        assert code == 220, lines
        c.sock = client_ctx().wrap_socket(c.sock, server_hostname="mx.kasi.test")
        ehlo_caps(c)
        # Had MAIL been executed, RCPT would be accepted; it must say MAIL is missing
        code, lines = c.cmd("RCPT TO:<x@kasi.test>")
        assert code == 503, lines


def test_tls_below_1_2_is_refused():
    with tls_kasi() as k:
        c = k.client()
        ehlo_caps(c)
        ctx = client_ctx()
        try:
            import warnings
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            raise Skip(f"this Python cannot offer TLS 1.1: {e}")
        c.cmd("STARTTLS")
        try:
            ctx.wrap_socket(c.sock, server_hostname="mx.kasi.test")
            assert False, "TLS 1.1 handshake succeeded"
        except (ssl.SSLError, OSError):
            pass
        time.sleep(0.3)
        assert "TLS error" in k.read_log() and "unsupported protocol" in k.read_log(), k.read_log()
        # TLS 1.2 still works
        c2 = k.client()
        ehlo_caps(c2)
        s = starttls(c2, ctx=client_ctx(maximum_version=ssl.TLSVersion.TLSv1_2))
        assert s.version() == "TLSv1.2"
        assert "STARTTLS" not in ehlo_caps(c2)


def test_sni_chooses_certificate():
    with tls_kasi() as k:
        for name, want in (("mx.alpha.test", "mx.alpha.test"), ("MX.Alpha.Test", "mx.alpha.test"),
                           ("smtp.beta.test", "*.beta.test"), ("beta.test", "*.beta.test"),
                           ("other.example", "mx.kasi.test"), (None, "mx.kasi.test")):
            c = k.client()
            ehlo_caps(c)
            s = starttls(c, server_hostname=name)
            assert cn_of(s) == want, (name, cn_of(s))
            c.close()


def test_sni_only_without_default_pair():
    k = tls_kasi()
    os.remove(os.path.join(k.dir, "config", "tls_key.pem"))
    os.remove(os.path.join(k.dir, "config", "tls_cert.pem"))
    with k:
        c = k.client()
        ehlo_caps(c)
        assert cn_of(starttls(c, server_hostname="mx.alpha.test")) == "mx.alpha.test"
        # a client naming no host gets the first SNI certificate (files sorted by name)
        c = k.client()
        ehlo_caps(c)
        assert cn_of(starttls(c, server_hostname=None)) == "mx.alpha.test"


def test_implicit_tls_on_smtps_port():
    k = tls_kasi()
    smtps = free_port()
    with open(os.path.join(k.dir, "config", "smtp.ini"), "a") as f:
        f.write(f"\nlisten=127.0.0.1:{k.port},127.0.0.1:{smtps}\nsmtps_port={smtps}\n")
    with k:
        raw = socket.create_connection(("127.0.0.1", smtps), timeout=10)
        s = client_ctx().wrap_socket(raw, server_hostname="mx.alpha.test")
        assert cn_of(s) == "mx.alpha.test"
        c = Client.__new__(Client)
        c.sock, c.buf = s, b""
        code, lines = c.reply()
        assert code == 220, lines
        caps = ehlo_caps(c)
        assert "STARTTLS" not in caps, caps
        code, lines = c.send_message("a@example.org", ["x@kasi.test"], message(), ehlo=None)
        assert code == 250, lines
        # the plain port is still plain
        c2 = k.client()
        assert "STARTTLS" in ehlo_caps(c2)


def test_client_hello_on_plain_port():
    with tls_kasi() as k:
        c = k.client()
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)
        code, lines = c.reply()
        assert code == 501 and "SSL attempted over a non-SSL socket" in lines[0], lines
        assert c.closed()


def test_handshake_garbage_and_timeout_leave_server_serving():
    with tls_kasi("[main]\nhandshake_timeout=1\n") as k:
        c = k.client()
        ehlo_caps(c)
        c.cmd("STARTTLS")
        c.send(b"this is not a TLS record\r\n" * 10)
        assert c.closed()
        # a client that goes quiet after STARTTLS is dropped after handshake_timeout
        c = k.client()
        ehlo_caps(c)
        c.cmd("STARTTLS")
        t0 = time.time()
        assert c.closed(timeout=5)
        assert time.time() - t0 < 3.5
        log = k.read_log()
        assert "TLS error" in log and "TLS handshake timeout" in log, log
        # others are still served, with TLS
        c = k.client()
        ehlo_caps(c)
        starttls(c)
        assert c.cmd("NOOP")[0] == 250


def test_no_tls_hosts_and_no_starttls_ports():
    with tls_kasi("[no_tls_hosts]\n127.0.0.2\n") as k:
        c = k.client(source="127.0.0.2")
        assert "STARTTLS" not in ehlo_caps(c)
        assert c.cmd("STARTTLS")[0] == 500
        c = k.client(source="127.0.0.3")
        assert "STARTTLS" in ehlo_caps(c)
    k = tls_kasi()
    with open(os.path.join(k.dir, "config", "tls.ini"), "a") as f:
        f.write(f"[main]\nno_starttls_ports[]={k.port}\n")
    with k:
        assert "STARTTLS" not in ehlo_caps(k.client())


def test_swaks_delivers_over_starttls():
    if not shutil.which("swaks"):
        raise Skip("swaks is not installed")
    with tls_kasi() as k:
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(k.port), "--tls",
                            "--from", "a@example.org", "--to", "x@kasi.test",
                            "--helo", "swaks.test"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "250 2.0.0 Message Queued" in r.stdout, r.stdout
        assert len(k.queued_ids()) == 1


def test_starttls_forgets_auth():
    extra = {"auth_flat_file.ini": "[users]\nbob=hunter2\n"}
    k = tls_kasi(extra=extra)
    with open(os.path.join(k.dir, "config", "plugins"), "a") as f:
        f.write("auth/flat_file\n")
    with k:
        import base64
        c = k.client(source="127.0.0.2")
        ehlo_caps(c)
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0bob\0hunter2").decode())[0] == 235
        starttls(c)
        caps = ehlo_caps(c)
        assert "AUTH PLAIN LOGIN CRAM-MD5" in caps, caps
        c.cmd("MAIL FROM:<a@example.org>")
        assert c.cmd("RCPT TO:<x@elsewhere.example>")[0] == 550  # no longer relaying


def test_proxy_before_implicit_tls_and_auth_needs_tls_for_public_clients():
    extra = {"auth_flat_file.ini": "[users]\nbob=hunter2\n",
             "connection.ini": "\n[haproxy]\nhosts[]=127.0.0.5\n"}
    k = tls_kasi(extra=extra)
    smtps = free_port()
    with open(os.path.join(k.dir, "config", "smtp.ini"), "a") as f:
        f.write(f"\nlisten=127.0.0.1:{k.port},127.0.0.1:{smtps}\nsmtps_port={smtps}\n")
    with open(os.path.join(k.dir, "config", "plugins"), "a") as f:
        f.write("auth/flat_file\n")
    with k:
        import base64
        auth = "AUTH PLAIN " + base64.b64encode(b"\0bob\0hunter2").decode()
        # A public client through the proxy, in clear text: no AUTH
        c = k.client(source="127.0.0.5", banner=False)
        c.send("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n")
        assert c.reply()[0] == 220
        caps = ehlo_caps(c)
        assert not any(x.startswith("AUTH") for x in caps), caps
        code, lines = c.cmd(auth)
        assert code == 538 and "5.7.11" in lines[0], lines
        starttls(c)
        assert "AUTH PLAIN LOGIN CRAM-MD5" in ehlo_caps(c)
        assert c.cmd(auth)[0] == 235
        # PROXY header in clear, then TLS, on the smtps port
        raw = socket.create_connection(("127.0.0.1", smtps), timeout=10,
                                       source_address=("127.0.0.5", 0))
        raw.sendall(b"PROXY TCP4 203.0.113.10 192.0.2.1 40001 465\r\n")
        s = client_ctx().wrap_socket(raw, server_hostname="mx.kasi.test")
        c = Client.__new__(Client)
        c.sock, c.buf = s, b""
        assert c.reply()[0] == 220
        code, lines = c.cmd("EHLO x.test")
        assert "[203.0.113.10]" in lines[0] and lines[-1] == "250 AUTH PLAIN LOGIN CRAM-MD5", lines


def check_config(k):
    r = subprocess.run([KASI, "-c", k.dir, "--check-config"], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_config_errors():
    k = tls_kasi("[main]\nminVersion=TLSv1.1\n")
    rc, out = check_config(k)
    assert rc == 1 and "tls.ini" in out and "below Kasi's floor of TLSv1.2" in out, out
    k.cleanup()
    k = tls_kasi("[main]\nciphers=NO-SUCH-CIPHER\n")
    rc, out = check_config(k)
    assert rc == 1 and "ciphers 'NO-SUCH-CIPHER'" in out, out
    k.cleanup()
    k = tls_kasi(sni=False)
    os.remove(os.path.join(k.dir, "config", "tls_cert.pem"))
    os.remove(os.path.join(k.dir, "config", "tls_key.pem"))
    rc, out = check_config(k)
    assert rc == 1 and "no certificate" in out, out
    k.cleanup()
    k = tls_kasi(sni=False)
    shutil.copy(pki().alpha[0], os.path.join(k.dir, "config", "tls_key.pem"))  # wrong key
    rc, out = check_config(k)
    assert rc == 1 and "does not match certificate" in out, out
    k.cleanup()
    k = Kasi()
    with open(os.path.join(k.dir, "config", "smtp.ini"), "a") as f:
        f.write(f"\nsmtps_port={k.port}\n")
    rc, out = check_config(k)
    assert rc == 1 and "the tls plugin is not in config/plugins" in out, out
    k.cleanup()


run(globals())
