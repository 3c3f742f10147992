"""The dkim plugin in the real kasi: keys made with `kasictl dkim keygen`, relayed mail
signed after every hook and delivered to a scripted peer, and every signature of every
delivered message verified on its own by dkimpy and by OpenDKIM with the keys served by the
DNS fixture. Also: dual RSA + Ed25519 signing, the ESP's second signature, per-domain
canonicalization, t=/x=, over-signing, selector rotation by reload, overrides from Lua,
the fallback key, bad keys as clear errors, and RSA signing under concurrent load."""
import os
import smtplib
import stat
import subprocess
import threading
import time

from dkim_verify import Verifiers
from harness import KASI, KASICTL, DnsServer, Kasi, run
from smtp_peer import Peer

MX_ZONE = """$TTL 300
sink.test.        IN MX 10 mx.sink.test.
mx.sink.test.     IN A 127.0.0.1
"""

DKIM_INI = """[sign]
enabled = true
also = esp.test
headers = From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc, MIME-Version, Content-Type, X-Added
oversign = From, Subject
[domain:simple.test]
canonicalization = simple/simple
expire = 7d
also =
[domain:rotate.test]
selectors = new
also =
"""

KEYS = [("sender.test", "s1", []), ("sender.test", "ed1", ["--ed25519"]),
        ("esp.test", "esp", ["--bits", "1024"]), ("simple.test", "simp", ["--ed25519"]),
        ("rotate.test", "old", ["--ed25519"]), ("rotate.test", "new", ["--ed25519"])]


