"""Every delivery outcome classified, end to end: kasi relays to a scripted SMTP peer on
loopback (smtp_peer.py) and to the DNS fixture's unreachable, null-MX and missing domains,
and the classification (reason, class, hard, scope, provider) must reach the events, the
DSN, kasi_recipients_total and the queue summary; a Lua classify_response hook changes
verdicts, reasons and retry delays, and a broken one leaves the rules' answer."""
import json
import os
import smtplib
import time

from harness import free_port, run
from outbound import dns, events, kasi, send, wait_count
from smtp_peer import Peer

import outbound


def lua_policy(k, src):
    with open(os.path.join(k.dir, "config", "plugins"), "a") as f:
        f.write("policy\n")
    os.makedirs(os.path.join(k.dir, "plugins"), exist_ok=True)
    with open(os.path.join(k.dir, "plugins", "policy.lua"), "w") as f:
        f.write(src)


def by_rcpt(evs):
    return {e["recipient"]: e for e in evs}


def test_events_dsn_metrics_and_summary_carry_the_classification():
    def rcpt(addr):
        if "unknown" in addr:
            return "550 5.1.1 <unknown@sink.test>: Recipient address rejected: User unknown"
        if "full" in addr:
            return "452 4.2.2 Mailbox full, try again later"
        if "blocked" in addr:
            return "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using " \
                   "zen.spamhaus.org"
        return None
    peer = Peer(rcpt=rcpt)
    http = free_port()  # kasictl metrics reads the full /metrics over the HTTP API
    k = kasi(peer.port, "temp_fail_intervals=1h\n",
             extra={"http.ini": f"[main]\nlisten = 127.0.0.1:{http}\n[auth]\n"
                                "trusted = 127.0.0.1\n"})
    try:
        send(k, ["good@sink.test", "unknown@sink.test", "blocked@sink.test"],
             "Subject: c\r\nMessage-ID: <c@test>\r\n\r\nbody\r\n")
        send(k, ["full@sink.test"])
        dl = by_rcpt(events(k, "Delivery", 5))
        assert dl["good@sink.test"]["reason"] == "delivered", dl
        assert dl["good@sink.test"]["class"] == "delivered", dl
        bo = by_rcpt(events(k, "Bounce", 5, n=2))
        u = bo["unknown@sink.test"]
        assert (u["reason"], u["class"], u["hard"], u["scope"]) == \
            ("userunknown", "invalid_recipient", True, "recipient"), u
        b = bo["blocked@sink.test"]
        assert (b["reason"], b["class"], b["hard"], b["scope"]) == \
            ("blocked", "reputation_block", False, "sender"), b
        tf = by_rcpt(events(k, "TransientFailure", 5))
        f = tf["full@sink.test"]
        assert (f["reason"], f["class"], f["hard"]) == ("mailboxfull", "mailbox_full", False), f
        assert all(e["provider"] == "other" for e in list(bo.values()) + list(tf.values()))
        # the DSN: one extension field per failed recipient, and words for the sender
        msgs = peer.wait_messages(2)
        dsn = [m for m in msgs if m[1] == ["<sender@sink.test>"]][0][2].decode()
        report = dsn.split("message/delivery-status")[1]
        assert "Final-Recipient: rfc822; unknown@sink.test\r\nAction: failed\r\n" in report
        assert "X-Kasi-Classification: reason=userunknown; class=invalid_recipient; " \
               "hard=yes; scope=recipient\r\n" in report, report
        assert "X-Kasi-Classification: reason=blocked; class=reputation_block; hard=no; " \
               "scope=sender\r\n" in report, report
        text = dsn.split("message/delivery-status")[0]
        assert "unknown@sink.test: 550 5.1.1" in text, text
        assert "the address does not exist (reason: userunknown, class: invalid_recipient)" \
            in text, text
        # metrics: class and reason labels; no zero series
        rc, out, err = k.ctl("metrics")
        assert rc == 0, err
        lines = [l for l in out.splitlines() if l.startswith("kasi_recipients_total{")]
        assert any('outcome="bounced"' in l and 'class="invalid_recipient"' in l and
                   'reason="userunknown"' in l and l.endswith(" 1") for l in lines), lines
        assert any('outcome="deferred"' in l and 'class="mailbox_full"' in l for l in lines)
        assert any('outcome="delivered"' in l and 'class="delivered"' in l for l in lines)
        assert not any(l.endswith(" 0") for l in lines), lines
        # the queue summary: the last classified errors of the queue, newest first
        rc, out, err = k.ctl("queue")
        assert rc == 0, err
        q = json.loads(out)
        errs = {e["queue"]: e["errors"] for e in q["recent_errors"]}
        mine = errs["//sink.test"]
        got = {(e["verdict"], e["reason"], e["class"]) for e in mine}
        assert ("bounce", "userunknown", "invalid_recipient") in got, mine
        assert ("defer", "mailboxfull", "mailbox_full") in got, mine
        assert all(e["reply"] and e["time_ms"] > 0 and e["count"] >= 1 for e in mine), mine
        sched = [s for s in q["scheduled_queues"] if s["queue"] == "//sink.test"]
        assert sched and "(mailboxfull, mailbox_full)" in sched[0]["last_deferral"], sched
    finally:
        k.cleanup()
        peer.stop()


