"""Outbound delivery end to end: kasi accepts relayed mail, resolves MX records against
the project's DNS fixture and delivers to real SMTP peers on loopback (a scripted server,
smtp_peer.py, for exact conversations). Covers pipelining and connection reuse, per
recipient outcomes, retries, DSNs, null MX and NXDOMAIN, unreachable sites, restart with
deferred mail, STARTTLS (opportunistic, failed, required), hostile peers, expiry, events."""
import json
import os
import smtplib
import socket
import subprocess
import tempfile
import time

from harness import DnsServer, Kasi, free_port, run
from pki import Pki
from smtp_peer import Peer

ZONE = """$TTL 300
sink.test.        IN MX 10 mx.sink.test.
mx.sink.test.     IN A 127.0.0.1
other.test.       IN MX 10 mx.sink.test.
down.test.        IN MX 10 mx.down.test.
mx.down.test.     IN A 127.0.0.2
nullmx.test.      IN MX 0 .
"""


_DNS = None
_PKI = None


def dns():
    global _DNS
    if _DNS is None:
        _DNS = DnsServer(ZONE)
    return _DNS


def pki():
    global _PKI
    if _PKI is None:
        _PKI = Pki(tempfile.mkdtemp(prefix="kasi-ob-pki-"))
        _PKI.mx = _PKI.leaf("mx", "mx.sink.test")
    return _PKI


def kasi(port, outbound="", tls="", extra=None):
    files = {"dns.ini": f"[main]\nservers=127.0.0.1:{dns().port}\ntimeout=0.5\n",
             "outbound.ini": f"disabled=false\nlocal_mx_ok=true\nsmtp_port={port}\n"
                             f"temp_fail_intervals=5s\n{outbound}"}
    if tls:
        files["tls.ini"] = tls
    files.update(extra or {})
    return Kasi(extra=files).start()


def send(k, rcpts, body="Subject: test\r\n\r\nhello\r\n", sender="sender@sink.test", n=1):
    s = smtplib.SMTP("127.0.0.1", k.port)
    for _ in range(n):
        s.sendmail(sender, rcpts, body)
    s.quit()


def events(k, kind=None, timeout=0, n=1):
    path = os.path.join(k.dir, "log", "events.jsonl")
    deadline = time.time() + timeout
    while True:
        out = []
        if os.path.exists(path):
            with open(path) as f:
                out = [json.loads(l) for l in f if l.endswith("\n")]
        if kind:
            out = [e for e in out if e["type"] == kind]
        if len(out) >= n or time.time() >= deadline:
            return out
        time.sleep(0.1)


def wait_count(k, n, timeout=15):
    deadline = time.time() + timeout
    out = ""
    while time.time() < deadline:
        rc, out, err = k.ctl("count")
        if out.startswith(f"messages {n}\n"):
            return True
        time.sleep(0.1)
    raise AssertionError(f"spool count never reached {n}: {out}")


def test_delivers_via_mx_pipelined_over_one_reused_connection():
    peer = Peer()
    k = kasi(peer.port, "[queues]\nmax_connections=4\n[site:*.sink.test]\nmax_connections=1\n")
    try:
        body = "Subject: reuse\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n"
        send(k, ["a@sink.test", "b@other.test"], body, n=5)
        msgs = peer.wait_messages(10)
        assert len(msgs) == 10, msgs  # 5 messages x 2 domains (one transaction per domain)
        assert len(peer.sessions) == 1, len(peer.sessions)
        data = msgs[0][2].decode()
        assert "\r\n.leading dot\r\n..two dots\r\n" in data, data
        assert "Received: from" in data
        cmds = peer.sessions[0].commands
        assert cmds[0] == "EHLO mx.kasi.test", cmds
        assert cmds.count("RSET") == 0, cmds
        assert sum(c.startswith("MAIL FROM:<sender@sink.test> SIZE=") for c in cmds) == 10
        # pipelined: MAIL, RCPT and DATA of a transaction arrive in one read
        assert any(b"MAIL FROM" in r and b"RCPT TO" in r and b"DATA" in r
                   for r in peer.sessions[0].reads), peer.sessions[0].reads
        wait_count(k, 0)
        dl = events(k, "Delivery", 5, n=10)
        assert len(dl) == 10, dl
        e = dl[0]
        assert e["mx_host"] == "mx.sink.test" and e["mx_ip"] == "127.0.0.1", e
        assert e["code"] == 250 and e["attempt"] == 1 and e["site"] == "mx.sink.test", e
        assert len(events(k, "Reception")) == 5
        time.sleep(1.2)
        rc, out, err = k.ctl("queue")
        assert rc == 0, err
        q = json.loads(out)
        assert q["delivered"] == 10 and q["messages"] == 0, q
        rq = q["ready_queues"][0]
        assert rq["queue"] == "default->mx.sink.test", rq
        assert rq["limits"]["max_connections"] == 1, rq
        assert rq["limits"]["set_by"] == "outbound.ini:[site:*.sink.test]", rq
    finally:
        k.cleanup()
        peer.stop()


