"""Reports that come back, end to end: kasi relays a message with a VERP return path to a
scripted peer, then a DSN for it arrives over SMTP at the VERP address, from a client that
may not relay, and must end as a Bounce event (async) with the original message's id,
recipient and sending domain; an ARF complaint to the feedback address as a Complaint
event; a forged VERP address and a message that is not a report are kept for an operator
and not acted on; a report mailbox opens no relay and never shares a transaction with
relayed recipients."""
import hashlib
import http.client as http_client
import json
import os
import subprocess
import smtplib
import time
import urllib.error
import urllib.request

from harness import KASICTL, Kasi, free_port, run
from outbound import events, kasi
from smtp_peer import Peer

import outbound

SECRET = "0123456789abcdef0123456789abcdef"
FILES = {
    "verp.ini": f"[main]\nsecret = {SECRET}\n[domain:sender.test]\nreturn_path = bounces.sender.test\n",
    "feedback.ini": "[main]\naddresses = fbl@esp.test\n",
}

DSN = """From: Mail Delivery System <MAILER-DAEMON@mx.sink.test>
To: {verp}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<alice@sink.test>: host mx.sink.test[192.0.2.1] said: 550 5.1.1 <alice@sink.test>:
    Recipient address rejected: User unknown (in reply to RCPT TO command)

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sink.test

Final-Recipient: rfc822; alice@sink.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <alice@sink.test>: Recipient address rejected: User unknown

--B
Content-Type: text/rfc822-headers

From: news@sender.test
To: alice@sink.test
Subject: news

--B--
""".replace("\n", "\r\n")

ARF = """From: staff@hotmail.test
To: fbl@esp.test
Subject: complaint about message
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="A"

--A
Content-Type: text/plain

This is an email abuse report.

--A
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{verp}>
Original-Rcpt-To: <alice@sink.test>
Source-IP: 192.0.2.9

--A
Content-Type: message/rfc822

From: news@sender.test
To: alice@sink.test
Subject: news

hello
--A--
""".replace("\n", "\r\n")


def sent_verp_address(k, peer):
    s = smtplib.SMTP("127.0.0.1", k.port)
    s.sendmail("orig@sender.test", ["alice@sink.test"],
               "From: news@sender.test\r\nTo: alice@sink.test\r\nSubject: news\r\n\r\nhello\r\n")
    s.quit()
    (mail_from, rcpts, _), = peer.wait_messages(1)
    verp = mail_from.strip("<>").split(">")[0]
    assert verp.endswith("@bounces.sender.test"), mail_from
    rec = events(k, "Reception", 5)
    return verp, rec[0]["id"]


def report(k, rcpt, body, source="127.0.0.2", sender=""):
    """Sends `body` to `rcpt` from a client that may not relay; the code of the end of DATA."""
    s = smtplib.SMTP("127.0.0.1", k.port, source_address=(source, 0))
    try:
        s.ehlo("mx.sink.test")
        s.mail(sender)
        code, msg = s.rcpt(rcpt)
        assert code == 250, (rcpt, code, msg)
        code, msg = s.data(body.encode())
        return code
    finally:
        s.quit()


