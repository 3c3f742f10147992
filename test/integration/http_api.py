"""The HTTP API of the real kasi, with real clients (Python's http.client, curl) over
loopback: /api/v1/send and /send/batch delivered end to end (into a scripted peer that keeps
what it gets, where every message is parsed and its DKIM signatures verified, and into
postfix's smtp-sink under concurrent keep-alive load), per-field errors with nothing queued,
limits and timeouts, pipelining, bearer tokens and trusted networks, /health, /metrics, the
admin endpoints and kasictl through them, HTTPS, one-click unsubscribe, and a 200 that
survives kill -9."""
import atexit
import email
import email.policy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import dkim_sign
from dkim_sign import Setup
from harness import KASI, KASICTL, Kasi, Skip, free_port, run
import outbound
from outbound import Sink, events
from outbound import kasi as outbound_kasi
from pki import Pki

TOKEN_SEND = "send-token-0123456789abcdefghijklmnopq"
TOKEN_ADMIN = "admin-token-0123456789abcdefghijklmno"


def token_line(name, scopes, token):
    import hashlib
    return f"{name} {scopes} {hashlib.sha256(token.encode()).hexdigest()}\n"


# a second destination site (another MX host), for the per-queue metrics
dkim_sign.MX_ZONE += "other.test. IN MX 10 mx.other.test.\nmx.other.test. IN A 127.0.0.1\n"
TOKENS = token_line("app", "send", TOKEN_SEND) + token_line("ops", "admin", TOKEN_ADMIN)


def http_ini(port, extra="", trusted="127.0.0.1", max_body=200000):
    return (f"[main]\nlisten = 127.0.0.1:{port}, 127.0.0.2:{port}\nmax_recipients = 5\n"
            f"max_body_bytes = {max_body}\nmax_batch_messages = 50\nmetrics_queues = 1\n{extra}"
            f"[auth]\ntrusted = {trusted}\n")


def wait_port(port, host="127.0.0.1"):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


class Api:
    """One keep-alive connection to the API."""

    def __init__(self, port, token=None, source="127.0.0.1"):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20,
                                               source_address=(source, 0))
        self.token = token

    def call(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "")
        if method == "HEAD":
            return r.status, data, r
        return r.status, (json.loads(data) if "json" in ctype else data.decode()), r

    def close(self):
        self.conn.close()


_S = None


def shared():
    """A kasi with DKIM signing, the API on a free port, and a peer keeping what it gets."""
    global _S
    if _S is None:
        port = free_port()
        s = Setup(extra_files={"http.ini": http_ini(port), "http_tokens": TOKENS})
        s.http = port
        s.start()
        wait_port(port)
        _S = s
        atexit.register(s.close)
    return _S


def ctl_ok(s, *args):
    rc, out, err = s.k.ctl(*args)
    assert rc == 0, (args, out, err)
    return out


def rcpts_of(peer_msg):
    return sorted(r.strip("<>").split(">")[0] for r in peer_msg[1])


def test_send_builds_a_mime_message_delivered_signed_and_parseable():
    s = shared()
    n0 = len(s.peer.messages)
    api = Api(s.http, TOKEN_SEND)
    pdf = bytes(range(256)) * 40
    import base64
    status, body, _ = api.call("POST", "/api/v1/send", {
        "from": {"email": "news@sender.test", "name": "Zoë Newsroom"},
        "to": ["Alice <alice@sink.test>", {"email": "bob@sink.test", "name": "Bob \"B\" Ray"}],
        "cc": "carol@sink.test", "bcc": ["dave@sink.test"],
        "reply_to": "help@sender.test",
        "subject": "Grüße, {{name}}",
        "text": "Hello {{name}},\nline two with a long tail " + "x" * 1200 + "\n.leading dot\n",
        "html": "<p>Hello {{name}}</p>",
        "substitutions": {"name": "A&B <friends>"},
        "headers": {"X-Campaign-Ref": "spring-2026", "List-Id": "<news.sender.test>"},
        "attachments": [{"filename": "report ä.pdf", "content_type": "application/pdf",
                         "content": base64.encodebytes(pdf).decode()}],
        "tenant": "acme", "campaign": "spring", "region": "eu", "priority": "high",
        "metadata": {"order": 42, "vip": True}})
    assert status == 200, body
    ids = [r["id"] for r in body["recipients"]]
    assert [r["email"] for r in body["recipients"]] == ["alice@sink.test", "bob@sink.test",
                                                         "carol@sink.test", "dave@sink.test"]
    assert len(set(ids)) == 4 and all(i.startswith(body["id"] + "/") for i in ids), body
    msgs = s.delivered(n0 + 1)
    peer_msg = s.peer.messages[n0]
    assert peer_msg[0].startswith("<news@sender.test>"), peer_msg[0]
    assert rcpts_of(peer_msg) == ["alice@sink.test", "bob@sink.test", "carol@sink.test",
                                  "dave@sink.test"]
    raw = msgs[n0]
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF in the message"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    s.v.verify_all(raw)  # the API's messages are DKIM-signed like SMTP's (dkimpy + OpenDKIM)
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m["Subject"] == "Grüße, A&B <friends>", m["Subject"]
    assert m["From"].addresses[0].display_name == "Zoë Newsroom"
    assert [a.addr_spec for a in m["To"].addresses] == ["alice@sink.test", "bob@sink.test"]
    assert m["To"].addresses[1].display_name == 'Bob "B" Ray'
    assert m["Cc"] and "dave" not in raw.decode(errors="replace").split("\r\n\r\n")[0]
    assert m["Reply-To"].addresses[0].addr_spec == "help@sender.test"
    assert m["X-Campaign-Ref"] == "spring-2026" and m["Message-ID"] and m["Date"]
    assert re.search(rb"\r\nReceived: from \[127\.0\.0\.1\]\r\n\tby \S+ \(Kasi/[^)]+\) with HTTP id ",
                     b"\r\n" + raw)
    text = m.get_body(("plain",)).get_content()
    html = m.get_body(("html",)).get_content()
    assert "Hello A&B <friends>," in text and "x" * 1200 in text and "\n.leading dot" in text
    assert "<p>Hello A&amp;B &lt;friends&gt;</p>" in html
    att = [p for p in m.iter_attachments()]
    assert len(att) == 1 and att[0].get_filename() == "report ä.pdf"
    assert att[0].get_content() == pdf
    rc, out, err = s.k.ctl("show", body["id"])
    assert rc == 1  # delivered: gone from the spool
    ev = [e for e in events(s.k, "Reception", 5, n=1) if e["id"] == body["id"]]
    assert ev and ev[0]["tenant"] == "acme" and ev[0]["campaign"] == "spring", ev
    api.close()