def test_peer_without_pipelining_gets_one_command_at_a_time():
    peer = Peer(ehlo_caps=["8BITMIME"])
    k = kasi(peer.port)
    try:
        send(k, ["a@sink.test", "b@sink.test"])
        assert len(peer.wait_messages(1)) == 1
        s = peer.sessions[0]
        assert not any(b"RCPT" in r and b"MAIL" in r for r in s.reads), s.reads
        assert "MAIL FROM:<sender@sink.test>" in s.commands, s.commands  # no SIZE offered
    finally:
        k.cleanup()
        peer.stop()


def test_per_recipient_outcomes_and_one_dsn():
    def rcpt(addr):
        if "bad" in addr:
            return "550 5.1.1 no such user"
        if "tmp" in addr:
            return "451 4.2.0 mailbox busy"
        return None
    peer = Peer(rcpt=rcpt)
    k = kasi(peer.port, "temp_fail_intervals=none\n")
    try:
        send(k, ["good@sink.test", "bad@sink.test", "tmp@sink.test"],
             "Subject: mixed\r\nMessage-ID: <mixed@test>\r\n\r\nbody\r\n")
        msgs = peer.wait_messages(2)
        assert len(msgs) == 2, msgs
        assert msgs[0][1] == ["<good@sink.test>"], msgs[0]
        frm, to, dsn = msgs[1]
        dsn = dsn.decode()
        assert frm.startswith("<>") and to == ["<sender@sink.test>"], (frm, to)
        assert "report-type=delivery-status" in dsn
        assert "Final-Recipient: rfc822; bad@sink.test\r\nAction: failed\r\nStatus: 5.1.1" in dsn
        assert "Final-Recipient: rfc822; tmp@sink.test\r\nAction: failed\r\nStatus: 5.2.0" in dsn
        assert "Diagnostic-Code: smtp; 550 5.1.1 no such user" in dsn, dsn
        assert "Remote-MTA: dns; mx.sink.test" in dsn
        assert "References: <mixed@test>" in dsn
        assert "good@sink.test" not in dsn.split("message/delivery-status")[1].split(
            "text/rfc822-headers")[0]
        wait_count(k, 0)
        assert len(events(k, "Bounce", 3, n=2)) == 2
        assert len(events(k, "Delivery", 3, n=2)) == 2  # good, and the DSN itself
    finally:
        k.cleanup()
        peer.stop()


def test_failure_at_each_stage_gives_the_right_outcome_and_status():
    """Haraka's outbound playbook: which reply at which stage bounces or defers, and the
    DSN status each one produces."""
    cases = [
        ("mail 5xx", dict(mail=lambda a: "550 5.1.8 bad sender domain"), "Bounce", "5.1.8"),
        ("mail 4xx", dict(mail=lambda a: "451 4.3.0 try later"), "TransientFailure", "4.3.0"),
        ("rcpt 5xx", dict(rcpt=lambda a: "552 5.2.2 mailbox full"), "Bounce", "5.2.2"),
        ("data 5xx", dict(data=lambda a: "554 5.6.0 no thanks"), "Bounce", "5.6.0"),
        ("data 4xx", dict(data=lambda a: "451 4.3.2 not now"), "TransientFailure", "4.3.2"),
        ("data 250", dict(data=lambda a: "250 ok?"), "TransientFailure", "4.5.0"),
        ("dot 5xx", dict(dot=lambda a: "552 5.3.4 message too big"), "Bounce", "5.3.4"),
        ("dot 4xx", dict(dot=lambda a: "452 4.3.1 disk full"), "TransientFailure", "4.3.1"),
        ("greeting 554", dict(greeting="554 no service here"), "TransientFailure", "4.4.1"),
        ("no enhanced code", dict(rcpt=lambda a: "550 no such user"), "Bounce", ""),
    ]
    for name, kw, kind, status in cases:
        peer = Peer(**kw)
        k = kasi(peer.port, "temp_fail_intervals=1h\n")
        try:
            s = smtplib.SMTP("127.0.0.1", k.port)
            s.sendmail("", ["a@sink.test", "b@sink.test"], "Subject: x\r\n\r\nx\r\n")  # no DSN noise
            s.quit()
            ev = events(k, kind, 5, n=2)
            assert len(ev) == 2, (name, ev, events(k))
            assert all(e["enhanced"] == status for e in ev), (name, ev)
            assert not [e for e in events(k) if e["type"] not in (kind, "Reception")], name
        finally:
            k.cleanup()
            peer.stop()