def test_a_dsn_to_a_verp_address_ends_as_an_async_bounce_event():
    peer = Peer()
    k = kasi(peer.port, extra=FILES)
    try:
        verp, orig_id = sent_verp_address(k, peer)
        t0 = time.time()
        assert report(k, verp, DSN.format(verp=verp)) == 250
        ev = [e for e in events(k, "Bounce", 10) if e.get("async")]
        took = time.time() - t0
        assert len(ev) == 1, events(k)
        b = ev[0]
        assert (b["id"], b["recipient"], b["matched_by"]) == (orig_id, "alice@sink.test", "verp"), b
        assert (b["reason"], b["class"], b["hard"], b["enhanced"], b["code"]) == \
            ("userunknown", "invalid_recipient", True, "5.1.1", 550), b
        assert b["sending_domain"] == "sender.test" and b["format"] == "rfc3464", b
        print(f"DSN over SMTP to its Bounce event: {took:.2f} s")
        # the report itself is finished like any message: it leaves the spool
        deadline = time.time() + 5
        while time.time() < deadline and k.queued_ids():
            time.sleep(0.1)
        assert not k.queued_ids()
        # a complaint to the feedback address, about the same message
        assert report(k, "fbl@esp.test", ARF.format(verp=verp), sender="fbl@hotmail.test") == 250
        c = events(k, "Complaint", 10)
        assert len(c) == 1, events(k)
        c = c[0]
        assert (c["id"], c["recipient"], c["feedback_type"], c["matched_by"]) == \
            (orig_id, "alice@sink.test", "abuse", "verp"), c
        assert c["source_ip"] == "192.0.2.9", c
        # both count against the sending domain in the reputation matrix (no egress source:
        # a DSN does not say which one sent, and 192.0.2.9 is not one of ours)
        rc, out, err = k.ctl("reputation", "--json", "--domain", "sender.test", "--source", "")
        assert rc == 0, err
        rows = json.loads(out)["rows"]
        assert len(rows) == 1 and (rows[0]["async_bounce"], rows[0]["complaint"]) == (1, 1), rows
        assert rows[0]["classes"]["async_bounce"] == {"invalid_recipient": 1}, rows
        assert rows[0]["delivered"] == 1, rows  # the original message, delivered
    finally:
        k.cleanup()
        peer.stop()


def test_a_report_posted_to_the_api_is_read_like_one_over_smtp():
    peer = Peer()
    http = free_port()
    files = dict(FILES)
    files["http.ini"] = f"[main]\nlisten = 127.0.0.1:{http}\n[auth]\ntrusted = 127.0.0.1\n"
    k = kasi(peer.port, extra=files)
    try:
        verp, orig_id = sent_verp_address(k, peer)
        body = ARF.format(verp=verp).replace("\r\n", "\n").encode()  # LF-only, as webhooks do
        req = urllib.request.Request(f"http://127.0.0.1:{http}/api/v1/reports", data=body,
                                     method="POST", headers={"Content-Type": "message/rfc822"})
        try:
            r0 = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            raise AssertionError(e.read().decode())
        with r0 as r:
            assert r.status == 202
            rid = json.loads(r.read())["id"]
        c = events(k, "Complaint", 10)
        assert c and c[0]["id"] == orig_id and c[0]["report_id"] == rid, events(k)
        for bad, field in ((b"", "body"), (body, "to")):
            url = f"http://127.0.0.1:{http}/api/v1/reports" + ("?to=x@elsewhere.test" if bad else "")
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=bad, method="POST"))
                assert False, "accepted"
            except urllib.error.HTTPError as e:
                assert e.code == 400 and field in e.read().decode(), (e.code, field)
    finally:
        k.cleanup()
        peer.stop()


def test_forged_and_unreadable_reports_are_kept_and_not_acted_on():
    peer = Peer()
    k = kasi(peer.port, extra=FILES)
    try:
        verp, _ = sent_verp_address(k, peer)
        local, domain = verp.split("@")
        parts = local.split("-")
        parts[1] = ("a" if parts[1][0] != "a" else "b") + parts[1][1:]  # another MAC
        forged = "-".join(parts) + "@" + domain
        assert report(k, forged, DSN.format(verp=forged)) == 250
        assert report(k, "fbl@esp.test", "From: someone@else.test\r\nSubject: hi\r\n\r\n"
                      "just saying hello\r\n") == 250
        kept = os.path.join(k.dir, "queue", "reports-kept")
        deadline = time.time() + 10
        while time.time() < deadline and len(os.listdir(kept) if os.path.isdir(kept) else []) < 2:
            time.sleep(0.1)
        assert len(os.listdir(kept)) == 2, os.listdir(kept)
        assert not [e for e in events(k, "Bounce") if e.get("async")], events(k)
        # the copy is kept on the thread pool; the log line follows on the loop
        deadline = time.time() + 10
        log = k.read_log()
        while time.time() < deadline and log.count("(not acted on)") < 2:
            time.sleep(0.1)
            log = k.read_log()
        assert "forged" in log and "not acted on" in log, log[-3000:]
    finally:
        k.cleanup()
        peer.stop()


