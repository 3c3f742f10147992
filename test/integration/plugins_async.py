"""Plugins that answer later (suspend/resume through the hook runner), with early_talker:
the banner is delayed, an early talker is refused at DATA, exempt clients are not."""
import time
from harness import Kasi, run

CFG = {"plugins": "early_talker\n",
       "early_talker.ini": "[main]\npause=1\n[ip_whitelist]\n127.0.0.3\n"}


def test_banner_is_delayed_and_early_talker_refused():
    with Kasi(extra=CFG) as k:
        c = k.client(banner=False, source="127.0.0.2")
        t0 = time.time()
        c.send("EHLO rude.test\r\n")            # before the banner
        code, _ = c.reply()
        assert code == 220 and time.time() - t0 >= 0.9
        assert c.reply()[0] == 250               # EHLO, answered after the banner
        c.cmd("MAIL FROM:<a@remote.example>")
        assert c.cmd("RCPT TO:<x@kasi.test>")[0] == 250
        code, lines = c.cmd("DATA")
        assert code == 554 and "You talk too soon" in lines[0], lines
        assert c.closed()


def test_polite_client_is_served():
    with Kasi(extra=CFG) as k:
        c = k.client(source="127.0.0.2")
        c.cmd("EHLO polite.test")
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<x@kasi.test>")
        assert c.cmd("DATA")[0] == 354


def test_whitelisted_and_relaying_clients_are_not_delayed():
    with Kasi(extra=CFG) as k:
        for src in ("127.0.0.3", "127.0.0.1"):
            t0 = time.time()
            c = k.client(source=src)
            assert c.banner[0] == 220 and time.time() - t0 < 0.5, src


def test_client_leaving_during_the_pause_is_harmless():
    with Kasi(extra=CFG) as k:
        for _ in range(5):
            c = k.client(banner=False, source="127.0.0.2")
            c.close()
        time.sleep(1.5)                           # the timers fire after the sessions are gone
        d = k.client(source="127.0.0.2")
        assert d.banner[0] == 220
        assert k.proc.poll() is None


run(globals())