def test_deferred_then_delivered_on_retry():
    tries = []

    def rcpt(addr):
        tries.append(addr)
        return "451 4.7.1 greylisted" if len(tries) == 1 else None
    peer = Peer(rcpt=rcpt)
    k = kasi(peer.port)
    try:
        send(k, ["grey@sink.test"])
        tf = events(k, "TransientFailure", 5)
        assert len(tf) == 1 and tf[0]["enhanced"] == "4.7.1", tf
        assert tf[0]["next_due_ms"] - tf[0]["time_ms"] >= 4900, tf
        rc, out, err = k.ctl("list")
        mid = out.split("\t")[0]
        rc, out, err = k.ctl("show", mid)
        assert "deferred" in out and "451 4.7.1 greylisted" in out, out
        msgs = peer.wait_messages(1, 12)
        assert len(msgs) == 1
        dl = events(k, "Delivery", 3)
        assert dl and dl[0]["attempt"] == 2, dl
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_null_mx_and_nxdomain_bounce_at_once():
    peer = Peer()
    k = kasi(peer.port)
    try:
        send(k, ["x@nullmx.test", "y@nosuch.test"])
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1, msgs
        dsn = msgs[0][2].decode()
        assert "Final-Recipient: rfc822; x@nullmx.test\r\nAction: failed\r\nStatus: 5.1.10" \
            in dsn, dsn
        assert "Final-Recipient: rfc822; y@nosuch.test\r\nAction: failed\r\nStatus: 5.1.2" \
            in dsn, dsn
        assert "Remote-MTA" not in dsn.split("message/delivery-status")[1].split(
            "text/rfc822-headers")[0]
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_unreachable_site_defers_and_delivery_resumes_after_restart():
    port = free_port()
    k = kasi(port)
    peer2 = None
    try:
        send(k, ["u@down.test"])
        tf = events(k, "TransientFailure", 5)
        assert tf and tf[0]["enhanced"] == "4.4.1", tf
        assert "connection refused" in tf[0]["response"], tf
        k.stop()
        assert k.queued_ids(), "the deferred message must still be in the spool"
        peer2 = Peer(host="127.0.0.2", port=port)
        k.start()
        msgs = peer2.wait_messages(1, 15)
        assert len(msgs) == 1 and msgs[0][1] == ["<u@down.test>"], msgs
        wait_count(k, 0)
        assert "recovered" in k.read_log()
    finally:
        k.cleanup()
        if peer2:
            peer2.stop()


def test_opportunistic_starttls():
    p = pki()
    peer = Peer(starttls_cert=(p.mx[1], p.mx[0]))
    k = kasi(peer.port)
    try:
        send(k, ["t@sink.test"])
        assert len(peer.wait_messages(1)) == 1
        s = peer.sessions[0]
        assert s.tls and s.tls_version in ("TLSv1.2", "TLSv1.3"), s.tls_version
        assert s.commands[:3] == ["EHLO mx.kasi.test", "STARTTLS", "EHLO mx.kasi.test"], s.commands
        e = events(k, "Delivery", 3)[0]
        assert e["tls"]["version"] == s.tls_version, e
        assert e["tls"]["verified"] is False  # our test CA is not the system's
    finally:
        k.cleanup()
        peer.stop()


def test_failed_starttls_falls_back_to_plaintext_and_is_remembered():
    peer = Peer(broken_tls=True)
    k = kasi(peer.port)
    try:
        send(k, ["f@sink.test"])
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1, [s.commands for s in peer.sessions]
        assert peer.sessions[0].commands[-1] == "STARTTLS"
        assert "STARTTLS" not in peer.sessions[-1].commands
        send(k, ["g@sink.test"])
        assert len(peer.wait_messages(2)) == 2
        assert sum("STARTTLS" in s.commands for s in peer.sessions) == 1
        assert "STARTTLS with mx.sink.test failed" in k.read_log()
    finally:
        k.cleanup()
        peer.stop()


def test_required_tls_is_never_downgraded():
    peer = Peer()  # offers no STARTTLS
    k = kasi(peer.port, tls="[outbound]\nforce_tls_hosts=sink.test\n")
    try:
        send(k, ["r@sink.test"])
        tf = events(k, "TransientFailure", 5)
        assert tf and tf[0]["enhanced"] == "4.7.5", tf
        assert "STARTTLS is not offered" in tf[0]["response"], tf
        assert peer.messages == []
        assert all("MAIL" not in " ".join(s.commands) for s in peer.sessions)
    finally:
        k.cleanup()
        peer.stop()


def test_required_tls_verifies_the_certificate():
    p = pki()
    peer = Peer(starttls_cert=(p.mx[1], p.mx[0]))
    k = kasi(peer.port, tls=f"[outbound]\nforce_tls_hosts=mx.sink.test\n")
    try:
        send(k, ["v@sink.test"])
        tf = events(k, "TransientFailure", 5)
        assert tf and tf[0]["enhanced"] == "4.7.5", tf
        assert peer.messages == []
    finally:
        k.cleanup()
    k = kasi(peer.port, tls=f"[outbound]\nforce_tls_hosts=mx.sink.test\nca_file={p.ca_cert}\n")
    try:
        send(k, ["v@sink.test"])
        assert len(peer.wait_messages(1)) == 1
        assert events(k, "Delivery", 3)[0]["tls"]["verified"] is True
    finally:
        k.cleanup()
        peer.stop()


def hostile_endless(conn):
    conn.sendall(b"220-hello\r\n")
    for _ in range(5000):
        conn.sendall(b"220-more and more and more\r\n")
    time.sleep(1)


def hostile_garbage(conn):
    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
    time.sleep(1)


def hostile_no_newline(conn):
    conn.sendall(b"220 " + b"x" * 100000)
    time.sleep(1)


