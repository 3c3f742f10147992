"""The limit plugin (in-memory counters): per-IP concurrency, connection rate, errors,
unrecognized commands (after AUTH has had its say), recipients per connection, recipient
rates across connections, the tarpit, and config errors."""
import base64
import subprocess
import time

from harness import Kasi, run, KASI


def kasi(ini):
    """limit listed after relay (relaying clients skip its connect checks) and before
    rcpt_to.in_host_list (whose OK would end the rcpt chain before limit counts)."""
    k = Kasi(extra={"limit.ini": ini})
    with open(k.dir + "/config/plugins", "w") as f:
        f.write("relay\nlimit\nrcpt_to.in_host_list\n")
    return k


def test_concurrency_per_ip():
    with kasi("[concurrency]\nenabled=true\nmax=2\n") as k:
        a = k.client(source="127.0.0.2")
        b = k.client(source="127.0.0.2")
        c = k.client(source="127.0.0.2", banner=False)
        code, lines = c.reply()
        assert code == 421 and "Too many concurrent connections" in lines[0], lines
        assert c.closed()
        assert k.client(source="127.0.0.3").banner[0] == 220  # another IP is not affected
        a.cmd("QUIT")
        a.closed()
        time.sleep(0.2)
        assert k.client(source="127.0.0.2").banner[0] == 220
        b.close()


def test_connection_rate():
    with kasi("[rate_conn]\nenabled=true\ndefault=3/1m\n127.0.0.4=0\n") as k:
        for _ in range(3):
            c = k.client(source="127.0.0.3")
            assert c.banner[0] == 220
            c.cmd("QUIT")
        c = k.client(source="127.0.0.3", banner=False)
        code, lines = c.reply()
        assert code == 421 and "connection rate limit exceeded" in lines[0], lines
        assert c.closed()
        for _ in range(6):  # 0 = unlimited for this address
            assert k.client(source="127.0.0.4").banner[0] == 220


def test_unrecognized_commands_not_counting_auth():
    ini = "[unrecognized_commands]\nenabled=true\nmax=2\n"
    plugins = "limit\nauth/flat_file\n"   # limit first, yet AUTH is not "unrecognized"
    k = Kasi(extra={"plugins": plugins, "limit.ini": ini,
                    "auth_flat_file.ini": "[users]\nbob=hunter2\n"})
    with k:
        c = k.client(source="127.0.0.2")
        c.cmd("EHLO x.test")
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0bob\0bad").decode())[0] == 535
        assert c.cmd("AUTH LOGIN")[0] == 334
        assert c.cmd("*")[0] == 501
        assert c.cmd("FOO")[0] == 500
        assert c.cmd("BAR")[0] == 500
        code, lines = c.cmd("BAZ")
        assert code == 421 and "Too many unrecognized commands" in lines[0], lines
        assert c.closed()


def test_errors():
    with kasi("[errors]\nenabled=true\nmax=2\n") as k:
        c = k.client(source="127.0.0.2")
        for _ in range(3):
            assert c.cmd("MAIL FROM:<a@example.org>")[0] == 503  # before EHLO: an error each
        code, lines = c.cmd("EHLO x.test")
        assert code == 450 and "Too many errors" in lines[0], lines
        assert c.closed()


def test_recipients_per_connection_and_sender_rate():
    ini = ("[recipients]\nenabled=true\nmax=3\n"
           "[rate_rcpt_sender]\nenabled=true\ndefault=4/1m\n")
    with kasi(ini) as k:
        c = k.client(source="127.0.0.2")
        c.cmd("EHLO x.test")
        c.cmd("MAIL FROM:<bulk@example.org>")
        for i in range(3):
            assert c.cmd(f"RCPT TO:<u{i}@kasi.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<u9@kasi.test>")
        assert code == 450 and "Too many recipient attempts" in lines[0], lines
        # the sender's 4/min spans connections: one more is fine, then refused
        c2 = k.client(source="127.0.0.3")
        c2.cmd("EHLO y.test")
        c2.cmd("MAIL FROM:<bulk@example.org>")
        assert c2.cmd("RCPT TO:<v1@kasi.test>")[0] == 250
        code, lines = c2.cmd("RCPT TO:<v2@kasi.test>")
        assert code == 450 and "rcpt rate limit exceeded" in lines[0], lines
        c2.cmd("RSET")
        c2.cmd("MAIL FROM:<other@example.org>")
        assert c2.cmd("RCPT TO:<v3@kasi.test>")[0] == 250


def test_tarpit_delays_penalties():
    with kasi("[main]\ntarpit_delay=1\n[recipients]\nenabled=true\nmax=1\n") as k:
        c = k.client(source="127.0.0.2")
        c.cmd("EHLO x.test")
        c.cmd("MAIL FROM:<a@example.org>")
        t0 = time.time()
        assert c.cmd("RCPT TO:<a@kasi.test>")[0] == 250
        assert time.time() - t0 < 0.5
        code, _ = c.cmd("RCPT TO:<b@kasi.test>")
        assert code == 450 and time.time() - t0 >= 1.0


def test_config_errors():
    k = kasi("[rate_conn]\nenabled=true\ndefault=lots\n[main]\ntarpit_delay=99\n")
    r = subprocess.run([KASI, "-c", k.dir, "--check-config"], capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "limit.ini:3: [rate_conn] default: 'lots' is not N or N/T" in out, out
    assert "tarpit_delay (99 s) must be shorter than the plugin timeout" in out, out
    k.cleanup()


run(globals())