def test_raw_content_and_per_recipient_substitutions():
    s = shared()
    n0 = len(s.peer.messages)
    api = Api(s.http, TOKEN_SEND)
    raw = "From: News <news@sender.test>\nTo: list@sink.test\nSubject: raw {{who}}\n\nHi {{who}}\n"
    st, body, _ = api.call("POST", "/api/v1/send", {"content": raw, "to": ["x1@sink.test"],
                                                   "substitutions": {"who": "all"}})
    assert st == 200, body
    st, body2, _ = api.call("POST", "/api/v1/send", {
        "from": "news@sender.test", "subject": "for {{first}}", "html": "<b>{{first}}</b>",
        "to": [{"email": "p1@sink.test", "substitutions": {"first": "Pat"}},
               {"email": "p2@sink.test", "substitutions": {"first": "<Sam>"}}]})
    assert st == 200, body2
    assert len({r["id"].split("/")[0] for r in body2["recipients"]}) == 2  # two messages
    s.delivered(n0 + 3)
    got = {rcpts_of(m)[0]: m[2] for m in s.peer.messages[n0:]}
    r = got["x1@sink.test"]
    assert b"\r\nSubject: raw all\r\n" in r and b"\r\n\r\nHi all\r\n" in r
    assert re.search(rb"\r\nMessage-ID: <[0-9A-F-]+\.1@", r) and b"\r\nDate: " in r
    p1 = email.message_from_bytes(got["p1@sink.test"], policy=email.policy.default)
    p2 = email.message_from_bytes(got["p2@sink.test"], policy=email.policy.default)
    assert p1["Subject"] == "for Pat" and p2["Subject"] == "for <Sam>"
    assert "<b>&lt;Sam&gt;</b>" in p2.get_content() and p1["To"] == "p1@sink.test"
    for m in got.values():
        s.v.verify_all(m)
    api.close()


BAD = [
    ('{"from": "a@sender.test",', 400, ""),
    ('[1, 2]', 400, ""),
    ({"to": "a@sink.test", "text": "x"}, 400, "from"),
    ({"from": "a@sender.test", "to": "a@sink.test", "priority": "urgent"}, 400, "priority"),
    ({"from": "a@sender.test", "text": "x"}, 400, "to"),
    ({"from": "a@sender.test", "to": ["ok@sink.test", "not an address"]}, 400, "to[1]"),
    ({"from": "a@sender.test", "to": "x@sink.test\r\nBcc: victim@sink.test"}, 400, "to"),
    ({"from": "a@sender.test", "to": [{"name": "n"}]}, 400, "to[0].email"),
    ({"from": "a@sender.test", "to": "x@sink.test", "subject": "a\r\nBcc: v@sink.test"}, 400,
     "subject"),
    ({"from": {"email": "a@sender.test", "name": "A\r\nBcc: v@x"}, "to": "x@sink.test"}, 400,
     "from.name"),
    ({"from": "a@sender.test", "to": "x@sink.test", "headers": {"X-A": "1\r\nBcc: v@x"}}, 400,
     "headers.X-A"),
    ({"from": "a@sender.test", "to": "x@sink.test", "headers": {"Bad Name": "1"}}, 400,
     "headers.Bad Name"),
    ({"from": "a@sender.test", "to": "x@sink.test", "headers": {"To": "v@x.test"}}, 400,
     "headers.To"),
    ({"from": "a@sender.test", "to": "x@sink.test", "attachments": [{"content": "@@@"}]}, 400,
     "attachments[0].content"),
    ({"from": "a@sender.test", "to": "x@sink.test", "attachments": [{"filename": "a"}]}, 400,
     "attachments[0].content"),
    ({"from": "a@sender.test", "to": "x@sink.test", "colour": "red"}, 400, "colour"),
    ({"from": "a@sender.test", "to": "x@sink.test", "tenant": "a b"}, 400, "tenant"),
    ({"from": "a@sender.test", "to": "x@sink.test", "metadata": {"k": [1]}}, 400, "metadata.k"),
    ({"from": "a@sender.test", "to": [f"r{i}@sink.test" for i in range(6)]}, 413, "to"),
    ({"from": "a@sender.test", "to": [{"email": "a@sink.test", "substitutions": {"x": "1"}}],
      "cc": "c@sink.test"}, 400, "cc"),
    ({"content": "Subject: no from\r\n\r\nx\r\n", "to": "x@sink.test"}, 400, "content"),
    ({"content": "From: a@sender.test\r\n\r\nx\r\n", "to": "x@sink.test", "text": "y"}, 400,
     "text"),
    ({"from": "a@sender.test", "to": "x@sink.test", "envelope_from": "bad"}, 400,
     "envelope_from"),
    # nothing after an address is dropped: the sender as strict as the recipients
    ({"from": "a@sender.test", "to": "x@sink.test", "envelope_from": "a@sender.test> junk"},
     400, "envelope_from"),
    ({"from": "a@sender.test", "to": "x@sink.test", "envelope_from": "a@sender.test junk"},
     400, "envelope_from"),
    ({"from": "a@sender.test", "to": "x@sink.test> junk"}, 400, "to"),
    ({"from": "a@sender.test> junk", "to": "x@sink.test"}, 400, "from"),
    ({"from": "a@sender.test", "to": "x@sink.test", "cc": ["c@sink.test> junk"]}, 400, "cc[0]"),
    ({"from": "a@sender.test", "to": "x@sink.test", "reply_to": "r@sender.test> j"}, 400,
     "reply_to"),
    ({"content": "From: a@sender.test junk\r\n\r\nx\r\n", "to": "x@sink.test"}, 400,
     "content"),
    # 70 kB of "=" is 210 kB quoted-printable: over max_body_bytes as a message
    ({"from": "a@sender.test", "to": "x@sink.test", "text": "=" * 70000}, 413, ""),
    (b'{"from": "a@sender.test", "to": "x@sink.test", "text": "\xff\xfe"}', 400, ""),
]