def test_hostile_peers_cost_one_connection_and_a_deferral():
    for hostile, expect in ((hostile_endless, "longer than"), (hostile_garbage, "invalid reply"),
                            (hostile_no_newline, "longer than")):
        peer = Peer(hostile=hostile)
        k = kasi(peer.port)
        try:
            send(k, ["h@sink.test"])
            tf = events(k, "TransientFailure", 5)
            assert tf and expect in tf[0]["response"], tf
            assert k.proc.poll() is None
            send(k, ["h2@sink.test"])  # still serving
        finally:
            k.cleanup()
            peer.stop()


def test_stall_after_data_times_out_and_defers():
    peer = Peer(dot=lambda data: time.sleep(4) or None)
    k = kasi(peer.port, "[timeouts]\ndata_done=1\n")
    try:
        send(k, ["s@sink.test"])
        tf = events(k, "TransientFailure", 6)
        assert tf and "timeout" in tf[0]["response"] and tf[0]["code"] == 421, tf
    finally:
        k.cleanup()
        peer.stop()


def test_expiry_bounces_with_5_4_7():
    peer = Peer()
    k = kasi(peer.port, "max_age=2s\n")
    try:
        send(k, ["e@down.test"])  # unreachable; the next try would be after max_age
        ex = events(k, "Expiration", 5)
        assert ex and ex[0]["recipient"] == "e@down.test", ex
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1, msgs
        assert "Status: 5.4.7" in msgs[0][2].decode()
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_no_dsn_for_a_null_sender():
    peer = Peer(rcpt=lambda a: "550 5.1.1 gone")
    k = kasi(peer.port)
    try:
        send(k, ["gone@sink.test"], sender="")
        assert len(events(k, "Bounce", 5)) == 1
        wait_count(k, 0)
        time.sleep(0.5)
        assert peer.messages == []
        assert "not sending a DSN" in k.read_log()
    finally:
        k.cleanup()
        peer.stop()


def test_disabled_holds_mail():
    peer = Peer()
    k = kasi(peer.port, "disabled=true\n")
    try:
        send(k, ["d@sink.test"])
        time.sleep(1.5)
        assert peer.sessions == [] and len(k.queued_ids()) == 1
    finally:
        k.cleanup()
        peer.stop()


def add_plugin(k, name):
    with open(os.path.join(k.dir, "config", "plugins"), "a") as f:
        f.write(name + "\n")


def kasi_cfg(port, files, outbound="", start=True, plugins=()):
    base = {"dns.ini": f"[main]\nservers=127.0.0.1:{dns().port}\ntimeout=0.5\n",
            "outbound.ini": f"disabled=false\nlocal_mx_ok=true\nsmtp_port={port}\n"
                            f"temp_fail_intervals=5s\n{outbound}"}
    base.update(files)
    k = Kasi(extra=base)
    for p in plugins:
        add_plugin(k, p)
    return k.start() if start else k


def test_smtp_forward_routes_relayed_mail_to_the_next_hop():
    peer = Peer()
    dead = free_port()
    k = kasi_cfg(dead, {"smtp_forward.ini": f"host=127.0.0.1\nport={dead}\nenable_outbound=true\n"
                                            f"[other.test]\nhost=127.0.0.1\nport={peer.port}\n"},
                 plugins=["queue/smtp_forward"])
    try:
        send(k, ["a@other.test"])  # its section: the peer
        send(k, ["b@nosuch.test"])  # [main]: a closed port (the DNS would say NXDOMAIN)
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1 and msgs[0][1] == ["<a@other.test>"], msgs
        tf = events(k, "TransientFailure", 5)
        assert tf and tf[0]["recipient"] == "b@nosuch.test", tf
        assert tf[0]["site"] == f"127.0.0.1:{dead}" and tf[0]["enhanced"] == "4.4.1", tf
        assert not events(k, "Bounce"), "NXDOMAIN must not matter when a next hop is set"
        dl = events(k, "Delivery", 3)
        assert dl[0]["site"] == f"127.0.0.1:{peer.port}", dl
    finally:
        k.cleanup()
        peer.stop()


def test_smtp_forward_queues_inbound_mail_durably_then_forwards_with_auth():
    peer = Peer(auth=("fwd", "s3cret"))
    k = kasi_cfg(peer.port, {"smtp_forward.ini": f"host=127.0.0.1\nport={peer.port}\n"
                                                 "auth_user=fwd\nauth_pass=s3cret\n"
                                                 "auth_allow_cleartext=true\n"},
                 start=False, plugins=["queue/smtp_forward"])
    with open(os.path.join(k.dir, "config", "relay_acl_allow"), "w") as f:
        f.write("# nobody relays\n")
    k.start()
    try:
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.sendmail("someone@example.org", ["postmaster@kasi.test"], "Subject: in\r\n\r\nhi\r\n")
        try:
            s.sendmail("someone@example.org", ["x@elsewhere.test"], "Subject: relay\r\n\r\n")
            raise AssertionError("relaying must still be refused")
        except smtplib.SMTPRecipientsRefused:
            pass
        s.quit()
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1 and msgs[0][1] == ["<postmaster@kasi.test>"], msgs
        assert peer.auth_ok and peer.auth_ok[0] == ("PLAIN", "fwd"), peer.auth_ok
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def _forward_with_auth(peer, extra=""):
    ini = (f"host=127.0.0.1\nport={peer.port}\nenable_outbound=true\n"
           f"auth_user=fwd\nauth_pass=s3cret\n{extra}")
    return kasi_cfg(peer.port, {"smtp_forward.ini": ini}, plugins=["queue/smtp_forward"])