class Setup:
    """A kasi with DKIM keys for several domains, its DNS fixture (MX + key records), the
    verifiers, and a peer that takes everything."""

    def __init__(self, plugins="relay\ndkim\n", dkim_ini=DKIM_INI, lua=None, keys=KEYS,
                 extra_files=None, peer=None):
        self.peer = Peer(**(peer or {}))
        self.k = Kasi()
        cfg = os.path.join(self.k.dir, "config")
        for domain, sel, opts in keys:
            r = subprocess.run([KASICTL, "-c", self.k.dir, "dkim", "keygen", domain, sel, *opts],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert f"{sel}._domainkey.{domain}. IN TXT" in r.stdout, r.stdout
        r = subprocess.run([KASICTL, "-c", self.k.dir, "dkim", "records"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        zone = MX_ZONE + r.stdout
        self.dns = DnsServer(zone)
        self.v = Verifiers(zone)
        files = {"plugins": plugins, "dkim.ini": dkim_ini,
                 "dns.ini": f"[main]\nservers=127.0.0.1:{self.dns.port}\ntimeout=0.5\n",
                 "outbound.ini": f"disabled=false\nlocal_mx_ok=true\nsmtp_port={self.peer.port}\n"
                                 "temp_fail_intervals=5s\n"}
        files.update(extra_files or {})
        for name, text in files.items():
            with open(os.path.join(cfg, name), "w") as f:
                f.write(text)
        if lua:
            os.makedirs(os.path.join(self.k.dir, "plugins"), exist_ok=True)
            for name, src in lua.items():
                with open(os.path.join(self.k.dir, "plugins", name + ".lua"), "w") as f:
                    f.write(src)

    def start(self):
        self.k.start()
        return self

    def send(self, sender, body, rcpts=("to@sink.test",), n=1):
        s = smtplib.SMTP("127.0.0.1", self.k.port)
        for _ in range(n):
            s.sendmail(sender, list(rcpts), body)
        s.quit()

    def delivered(self, n, timeout=20):
        self.peer.wait_messages(n, timeout)
        assert len(self.peer.messages) >= n, (len(self.peer.messages), self.k.read_log()[-3000:])
        return [m[2] for m in self.peer.messages]

    def close(self):
        try:
            self.k.cleanup()
        finally:
            self.peer.stop()
            self.dns.stop()
            self.v.stop()


def by_selector(tags):
    return {(t["d"], t["s"]): t for t in tags}


def test_dual_rsa_and_ed25519_plus_the_esp_signature_verify_everywhere():
    s = Setup()
    try:
        s.start()
        bodies = [
            "From: Alice <alice@sender.test>\r\nTo: to@sink.test\r\nSubject: plain\r\n\r\nhello\r\n",
            # folding, odd whitespace, trailing blank lines, no Date/Message-ID (kasi adds them)
            "From: \"Doe, Jane\" <jane@sender.test>\r\nTo: to@sink.test,\r\n  other@sink.test\r\n"
            "Subject:   folded\r\n\tsubject  line \r\nX-Added: mine\r\n\r\n"
            "line with trailing spaces   \r\n\r\n  indented\ttabs\t\r\n\r\n\r\n",
            # a subdomain's mail is signed with the parent's keys (labels walked up)
            "From: news@mail.sender.test\r\nSubject: sub\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + "caf\u00e9 ".encode().decode() +
            "x" * 2000 + "\r\n.leading dot\r\n",
            # no body at all
            "From: alice@sender.test\r\nSubject: empty\r\n\r\n",
        ]
        for b in bodies:
            s.send("bounce@sender.test", b.encode("utf-8") if "\u00e9" in b else b)
        msgs = s.delivered(len(bodies))
        for m in msgs:
            sigs = by_selector(s.v.verify_all(m))
            assert set(sigs) == {("sender.test", "s1"), ("sender.test", "ed1"),
                                 ("esp.test", "esp")}, sigs
            assert sigs[("sender.test", "s1")]["a"] == "rsa-sha256"
            assert sigs[("sender.test", "ed1")]["a"] == "ed25519-sha256"
            t = sigs[("sender.test", "s1")]
            assert t["c"] == "relaxed/relaxed" and "t" in t and "x" not in t, t
            h = t["h"].split(":")
            assert h.count("from") == 2 and h[0] == "from", h  # over-signed
            assert "message-id" in h and "date" in h, h
        # The hook-free path added Message-ID and Date before signing
        assert b"Message-ID: <" in msgs[1] and b"\r\nDate: " in msgs[1]
    finally:
        s.close()


def test_per_domain_canonicalization_expiry_and_no_esp_signature():
    s = Setup()
    try:
        s.start()
        s.send("x@simple.test", "From: x@simple.test\r\nSubject: s\r\n\r\nbody  \r\n\r\n")
        m = s.delivered(1)[0]
        tags = s.v.verify_all(m)
        assert len(tags) == 1, tags
        t = tags[0]
        assert (t["d"], t["s"], t["c"], t["a"]) == ("simple.test", "simp", "simple/simple",
                                                    "ed25519-sha256"), t
        assert int(t["x"]) - int(t["t"]) == 7 * 86400, t
        assert abs(int(t["t"]) - time.time()) < 60, t
    finally:
        s.close()


def test_headers_added_by_hooks_are_signed_because_signing_is_last():
    lua = {"late": r"""
return { hook_pre_send_trans_email = function(conn)
  conn.transaction:add_header('X-Added', 'by a policy at the last hook')
end }
"""}
    s = Setup(plugins="relay\ndkim\nlate\n", lua=lua)
    try:
        s.start()
        s.send("a@sender.test", "From: a@sender.test\r\nSubject: late\r\n\r\nhi\r\n")
        m = s.delivered(1)[0]
        assert b"X-Added: by a policy at the last hook" in m
        # the signatures sit above the added header and cover it
        assert m.index(b"DKIM-Signature") < m.index(b"X-Added")
        for t in s.v.verify_all(m):
            assert "x-added" in t["h"].split(":"), t
    finally:
        s.close()


def test_lua_overrides_the_signing_domain_or_skips_signing():
    lua = {"choose": r"""
return { hook_data_post = function(conn)
  local t = conn.transaction
  local subj = t:get_header('Subject')
  if subj == 'as esp' then t.notes['dkim.domain'] = 'esp.test' end
  if subj == 'both' then t.notes['dkim.domain'] = 'simple.test, rotate.test' end
  if subj == 'skip' then t.notes['dkim.skip'] = '1' end
end }
"""}
    s = Setup(plugins="relay\nchoose\ndkim\n", lua=lua)
    try:
        s.start()
        for subj in ("as esp", "both", "skip"):
            s.send("a@sender.test", f"From: a@sender.test\r\nSubject: {subj}\r\n\r\nhi\r\n")
        msgs = {m[m.index(b"Subject: ") + 9:].split(b"\r\n")[0]: m for m in s.delivered(3)}
        esp = by_selector(s.v.verify_all(msgs[b"as esp"]))
        assert set(esp) == {("esp.test", "esp")}, esp
        both = by_selector(s.v.verify_all(msgs[b"both"]))
        assert set(both) == {("simple.test", "simp"), ("rotate.test", "new")}, both
        assert b"DKIM-Signature" not in msgs[b"skip"]
    finally:
        s.close()


def test_selector_rotation_by_reload_with_both_keys_published():
    s = Setup()
    try:
        s.start()
        s.send("a@rotate.test", "From: a@rotate.test\r\nSubject: r1\r\n\r\nhi\r\n")
        m1 = s.delivered(1)[0]
        assert [t["s"] for t in s.v.verify_all(m1)] == ["new"]
        ini = os.path.join(s.k.dir, "config", "dkim.ini")
        with open(ini) as f:
            text = f.read()
        with open(ini, "w") as f:
            f.write(text.replace("selectors = new", "selectors = old, new"))
        rc, out, err = s.k.ctl("reload")
        assert rc == 0, out + err
        s.send("a@rotate.test", "From: a@rotate.test\r\nSubject: r2\r\n\r\nhi\r\n")
        m2 = s.delivered(2)[1]
        assert sorted(t["s"] for t in s.v.verify_all(m2)) == ["new", "old"]
        # the message signed before the reload still verifies (its key is still published)
        s.v.verify_all(m1)
    finally:
        s.close()


def test_fallback_key_signs_unknown_domains_as_the_configured_domain():
    ini = "[sign]\nenabled=true\nselector=fb\ndomain=esp.test\n"
    s = Setup(dkim_ini=ini, keys=[("esp.test", "esp", ["--ed25519"])])
    try:
        # Haraka's fallback: config/dkim.private.key with [sign] selector and domain
        r = subprocess.run([KASICTL, "-c", s.k.dir, "dkim", "keygen", "fallback.invalid", "fb",
                            "--ed25519"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        cfg = os.path.join(s.k.dir, "config")
        os.rename(os.path.join(cfg, "dkim", "fallback.invalid", "fb.private"),
                  os.path.join(cfg, "dkim.private.key"))
        record = r.stdout.splitlines()[-1].replace("fb._domainkey.fallback.invalid.",
                                                   "fb._domainkey.esp.test.")
        s.dns.stop()
        s.v.stop()
        zone = MX_ZONE + record + "\n"
        s.dns = DnsServer(zone)
        s.v = Verifiers(zone)
        with open(os.path.join(cfg, "dns.ini"), "w") as f:
            f.write(f"[main]\nservers=127.0.0.1:{s.dns.port}\ntimeout=0.5\n")
        import shutil
        shutil.rmtree(os.path.join(cfg, "dkim", "fallback.invalid"))
        shutil.rmtree(os.path.join(cfg, "dkim", "esp.test"))
        s.start()
        s.send("a@unknown.test", "From: a@unknown.test\r\nSubject: fb\r\n\r\nhi\r\n")
        tags = s.v.verify_all(s.delivered(1)[0])
        assert [(t["d"], t["s"]) for t in tags] == [("esp.test", "fb")], tags
    finally:
        s.close()


def test_bounces_kasi_writes_are_signed_too():
    s = Setup(dkim_ini="[sign]\nenabled=true\n", keys=[("kasi.test", "dsn", [])],
              peer={"rcpt": lambda a: "550 5.1.1 no such user" if "bad@" in a else None})
    try:
        s.start()
        s.send("bounce@sink.test", "From: a@sender.test\r\nSubject: to a bad address\r\n\r\nhi\r\n",
               rcpts=("bad@sink.test",))
        dsn = s.delivered(1)[0]
        assert b"report-type=delivery-status" in dsn, dsn
        tags = s.v.verify_all(dsn)
        # From: MAILER-DAEMON@mx.kasi.test: the key of kasi.test (labels walked up)
        assert [(t["d"], t["s"]) for t in tags] == [("kasi.test", "dsn")], tags
    finally:
        s.close()


def check_config(s):
    r = subprocess.run([KASI, "-c", s.k.dir, "--check-config"], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_bad_keys_are_clear_errors_and_loose_permissions_warn():
    s = Setup(dkim_ini="[sign]\nenabled=true\n", keys=[("sender.test", "s1", ["--ed25519"]), ("esp.test", "esp", ["--ed25519"])])
    try:
        cfg = os.path.join(s.k.dir, "config")
        key = os.path.join(cfg, "dkim", "sender.test", "s1.private")
        os.chmod(key, 0o640)
        rc, out = check_config(s)
        assert rc == 0, out
        assert f"{key}: the private key is readable by its group" in out, out
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        rc, out = check_config(s)
        assert rc != 0, out
        assert "DKIM key for sender.test (selector s1)" in out and key in out, out
        os.remove(key)
        with open(os.path.join(cfg, "dkim", "sender.test", "private"), "w") as f:
            f.write("x")
        rc, out = check_config(s)
        assert rc != 0 and "sender.test has no selector" in out, out
        os.remove(os.path.join(cfg, "dkim", "sender.test", "private"))
        with open(os.path.join(cfg, "dkim.ini"), "a") as f:
            f.write("[domain:esp.test]\nselectors = nope\ncanonicalization = loose\n")
        rc, out = check_config(s)
        assert rc != 0, out
        assert "selector nope of esp.test: no such key" in out, out
        assert "canonicalization 'loose'" in out, out
    finally:
        s.close()


def test_a_broken_key_on_reload_keeps_the_running_keys():
    s = Setup(dkim_ini="[sign]\nenabled=true\n",
              keys=[("sender.test", "s1", ["--ed25519"]), ("esp.test", "esp", ["--ed25519"])])
    try:
        s.start()
        key = os.path.join(s.k.dir, "config", "dkim", "sender.test", "s1.private")
        good = open(key).read()
        with open(key, "w") as f:
            f.write("garbage")
        rc, out, err = s.k.ctl("reload")
        assert rc != 0 and "sender.test" in out + err, out + err
        s.send("a@sender.test", "From: a@sender.test\r\nSubject: still\r\n\r\nhi\r\n")
        tags = s.v.verify_all(s.delivered(1)[0])
        assert ("sender.test", "s1") in {(t["d"], t["s"]) for t in tags}, tags
        with open(key, "w") as f:
            f.write(good)
    finally:
        s.close()


def test_rsa_signing_under_concurrent_load_loses_nothing_and_all_verify():
    s = Setup(dkim_ini="[sign]\nenabled=true\n",
              keys=[("sender.test", "s1", []), ("sender.test", "s2", [])])
    try:
        s.start()
        n_threads, per = 8, 25
        errors = []

        def client(i):
            try:
                s.send("a@sender.test", f"From: a@sender.test\r\nSubject: load {i}\r\n\r\n"
                       + "body line\r\n" * 50, n=per)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        ts = [threading.Thread(target=client, args=(i,)) for i in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        msgs = s.delivered(n_threads * per, timeout=60)
        assert len(msgs) == n_threads * per
        for i, m in enumerate(msgs):
            s.v.verify_all(m, opendkim=(i % 20 == 0))
    finally:
        s.close()


if __name__ == "__main__":
    run(globals())