def test_bad_input_gets_a_4xx_naming_the_field_and_nothing_is_queued():
    s = shared()
    ctl_ok(s, "suspend", "sink.test")
    try:
        before = set(s.k.queued_ids())
        api = Api(s.http, TOKEN_SEND)
        for body, status, field in BAD:
            st, resp, _ = api.call("POST", "/api/v1/send", body)
            assert st == status, (str(body)[:100], st, resp)
            assert resp["error"]["status"] == status
            assert resp["error"].get("field", "") == field, (field, resp)
            assert resp["error"]["message"], resp
        # over max_body_bytes: refused from Content-Length, before the body is read
        st, resp, r = api.call("POST", "/api/v1/send", "x" * 300000)
        assert st == 413 and r.getheader("Connection") == "close", resp
        api = Api(s.http, TOKEN_SEND)
        # a batch: bad messages get their own error, the good ones are queued
        st, resp, _ = api.call("POST", "/api/v1/send/batch", {"messages": [
            {"from": "a@sender.test", "to": "b1@sink.test", "text": "1"},
            {"from": "a@sender.test", "to": "nope"},
            {"from": "a@sender.test", "to": "b2@sink.test", "text": "2"}]})
        assert st == 200 and resp["accepted"] == 2 and resp["rejected"] == 1, resp
        batch = resp
        assert resp["results"][1]["error"]["field"] == "to" and resp["results"][1]["index"] == 1
        assert all("id" in resp["results"][i] for i in (0, 2))
        for bad, field in [({"messages": {}}, "messages"), ({"mess": []}, "messages"),
                           ({"messages": []}, "messages")]:
            st, resp, _ = api.call("POST", "/api/v1/send/batch", bad)
            assert st == 400 and resp["error"]["field"] == field, resp
        st, resp, _ = api.call("POST", "/api/v1/send/batch", {"messages": [
            {"from": "a@sender.test", "to": "x@sink.test"}] * 51})
        assert st == 413 and resp["error"]["field"] == "messages", resp
        # what is new in the spool is the batch's two good messages, nothing else (earlier
        # cases' messages may leave it meanwhile: they are delivered)
        new = set(s.k.queued_ids()) - before
        assert new == {batch["results"][0]["id"], batch["results"][2]["id"]}, (new, batch)
    finally:
        ctl_ok(s, "resume", "sink.test")


def test_authorisation_tokens_scopes_and_trusted_networks():
    s = shared()
    msg = {"from": "a@sender.test", "to": "auth@sink.test", "text": "x"}
    # 127.0.0.1 is the trusted network here (kasictl's admin commands come from it);
    # 127.0.0.2 is not
    st, resp, r = Api(s.http, source="127.0.0.2").call("POST", "/api/v1/send", msg)
    assert st == 401 and r.getheader("WWW-Authenticate") == "Bearer", resp
    st, resp, _ = Api(s.http, "wrong-token", source="127.0.0.2").call("POST", "/api/v1/send", msg)
    assert st == 403, resp
    # a wrong token is refused even from a trusted network
    st, resp, _ = Api(s.http, "wrong-token").call("GET", "/metrics")
    assert st == 403, resp
    st, resp, _ = Api(s.http, TOKEN_SEND).call("POST", "/api/v1/admin/flush")
    assert st == 403, resp
    st, resp, _ = Api(s.http, TOKEN_SEND).call("GET", "/metrics")
    assert st == 403, resp
    st, resp, _ = Api(s.http, TOKEN_ADMIN).call("POST", "/api/v1/send", msg)
    assert st == 403, resp
    st, resp, _ = Api(s.http, TOKEN_ADMIN).call("GET", "/metrics")
    assert st == 200 and "kasi_build_info" in resp
    st, resp, _ = Api(s.http, source="127.0.0.2").call("POST", "/api/v1/admin/flush")
    assert st == 401, resp
    st, resp, _ = Api(s.http).call("POST", "/api/v1/admin/flush")
    assert st == 200 and resp["ok"], resp
    st, resp, _ = Api(s.http, source="127.0.0.2").call("GET", "/health")  # public
    assert st == 200 and resp["ready"] is True and resp["checks"]["spool"]["ok"], resp
    st, resp, _ = Api(s.http).call("GET", "/nowhere")
    assert st == 404, resp
    st, resp, _ = Api(s.http, TOKEN_SEND).call("GET", "/api/v1/send")
    assert st == 405, resp
    assert "refused: bad token or scope" in s.k.read_log()


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = None
    for line in text.splitlines():
        m = re.match(r"([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name and all(f'{k}="{v}"' in (m.group(2) or "")
                                            for k, v in labels.items()):
            total = (total or 0) + float(m.group(3))
    assert total is not None, f"no {name}{{{want}}} in metrics"
    return total


def test_metrics_prometheus_format_and_bounded_queue_series():
    s = shared()
    api = Api(s.http, TOKEN_ADMIN)
    st, text, r = api.call("GET", "/metrics")
    assert st == 200 and r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    # every line is a comment or "name{labels} value"
    for line in text.splitlines():
        assert line.startswith("# ") or re.match(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? '
                                                 r'[-+0-9.eInf]+$', line), line
    assert metric(text, "kasi_messages_received_total", via="http") >= 3
    assert metric(text, "kasi_recipients_total", outcome="delivered", provider="other",
                  source="default") >= 4
    assert metric(text, "kasi_spool_sync_seconds_count") > 0
    assert metric(text, "kasi_dns_cache_requests_total", result="miss") >= 1
    assert metric(text, "kasi_http_requests_total", route="send", code="2xx") >= 3
    assert metric(text, "kasi_http_requests_total", route="send", code="4xx") >= len(BAD)
    assert metric(text, "kasi_hook_duration_seconds_count", kind="native") > 0
    assert metric(text, "kasi_ready_queues", state="idle") >= 0
    # metrics_queues = 1: two ready queues (two sites) give one named series and "other"
    n0 = len(s.peer.messages)
    a2 = Api(s.http, TOKEN_SEND)
    for dom in ("sink.test", "other.test"):
        st, resp, _ = a2.call("POST", "/api/v1/send", {"from": "a@sender.test", "to": f"q@{dom}",
                                                      "text": "x"})
        assert st == 200, resp
    deadline = time.time() + 20
    while time.time() < deadline:
        got = {r for m in s.peer.messages for r in rcpts_of(m)}
        if {"q@sink.test", "q@other.test"} <= got:
            break
        time.sleep(0.05)
    st, text, _ = api.call("GET", "/metrics")
    named = re.findall(r'^kasi_ready_queue_waiting\{queue="([^"]*)"\}', text, re.M)
    assert len(named) == 2 and named[0] != "other" and named[1] == "other", named
    assert len(re.findall(r"^kasi_ready_queue_connections\{", text, re.M)) == 2
    assert metric(text, "kasi_ready_queues") >= 2
    assert metric(text, "kasi_queue_deliveries", stage="scheduled") >= 0


