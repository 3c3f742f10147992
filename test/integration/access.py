"""The access plugin (precise ACLs) and the connect-time refusal: 554, then only QUIT is
served (503 for anything else), as RFC 5321 §3.1 asks."""
import subprocess

from harness import Kasi, run, KASI

FILES = {
    "access.ini": "[check]\nconn=true\nmail=true\nrcpt=true\n[rcpt]\naccept=true\n",
    "connect.rdns_access.blacklist": "127.0.1.0/24\n127.0.0.9\n",
    "connect.rdns_access.whitelist": "127.0.1.7\n",
    "mail_from.access.blacklist_regex": ".*@spam\\.example\n",
    "rcpt_to.access.blacklist": "Abuse@kasi.test\n",
    "rcpt_to.access.whitelist": "vip@elsewhere.example\n",
}


def kasi(files=FILES):
    k = Kasi(extra=files)
    with open(k.dir + "/config/plugins", "w") as f:
        f.write("relay\naccess\nrcpt_to.in_host_list\n")
    return k


def test_connect_blacklist_loops_until_quit():
    with kasi() as k:
        for src in ("127.0.1.8", "127.0.0.9"):
            c = k.client(source=src)
            code, lines = c.banner
            assert code == 554 and "You are not allowed to connect" in lines[0], lines
            code, lines = c.cmd("EHLO x.test")
            assert code == 503 and "Bad sequence of commands" in lines[0], lines
            assert c.cmd("MAIL FROM:<a@example.org>")[0] == 503
            assert c.cmd("NOOP")[0] == 503
            assert c.cmd("QUIT")[0] == 221
            assert c.closed()
        # the whitelist wins over the blacklisted block
        assert k.client(source="127.0.1.7").banner[0] == 220
        assert k.client(source="127.0.0.2").banner[0] == 220


def test_mail_and_rcpt_lists():
    with kasi() as k:
        c = k.client(source="127.0.0.2")
        c.cmd("EHLO x.test")
        code, lines = c.cmd("MAIL FROM:<bulk@SPAM.example>")
        assert code == 550 and "That sender cannot send mail here" in lines[0], lines
        assert c.cmd("MAIL FROM:<ok@example.org>")[0] == 250
        code, lines = c.cmd("RCPT TO:<abuse@kasi.test>")
        assert code == 550 and "That recipient is not allowed" in lines[0], lines
        assert c.cmd("RCPT TO:<postmaster@kasi.test>")[0] == 250
        # [rcpt] accept=true: a whitelisted recipient is accepted even when not local
        assert c.cmd("RCPT TO:<vip@elsewhere.example>")[0] == 250
        assert c.cmd("RCPT TO:<other@elsewhere.example>")[0] == 550


def test_bad_regex_is_a_config_error():
    files = dict(FILES)
    files["mail_from.access.blacklist_regex"] = "ok.*\n(unclosed\n"
    k = kasi(files)
    r = subprocess.run([KASI, "-c", k.dir, "--check-config"], capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "mail_from.access.blacklist_regex:2: invalid regular expression '(unclosed'" in out, out
    k.cleanup()


run(globals())