def test_smarthost_credentials_never_go_in_clear():
    # The smarthost offers AUTH but no STARTTLS: no AUTH line, QUIT, a 4.7.10 deferral that
    # names the setting, in the events log and the ready queue's last error.
    peer = Peer(auth=("fwd", "s3cret"))
    k = _forward_with_auth(peer)
    try:
        send(k, ["a@other.test"])
        tf = events(k, "TransientFailure", 10)
        assert tf, "the message must be deferred"
        assert tf[0]["enhanced"] == "4.7.10", tf
        assert "without TLS" in tf[0]["response"], tf
        assert "auth_allow_cleartext" in tf[0]["response"], tf
        assert peer.sessions, "kasi never connected"
        for sess in peer.sessions:
            assert not any(c.upper().startswith("AUTH") for c in sess.commands), sess.commands
            assert b"AUTH" not in b"".join(sess.reads).upper(), sess.reads
        assert peer.sessions[0].commands[-1] == "QUIT", peer.sessions[0].commands
        assert peer.messages == []
        deadline = time.time() + 5  # kasictl queue: a snapshot written every second
        while True:
            rc, out, _ = k.ctl("queue")
            errs = [q.get("last_error", "") for q in json.loads(out).get("ready_queues", [])] \
                if rc == 0 else []
            if any("without TLS" in e for e in errs) or time.time() > deadline:
                break
            time.sleep(0.2)
        assert any("without TLS" in e for e in errs), out
        wait_count(k, 1)  # still queued, not bounced
        assert not events(k, "Bounce")
    finally:
        k.cleanup()
        peer.stop()


def test_smarthost_credentials_not_sent_after_a_failed_starttls():
    # A STARTTLS that fails (a downgrade by someone in the path) makes the next connection
    # go without TLS: that one must not carry the credentials either.
    peer = Peer(auth=("fwd", "s3cret"), broken_tls=True)
    k = _forward_with_auth(peer)
    try:
        send(k, ["a@other.test"])
        tf = events(k, "TransientFailure", 10)
        assert tf and tf[0]["enhanced"] == "4.7.10", tf
        assert "without TLS" in tf[0]["response"], tf
        assert len(peer.sessions) >= 2, [s.commands for s in peer.sessions]
        for sess in peer.sessions:
            assert b"AUTH" not in b"".join(sess.reads).upper(), sess.reads
        assert peer.messages == []
    finally:
        k.cleanup()
        peer.stop()


def test_smarthost_auth_in_clear_only_when_the_route_allows_it():
    peer = Peer(auth=("fwd", "s3cret"))
    k = _forward_with_auth(peer, "auth_allow_cleartext=true\n")
    try:
        send(k, ["a@other.test"])
        assert len(peer.wait_messages(1)) == 1
        assert peer.auth_ok == [("PLAIN", "fwd")], peer.auth_ok
        assert not peer.sessions[0].tls
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_routes_with_different_credential_rules_do_not_share_a_queue():
    # Two domains forwarded to the same smarthost with the same user: one may send the
    # credentials in clear, the other may not. The second must not ride the first one's
    # ready queue (and its auth_allow_cleartext): it is deferred with 4.7.10.
    peer = Peer(auth=("fwd", "s3cret"))
    ini = (f"host=127.0.0.1\nport={peer.port}\nenable_outbound=true\n"
           f"[open.test]\nhost=127.0.0.1\nport={peer.port}\nauth_user=fwd\nauth_pass=s3cret\n"
           "auth_allow_cleartext=true\n"
           f"[strict.test]\nhost=127.0.0.1\nport={peer.port}\nauth_user=fwd\nauth_pass=s3cret\n")
    k = kasi_cfg(peer.port, {"smtp_forward.ini": ini}, plugins=["queue/smtp_forward"])
    try:
        send(k, ["a@open.test"])
        assert len(peer.wait_messages(1)) == 1
        send(k, ["b@strict.test"])
        tf = events(k, "TransientFailure", 10)
        assert tf and tf[0]["recipient"] == "b@strict.test" and tf[0]["enhanced"] == "4.7.10", tf
        assert len(peer.messages) == 1 and peer.auth_ok == [("PLAIN", "fwd")], peer.auth_ok
        deadline = time.time() + 5  # kasictl queue: a snapshot written every second
        while True:
            rc, out, _ = k.ctl("queue")
            keys = [q.get("queue", "") for q in json.loads(out).get("ready_queues", [])] \
                if rc == 0 else []
            if len(keys) >= 2 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert any(key.endswith("(auth fwd, cleartext allowed)") for key in keys), keys
        assert any(key.endswith("(auth fwd)") for key in keys), keys
    finally:
        k.cleanup()
        peer.stop()