def test_failures_without_a_reply_are_classified():
    """Connection refused, a 554 greeting (the server's words count, not the connection),
    NXDOMAIN and null MX."""
    peer = Peer(greeting="554 5.7.1 mx.sink.test: client host blocked using zen.spamhaus.org")
    k = kasi(peer.port, "temp_fail_intervals=1h\n")
    try:
        send(k, ["a@sink.test", "b@down.test", "c@nosuch.test", "d@nullmx.test"])
        tf = by_rcpt(events(k, "TransientFailure", 10, n=2))
        a = tf["a@sink.test"]
        assert (a["reason"], a["class"], a["scope"]) == ("blocked", "reputation_block",
                                                          "sender"), a
        assert a["code"] == 421, a  # Kasi's own reply: the site is not reached, it is retried
        b = tf["b@down.test"]
        assert (b["reason"], b["class"], b["scope"]) == ("networkerror", "connection_failure",
                                                          "destination"), b
        bo = by_rcpt(events(k, "Bounce", 5, n=2))
        c = bo["c@nosuch.test"]
        assert (c["reason"], c["class"], c["hard"]) == ("hostunknown", "invalid_recipient",
                                                         True), c
        d = bo["d@nullmx.test"]
        assert (d["reason"], d["hard"]) == ("notaccept", True), d
    finally:
        k.cleanup()
        peer.stop()


def test_a_failure_of_an_earlier_attempt_gets_its_dsn_when_the_rest_is_delivered():
    tries = {}

    def rcpt(addr):
        user = addr.split("@")[0].lstrip("<")
        tries[user] = tries.get(user, 0) + 1
        if user == "bad":
            return "550 5.1.1 User unknown"
        if user == "later" and tries[user] == 1:
            return "451 4.3.0 Try again"
        return None
    peer = Peer(rcpt=rcpt)
    k = kasi(peer.port, "temp_fail_intervals=5s\n")
    try:
        send(k, ["bad@sink.test", "later@sink.test"])
        msgs = peer.wait_messages(2, 15)
        got = sorted(m[1][0] for m in msgs)
        assert got == ["<later@sink.test>", "<sender@sink.test>"], got
        dsn = [m for m in msgs if m[1] == ["<sender@sink.test>"]][0][2].decode()
        report = dsn.split("message/delivery-status")[1]
        assert "Final-Recipient: rfc822; bad@sink.test\r\nAction: failed" in report, report
        assert "later@sink.test" not in report.split("text/rfc822-headers")[0], report
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_operator_rules_apply_at_a_reload_and_a_broken_file_keeps_the_running_rules():
    peer = Peer(rcpt=lambda addr: "550 5.1.1 User unknown" if "x" in addr else None)
    k = kasi(peer.port, "temp_fail_intervals=1h\n")
    rules = os.path.join(k.dir, "config", "classify.rules")
    try:
        send(k, ["x1@sink.test"], sender="")
        assert events(k, "Bounce", 5)[0]["reason"] == "userunknown"
        with open(rules, "w") as f:
            f.write("# this gateway says user unknown when it means blocked\n"
                    "rule blocked \"user unknown\" host=mx.sink.test class=spam_block\n")
        rc, out, err = k.ctl("reload")
        assert rc == 0, (out, err)
        send(k, ["x2@sink.test"], sender="")
        e = by_rcpt(events(k, "Bounce", 5, n=2))["x2@sink.test"]
        assert (e["reason"], e["class"]) == ("blocked", "spam_block"), e
        with open(rules, "a") as f:
            f.write("rule notareason \"x\"\n")
        rc, out, err = k.ctl("reload")
        assert rc != 0 and "classify.rules:3:" in out + err, (rc, out, err)
        send(k, ["x3@sink.test"], sender="")
        e = by_rcpt(events(k, "Bounce", 5, n=3))["x3@sink.test"]
        assert e["reason"] == "blocked", e  # the rules that loaded last are still in force
    finally:
        k.cleanup()
        peer.stop()


