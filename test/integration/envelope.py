"""What Kasi does to the envelope and headers of relayed mail for alignment and
unsubscribing, end to end into a scripted peer: VERP return paths per sending domain and
tenant (one transaction per recipient, decoded back by `kasictl verp decode`, altered
addresses refused), List-Unsubscribe / List-Unsubscribe-Post with HMAC tokens that
`kasictl unsubscribe verify` checks, both headers covered by DKIM signatures that dkimpy
and OpenDKIM verify, and header injection from a policy refused."""
import re
import subprocess

from dkim_sign import Setup
from harness import KASI, KASICTL, run

SECRET = "0123456789abcdef0123456789abcdef"
VERP_INI = f"""[main]
secret = {SECRET}
[domain:sender.test]
return_path = bounces.sender.test
[tenant:acme]
return_path = rp.acme.test
"""
UNSUB_INI = f"""[main]
secret = file:unsub.key
url = https://unsub.esp.test/u/{{token}}
mailto = unsub+{{token}}@esp.test
"""
POLICY = r"""
return { hook_data_post = function(conn)
  local t = conn.transaction
  local subj = t:get_header('Subject')
  if subj == 'tenant' then t.notes.tenant = 'acme' end
  if subj == 'inject' then t.notes['unsubscribe.url'] = 'https://x.test/\r\nBcc: victim@x.test' end
  if subj == 'noverp' then t.notes['verp.skip'] = '1' end
  local v = t:get_header('X-Check-Verp')
  if v and v ~= '' then
    local r, why = kasi.verp.decode(v)
    t:add_header('X-Verp-Result', r and (r.message_id .. ' ' .. (r.recipient or ('#' .. r.rcpt_index))) or ('nil ' .. why))
  end
  local tok = t:get_header('X-Check-Token')
  if tok and tok ~= '' then
    local r = kasi.unsubscribe.verify(tok)
    t:add_header('X-Token-Result', r and (r.recipient .. '|' .. r.tenant) or 'nil')
  end
  if subj == 'own' then t.notes['unsubscribe.url'] = 'https://own.test/u?id=1' ; t.notes['unsubscribe.mailto'] = '' end
end }
"""
KEYS = [("sender.test", "s1", ["--ed25519"]), ("esp.test", "esp", [])]
DKIM_INI = "[sign]\nenabled=true\n"


def setup():
    s = Setup(plugins="relay\npolicy\ndkim\n", lua={"policy": POLICY}, keys=KEYS,
              dkim_ini=DKIM_INI, extra_files={"verp.ini": VERP_INI, "unsubscribe.ini": UNSUB_INI,
                                              "unsub.key": "another-secret-for-unsubscribe\n"})
    s.start()
    return s