def test_smarthost_auth_goes_after_starttls():
    p = pki()
    peer = Peer(auth=("fwd", "s3cret"), starttls_cert=(p.mx[1], p.mx[0]))
    k = _forward_with_auth(peer)
    try:
        send(k, ["a@other.test"])
        assert len(peer.wait_messages(1)) == 1
        s = peer.sessions[0]
        assert s.tls, s.commands
        assert [c.split()[0] for c in s.commands[:4]] == ["EHLO", "STARTTLS", "EHLO", "AUTH"], \
            s.commands
        assert peer.auth_ok == [("PLAIN", "fwd")], peer.auth_ok
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_lmtp_next_hop_gives_per_recipient_outcomes():
    peer = Peer(lmtp=True, dot=lambda a: "552 5.2.2 mailbox full" if "full" in a else None)
    k = kasi_cfg(peer.port, {"smtp_forward.ini": f"host=127.0.0.1\nport={peer.port}\n"
                                                 "using_lmtp=true\nenable_outbound=true\n"},
                 plugins=["queue/smtp_forward"])
    try:
        send(k, ["ok@sink.test", "full@sink.test"])
        msgs = peer.wait_messages(2)
        assert [m[1] for m in msgs][:1] == [["<ok@sink.test>"]], msgs
        assert peer.sessions[0].commands[0].startswith("LHLO "), peer.sessions[0].commands
        b = events(k, "Bounce", 5)
        assert b and b[0]["recipient"] == "full@sink.test" and b[0]["enhanced"] == "5.2.2", b
        # the DSN to sender@sink.test went by its MX (the same peer in this test)
        assert any(m[0].startswith("<>") for m in peer.wait_messages(2)), peer.messages
    finally:
        k.cleanup()
        peer.stop()


def test_route_chooses_local_address_and_ehlo_name():
    peer = Peer()
    k = kasi_cfg(peer.port, {"smtp_forward.ini": f"host=127.0.0.1\nport={peer.port}\n"
                                                 "enable_outbound=true\nbind=127.0.0.5\n"
                                                 "bind_helo=pool-a.example.test\n"},
                 plugins=["queue/smtp_forward"])
    try:
        send(k, ["b@sink.test"])
        assert len(peer.wait_messages(1)) == 1
        s = peer.sessions[0]
        assert s.client[0] == "127.0.0.5", s.client
        assert s.commands[0] == "EHLO pool-a.example.test", s.commands
        assert events(k, "Delivery", 3)[0]["egress_ip"] == "127.0.0.5"
    finally:
        k.cleanup()
        peer.stop()


def test_queue_lmtp_delivers_inbound_mail_over_lmtp():
    peer = Peer(lmtp=True, dot=lambda a: "452 4.2.2 over quota" if "quota" in a else None)
    k = kasi_cfg(peer.port, {"lmtp.ini": f"host=127.0.0.1\nport={peer.port}\n"},
                 start=False, plugins=["queue/lmtp"])
    with open(os.path.join(k.dir, "config", "relay_acl_allow"), "w") as f:
        f.write("# nobody relays\n")
    k.start()
    try:
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.sendmail("someone@example.org", ["postmaster@kasi.test", "quota@kasi.test"],
                   "Subject: in\r\n\r\nhi\r\n")
        s.quit()
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1 and msgs[0][1] == ["<postmaster@kasi.test>"], msgs
        assert peer.sessions[0].commands[0] == "LHLO mx.kasi.test", peer.sessions[0].commands
        tf = events(k, "TransientFailure", 5)
        assert tf and tf[0]["recipient"] == "quota@kasi.test" and tf[0]["enhanced"] == "4.2.2", tf
        assert tf[0]["site"] == f"lmtp:127.0.0.1:{peer.port}", tf
    finally:
        k.cleanup()
        peer.stop()


def test_relay_force_routing_nexthop():
    peer = Peer()
    k = kasi_cfg(peer.port, {"relay_dest_domains.ini":
                             f'[domains]\nnosuch.test = {{"action": "accept", "nexthop": '
                             f'"127.0.0.1:{peer.port}"}}\n'})
    try:
        send(k, ["r@nosuch.test"])
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1 and msgs[0][1] == ["<r@nosuch.test>"], msgs
    finally:
        k.cleanup()
        peer.stop()


def test_limit_rate_outbound_delays_with_send_email():
    peer = Peer()
    k = kasi_cfg(peer.port, {"limit.ini": "[rate_outbound]\nenabled=true\nsink.test=2/4s\n"},
                 plugins=["limit"])
    try:
        t0 = time.time()
        send(k, ["r@sink.test"], n=4)
        assert len(peer.wait_messages(2)) >= 2
        time.sleep(1)
        assert len(peer.messages) == 2, peer.messages  # the other two wait out the window
        assert len(peer.wait_messages(4, 12)) == 4
        assert time.time() - t0 >= 3.5
        assert not events(k, "TransientFailure"), "a DELAY is not a failure"
        assert all(e["attempt"] == 1 for e in events(k, "Delivery", 3, n=4))
    finally:
        k.cleanup()
        peer.stop()