def test_a_report_mailbox_opens_no_relay_and_is_not_mixed():
    peer = Peer()
    k = kasi(peer.port, extra=FILES)
    try:
        s = smtplib.SMTP("127.0.0.1", k.port, source_address=("127.0.0.2", 0))
        s.ehlo("x.test")
        s.mail("")
        assert s.rcpt("someone@bounces.sender.test")[0] == 250
        assert s.rcpt("alice@sink.test")[0] == 550      # no relay from here, as before
        assert s.rcpt("fbl@esp.test")[0] == 250
        s.rset()
        s.mail("x@x.test")
        assert s.rcpt("alice@sink.test")[0] == 550      # still no relay from here
        assert s.rcpt("other@esp.test")[0] == 550       # only the listed address
        s.quit()
        # a relaying client: relayed recipients first, then a report mailbox is refused
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.ehlo("x.test")
        s.mail("orig@sender.test")
        assert s.rcpt("alice@sink.test")[0] == 250
        assert s.rcpt("fbl@esp.test")[0] == 452
        s.quit()
    finally:
        k.cleanup()
        peer.stop()


def test_hard_bounces_and_complaints_suppress_at_reception_and_before_delivery():
    def rcpt(addr):
        return "550 5.1.1 <bob@sink.test>: Recipient address rejected: User unknown" \
            if "bob" in addr else None
    peer = Peer(rcpt=rcpt)
    http = free_port()
    files = dict(FILES)
    files["http.ini"] = f"[main]\nlisten = 127.0.0.1:{http}\n[auth]\ntrusted = 127.0.0.1\n"
    k = kasi(peer.port, extra=files)
    try:
        verp, orig_id = sent_verp_address(k, peer)
        # an async hard bounce (a DSN) and a synchronous one (bob's 550 while delivering)
        assert report(k, verp, DSN.format(verp=verp)) == 250
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.sendmail("orig@sender.test", ["bob@sink.test"], "Subject: b\r\n\r\nhi\r\n")
        s.quit()
        events(k, "Bounce", 10, n=2)
        deadline = time.time() + 10
        refused = {}
        while time.time() < deadline and len(refused) < 2:
            s = smtplib.SMTP("127.0.0.1", k.port)
            s.ehlo("x.test")
            s.mail("orig@sender.test")
            for who in ("alice@sink.test", "Bob@Sink.test"):
                code, msg = s.rcpt(who)
                if code == 550:
                    refused[who] = msg.decode()
            assert s.rcpt("carol@sink.test")[0] == 250  # nobody else
            s.quit()
            time.sleep(0.2)
        assert set(refused) == {"alice@sink.test", "Bob@Sink.test"}, refused
        assert "is suppressed (hard_bounce since" in refused["alice@sink.test"], refused
        sup = events(k, "Suppressed", 5, n=2)
        assert {e["recipient"] for e in sup} >= {"alice@sink.test", "bob@sink.test"}, sup
        assert all(e["reason"] == "hard_bounce" and e["where"] == "rcpt" for e in sup), sup
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
        assert 'kasi_suppressions{reason="hard_bounce"} 2' in metrics, metrics[-2000:]
        assert 'kasi_reports_total{kind="bounce"} 1' in metrics, metrics[-2000:]
        assert "kasi_suppression_refusals_total" in metrics
        # kept across a restart (the store is on disk)
        k.stop()
        k.start()
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.ehlo("x.test")
        s.mail("orig@sender.test")
        assert s.rcpt("alice@sink.test")[0] == 550
        s.quit()
    finally:
        k.cleanup()
        peer.stop()


