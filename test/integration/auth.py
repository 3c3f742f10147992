"""auth/flat_file: PLAIN, LOGIN and CRAM-MD5 exchanges, failure delays and their reply
order under pipelining, relaying after AUTH, constrain_sender by organizational domain,
the reset on STARTTLS, and config errors."""
import base64
import hashlib
import hmac
import subprocess
import time

from harness import Kasi, message, run, KASI

USERS = "[core]\nmethods=PLAIN,LOGIN,CRAM-MD5\n[users]\nalice@example.com=s3cret\nbob=hunter2\n"
CFG = {"plugins": "auth/flat_file\n", "auth_flat_file.ini": USERS}
SRC = "127.0.0.2"  # not in relay_acl_allow


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def session(k):
    c = k.client(source=SRC)
    code, lines = c.cmd("EHLO client.test")
    assert code == 250
    return c, [line[4:] for line in lines[1:]]


def test_advertised_to_private_address():
    with Kasi(extra=CFG) as k:
        _, caps = session(k)
        assert "AUTH PLAIN LOGIN CRAM-MD5" in caps, caps


def test_plain_with_and_without_initial_response_then_relay():
    with Kasi(extra=CFG) as k:
        c, _ = session(k)
        # not relaying before AUTH
        c.cmd("MAIL FROM:<a@example.com>")
        assert c.cmd("RCPT TO:<x@elsewhere.example>")[0] == 550
        c.cmd("RSET")
        code, lines = c.cmd("AUTH PLAIN " + b64("\0alice@example.com\0s3cret"))
        assert code == 235 and "2.7.0 Authentication successful" in lines[0], lines
        code, lines = c.send_message("a@example.com", ["x@elsewhere.example"], message(), ehlo=None)
        assert code == 250, lines
        c2, _ = session(k)
        code, lines = c2.cmd("AUTH PLAIN")
        assert code == 334 and lines[0] == "334 ", lines
        assert c2.cmd(b64("bob\0bob\0hunter2"))[0] == 235  # authzid == authcid is fine
        ids = k.queued_ids()
        rc, out, _ = k.ctl("show", ids[0], "--body")
        assert "with ESMTPA id" in out and "alice@example.com" in out, out


def test_login_and_cram_md5():
    with Kasi(extra=CFG) as k:
        c, _ = session(k)
        code, lines = c.cmd("AUTH LOGIN")
        assert code == 334 and lines[0] == "334 VXNlcm5hbWU6", lines
        code, lines = c.cmd(b64("bob"))
        assert code == 334 and lines[0] == "334 UGFzc3dvcmQ6", lines
        assert c.cmd(b64("hunter2"))[0] == 235
        c, _ = session(k)
        assert c.cmd("AUTH LOGIN " + b64("bob"))[0] == 334  # initial response = user name
        assert c.cmd(b64("hunter2"))[0] == 235
        c, _ = session(k)
        code, lines = c.cmd("AUTH CRAM-MD5")
        assert code == 334
        challenge = base64.b64decode(lines[0][4:])
        assert challenge.startswith(b"<") and challenge.endswith(b"@mx.kasi.test>"), challenge
        digest = hmac.new(b"s3cret", challenge, hashlib.md5).hexdigest()
        assert c.cmd(b64(f"alice@example.com {digest}"))[0] == 235
        c, _ = session(k)
        code, lines = c.cmd("AUTH CRAM-MD5")
        challenge = base64.b64decode(lines[0][4:])
        digest = hmac.new(b"wrong", challenge, hashlib.md5).hexdigest()
        assert c.cmd(b64(f"alice@example.com {digest}"))[0] == 535


def test_failures_are_delayed_and_replies_stay_in_order():
    with Kasi(extra=CFG) as k:
        c, _ = session(k)
        t0 = time.time()
        code, lines = c.cmd("AUTH PLAIN " + b64("\0bob\0wrong"))
        assert code == 535 and "5.7.8 Authentication failed" in lines[0], lines
        assert time.time() - t0 >= 0.9
        # second failure: 2 s; a pipelined NOOP is answered only after the 535
        t0 = time.time()
        c.send("AUTH PLAIN " + b64("\0nobody\0x") + "\r\nNOOP\r\n")
        assert c.reply()[0] == 535 and time.time() - t0 >= 1.9
        assert c.reply()[0] == 250
        # the client is not relaying
        c.cmd("MAIL FROM:<a@example.com>")
        assert c.cmd("RCPT TO:<x@elsewhere.example>")[0] == 550
        assert "failed (attempt 2)" in k.read_log()


def test_protocol_errors():
    with Kasi(extra=CFG) as k:
        c, _ = session(k)
        assert c.cmd("AUTH PLAIN")[0] == 334
        assert c.cmd("*")[0] == 501                   # cancelled
        assert c.cmd("AUTH PLAIN !!!notbase64")[0] == 501
        assert c.cmd("AUTH PLAIN " + b64("no-nuls-here"))[0] == 501
        assert c.cmd("AUTH GSSAPI")[0] == 504
        assert c.cmd("AUTH")[0] == 501
        assert c.cmd("AUTH CRAM-MD5 " + b64("x"))[0] == 501
        c.cmd("MAIL FROM:<a@example.com>")
        assert c.cmd("AUTH PLAIN " + b64("\0bob\0hunter2"))[0] == 503  # inside a transaction
        c.cmd("RSET")
        assert c.cmd("AUTH PLAIN " + b64("\0bob\0hunter2"))[0] == 235
        assert c.cmd("AUTH PLAIN " + b64("\0bob\0hunter2"))[0] == 503  # already
        c2 = k.client(source=SRC)
        assert c2.cmd("AUTH PLAIN " + b64("\0bob\0hunter2"))[0] == 503  # before EHLO


def test_constrain_sender():
    with Kasi(extra=CFG) as k:
        c, _ = session(k)
        assert c.cmd("AUTH PLAIN " + b64("\0alice@example.com\0s3cret"))[0] == 235
        assert c.cmd("MAIL FROM:<news@mail.example.com>")[0] == 250   # same org domain
        c.cmd("RSET")
        code, lines = c.cmd("MAIL FROM:<ceo@other.example.org>")
        assert code == 550, lines
        assert "Envelope domain 'example.org' doesn't match AUTH domain 'example.com'" in lines[0]
    cfg = dict(CFG)
    cfg["auth_flat_file.ini"] = USERS.replace("[core]\n", "[core]\nconstrain_sender=false\n")
    with Kasi(extra=cfg) as k:
        c, _ = session(k)
        c.cmd("AUTH PLAIN " + b64("\0alice@example.com\0s3cret"))
        assert c.cmd("MAIL FROM:<ceo@other.example.org>")[0] == 250


def test_config_errors():
    k = Kasi(extra={"plugins": "auth/flat_file\n",
                    "auth_flat_file.ini": "[core]\nmethods=PLAIN,DIGEST-MD5\n[users]\nnopass\n"})
    r = subprocess.run([KASI, "-c", k.dir, "--check-config"], capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "auth_flat_file.ini:2: [core] methods: 'DIGEST-MD5'" in out, out
    assert "auth_flat_file.ini:4: [users] 'nopass' has no password" in out, out
    k.cleanup()


run(globals())