class Sink:
    """postfix's smtp-sink on loopback, counting messages (-c)."""

    def __init__(self, *extra):
        self.port = free_port()
        self.out = tempfile.NamedTemporaryFile(prefix="kasi-sink-", delete=False)
        user = ["-u", "nobody"] if os.getuid() == 0 else []
        self.proc = subprocess.Popen(["smtp-sink", *user, "-c", *extra, f"127.0.0.1:{self.port}",
                                      "256"],
                                     stdout=self.out, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")

    def count(self):
        with open(self.out.name, "rb") as f:
            data = f.read()[-400:].replace(b"\r", b"\n").decode(errors="replace")
        n = [int(p.split("=")[1]) for p in data.split() if p.startswith("mesg=")]
        return n[-1] if n else 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        os.unlink(self.out.name)


def test_smtp_sink_injected_failures():
    """postfix's smtp-sink injecting errors: a hard RCPT reject bounces, a soft reject of
    the end of data defers, 421 at MAIL defers, a disconnect after "." defers."""
    cases = [(["-f", "RCPT"], "Bounce", 5), (["-r", "."], "TransientFailure", 4),
             (["-Q", "MAIL"], "TransientFailure", 4), (["-q", "."], "TransientFailure", 4)]
    for args, kind, cls in cases:
        sink = Sink(*args)
        k = kasi(sink.port, "temp_fail_intervals=1h\n")
        try:
            send(k, ["x@sink.test"], sender="")
            ev = events(k, kind, 6)
            assert ev and ev[0]["code"] // 100 == cls, (args, events(k))
            assert not [e for e in events(k) if e["type"] not in (kind, "Reception")], args
        finally:
            k.cleanup()
            sink.stop()


def segments(k, kind):
    return sorted(f for f in os.listdir(os.path.join(k.dir, "queue")) if f.startswith(kind + "-"))


def test_finished_segments_and_journals_are_removed_while_running():
    sink = Sink()
    k = kasi_cfg(sink.port, {"kasi.ini": "[spool]\nsegment_mb=1\n"}, "events_file=off\n")
    try:
        n = 20000
        r = subprocess.run(["smtp-source", "-s", "10", "-m", str(n), "-l", "200", "-d",
                            "-f", "sender@sink.test", "-t", "r@sink.test", "-M", "test",
                            f"127.0.0.1:{k.port}"], capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 60
        while sink.count() < n and time.time() < deadline:
            time.sleep(0.2)
        assert sink.count() == n, sink.count()
        wait_count(k, 0)
        deadline = time.time() + 10
        while time.time() < deadline and (len(segments(k, "msg")) > 2 or
                                          len(segments(k, "meta")) > 2):
            time.sleep(0.2)
        msgs, metas = segments(k, "msg"), segments(k, "meta")
        assert len(msgs) <= 2 and "msg-0000000000000001.seg" not in msgs, msgs
        assert len(metas) <= 2 and "meta-0000000000000001.seg" not in metas, metas
        k.stop()
        k.start()  # nothing comes back to life
        time.sleep(1.5)
        assert sink.count() == n, sink.count()
        rc, out, err = k.ctl("count")
        assert out.startswith("messages 0"), out
    finally:
        k.cleanup()
        sink.stop()


def test_kill9_during_delivery_loses_nothing():
    """No acknowledged message is lost while delivery runs and finished segments are being
    deleted: kill -9 at arbitrary moments, restart, and every acknowledged id must reach
    the peer at least once."""
    import random
    import re
    import signal
    import threading
    peer = Peer()
    k = kasi_cfg(peer.port, {"kasi.ini": "[spool]\nsegment_mb=1\n"}, "events_file=off\n",
                 start=False)
    acked = []

    def sender(stop):
        while not stop.is_set():
            try:
                s = smtplib.SMTP("127.0.0.1", k.port, timeout=3)
                while not stop.is_set():
                    r = s.sendmail("s@sink.test", ["a@sink.test", "b@other.test"],
                                   "Subject: crash\r\n\r\n" + "x" * random.choice([100, 3000, 30000]))
                    # smtplib keeps the last reply: "Message Queued (<id>)"
                    acked.append(s._kasi_last if hasattr(s, "_kasi_last") else None)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.01)

    # smtplib.sendmail drops the reply text; capture it by wrapping data()
    orig_data = smtplib.SMTP.data

    def data(self, msg):
        code, text = orig_data(self, msg)
        if code == 250:
            self._kasi_last = text.decode().rsplit("(", 1)[1].rstrip(")")
        return code, text
    smtplib.SMTP.data = data
    try:
        for rnd in range(4):
            k.start()
            stop = threading.Event()
            threads = [threading.Thread(target=sender, args=(stop,)) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.5, 1.5))
            k.proc.send_signal(signal.SIGKILL)
            k.proc.wait()
            stop.set()
            for t in threads:
                t.join()
        k.start()
        ids = set(a for a in acked if a)
        assert len(ids) > 50, len(ids)
        deadline = time.time() + 60
        seen = set()
        while time.time() < deadline:
            with peer.lock:
                seen = set()
                for _, _, data in peer.messages:
                    m = re.search(rb"with ESMTP id ([0-9A-F-]+\.[0-9]+)", data)
                    if m:
                        seen.add(m.group(1).decode())
            if ids <= seen:
                break
            time.sleep(0.2)
        missing = ids - seen
        assert not missing, f"{len(missing)} of {len(ids)} acknowledged messages never delivered"
        wait_count(k, 0, 30)
    finally:
        smtplib.SMTP.data = orig_data
        k.cleanup()
        peer.stop()