def test_at_reception_accept_drops_the_recipient_before_delivery():
    peer = Peer()
    files = dict(FILES)
    files["suppression.ini"] = "[main]\nat_reception = accept\n"
    k = kasi(peer.port, extra=files)
    try:
        verp, _ = sent_verp_address(k, peer)
        assert report(k, "fbl@esp.test", ARF.format(verp=verp), sender="fbl@hotmail.test") == 250
        events(k, "Complaint", 10)
        time.sleep(0.5)
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.sendmail("orig@sender.test", ["alice@sink.test", "dave@sink.test"],
                   "From: news@sender.test\r\nSubject: again\r\n\r\nhi\r\n")
        s.quit()
        sup = events(k, "Suppressed", 10)
        assert sup and sup[0]["recipient"] == "alice@sink.test" and \
            sup[0]["where"] == "delivery" and sup[0]["reason"] == "complaint", sup
        msgs = peer.wait_messages(2)  # the first message and dave's
        time.sleep(0.5)
        got = [m for m in peer.messages if b"Subject: again" in m[2]]
        assert len(got) == 1 and got[0][1] == ["<dave@sink.test>"], [m[1] for m in msgs]
        # alice's part is finished as a bounce (the sender gets a DSN) that says why
        b = [e for e in events(k, "Bounce", 5) if e["recipient"] == "alice@sink.test"]
        assert b and b[0]["code"] == 550 and "recipient suppressed (complaint" in \
            b[0]["response"], events(k)
    finally:
        k.cleanup()
        peer.stop()


REPORT_POLICY = """
local M = {}
function M.hook_inbound_report(hmail, r)
  kasi.log.notice('policy sees ' .. r.kind .. ' for ' .. tostring(r.rcpt) .. ' of ' .. r.id ..
                  ' suppress=' .. tostring(r.suppress) .. ' ' .. tostring(r.suppression_reason))
  if r.kind == 'complaint' and r.user_agent == 'Veto/1.0' then return DENY, 'not our FBL' end
  if r.kind == 'bounce' and r.reason == 'userunknown' then
    return OK, { scope = 'tenant:acme', expires = 3600 }
  end
end
function M.hook_rcpt(conn, params)
  local a = params[1].user .. '@' .. params[1].host
  if a:find('^lua%-add') then
    local ok, err = kasi.suppression.add(a, { reason = 'manual', event = 'rcpt-hook' })
    if not ok then return DENYSOFT, err end
    return DENY, 'added by the policy'
  end
  local e = kasi.suppression.check(a, { 'tenant:acme' })
  if e then return DENY, 'policy: suppressed (' .. e.reason .. ' in ' .. e.scope .. ')' end
end
return M
"""