CLASSIFY_POLICY = r"""
local M = {}
function M.hook_classify_response(hmail, r)
  kasi.log.info('EV classify', r.rcpt.user, r.kind, r.code, r.command, r.reason, r['class'],
                r.verdict, r.provider, r.host)
  if r.rcpt.user == 'quota' and r.reason == 'mailboxfull' then
    return OK, { verdict = 'bounce' }
  end
  if r.rcpt.user == 'later' then
    return DENYSOFT, '1'
  end
  if r.rcpt.user == 'renamed' then
    return OK, { reason = 'blocked' }
  end
  if r.rcpt.user == 'bogus' then
    return OK, { colour = 'red' }
  end
  if r.rcpt.user == 'thrower' then
    error('boom')
  end
  if r.rcpt.user == 'unknownname' then
    return OK, { reason = 'notareason' }
  end
end
function M.hook_bounce(hmail, params)
  for i, rc in ipairs(params.rcpts) do
    kasi.log.info('EV bounce', rc.user, params.classifications[i].reason)
  end
end
function M.hook_deferred(hmail, params)
  kasi.log.info('EV deferred', params.rcpts[1].user, params.reason, params['class'])
end
return M
"""


def test_classify_response_hook_changes_verdicts_reasons_and_delays():
    tries = {}

    def rcpt(addr):
        user = addr.split("@")[0].lstrip("<")
        tries[user] = tries.get(user, 0) + 1
        if user == "quota":
            return "452 4.2.2 Mailbox over quota"
        if user == "later":
            return "550 5.7.1 Try again later" if tries[user] == 1 else None
        if user in ("renamed", "bogus", "thrower", "unknownname"):
            return "550 5.1.1 User unknown"
        return None
    peer = Peer(rcpt=rcpt)
    k = kasi(peer.port, "temp_fail_intervals=1h\n")
    try:
        k.stop()
        lua_policy(k, CLASSIFY_POLICY)
        k.start()
        users = ["good", "quota", "later", "renamed", "bogus", "thrower", "unknownname"]
        send(k, [u + "@sink.test" for u in users], sender="")  # no DSN: only the events
        bo = by_rcpt(events(k, "Bounce", 10, n=5))
        # a 4xx made a bounce: the rules' reason stays, the DSN status is permanent
        q = bo["quota@sink.test"]
        assert (q["reason"], q["code"]) == ("mailboxfull", 452), q
        # OK with a known reason: its class and scope follow
        r = bo["renamed@sink.test"]
        assert (r["reason"], r["class"], r["scope"]) == ("blocked", "reputation_block",
                                                          "sender"), r
        # a bad table, an error and an unknown name: logged, the rules' answer stands
        for u in ("bogus", "thrower", "unknownname"):
            e = bo[u + "@sink.test"]
            assert (e["reason"], e["class"]) == ("userunknown", "invalid_recipient"), e
        log = k.read_log()
        assert "classify_response: unknown field 'colour'" in log, log
        assert "boom" in log
        assert "unknown reason 'notareason' ignored" in log
        # a 5xx made a deferral, retried after the hook's 1 s (the schedule says 1 h)
        tf = by_rcpt(events(k, "TransientFailure", 5))
        later = tf["later@sink.test"]
        assert later["code"] == 550 and later["next_due_ms"] - later["time_ms"] < 5000, later
        dl = by_rcpt(events(k, "Delivery", 10, n=2))
        assert "later@sink.test" in dl and dl["later@sink.test"]["attempt"] == 2, dl
        # the hook saw what the rules said; deferred and bounce hooks get the classification
        seen = [l.split("EV classify", 1)[1].strip() for l in log.splitlines()
                if "EV classify" in l]
        assert any(l.startswith("quota reply 452 RCPT mailboxfull mailbox_full defer other")
                   for l in seen), seen
        assert not any(l.startswith("good ") for l in seen), seen  # a 2xx is not asked
        dfr = [l.split("EV deferred", 1)[1].split() for l in log.splitlines()
               if "EV deferred" in l]
        assert any(d[0] == "later" and len(d) == 3 for d in dfr), dfr
        wait_count(k, 0)  # the message is done: the bounce hook has run
        log = k.read_log()
        bl = [l.split("EV bounce", 1)[1].strip() for l in log.splitlines() if "EV bounce" in l]
        assert "quota mailboxfull" in bl and "renamed blocked" in bl, bl
    finally:
        k.cleanup()
        peer.stop()


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if outbound._DNS:
            outbound._DNS.proc.kill()