def ctl_ok(k, *args):
    rc, out, err = k.ctl(*args)
    assert rc == 0 and out.startswith("ok"), (args, rc, out, err)
    return out


def test_admin_suspend_resume_flush_delete_bounce():
    tries = []

    def rcpt(addr):
        tries.append(addr)
        return "451 4.7.1 greylisted" if "grey" in addr and tries.count(addr) == 1 else None
    peer = Peer(rcpt=rcpt)
    k = kasi(peer.port, "temp_fail_intervals=1h\n")
    try:
        # suspend: held, shown with its reason, released by resume
        ctl_ok(k, "suspend", "sink.test", "provider", "maintenance")
        send(k, ["held@sink.test"])
        time.sleep(1.5)
        assert peer.messages == []
        q = json.loads(k.ctl("queue")[1])
        assert q["suspended_domains"] == [{"domain": "sink.test", "reason": "provider maintenance",
                                           "held": 1}], q
        assert "1 deliveries released" in ctl_ok(k, "resume", "sink.test")
        assert len(peer.wait_messages(1)) == 1
        # flush: a deferral an hour away is tried now
        send(k, ["grey@sink.test"])
        assert events(k, "TransientFailure", 5)
        assert "1 deliveries due now" in ctl_ok(k, "flush", "sink.test")
        assert len(peer.wait_messages(2)) == 2
        # bounce one deferred message by id (DSN), delete the rest of a domain (no DSN)
        send(k, ["x@down.test"])
        send(k, ["y@down.test"])
        send(k, ["z@down.test"])
        assert len(events(k, "TransientFailure", 5, n=4)) == 4
        ids = k.queued_ids()
        assert len(ids) == 3, ids
        assert "bounced 1" in ctl_ok(k, "bounce", ids[0])
        assert "deleted 2" in ctl_ok(k, "delete", "@down.test")
        msgs = peer.wait_messages(3)
        assert len(msgs) == 3 and msgs[2][0].startswith("<>"), msgs
        dsn = msgs[2][2].decode()
        assert "Status: 5.0.0" in dsn and "bounced by the administrator" in dsn, dsn
        wait_count(k, 0)
        time.sleep(0.5)
        assert len(peer.messages) == 3  # the deleted ones made no DSN
        rc, out, err = k.ctl("suspend")  # a usage error: exit 2, the reason on stderr
        assert rc == 2 and "suspend needs an argument" in err, (rc, out, err)
        rc, out, err = k.ctl("resume", "nothing.test")
        assert rc != 0 and "not suspended" in out, out
    finally:
        k.cleanup()
        peer.stop()


def test_delay_warning_once_then_delivery():
    tries = {}

    def rcpt(addr):
        tries[addr] = tries.get(addr, 0) + 1
        if "slow" in addr and tries[addr] <= 2:
            return "451 4.2.0 mailbox busy"
        return None
    peer = Peer(rcpt=rcpt)
    k = kasi(peer.port, "temp_fail_intervals=5s*10\ndelay_warning=3s\n")
    try:
        send(k, ["slow@sink.test"], "Subject: patience\r\nMessage-ID: <slow@test>\r\n\r\nbody\r\n")
        msgs = peer.wait_messages(2, timeout=30)
        assert len(msgs) == 2, msgs
        warn = [m for m in msgs if m[0].startswith("<>")]
        assert len(warn) == 1, msgs
        assert warn[0][1] == ["<sender@sink.test>"]
        text = warn[0][2].decode()
        assert "Subject: delivery delayed" in text, text
        assert "Final-Recipient: rfc822; slow@sink.test\r\nAction: delayed\r\nStatus: 4.2.0" in text
        assert "Will-Retry-Until: " in text and "References: <slow@test>" in text, text
        assert "message/rfc822" not in text  # headers only
        real = [m for m in msgs if not m[0].startswith("<>")]
        assert real[0][1] == ["<slow@sink.test>"], real
        assert tries["<slow@sink.test>"] == 3, tries  # warned after the second deferral
        wait_count(k, 0)
    finally:
        k.cleanup()
        peer.stop()


def test_idle_connections_quit_and_the_queue_connects_again():
    # Regression: a clean QUIT (221) never freed the ready queue's connection slot, so after
    # max_connections idle timeouts a destination was never connected to again.
    peer = Peer()
    k = kasi(peer.port, "[queues]\nmax_connections=1\nidle_timeout=1\n")
    try:
        for i in range(3):
            send(k, ["r@sink.test"], body=f"Subject: {i}\r\n\r\nhello\r\n")
            assert len(peer.wait_messages(i + 1, 5)) == i + 1, (i, k.read_log()[-2000:])
            time.sleep(1.5)  # the connection goes idle and is closed with QUIT
        assert len(peer.sessions) == 3, len(peer.sessions)
        assert all(s.commands[-1] == "QUIT" for s in peer.sessions), \
            [s.commands for s in peer.sessions]
        t = time.time()
        k.stop()
        assert time.time() - t < 1.5, "shutdown waited for connections that were gone"
    finally:
        k.cleanup()
        peer.stop()


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if _DNS:
            _DNS.proc.kill()