def test_the_inbound_report_hook_changes_and_vetoes_and_lua_checks_and_adds():
    """A Lua policy moves a hard bounce's suppression to a tenant scope with an expiry,
    vetoes a complaint (no event, no suppression), checks the list at RCPT in that scope,
    and adds an address durably from a hook."""
    peer = Peer()
    from outbound import dns
    files = {"dns.ini": f"[main]\nservers=127.0.0.1:{dns().port}\ntimeout=0.5\n",
             "outbound.ini": f"disabled=false\nlocal_mx_ok=true\nsmtp_port={peer.port}\n"
                             "temp_fail_intervals=5s\n"}
    files.update(FILES)
    k = Kasi(extra=files)
    with open(os.path.join(k.dir, "config", "plugins"), "w") as f:
        f.write("reports\nrelay\nrcpt_to.in_host_list\n")  # before the ones that accept
    os.makedirs(os.path.join(k.dir, "plugins"), exist_ok=True)
    with open(os.path.join(k.dir, "plugins", "reports.lua"), "w") as f:
        f.write(REPORT_POLICY)
    k.start()
    try:
        verp, orig_id = sent_verp_address(k, peer)
        assert report(k, verp, DSN.format(verp=verp)) == 250
        b = [e for e in events(k, "Bounce", 10) if e.get("async")]
        assert len(b) == 1 and b[0]["id"] == orig_id, events(k)
        log = k.read_log()
        assert f"policy sees bounce for <alice@sink.test> of {orig_id} suppress=true hard_bounce" \
            in log, log[-3000:]
        rc, out = ctl(k, "suppress", "check", "alice@sink.test", "tenant:acme")
        assert rc == 0 and "tenant:acme" in out and "hard_bounce" in out, out
        rc, out = ctl(k, "suppress", "check", "alice@sink.test")
        assert "not suppressed" in out or "tenant:acme" not in out, out
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.ehlo("x.test")
        s.mail("orig@sender.test")
        code, msg = s.rcpt("alice@sink.test")  # not global: the policy's check refuses it
        assert code == 550 and b"policy: suppressed (hard_bounce in tenant:acme)" in msg, msg
        # a complaint the policy vetoes: no event, no suppression
        arf = ARF.format(verp=verp).replace("SomeGenerator/1.0", "Veto/1.0")
        assert report(k, "fbl@esp.test", arf, sender="fbl@hotmail.test") == 250
        deadline = time.time() + 10
        while time.time() < deadline and "vetoed" not in k.read_log():
            time.sleep(0.1)
        assert "inbound_report: complaint for alice@sink.test vetoed: not our FBL" in \
            k.read_log(), k.read_log()[-2000:]
        assert not events(k, "Complaint"), events(k)
        rc, out = ctl(k, "suppress", "list")
        assert "complaint" not in out, out
        # kasi.suppression.add from a hook: durable when the hook goes on
        code, msg = s.rcpt("lua-add-1@sink.test")
        assert code == 550 and b"added by the policy" in msg, msg
        code, msg = s.rcpt("lua-add-1@sink.test".replace("lua-add-1", "LUA-add-1"))
        assert code == 550 and b"manual" in msg, msg  # the policy's check sees it at once
        s.quit()
        rc, out = ctl(k, "suppress", "check", "lua-add-1@sink.test")
        assert rc == 0 and "manual" in out and "rcpt-hook" in out, out
    finally:
        k.cleanup()
        peer.stop()