def test_admin_endpoints_and_kasictl_through_them():
    s = shared()
    api = Api(s.http, TOKEN_ADMIN)
    st, resp, _ = api.call("POST", "/api/v1/admin/suspend", {"domain": "hold.test",
                                                             "reason": "maintenance"})
    assert st == 200 and "suspended hold.test" in resp["result"], resp
    st, resp, _ = Api(s.http, TOKEN_SEND).call(
        "POST", "/api/v1/send", {"from": "a@sender.test", "to": "x@hold.test", "text": "held"})
    assert st == 200
    mid = resp["id"]
    st, q, _ = api.call("GET", "/api/v1/admin/queue")
    assert st == 200 and any(d["domain"] == "hold.test" and d["reason"] == "maintenance"
                             for d in q["suspended_domains"]), q
    # the spool over the API: what kasictl list / show print
    st, lst, _ = api.call("GET", "/api/v1/admin/messages?limit=1000")
    assert st == 200 and lst["count"] >= 1 and any(m["id"] == mid for m in lst["messages"]), lst
    st, one, _ = api.call("GET", f"/api/v1/admin/messages/{mid}?body=1")
    assert st == 200 and one["recipients"][0]["address"] == "x@hold.test", one
    assert one["recipients"][0]["status"] in ("queued", "deferred") and "held" in one["body"], one
    assert one["client_ip"] == "127.0.0.1" and one["sender"] == "a@sender.test", one
    assert api.call("GET", "/api/v1/admin/messages/NOPE")[0] == 404
    assert api.call("GET", "/api/v1/admin/messages?limit=0")[0] == 400
    assert Api(s.http, TOKEN_SEND).call("GET", "/api/v1/admin/messages")[0] == 403
    env = dict(os.environ, KASI_API_TOKEN=TOKEN_ADMIN)
    # bounced while its domain is held, so that it is certainly still queued (kasictl
    # refuses an id the spool does not hold; after a resume it may already be delivered)
    r = subprocess.run([KASICTL, "-c", s.k.dir, "bounce", mid], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0 and "bounced 1" in r.stdout, r
    r = subprocess.run([KASICTL, "-c", s.k.dir, "resume", "hold.test"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0 and r.stdout.startswith("ok: resumed hold.test"), r
    r = subprocess.run([KASICTL, "-c", s.k.dir, "resume", "nothing.test"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 1 and r.stdout.startswith("error: nothing.test is not suspended"), r
    r = subprocess.run([KASICTL, "-c", s.k.dir, "status"], capture_output=True, text=True,
                       env=dict(os.environ, KASI_API_TOKEN=TOKEN_SEND))
    assert r.returncode == 1 and "may not use" in r.stdout, r
    log = s.k.read_log()
    assert "http: admin resume hold.test by ops" in log and f"http: admin bounce {mid} by ops" in log
    st, resp, _ = api.call("POST", "/api/v1/admin/reload")
    assert st == 200 and "generation" in resp["result"], resp
    st, resp, _ = api.call("GET", "/api/v1/admin/status")
    assert st == 200 and "last reload" in resp["result"], resp
    for path, body, field in [("suspend", {}, "domain"), ("delete", {}, "id"),
                              ("suspend", {"domain": "a b"}, "domain"),
                              ("flush", {"domain": 5}, "domain")]:
        st, resp, _ = api.call("POST", "/api/v1/admin/" + path, body)
        assert st == 400 and resp["error"]["field"] == field, (path, resp)
    st, resp, _ = api.call("POST", "/api/v1/admin/explode")
    assert st == 404, resp


def test_deeply_nested_json_gets_400_and_kasi_keeps_serving():
    """500,000 '[' (and nested objects) once overflowed the stack of the recursive parser:
    every JSON the API reads is parsed iteratively with a depth limit."""
    port = free_port()
    k = outbound_kasi(free_port(), extra={"http.ini": http_ini(port, max_body=2000000)})
    try:
        wait_port(port)
        api = Api(port)
        deep = "[" * 500000
        objs = '{"a":' * 300000
        for path, body in [("/api/v1/send", deep), ("/api/v1/send", objs),
                           ("/api/v1/send/batch", deep),
                           ("/api/v1/send/batch", '{"messages": ' + deep),
                           ("/api/v1/admin/flush", deep), ("/api/v1/admin/suspend", objs)]:
            try:
                st, resp, _ = api.call("POST", path, body)
            except (ConnectionError, http.client.HTTPException) as e:
                raise AssertionError(f"{path}: no answer ({e!r}); kasi alive: "
                                     f"{k.proc.poll() is None}\n{k.read_log()[-1500:]}")
            assert st == 400, (path, st, resp)
            assert re.match(r"JSON nested deeper than 64 levels at offset \d+$",
                            resp["error"]["message"]), (path, resp)
        # 64 levels are still JSON the API reads (then refuses for what it is)
        st, resp, _ = api.call("POST", "/api/v1/send", "[" * 64 + "]" * 64)
        assert st == 400 and resp["error"]["message"] == "a message must be a JSON object", resp
        # one value, nothing after it
        st, resp, _ = api.call("POST", "/api/v1/send",
                               '{"from": "a@sender.test", "to": "x@sink.test"} {"x": 1}')
        assert st == 400 and "malformed JSON at offset" in resp["error"]["message"], resp
        assert k.proc.poll() is None
        st, resp, _ = api.call("POST", "/api/v1/send",
                               {"from": "a@sender.test", "to": "x@sink.test", "text": "after"})
        assert st == 200, resp
        assert Api(port).call("GET", "/health")[0] == 200
    finally:
        k.cleanup()


def start_on_tmpfs(k, size):
    """Starts kasi `k` in its own mount namespace with its queue directory on a tmpfs of
    `size` (a full disk that is real to the kernel: writes fail with ENOSPC). The test
    reaches that directory through /proc/PID/root."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise Skip("needs root and unshare(1) for a private tmpfs")
    qdir = os.path.join(k.dir, "queue")
    os.makedirs(qdir, exist_ok=True)
    k.logf = open(k.log, "ab")
    k.proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs -o size={size} kasi-it-spool "$0" && exec "$@"', qdir,
         os.path.abspath(KASI), "-c", k.dir], stdout=k.logf, stderr=k.logf)
    deadline = time.time() + 10
    while time.time() < deadline:
        assert k.proc.poll() is None, "kasi exited: " + k.read_log()
        try:
            socket.create_connection(("127.0.0.1", k.port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"/proc/{k.proc.pid}/root{qdir}"


def fill(path, leave):
    """Fills the file system of directory `path` up to `leave` bytes free."""
    st = os.statvfs(path)
    with open(os.path.join(path, "filler"), "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def health(port):
    st, resp, _ = Api(port).call("GET", "/health")
    return st, resp


def test_health_is_not_ready_while_the_spool_refuses_writes():
    port = free_port()
    k = Kasi(extra={"http.ini": http_ini(port),
                    "dns.ini": f"[main]\nservers=127.0.0.1:{outbound.dns().port}\ntimeout=0.5\n",
                    "outbound.ini": f"disabled=false\nlocal_mx_ok=true\n"
                                    f"smtp_port={free_port()}\n"})
    try:
        spool = start_on_tmpfs(k, "2m")
        wait_port(port)
        assert health(port)[0] == 200
        api = Api(port)
        # nothing is attempted, so no delivery writes to the spool but the test's own
        st, resp, _ = api.call("POST", "/api/v1/admin/suspend", {"domain": "sink.test"})
        assert st == 200, resp
        big = {"from": "a@sender.test", "to": "x@sink.test", "text": ("y" * 70 + "\n") * 1100}
        small = {"from": "a@sender.test", "to": "x@sink.test", "text": "small"}
        for recovery in ("space returns", "a write succeeds"):
            fill(spool, 32 * 1024)
            st, resp, _ = api.call("POST", "/api/v1/send", big)
            assert st == 503 and resp["error"]["smtp"].startswith("452"), resp
            st, resp = health(port)
            assert st == 503 and resp["ready"] is False, (recovery, st, resp)
            assert resp["checks"]["spool"]["ok"] is False, resp
            assert "No space left on device" in resp["checks"]["spool"]["detail"], resp
            if recovery == "a write succeeds":
                st, resp, _ = api.call("POST", "/api/v1/send", small)  # fits in what is left
                assert st == 200, resp
                assert health(port)[0] == 200
            else:
                os.unlink(os.path.join(spool, "filler"))
                deadline = time.time() + 5  # the spool checks for space by itself
                while health(port)[0] != 200:
                    assert time.time() < deadline, health(port)
                    time.sleep(0.1)
                assert "has room for" in k.read_log()  # the probe, not a write, said so
                st, resp, _ = api.call("POST", "/api/v1/send", big)
                assert st == 200, resp
            if os.path.exists(os.path.join(spool, "filler")):
                os.unlink(os.path.join(spool, "filler"))
        assert "spool: writes to" in k.read_log() and "succeed again" in k.read_log()
    finally:
        k.cleanup()


def test_pipelining_limits_and_timeouts():
    port = free_port()
    k = Kasi(extra={"http.ini": http_ini(port, "request_timeout = 1\nidle_timeout = 2\n"
                                               "max_header_bytes = 2048\nmax_connections = 3\n",
                                         trusted="127.0.0.1"),
                    "outbound.ini": "disabled=true\n"}).start()
    try:
        wait_port(port)
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /api/v1/admin/flush HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        codes = re.findall(rb"^HTTP/1\.1 (\d+)", data, re.M)
        assert codes == [b"200", b"404", b"200"], data
        # 20,000 pipelined requests (answered synchronously) come back in order, without
        # recursion, from a client that starts reading its answers only after a second
        c = socket.create_connection(("127.0.0.1", port))
        got = []

        def reader():
            time.sleep(1)  # let the answers pile up
            while chunk := c.recv(65536):
                got.append(chunk)
        t = threading.Thread(target=reader)
        t.start()
        c.sendall(b"GET /nowhere HTTP/1.1\r\n\r\n" * 20000 + b"GET /health HTTP/1.1\r\n"
                  b"Connection: close\r\n\r\n")
        t.join(30)
        codes = re.findall(rb"^HTTP/1\.1 (\d+)", b"".join(got), re.M)
        assert len(codes) == 20001 and codes[-1] == b"200" and set(codes[:-1]) == {b"404"}
        # header too large
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 431 "), "431"
        # garbage
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"HELO smtp.example\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 400 ")
        # a request that stops half-way: 408 after request_timeout, then closed
        c = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        c.sendall(b"POST /api/v1/send HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"fr")
        c.settimeout(5)
        data = c.recv(4096)
        assert data.startswith(b"HTTP/1.1 408 ") and 0.8 < time.time() - t0 < 3, data
        assert c.recv(4096) == b""
        # an idle keep-alive connection is closed after idle_timeout
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(5)
        t0 = time.time()
        assert c.recv(10) == b"" and 1.5 < time.time() - t0 < 4
        # HTTP/1.0 without keep-alive: one answer, then close
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        c.settimeout(5)
        data = b""
        while chunk := c.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in data
        # max_connections = 3: the fourth connection is told 503 and closed
        held = [Api(port) for _ in range(3)]
        for a in held:
            assert a.call("GET", "/health")[0] == 200
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(5)
        data = c.recv(4096)
        assert data.startswith(b"HTTP/1.1 503 ") and json.loads(data.split(b"\r\n\r\n")[1]), data
        for a in held:
            a.close()
        time.sleep(0.2)
        # HEAD: headers only
        api = Api(port)
        st, _, r = api.call("HEAD", "/health")
        assert st == 200 and int(r.getheader("Content-Length")) > 0
        # curl reuses one connection for several requests (keep-alive)
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                              "-w", "%{http_code} %{num_connects}\\n",
                              f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{port}/health",
                              f"http://127.0.0.1:{port}/health"],
                             capture_output=True, text=True, timeout=20).stdout.split("\n")
        assert out[:3] == ["200 1", "200 0", "200 0"], out
        assert "kasi_http_connections_open" in api.call("GET", "/metrics")[1]
        # Expect: 100-continue is answered at once (curl would wait a second for it)
        t0 = time.time()
        out = subprocess.run(["curl", "-s", "-H", "Expect: 100-continue", "--data-binary",
                              json.dumps({"from": "a@sender.test", "to": "x@sink.test",
                                          "text": "y" * 5000}),
                              "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/api/v1/send"],
                             capture_output=True, text=True, timeout=20).stdout
        assert out.endswith("\n200") and time.time() - t0 < 0.8, (out, time.time() - t0)
    finally:
        k.cleanup()


def test_concurrent_keep_alive_load_delivered_into_smtp_sink():
    sink = Sink()
    port = free_port()
    k = outbound_kasi(sink.port, extra={"http.ini": http_ini(port, trusted="127.0.0.1")})
    try:
        wait_port(port)
        ids, errors = [], []
        lock = threading.Lock()

        def client(n):
            api = Api(port)
            try:
                for i in range(25):
                    st, resp, _ = api.call("POST", "/api/v1/send", {
                        "from": "load@sender.test", "to": [f"r{n}-{i}@sink.test"],
                        "subject": f"load {n} {i}", "text": "body " * 200})
                    with lock:
                        (ids if st == 200 else errors).append(resp.get("id") or resp)
            finally:
                api.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        st, resp, _ = Api(port).call("POST", "/api/v1/send/batch", {"messages": [
            {"from": "batch@sender.test", "to": f"b{i}@sink.test", "text": f"batch {i}"}
            for i in range(50)]})
        for t in threads:
            t.join()
        assert st == 200 and resp["accepted"] == 50, resp
        assert not errors and len(set(ids)) == 200, errors[:3]
        deadline = time.time() + 60
        while sink.count() < 250 and time.time() < deadline:
            time.sleep(0.2)
        assert sink.count() == 250, (sink.count(), k.read_log()[-2000:])
    finally:
        k.cleanup()
        sink.stop()


def test_a_200_survives_kill_9():
    port = free_port()
    k = Kasi(extra={"http.ini": http_ini(port, trusted="127.0.0.1"),
                    "outbound.ini": "disabled=true\n"}).start()
    try:
        wait_port(port)
        api = Api(port)
        got = []
        for i in range(20):
            st, resp, _ = api.call("POST", "/api/v1/send", {"from": "a@sender.test",
                                                           "to": "x@sink.test", "text": str(i)})
            assert st == 200
            got.append(resp["id"])
        k.proc.send_signal(signal.SIGKILL)
        k.proc.wait()
        assert sorted(k.queued_ids()) == sorted(got)
    finally:
        k.cleanup()


def test_sigterm_during_a_batch_loses_nothing_acknowledged():
    """A graceful stop while a batch is going through its local sessions: the request is
    answered (what was queued before the stop, the rest 503 from the 421 the sessions say),
    kasi exits cleanly, and every id the answer gave is in the spool."""
    port = free_port()
    k = Kasi(extra={"http.ini": http_ini(port, "batch_sessions = 2\nmax_batch_messages = 60\n",
                                         trusted="127.0.0.1"),
                    "outbound.ini": "disabled=true\n"})
    with open(os.path.join(k.dir, "config", "plugins"), "w") as f:
        f.write("slow\nrelay\n")
    os.makedirs(os.path.join(k.dir, "plugins"), exist_ok=True)
    with open(os.path.join(k.dir, "plugins", "slow.lua"), "w") as f:
        f.write("return { hook_data_post = function(conn) kasi.sleep(0.05) end }\n")
    k.start()
    try:
        wait_port(port)
        out = {}

        def send():
            out["r"] = Api(port).call("POST", "/api/v1/send/batch", {"messages": [
                {"from": "a@sender.test", "to": f"t{i}@sink.test", "text": str(i)}
                for i in range(40)]})

        t = threading.Thread(target=send)
        t.start()
        time.sleep(0.4)  # about 16 messages in (2 lanes, 50 ms each)
        k.send_signal(signal.SIGTERM)
        t.join(30)
        st, body, _ = out["r"]
        assert st == 200, body
        ok = [r["id"] for r in body["results"] if "id" in r]
        refused = [r for r in body["results"] if "error" in r]
        assert 0 < len(ok) < 40 and len(ok) + len(refused) == 40, body
        assert all(r["error"]["status"] == 503 and r["error"]["smtp"].startswith("421")
                   for r in refused), refused[:2]
        assert k.proc.wait(20) == 0, k.read_log()[-2000:]
        assert sorted(k.queued_ids()) == sorted(ok), (len(k.queued_ids()), len(ok))
    finally:
        k.cleanup()


def test_https_listener():
    p = Pki(tempfile.mkdtemp(prefix="kasi-http-pki-"))
    key, cert = p.leaf("api", "api.kasi.test", sans=["api.kasi.test", "localhost"])
    port, tport = free_port(), free_port()
    k = Kasi(extra={"http.ini": http_ini(port, f"listen_tls = 127.0.0.1:{tport}\n",
                                         trusted="127.0.0.1") + f"[tls]\nkey = {key}\ncert = {cert}\n",
                    "outbound.ini": "disabled=true\n"}).start()
    try:
        wait_port(tport)
        ctx = ssl.create_default_context(cafile=p.ca_cert)
        ctx.check_hostname = False
        c = http.client.HTTPSConnection("127.0.0.1", tport, context=ctx, timeout=10)
        c.request("POST", "/api/v1/send", body=json.dumps(
            {"from": "a@sender.test", "to": "x@sink.test", "text": "over tls"}))
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
        c.request("GET", "/health")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["ready"]
        rc, out, err = k.ctl("show", body["id"], "--body")
        assert " with HTTPS id " in out, out
        out = subprocess.run(["curl", "-s", "--cacert", p.ca_cert, "--resolve",
                              f"localhost:{tport}:127.0.0.1", f"https://localhost:{tport}/health"],
                             capture_output=True, text=True, timeout=20)
        assert json.loads(out.stdout)["status"] == "ok", out
        # plain HTTP on the TLS port is a failed handshake, not a crash
        c2 = socket.create_connection(("127.0.0.1", tport))
        c2.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        c2.settimeout(5)
        assert not c2.recv(100).startswith(b"HTTP/1.1 200")
        assert Api(port).call("GET", "/health")[0] == 200
    finally:
        k.cleanup()


def test_one_click_unsubscribe_endpoint():
    """List-Unsubscribe pointing at kasi's own HTTPS listener: RFC 8058's POST is recorded as
    an Unsubscribe event; forged tokens, a missing body and GET are refused."""
    p = Pki(tempfile.mkdtemp(prefix="kasi-unsub-pki-"))
    key, cert = p.leaf("mta", "localhost")
    port, tport = free_port(), free_port()
    secret = "unsubscribe-secret-0123456789"
    s = Setup(extra_files={
        "http.ini": http_ini(port, f"listen_tls = 127.0.0.1:{tport}\n", trusted="127.0.0.1")
        + f"[tls]\nkey = {key}\ncert = {cert}\n",
        "unsubscribe.ini": f"[main]\nsecret = {secret}\n"
                           f"url = https://localhost:{tport}/unsubscribe/{{token}}\n"})
    s.start()
    try:
        wait_port(tport)
        st, resp, _ = Api(port).call("POST", "/api/v1/send", {
            "from": "news@sender.test", "to": "Reader@sink.test", "text": "hi", "tenant": "acme"})
        assert st == 200, resp
        raw = s.delivered(1)[0]
        s.v.verify_all(raw)
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
        url = re.search(rb"<(https://localhost:\d+/unsubscribe/[^>]+)>", raw).group(1).decode()
        path = url.split(str(tport), 1)[1]
        ctx = ssl.create_default_context(cafile=p.ca_cert)

        def post(path, body, method="POST", source="127.0.0.2"):
            # from an untrusted address: the token is the only authorisation
            c = http.client.HTTPSConnection("localhost", tport, context=ctx, timeout=10,
                                            source_address=(source, 0))
            c.request(method, path, body=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = c.getresponse()
            return r.status, json.loads(r.read())

        st, resp = post(path, "List-Unsubscribe=One-Click")
        assert st == 200 and resp["recipient"] == "reader@sink.test", resp
        ev = events(s.k, "Unsubscribe", 5)
        assert ev and ev[0]["recipient"] == "reader@sink.test" and ev[0]["tenant"] == "acme", ev
        forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        st, resp = post(forged, "List-Unsubscribe=One-Click")
        assert st == 400 and resp["error"]["field"] == "token", resp
        st, resp = post(path, "")
        assert st == 400, resp
        st, resp = post(path, None, method="GET")
        assert st == 405, resp
        time.sleep(0.5)
        assert len(events(s.k, "Unsubscribe")) == 1
    finally:
        s.close()


POLICY_LUA = r"""
local M = {}
function M.hook_connect(conn)
  conn.notes.saw_connect = 'yes'
end
function M.hook_mail(conn, params)
  local from = params[1]
  if from.user == 'blocked' then return DENY, 'sender blocked by policy' end
  if from.user == 'later' then return DENYSOFT, 'sender paused, try later' end
  conn.transaction.notes.mail_saw_tenant = conn.transaction.notes.tenant or '-'
end
function M.hook_rcpt(conn, params)
  if params[1].user == 'suppressed' then return DENY, 'on the suppression list' end
  if params[1].user == 'hangup' then return DENYDISCONNECT, 'go away' end
end
function M.hook_data_post(conn)
  local t = conn.transaction
  t:add_header('X-Api-Policy', table.concat({conn.remote.ip, tostring(conn.relaying),
    conn.notes['api.client'] or '-', conn.notes.saw_connect or '-',
    t.notes.mail_saw_tenant or '-', t.notes['meta.order'] or '-'}, ' '))
end
function M.hook_queue_outbound(conn)
  conn.transaction.notes.queued_by = 'policy'
end
function M.hook_send_email(hmail)
  kasi.log.info('send_email', hmail.uuid, 'queued_by=' .. tostring(hmail.notes.queued_by))
end
return M
"""


def test_api_mail_meets_the_smtp_hooks():
    """API mail goes through a local SMTP session: connect, mail, rcpt, data_post and
    queue_outbound hooks run for it (notes and headers they set arrive), a refused recipient
    gets its own error while the others are queued, and a refused sender makes the message
    an error (422 permanent, 503 temporary) with the SMTP reply."""
    port = free_port()
    s = Setup(plugins="policy\nrelay\ndkim\n", lua={"policy": POLICY_LUA},
              extra_files={"http.ini": http_ini(port, "batch_sessions = 1\n"),
                           "http_tokens": TOKENS})
    s.start()
    try:
        wait_port(port)
        api = Api(port, TOKEN_SEND)
        st, body, _ = api.call("POST", "/api/v1/send", {
            "from": "news@sender.test", "to": ["ok1@sink.test", "suppressed@sink.test",
                                               "ok2@sink.test"],
            "subject": "hooks", "text": "hello", "tenant": "acme", "metadata": {"order": 7}})
        assert st == 200, body
        rc = body["recipients"]
        assert [r["email"] for r in rc] == ["ok1@sink.test", "suppressed@sink.test",
                                            "ok2@sink.test"], body
        assert rc[0]["id"] == body["id"] + "/0" and rc[2]["id"] == body["id"] + "/1", body
        assert "id" not in rc[1] and rc[1]["error"]["status"] == 422, body
        assert "550" in rc[1]["error"]["smtp"] and "suppression list" in rc[1]["error"]["smtp"]
        assert body["rejected"] == 1, body
        msgs = s.delivered(1)
        assert len(s.peer.messages) == 1
        assert rcpts_of(s.peer.messages[0]) == ["ok1@sink.test", "ok2@sink.test"]
        m = email.message_from_bytes(msgs[0], policy=email.policy.default)
        assert m["X-Api-Policy"] == "127.0.0.1 true app yes acme 7", m["X-Api-Policy"]
        # one Received line, the API's (the local session adds none of its own)
        assert [str(r).split(" id ")[0] for r in m.get_all("Received")] == \
            [str(m["Received"]).split(" id ")[0]] and "with HTTP" in str(m["Received"])
        # the header was added before signing: the signatures sit above it and verify
        s.v.verify_all(msgs[0])
        assert msgs[0].index(b"DKIM-Signature") < msgs[0].index(b"X-Api-Policy")
        # queue_outbound's note went with the message to the delivery side
        assert re.search(r"send_email " + re.escape(body["id"]) + r" queued_by=policy",
                         s.k.read_log()), s.k.read_log()[-3000:]
        # a refused sender: the whole message is an error, 422 or 503, nothing queued
        st, body, _ = api.call("POST", "/api/v1/send", {
            "from": "blocked@sender.test", "to": "x@sink.test", "text": "no"})
        assert st == 422 and body["error"]["field"] == "from", body
        assert body["error"]["smtp"].startswith("550") and "blocked by policy" in \
            body["error"]["smtp"], body
        assert all("error" in r for r in body["recipients"]), body
        st, body, _ = api.call("POST", "/api/v1/send", {
            "from": "later@sender.test", "to": "x@sink.test", "text": "no"})
        assert st == 503 and body["error"]["smtp"].startswith("450"), body
        # every recipient refused: an error naming "to"
        st, body, _ = api.call("POST", "/api/v1/send", {
            "from": "news@sender.test", "to": "suppressed@sink.test", "text": "no"})
        assert st == 422 and body["error"]["field"] == "to", body
        # a batch: per-message results, the good ones queued around the refused ones
        st, body, _ = api.call("POST", "/api/v1/send/batch", {"messages": [
            {"from": "news@sender.test", "to": "b0@sink.test", "text": "0"},
            {"from": "blocked@sender.test", "to": "b1@sink.test", "text": "1"},
            {"from": "news@sender.test", "to": ["suppressed@sink.test", "b2@sink.test"],
             "text": "2"},
            {"from": "news@sender.test", "to": "suppressed@sink.test", "text": "3"},
            {"from": 5},
            {"from": "news@sender.test", "to": "b5@sink.test", "text": "5"},
            {"from": "news@sender.test", "to": ["hangup@sink.test", "b6@sink.test"],
             "text": "6"},
            {"from": "news@sender.test", "to": "b7@sink.test", "text": "7"}]})
        assert st == 200 and body["accepted"] == 4 and body["rejected"] == 4, body
        res = body["results"]
        assert [("id" in r) for r in res] == [True, False, True, False, False, True, False,
                                              True], res
        assert res[1]["error"]["field"] == "from" and res[3]["error"]["field"] == "to", res
        assert res[4]["error"]["status"] == 400 and "smtp" not in res[4]["error"], res
        assert res[2]["rejected"] == 1, res[2]
        # DENYDISCONNECT ended that session (the message is refused whole, as the SMTP
        # client's transaction would be); the next message got a new one
        assert res[6]["error"]["status"] == 422 and "go away" in res[6]["error"]["smtp"], res
        s.delivered(5)
        got = sorted(r for m in s.peer.messages for r in rcpts_of(m))
        assert got == ["b0@sink.test", "b2@sink.test", "b5@sink.test", "b7@sink.test",
                       "ok1@sink.test", "ok2@sink.test"], got
        # the four single sends shared the keep-alive connection's session: one disconnect
        # line with four transactions once the connection closes
        api.close()
        deadline = time.time() + 10
        pat = r"disconnect ip=127\.0\.0\.1 rdns= helo=\[127\.0\.0\.1\] relay=Y .* txns=4 "
        while not re.search(pat, s.k.read_log()) and time.time() < deadline:
            time.sleep(0.1)
        assert re.search(pat, s.k.read_log()), s.k.read_log()[-3000:]
    finally:
        s.close()


FUZZ_LUA = """return {
hook_mail = function(c, p) if p[1].user:match('^d') then return DENYDISCONNECT, 'bye' end end,
hook_rcpt = function(c, p)
  if p[1].user:match('^x') then return DENY, 'no' end
  if p[1].user:match('^s') then return DENYSOFT, 'later' end
end,
hook_data_post = function(c)
  if c.transaction.notes.tenant == 'bad' then error('boom') end
end }
"""


def test_random_requests_answer_cleanly_and_the_spool_holds_exactly_what_was_acknowledged():
    """Seeded random single and batch requests (odd and UTF-8 addresses, per-recipient
    substitutions, raw content, header injection, byte-mutated JSON, reconnects) against a
    policy that refuses, defers, disconnects and throws: every answer is JSON with a
    documented status, kasi keeps serving, and the spool holds exactly the messages whose
    ids were given out."""
    import random
    port = free_port()
    k = Kasi(extra={"http.ini": http_ini(port, "batch_sessions = 3\n", trusted="127.0.0.1"),
                    "outbound.ini": "disabled=true\n"})
    with open(os.path.join(k.dir, "config", "plugins"), "w") as f:
        f.write("pol\nrelay\n")
    os.makedirs(os.path.join(k.dir, "plugins"), exist_ok=True)
    with open(os.path.join(k.dir, "plugins", "pol.lua"), "w") as f:
        f.write(FUZZ_LUA)
    k.start()
    rnd = random.Random(20261123)

    def addr():
        local = rnd.choice(["a", "ok", "ok", "ok", "x1", "s2", "d3", "\u00e9t\u00e9", "q\"q", ""])
        if rnd.random() < 0.8:
            return local + "@sink.test" if local else "ok@sink.test"
        return local + rnd.choice(["@", "", "@[127.0.0.1]", "@b\u00fccher.test"])

    def msg():
        m = {"from": addr(), "to": [addr() for _ in range(rnd.randint(0, 4))],
             "text": "x" * rnd.randint(0, 3000)}
        if rnd.random() < 0.3:
            m["tenant"] = rnd.choice(["ok", "bad", "a b"])
        if rnd.random() < 0.2:
            m.pop("text")
            m["content"] = rnd.choice(["From: a@b.test\n\nhi", "no header",
                                       "From: a@b\r\n\r\n." * 3])
        if rnd.random() < 0.2:
            m["to"] = [{"email": addr(), "substitutions": {"n": "v"}}
                       for _ in range(rnd.randint(1, 3))]
        if rnd.random() < 0.1:
            m["headers"] = {"X-A": rnd.choice(["v", "a\r\nb", "\u00fc"])}
        return m

    given = set()
    statuses = {}
    try:
        wait_port(port)
        api = Api(port)
        for _ in range(300):
            batch = rnd.random() < 0.5
            body = {"messages": [msg() for _ in range(rnd.randint(1, 6))]} if batch else msg()
            data = json.dumps(body)
            if rnd.random() < 0.1:
                i = rnd.randrange(len(data))
                data = data[:i] + rnd.choice(["", "{", "\"", "\\", "]"]) + data[i + 1:]
            st, resp, _ = api.call("POST", "/api/v1/send/batch" if batch else "/api/v1/send",
                                   data, {"Content-Type": "application/json"})
            statuses[st] = statuses.get(st, 0) + 1
            assert st in (200, 400, 413, 422, 503), (st, resp, data[:300])
            assert isinstance(resp, dict), (st, resp)
            results = resp.get("results", [resp]) if st == 200 else [resp]
            for r in results:
                for rc in r.get("recipients", []):
                    assert ("id" in rc) != ("error" in rc), rc
                    if "id" in rc:
                        given.add(rc["id"].split("/")[0])
            if rnd.random() < 0.05:
                api.close()
                api = Api(port)
        api.close()
        print("statuses", sorted(statuses.items()), "messages queued", len(given))
        assert statuses.get(200, 0) > 50 and statuses.get(400, 0) > 10, statuses
        assert k.proc.poll() is None, k.read_log()[-2000:]
        assert sorted(k.queued_ids()) == sorted(given), (len(k.queued_ids()), len(given))
        assert "policy error" in k.read_log() or "boom" in k.read_log()
    finally:
        k.cleanup()


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if outbound._DNS:  # outbound.kasi()'s DNS fixture: it holds meson's stderr pipe open
            outbound._DNS.proc.kill()