def ctl(s, *args):
    r = subprocess.run([KASICTL, "-c", s.k.dir, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def subject(data):
    return re.search(rb"\r\nSubject: ([^\r]*)", b"\r\n" + data).group(1).decode()


def test_verp_return_paths_one_recipient_each_decoded_back():
    s = setup()
    try:
        long_rcpt = "a.rather.long.local.part.that.will.not.fit@sink.test"
        rcpts = ["alice@sink.test", "Bob.Smith@sink.test", long_rcpt]
        s.send("orig@sender.test", "From: news@sender.test\r\nSubject: verp\r\n\r\nhi\r\n",
               rcpts=rcpts)
        s.send("orig@other.test", "From: x@other.test\r\nSubject: tenant\r\n\r\nhi\r\n")
        s.send("orig@sender.test", "From: news@sender.test\r\nSubject: noverp\r\n\r\nhi\r\n")
        s.send("", "From: news@sender.test\r\nSubject: null sender\r\n\r\nhi\r\n")
        s.delivered(6)
        by_subj = {}
        for mail_from, rc, data in s.peer.messages:
            by_subj.setdefault(subject(data), []).append((mail_from, rc, data))
        verp = by_subj["verp"]
        assert len(verp) == 3 and all(len(rc) == 1 for _, rc, _ in verp), verp
        ids = set()
        for mail_from, rc, data in verp:
            addr = mail_from.strip("<>").split()[0].rstrip(">")
            local, domain = addr.split("@")
            assert domain == "bounces.sender.test" and len(local) <= 64, addr
            code, out = ctl(s, "verp", "decode", addr)
            assert code == 0, out
            ids.add(re.search(r"message (\S+)", out).group(1))
            want = rc[0].strip("<>")
            if want == long_rcpt:
                assert f"index {rcpts.index(long_rcpt)}" in out, out
            else:
                assert f"recipient {want.lower()}" in out, out
            # altered: another recipient in the same address
            parts = local.split("-")
            for forged in (addr.replace("alice", "mallory"),
                           "-".join([parts[0], ("a" if parts[1][0] != "a" else "b") + parts[1][1:]]
                                    + parts[2:]) + "@" + domain):
                if forged != addr:
                    code, out = ctl(s, "verp", "decode", forged)
                    assert code == 1 and "invalid" in out, (forged, out)
            s.v.verify_all(data)  # VERP does not touch the signed message
        assert len(ids) == 1, ids  # one message
        assert re.fullmatch(r"[0-9A-F-]{36}\.\d+", ids.pop())
        (mf, _, _), = by_subj["tenant"]
        assert mf.strip("<>").split(">")[0].endswith("@rp.acme.test"), mf
        (mf, _, _), = by_subj["noverp"]
        assert mf.startswith("<orig@sender.test>"), mf
        (mf, _, _), = by_subj["null sender"]
        assert mf.startswith("<>"), mf
    finally:
        s.close()


def test_list_unsubscribe_one_click_tokens_signed_and_verified():
    s = setup()
    try:
        s.send("orig@sender.test", "From: news@sender.test\r\nTo: Jane@sink.test\r\n"
               "Subject: news\r\n\r\nhi\r\n", rcpts=["Jane@sink.test"])
        s.send("orig@sender.test", "From: news@sender.test\r\nSubject: own\r\n\r\nhi\r\n")
        s.send("orig@sender.test", "From: news@sender.test\r\nSubject: inject\r\n\r\nhi\r\n")
        s.delivered(3)
        msgs = {subject(d): d for _, _, d in s.peer.messages}
        m = msgs["news"]
        lu = re.search(rb"\r\nList-Unsubscribe: ([^\r]*(\r\n [^\r]*)*)", m).group(1)
        lu = lu.replace(b"\r\n", b"").decode()
        url = re.search(r"<(https://unsub\.esp\.test/u/[^>]+)>", lu).group(1)
        mailto = re.search(r"<mailto:unsub\+([^@>]+)@esp\.test>", lu).group(1)
        token = url.rsplit("/", 1)[1]
        assert token == mailto, (token, mailto)
        assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in m
        code, out = ctl(s, "unsubscribe", "verify", token)
        assert code == 0 and "recipient jane@sink.test" in out, out
        code, out = ctl(s, "unsubscribe", "verify", token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
        assert code == 1, out
        for t in s.v.verify_all(m):
            h = t["h"].split(":")
            assert "list-unsubscribe" in h and "list-unsubscribe-post" in h, h
        own = msgs["own"]
        assert b"List-Unsubscribe: <https://own.test/u?id=1>,\r\n <mailto:unsub+" in own, own
        s.v.verify_all(own)
        bad = msgs["inject"]
        assert b"List-Unsubscribe" not in bad and b"victim" not in bad, bad
        assert "unsubscribe target" in s.k.read_log() and "refused" in s.k.read_log()
        s.v.verify_all(bad)
    finally:
        s.close()


def test_policies_decode_verp_addresses_and_verify_tokens():
    s = setup()
    try:
        s.send("orig@sender.test", "From: news@sender.test\r\nSubject: first\r\n\r\nhi\r\n",
               rcpts=["Jane@sink.test"])
        mail_from, _, data = s.delivered(1)[0], None, s.peer.messages[0][2]
        addr = s.peer.messages[0][0].strip("<>").split(">")[0]
        token = re.search(rb"unsub\.esp\.test/u/([^>]+)>", data).group(1).decode()
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        for verp, tok in ((addr, token), (addr.replace("jane", "joan"), forged)):
            s.send("orig@sender.test", f"From: news@sender.test\r\nSubject: check\r\n"
                   f"X-Check-Verp: {verp}\r\nX-Check-Token: {tok}\r\n\r\nhi\r\n")
        s.delivered(3)
        good, bad = [d for _, _, d in s.peer.messages[1:]]
        code, out = ctl(s, "verp", "decode", addr)
        mid = re.search(r"message (\S+)", out).group(1)
        assert f"X-Verp-Result: {mid} jane@sink.test".encode() in good, good
        assert b"X-Token-Result: jane@sink.test|\r\n" in good, good
        assert b"X-Verp-Result: nil HMAC mismatch" in bad, bad
        assert b"X-Token-Result: nil\r\n" in bad, bad
    finally:
        s.close()


def test_bad_verp_and_unsubscribe_config_are_errors():
    s = Setup(keys=[("sender.test", "s1", ["--ed25519"])], dkim_ini=DKIM_INI,
              extra_files={"verp.ini": "[main]\nsecret=short\n[domain:x.test]\n[domain:y.test]\nreturn_path=rp.y.test\n",
                           "unsubscribe.ini": "[main]\nsecret=file:missing.key\nurl=ftp://x\n"})
    try:
        r = subprocess.run([KASI,
                            "-c", s.k.dir, "--check-config"], capture_output=True, text=True)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "verp.ini" in out and "[domain:x.test] needs return_path" in out, out
        assert "secret: at least 16 characters" in out, out
        assert "cannot read the secret file" in out and "url must be an http(s) URL" in out, out
    finally:
        s.close()


if __name__ == "__main__":
    run(globals())