def ctl(k, *args):
    r = subprocess.run([KASICTL, "-c", k.dir, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_kasictl_suppress_checks_lists_adds_and_removes_over_socket_and_http():
    peer = Peer()
    for via_http in (False, True):
        files = dict(FILES)
        if via_http:
            http = free_port()
            files["http.ini"] = f"[main]\nlisten = 127.0.0.1:{http}\n[auth]\ntrusted = 127.0.0.1\n"
        k = kasi(peer.port, extra=files)
        try:
            assert ctl(k, "suppress", "check", "eve@sink.test") == (0, "ok: not suppressed\n")
            rc, out = ctl(k, "suppress", "add", "Eve@Sink.test", "-", "manual", "30d")
            assert rc == 0 and "added eve@sink.test" in out, out
            rc, out = ctl(k, "suppress", "add", "frank@sink.test", "tenant:acme", "complaint")
            assert rc == 0, out
            rc, out = ctl(k, "suppress", "check", "eve@sink.test")
            assert rc == 0 and "reason=manual" in out and "expires=" in out, out
            assert "not suppressed" in ctl(k, "suppress", "check", "frank@sink.test")[1]
            assert "reason=complaint" in ctl(k, "suppress", "check", "frank@sink.test",
                                             "tenant:acme")[1]
            rc, out = ctl(k, "suppress", "list")
            assert rc == 0 and "eve@sink.test" in out and "frank@sink.test" in out, out
            rc, out = ctl(k, "suppress", "list", "tenant:acme")
            assert "frank@sink.test" in out and "eve@sink.test" not in out, out
            # refused at RCPT now, until removed
            s = smtplib.SMTP("127.0.0.1", k.port)
            s.ehlo("x.test")
            s.mail("orig@sender.test")
            assert s.rcpt("eve@sink.test")[0] == 550
            s.quit()
            rc, out = ctl(k, "suppress", "remove", "eve@sink.test")
            assert rc == 0 and "removed eve@sink.test" in out, out
            assert "not suppressed" in ctl(k, "suppress", "check", "eve@sink.test")[1]
            rc, out = ctl(k, "suppress", "add", "eve@sink.test", "-", "nonsense")
            assert rc != 0 and "unknown reason" in out, out
            rc, out = ctl(k, "suppress", "add", "not-an-address")
            assert rc != 0, out
            # with kasi stopped: export, then import into another node's list
            rc, out = ctl(k, "suppress", "export", os.path.join(k.dir, "x.csv"))
            if via_http:  # through the running kasi's API
                assert rc == 0 and "exported 1 entries" in out, out
            else:
                assert rc != 0 and "stop it" in out, out  # kasi holds the list
            k.stop()  # nothing answers on the API now: kasictl opens the list itself
            csv = os.path.join(k.dir, "list.csv")
            rc, out = ctl(k, "suppress", "export", csv)
            assert rc == 0 and "exported 1 entries" in out, out
            other = kasi(peer.port, extra=FILES)
            other.stop()
            with open(csv, "a") as f:
                f.write("grace@sink.test,,hard_bounce,1700000000,0,imported\nnot an address,,manual,0,0,\n")
            rc, out = ctl(other, "suppress", "import", csv)
            assert rc == 1 and "imported 2 of 3 rows" in out and "list.csv:4:" in out, out
            other.start()
            s = smtplib.SMTP("127.0.0.1", other.port)
            s.ehlo("x.test")
            s.mail("orig@sender.test")
            assert s.rcpt("grace@sink.test")[0] == 550
            assert s.rcpt("frank@sink.test")[0] == 250  # its entry is for tenant:acme only
            s.quit()
            other.cleanup()
        finally:
            k.cleanup()
    peer.stop()


def api(http, path, body=None, ctype="text/csv"):
    """(status, headers, body text) of one request to the admin API."""
    req = urllib.request.Request(f"http://127.0.0.1:{http}{path}", data=body,
                                 headers={"Content-Type": ctype} if body is not None else {},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def untrusted(http, method, path, token, body=None):
    """The status of a request from 127.0.0.2 (not a trusted network) with a bearer token."""
    c = http_client.HTTPConnection("127.0.0.1", http, source_address=("127.0.0.2", 0), timeout=10)
    try:
        c.request(method, path, body=body, headers={"Authorization": f"Bearer {token}",
                                                   "Content-Type": "text/csv"})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def rcpt_codes(k, sender, rcpts):
    s = smtplib.SMTP("127.0.0.1", k.port)
    s.ehlo("x.test")
    s.mail(sender)
    codes = [s.rcpt(r)[0] for r in rcpts]
    s.quit()
    return codes


def test_suppress_import_export_and_list_paging_while_kasi_runs():
    peer = Peer()
    http = free_port()
    files = dict(FILES)
    # a small body limit, so that kasictl must cut a file into many pieces
    files["http.ini"] = (f"[main]\nlisten = 127.0.0.1:{http}\nmax_body_bytes = 4096\n"
                         "[auth]\ntrusted = 127.0.0.1\n")
    files["http_tokens"] = "".join(
        f"{name} {scopes} {hashlib.sha256(name.encode()).hexdigest()}\n"
        for name, scopes in (("sender-token", "send"), ("admin-token", "admin")))
    k = kasi(peer.port, extra=files)
    try:
        # kasictl reads the file, reports the bad rows with their lines, sends the rest
        src = os.path.join(k.dir, "in.csv")
        with open(src, "w") as f:
            f.write("address,scope,reason\nHenry@Sink.test,,hard_bounce\nnot an address,,manual\n"
                    "ivy@sink.test,domain:sender.test,complaint\njudy@sink.test,,bogus\n")
        rc, out = ctl(k, "suppress", "import", src)
        assert rc == 1 and "imported 2 of 4 rows into the running kasi (2 problems)" in out, out
        assert "in.csv:3: " in out and "in.csv:5: unknown reason 'bogus'" in out, out
        assert "judy" not in ctl(k, "suppress", "list")[1]
        # on disk and in force when kasictl says so: refused at RCPT at once
        assert rcpt_codes(k, "orig@sender.test", ["henry@sink.test", "ivy@sink.test",
                                                  "judy@sink.test"]) == [550, 550, 250]
        assert rcpt_codes(k, "orig@other.test", ["ivy@sink.test"]) == [250]  # its scope only
        # the API itself: a count and the skipped row's line
        st, _, body = api(http, "/api/v1/admin/suppressions/import",
                          b"kate@sink.test\r\nbad row here\r\n\r\nlen@sink.test,,manual,0,0,x\r\n")
        r = json.loads(body)
        assert st == 200 and r["imported"] == 2 and r["rows"] == 3 and r["skipped"] == 1, body
        assert r["problems"][0]["line"] == 2 and "local@domain" in r["problems"][0]["message"], body
        st, _, body = api(http, "/api/v1/admin/suppressions/import", b"{}", "application/json")
        assert st == 415, body
        # export through kasictl (pages of the API) and one page of the API with a filter
        dst = os.path.join(k.dir, "out.csv")
        rc, out = ctl(k, "suppress", "export", dst)
        assert rc == 0 and "exported 4 entries" in out, out
        text = open(dst, newline="").read()
        assert text.startswith("address,scope,reason,created,expires,event\r\n"), text
        assert text.count("address,scope") == 1, text
        assert "\r\nhenry@sink.test,,hard_bounce," in text, text
        assert "\r\nivy@sink.test,domain:sender.test,complaint," in text, text
        assert "\r\nkate@sink.test,,import," in text and "len@sink.test" in text, text
        st, hdr, body = api(http, "/api/v1/admin/suppressions/export?scope=domain%3Asender.test")
        assert st == 200 and hdr["Kasi-Next"] == "0" and hdr["Kasi-Count"] == "1", (hdr, body)
        assert body.splitlines()[1].startswith("ivy@sink.test,"), body
        st, hdr, body = api(http, "/api/v1/admin/suppressions/export?limit=1")
        assert st == 200 and hdr["Kasi-Next"] != "0" and len(body.splitlines()) == 2, body
        # the admin scope, as the other admin endpoints
        for method, path in (("GET", "/api/v1/admin/suppressions/export"),
                             ("POST", "/api/v1/admin/suppressions/import")):
            body = b"mallory@sink.test\n" if method == "POST" else None
            assert untrusted(http, method, path, "sender-token", body) == 403, path
            assert untrusted(http, method, path, "admin-token", body) == 200, path
        assert "mallory@sink.test" in ctl(k, "suppress", "list")[1]  # the admin's import
        ctl(k, "suppress", "remove", "mallory@sink.test")
        for bad in ("limit=0", "limit=100001", "reason=bogus", "after=x"):
            st, _, body = api(http, "/api/v1/admin/suppressions/export?" + bad)
            assert st == 400, (bad, body)
        st, _, body = api(http, "/api/v1/admin/suppressions/import", b"x" * 5000)
        assert st == 413, body  # over max_body_bytes
        # list LIMIT 1 walks every entry through the cursor, over the API and the socket
        for via in ([], ["--socket"]):
            seen, after = [], "0"
            for _ in range(10):
                rc, out = ctl(k, *via, "suppress", "list", "*", "1", after)
                lines = out.strip().splitlines()
                assert rc == 0 and lines[-1].startswith("next: "), out
                seen += [line.split(",")[0] for line in lines[1:-1]]
                after = lines[-1][len("next: "):]
                if after == "0":
                    break
            assert sorted(seen) == ["henry@sink.test", "ivy@sink.test", "kate@sink.test",
                                    "len@sink.test"], (via, seen)
        # a file larger than a request may be: 300 rows in pieces of at most 2 KiB
        with open(src, "w") as f:
            f.write("".join(f"bulk{i}@sink.test,tenant:bulk,unsubscribe,0,0,some-event-{i}\n"
                            for i in range(300)))
        rc, out = ctl(k, "suppress", "import", src)
        assert rc == 0 and "imported 300 of 300 rows into the running kasi (0 problems)" in out, out
        rc, out = ctl(k, "suppress", "list", "tenant:bulk", "1000")
        assert rc == 0 and out.count("@sink.test,tenant:bulk,unsubscribe,") == 300, out[-500:]
    finally:
        k.cleanup()
        peer.stop()


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if outbound._DNS:
            outbound._DNS.proc.kill()
