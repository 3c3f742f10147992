"""The reputation matrix end to end: outcomes of real deliveries (a scripted peer answering as
Gmail and Yahoo do, found through MX names of those providers in a local DNS zone) are counted
per egress source, sending domain, provider and tenant; kasictl (table and JSON, over the
control socket, the admin API, and from the snapshot with kasi stopped), GET
/api/v1/admin/reputation, /metrics and kasi.reputation in Lua all show the same counts; the
matrix survives a restart; a bad reputation.ini names its file and line."""
import json
import os
import smtplib
import subprocess
import time
import urllib.request

from harness import KASI, KASICTL, DnsServer, Kasi, free_port, run
from smtp_peer import Peer

ZONE = """
gmail.test.                  IN MX 10 gmail-smtp-in.l.google.com.
gmail-smtp-in.l.google.com.  IN A 127.0.0.1
yahoo.test.                  IN MX 10 mta7.am0.yahoodns.net.
mta7.am0.yahoodns.net.       IN A 127.0.0.1
"""

POLICY = r"""
local M = {}
function M.hook_data_post(conn)
  conn.transaction.notes.tenant = 'acme'
end
function M.hook_rcpt(conn, params)
  if params[1].user ~= 'probe' then return end
  local c = kasi.reputation.get{ source = 'ip2', provider = 'google' }
  local t = kasi.reputation.get{ tenant = 'acme' }
  local l = kasi.reputation.list{ provider = 'google', rollups = true }
  return DENY, string.format('rep attempts=%d delivered=%d deferred=%d rate_limited=%d ' ..
    'tenant=%d rows=%d none=%s', c.attempts, c.delivered, c.deferred,
    c.classes.deferred.rate_limited or 0, t.attempts, #l,
    tostring(kasi.reputation.get{ source = 'nobody', provider = 'google' }))
end
return M
"""

_DNS = None


def dns():
    global _DNS
    if _DNS is None:
        _DNS = DnsServer(ZONE)
    return _DNS


def answer(addr):
    if "slow" in addr:
        return ("450 4.2.1 The user you are trying to contact is receiving mail at a rate that "
                "prevents additional messages from being delivered.")
    if "bad" in addr:
        return "550 5.1.1 The email account that you tried to reach does not exist."
    return None


def start(peer, http_port=None, reputation_ini=""):
    files = {"dns.ini": f"[main]\nservers=127.0.0.1:{dns().port}\ntimeout=0.5\n",
             "outbound.ini": f"disabled=false\nlocal_mx_ok=true\nsmtp_port={peer.port}\n"
                             "temp_fail_intervals=1h\n",
             "egress.ini": "[source:ip2]\naddress=127.0.0.2\n",
             "reputation.ini": reputation_ini}
    if http_port:
        files["http.ini"] = f"[main]\nlisten = 127.0.0.1:{http_port}\n[auth]\ntrusted = 127.0.0.1\n"
    k = Kasi(extra=files)
    with open(os.path.join(k.dir, "config", "plugins"), "w") as f:
        f.write("rep\nrelay\nrcpt_to.in_host_list\n")
    os.makedirs(os.path.join(k.dir, "plugins"), exist_ok=True)
    with open(os.path.join(k.dir, "plugins", "rep.lua"), "w") as f:
        f.write(POLICY)
    return k.start()


def events(k, n, timeout=20):
    path = os.path.join(k.dir, "log", "events.jsonl")
    deadline = time.time() + timeout
    out = []
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                out = [json.loads(l) for l in f if l.endswith("\n")]
            out = [e for e in out if e["type"] != "Reception"]
            if len(out) >= n:
                return out
        time.sleep(0.1)
    raise AssertionError(f"{len(out)} outcome events, wanted {n}: {out}")


def ctl(k, *args):
    r = subprocess.run([KASICTL, "-c", k.dir, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def rows(k, *args):
    rc, out, err = ctl(k, "reputation", "--json", *args)
    assert rc == 0, (out, err)
    return json.loads(out)["rows"]


def find(rs, **key):
    full = {"source": "", "domain": "", "provider": "", "tenant": ""}
    full.update(key)
    got = [r for r in rs if all(r[f] == v for f, v in full.items())]
    assert len(got) == 1, (key, rs)
    return got[0]


def send_batch(k):
    s = smtplib.SMTP("127.0.0.1", k.port)
    s.sendmail("news@shop.test", [f"ok{i}@gmail.test" for i in range(4)] + ["slow@gmail.test"],
               "Subject: a\r\n\r\nhello\r\n")
    s.sendmail("news@shop.test", ["bad@yahoo.test"], "Subject: b\r\n\r\nhello\r\n")
    s.quit()


def check_counts(rs):
    pair = find(rs, source="ip2", provider="google")
    assert (pair["attempts"], pair["delivered"], pair["deferred"]) == (5, 4, 1), pair
    assert pair["classes"]["deferred"] == {"rate_limited": 1}, pair
    assert pair["score"] == 90.0, pair  # 20% deferred x 0.5 points (reputation.ini defaults)
    full = find(rs, source="ip2", domain="shop.test", provider="google")
    assert full["attempts"] == 5, full
    dom = find(rs, domain="shop.test", provider="yahoo")
    assert (dom["attempts"], dom["bounced"]) == (1, 1), dom
    assert dom["classes"]["bounced"] == {"invalid_recipient": 1}, dom
    tenant = find(rs, tenant="acme")
    assert tenant["attempts"] == 6, tenant


def test_outcomes_are_counted_and_shown_everywhere_and_survive_a_restart():
    peer = Peer(rcpt=answer)
    http = free_port()
    k = start(peer, http)
    try:
        send_batch(k)
        events(k, 6)
        check_counts(rows(k))  # through the admin API (http.ini has a listener)
        rc, out, err = ctl(k, "reputation", "--source", "ip2", "--domain", "")
        assert rc == 0, err
        lines = out.splitlines()
        assert lines[0].split()[:4] == ["SOURCE", "DOMAIN", "PROVIDER", "TENANT"], out
        assert any(l.split()[:3] == ["ip2", "*", "google"] and "rate_limited 1" in l
                   for l in lines), out
        assert all(l.split()[1] == "*" for l in lines[1:-1]), out
        with urllib.request.urlopen(
                f"http://127.0.0.1:{http}/api/v1/admin/reputation?provider=yahoo&rollups=true") as r:
            body = json.loads(r.read())
        assert {(x["source"], x["domain"]) for x in body["rows"]} == {("ip2", ""), ("", "shop.test")}, body
        req = urllib.request.Request(f"http://127.0.0.1:{http}/api/v1/admin/reputation?colour=red")
        try:
            urllib.request.urlopen(req)
            raise AssertionError("an unknown filter was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400 and b"unknown filter 'colour'" in e.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics") as r:
            metrics = r.read().decode()
        assert 'kasi_reputation_outcomes{source="ip2",provider="google",outcome="deferred"} 1' \
            in metrics, metrics[-3000:]
        assert 'kasi_reputation_score{source="ip2",provider="google"}' in metrics
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.ehlo("x.test")
        s.mail("news@shop.test")
        code, msg = s.rcpt("probe@gmail.test")
        s.quit()
        assert code == 550 and (b"rep attempts=5 delivered=4 deferred=1 rate_limited=1 tenant=6 "
                                b"rows=2 none=nil") in msg, msg
        # stopped: kasictl reads the snapshot kasi wrote at stop
        assert k.stop() == 0
        rc, out, err = ctl(k, "reputation", "--json")
        assert rc == 0 and "kasi is not running" in err, (out, err)
        check_counts(json.loads(out)["rows"])
        # started again: the windows are back
        k.start()
        check_counts(rows(k))
    finally:
        k.cleanup()
        peer.stop()


def test_the_control_socket_answers_and_refuses_bad_filters():
    peer = Peer(rcpt=answer)
    k = start(peer)
    try:
        send_batch(k)
        events(k, 6)
        check_counts(rows(k))  # no http.ini: over the control socket
        rc, out, err = ctl(k, "reputation", "--limit", "0")
        assert rc == 1 and "limit=0: a number from 1 to 100000" in err, (out, err)
        rc, out, err = ctl(k, "reputation", "--colour", "red")
        assert rc == 1 and "unknown word '--colour'" in err, (out, err)
    finally:
        k.cleanup()
        peer.stop()


def test_a_damaged_snapshot_is_read_as_far_as_it_goes():
    peer = Peer(rcpt=answer)
    k = Kasi(extra={"outbound.ini": "disabled=true\n"})
    now = int(time.time()) // 3600 * 3600
    os.makedirs(os.path.join(k.dir, "queue"), exist_ok=True)
    with open(os.path.join(k.dir, "queue", "reputation.snapshot"), "w") as f:
        f.write(f"kasi-reputation 1 3600 24\nc\tip9\t\tgoogle\t\nb\t{now}\t0:7\n"
                f"b\tgarbage\nc\tip9\t\tyahoo\t\nb\t{now}\t0:2,64:x\n")
    k.start()
    try:
        log = k.read_log()
        assert "reputation.snapshot: 2 lines could not be read (the first is line 4)" in log, log
        rs = rows(k)
        assert find(rs, source="ip9", provider="google")["delivered"] == 7, rs
    finally:
        k.cleanup()
        peer.stop()


def test_a_bad_reputation_ini_names_the_file_and_line():
    k = Kasi(extra={"reputation.ini": "[main]\nmax_cells=10\n[score]\ndeferred = lots\n"
                                      "[main]\nsnapshot_interval = 2d\n"})
    try:
        r = subprocess.run([KASI, "-c", k.dir, "--check-config"], capture_output=True, text=True)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "reputation.ini:4: [score] deferred = lots: a number from 0 to 10000" in out, out
        assert "reputation.ini:6: [main] snapshot_interval = 2d: a duration from 1s to 1h" in out, out
    finally:
        k.cleanup()


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if _DNS:
            _DNS.stop()
