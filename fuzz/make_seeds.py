#!/usr/bin/python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (run once; the files are committed).
Every seed is written here by hand, except the INI seeds, which copy the repository's own
test/data/ini files and config examples. DNS answers are built with dnslib (Debian's
python3-dnslib: run with /usr/bin/python3). Trailing bytes after a seed's text are the
parameters that target's FuzzedDataProvider reads from the end of the input."""
import os
import shutil
import struct
import sys

top = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(top, "corpus")


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# smtp_command: one command line, no CRLF
cmds = [
    "EHLO client.example", "HELO [192.0.2.1]", "MAIL FROM:<alice@example.com>",
    "MAIL FROM:<> SIZE=1000 BODY=8BITMIME", "MAIL FROM:<a@b.example> SMTPUTF8 AUTH=<>",
    "mail from: <Bob@EXAMPLE.org.>", "MAIL FROM:<\"john doe\"@example.com>",
    "MAIL FROM:<@relay1.example,@relay2.example:user@dest.example>",
    "RCPT TO:<postmaster>", "RCPT TO:<user@[192.0.2.7]>", "RCPT TO:<user@[IPv6:2001:db8::1]>",
    "RCPT TO:<us%er@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;us%er@example.net",
    "RCPT TO:<\xc3\xa9l\xc3\xa8ve@\xc3\xa9cole.example>", "RCPT TO:<a\\@b@example.com>",
    "RCPT TO:<\"a@b\"@example.com>", "BDAT 1000", "BDAT 0 LAST", "BDAT 18446744073709551616",
    "DATA", "RSET", "NOOP x", "QUIT", "VRFY postmaster", "STARTTLS", "AUTH PLAIN AGFAAGI=",
    "MAIL FROM:<a@b.example> SIZE=", "RCPT TO:<a@b.example> X=Y=Z", "MAIL FROM:a@b.example",
]
for i, c in enumerate(cmds):
    put("smtp_command", f"seed{i:02d}", c.encode("latin-1") if "\xc3" in c else c)


# data_stream: stream + seed(4) + run choice(1) + max_bytes(3) + max_line(2)
def ds_tail(max_line=998, max_bytes=1 << 20, run=False):
    return (struct.pack("<I", 0x9E3779B9) + bytes([0 if run else 1]) +
            struct.pack(">I", max_bytes)[1:] + struct.pack(">H", max_line))


msg = ("From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n"
       "Hello\r\n..leading dot\r\n.\r\nQUIT\r\n")
put("data_stream", "plain", msg.encode() + ds_tail())
put("data_stream", "short_lines", msg.encode() + ds_tail(max_line=10))
put("data_stream", "too_big", msg.encode() + ds_tail(max_bytes=20))
put("data_stream", "bare_lf", b"Subject: x\r\n\r\nline\n.\r\n" + ds_tail())
put("data_stream", "bare_lf_dot", b"Subject: x\r\n\r\nline\r\n\n.\n" + ds_tail())
put("data_stream", "bare_cr", b"Subject: x\r\n\r\nli\rne\r\n.\r\n" + ds_tail())
put("data_stream", "long_line", b"Subject: x\r\n\r\n" + b"y" * 3000 + b"\r\n.\r\n" + ds_tail())
put("data_stream", "run", b"Subject: x\r\n\r\n.x\r\n.\r\n" + ds_tail(run=True))
put("data_stream", "empty", b".\r\n" + ds_tail())
put("data_stream", "unfinished", b"Subject: x\r\n\r\nno end\r\n" + ds_tail())
mime = ("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
        "--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX\r\nContent-Type: multipart/alternative;"
        "\r\n boundary=YY\r\n\r\n--YY\r\n\r\na\r\n--YY--\r\n--XX--\r\n")
put("data_stream", "mime", (mime + ".\r\n").encode() + ds_tail())

# mime_scan: a stored message (first byte also sets the part limit)
put("mime_scan", "mixed", mime)
put("mime_scan", "single", "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n")
put("mime_scan", "quoted", "Content-Type: multipart/mixed; boundary=\"a b;c\"\r\n\r\n--a b;c\r\n\r\nx\r\n--a b;c--\r\n")
put("mime_scan", "unquoted", "Content-type: Multipart/Related; type=text/html; BOUNDARY=zz\r\n\r\n--zz\r\n\r\n--zz\r\n\r\n--zz--\r\n")
put("mime_scan", "folded", "Received: from a\r\n\tby b\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"=_x\"\r\n\r\n--=_x\r\n\r\n--=_x--\r\n")
put("mime_scan", "many", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + "--b\r\n\r\nx\r\n" * 70 + "--b--\r\n")
put("mime_scan", "no_header_end", "Subject: x\r\nX-A: y")
put("mime_scan", "headers_only", "Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nReceived: x\r\nReceived: y\r\n\r\n")

# lua_helpers: FuzzedDataProvider strings end at a backslash followed by another byte.
def lh(name, value, message, case, extra=b"", secret_default=True, at_end=False):
    front = name.encode() + b"\\ " + value.encode() + b"\\ " + extra + message.encode()
    # read from the end: secret bool, at_end bool, case (0..3)
    return front + bytes([case, 1 if at_end else 0, 1 if secret_default else 0])


hdrs = "From: \"A, B\" <a@Example.COM>\r\nTo: x@y.example,\r\n z@w.example\r\nSubject: hi\r\n\r\nbody\r\n"
put("lua_helpers", "add_top", lh("X-Tag", "hello", hdrs, 3))
put("lua_helpers", "add_end", lh("Subject", "  spaced  ", hdrs, 2, at_end=True))
put("lua_helpers", "bad_name", lh("X Tag:", "v", hdrs, 3))
put("lua_helpers", "bad_value", lh("X-Tag", "a\r\nBcc: x@y", hdrs, 3))
put("lua_helpers", "folded", lh("to", "Name <n@d.example>, o@e.example", hdrs, 3))
put("lua_helpers", "sender", lh("From", "a@b", "Sender: s@Sender.example\r\n\r\n", 3))
put("lua_helpers", "no_block", lh("X-A", "b", " leading continuation\r\nX-A: c\r\n\r\n", 3))
put("lua_helpers", "verp", lh("X-A", "b", hdrs, 0,
    extra=b"b-abcde-aaaaaaaaaaaaaaaaaaaaaaaaaa.1-user=example.net@bounces.example\\ "
          b"user@example.net\\ " + bytes(range(16))))
put("lua_helpers", "verp_index", lh("X-A", "b", hdrs, 0,
    extra=b"b-abcde-aaaaaaaaaaaaaaaaaaaaaaaaaa.1-3@bounces.example\\ \"q u\"@example.net\\ " + bytes(16)))
put("lua_helpers", "unsub", lh("X-A", "b", hdrs, 1,
    extra=b"dTEKYUBiCmxpc3QKdAoxNzAwMDAwMDAw.AAAAAAAAAAAAAAAAAAAAAA\\ Alice@Example.com\\ news\\ acme\\ "))

# http_request: raw requests + seed(4)
reqs = {
    "get": "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "post": "POST /api/v1/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer abc\r\nContent-Length: 2\r\n\r\n{}",
    "chunked": "POST /api/v1/send/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n0\r\n\r\n",
    "pipelined": "GET /a HTTP/1.1\r\n\r\nGET /b?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n",
    "query": "POST /api/v1/admin/flush?domain=ex%41mple.com&id=a+b HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "expect": "POST /api/v1/send HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    "too_long": "POST /api/v1/send HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
    "http10": "GET /metrics HTTP/1.0\r\n\r\n",
    "bad_version": "GET / HTTP/2.0\r\n\r\n",
    "pct_path": "GET /api/v1/messages/%2E%2E%2Fx HTTP/1.1\r\n\r\n",
    "dup_cl": "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "folded": "GET / HTTP/1.1\r\nX-A: a\r\n  b\r\n\r\n",
}
for k, v in reqs.items():
    put("http_request", k, v.encode() + struct.pack("<I", 7))

# json_body
send = ('{"from": {"email": "news@example.com", "name": "Example News"},'
        ' "to": ["Alice <alice@example.net>", {"email": "bob@example.org", "name": "Bob"}],'
        ' "cc": "carol@example.net", "bcc": ["audit@example.com"], "reply_to": "help@example.com",'
        ' "subject": "Your order {{order}}", "text": "Hello {{name}} ...",'
        ' "html": "<p>Hello {{name}}</p>", "headers": {"X-Order": "1234", "List-Id": "<orders.example.com>"},'
        ' "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf", "content": "JVBERi0xLjQK"}],'
        ' "tenant": "acme", "campaign": "orders", "region": "eu", "metadata": {"order": 1234},'
        ' "substitutions": {"name": "customer", "order": "1234"}, "envelope_from": "bounces@example.com"}')
jsons = {
    "send": send,
    "minimal": '{"from": "a@example.com", "to": "b@example.net", "subject": "s", "text": "t"}',
    "content": '{"from": "a@example.com", "to": ["b@example.net"], "content": "From: a@example.com\\nSubject: x\\n\\nbody\\n.\\n"}',
    "per_rcpt": '{"from": "a@example.com", "to": [{"email": "b@example.net", "substitutions": {"n": "1"}},'
                ' {"email": "c@example.net", "substitutions": {"n": "2"}}], "subject": "{{n}}", "text": "x {{n}}"}',
    "utf8": '{"from": {"email": "a@example.com", "name": "J\\u00fcrgen"}, "to": "\\u00e9l\\u00e8ve@\\u00e9cole.example",'
            ' "subject": "\\u00e9t\\u00e9", "html": "<b>\\u00e9</b>"}',
    "inline": '{"from": "a@example.com", "to": "b@example.net", "html": "<img src=cid:x>",'
              ' "attachments": [{"filename": "x.png", "content_type": "image/png", "content": "iVBORw0K", "content_id": "x"}]}',
    "bad_header": '{"from": "a@example.com", "to": "b@example.net", "text": "t", "headers": {"X-A": "a\\r\\nBcc: c@d"}}',
    "unknown": '{"from": "a@example.com", "to": "b@example.net", "text": "t", "bogus": 1}',
    "batch": '{"messages": [' + send + ', {"from": "x", "to": "y"}, {}]}',
    "admin": '{"domain": "example.com", "queue": "q1", "id": "ABC.1", "reason": "maintenance"}',
    "deep": "[" * 50 + "]" * 50,
    "numbers": '{"from": 1e999, "to": [-0, 1.5e-400, 18446744073709551616]}',
}
for k, v in jsons.items():
    put("json_body", k, v)

# ini: the repository's INI test data and example configs
os.makedirs(os.path.join(out, "ini"), exist_ok=True)
for src in ["test/data/ini/dialect.ini", "test/data/ini/haraka-test.ini"]:
    shutil.copy(os.path.join(top, "..", src), os.path.join(out, "ini", os.path.basename(src)))
n = 0
for root, _, files in sorted(os.walk(os.path.join(top, "..", "examples"))):
    for f in sorted(files):
        if f.endswith(".ini") and n < 20:
            shutil.copy(os.path.join(root, f), os.path.join(out, "ini", f"example{n:02d}_{f}"))
            n += 1
put("ini", "hand", "top = 1\n[main]\nk\nx[] = a\nx[] = b\nlong = a \\\n  b\n; c\n# d\n[s p]\n=v\n[\n")

# proxy_protocol
put("proxy_protocol", "v1_tcp4", "PROXY TCP4 192.0.2.1 192.0.2.2 56324 25\r\nEHLO x\r\n")
put("proxy_protocol", "v1_tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n")
put("proxy_protocol", "v1_unknown", "PROXY UNKNOWN\r\n")
put("proxy_protocol", "v1_bad", "PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n")
put("proxy_protocol", "v1_partial", "PROXY TCP4 192.0.2.1")
sig = b"\r\n\r\n\x00\r\nQUIT\n"
put("proxy_protocol", "v2_ipv4", sig + b"\x21\x11" + struct.pack(">H", 12) +
    bytes([192, 0, 2, 1, 192, 0, 2, 2]) + struct.pack(">HH", 1234, 25))
put("proxy_protocol", "v2_ipv6", sig + b"\x21\x21" + struct.pack(">H", 36) +
    bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack(">HH", 1, 2))
put("proxy_protocol", "v2_local", sig + b"\x20\x00" + struct.pack(">H", 0))
put("proxy_protocol", "v2_tlv", sig + b"\x21\x11" + struct.pack(">H", 12 + 7) +
    bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 1, 2) + b"\x04\x00\x04abcd")
put("proxy_protocol", "v2_unix", sig + b"\x21\x31" + struct.pack(">H", 216) + bytes(216))
put("proxy_protocol", "v2_short", sig + b"\x21\x11" + struct.pack(">H", 4) + bytes(4))

# classify: a selector byte, then a reply line (code<TAB>status<TAB>text<TAB>host<TAB>command;
# the byte's low bits pick the outcome kind, 0 = reply) or, with the high bit, a rule file
replies = [
    "550\t5.1.1\t550 5.1.1 <a@example.org>: Recipient address rejected: User unknown\tmx.example.org\tRCPT",
    "552\t5.2.2\t552-5.2.2 The email account that you tried to reach is over quota.\r\n552 5.2.2 gsmtp"
    "\tgmail-smtp-in.l.google.com\tRCPT",
    "421\t4.7.0\t421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints"
    "\tmta7.am0.yahoodns.net\tMAIL",
    "554\t5.7.1\t554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"
    "\tmx.example.net\tRCPT",
    "550\t5.7.509\t550 5.7.509 Access denied, sending domain EXAMPLE.COM does not pass DMARC verification"
    "\texample-com.mail.protection.outlook.com\tDATA",
    "550\t5.1.0\t550 5.1.0 <b@example.com> sender rejected. AUP#CXBL\tcxr.mx.a.cloudfilter.net\tMAIL",
    "421\t\t421 mwinf5c77 ME Service refuse. OFR_999 [999]\tsmtp-in.orange.fr\tEHLO",
    "250\t2.0.0\t250 2.0.0 Ok: queued\tmx.example.org\tDATA",
    "\t\tI am out of the office until Monday",
    "\t5.0.911\tUnknown Recipient\tgw",
]
for i, r in enumerate(replies):
    put("classify", f"reply{i:02d}", b"\x00" + r.encode())
put("classify", "connect", b"\x01\t\tconnection refused\tmx.example.org")
put("classify", "dns", b"\x03\t\tNXDOMAIN\t\t\texample.invalid")
put("classify", "tls", b"\x04\t\tcertificate verify failed\tmx.example.org")
put("classify", "rules", b"\x80" + b"""# operator rules
reason blocked class=reputation_block hard=no scope=sender
status 5.7.500-599 blocked
code 55x onhold
phrase mygroup "casier plein"
phrase mygroup /user \\S+ (is )?unknown/
rule mailboxfull says=mygroup command=RCPT,none provider=google,other
rule blocked !"whitelist" status=*.7.* code!=4xx host=mx.example.net class=policy
rule @status means=none
""")
put("classify", "rules_bad", b"\x80rule nosuchreason /a(b/ code=6xx\n")

# dns_message: answers built with dnslib
try:
    from dnslib import DNSRecord, DNSHeader, DNSQuestion, RR, QTYPE, RCODE, A, AAAA, MX, CNAME, TXT, SOA, PTR
except ImportError:
    sys.exit("dnslib missing: run with /usr/bin/python3 (python3-dnslib)")


def answer(qname, qtype, rrs, rcode=0, auth=(), tc=0):
    r = DNSRecord(DNSHeader(id=0x1234, qr=1, aa=1, ra=1, rcode=rcode, tc=tc),
                  q=DNSQuestion(qname, getattr(QTYPE, qtype)))
    for x in rrs:
        r.add_answer(x)
    for x in auth:
        r.add_auth(x)
    return r.pack()


soa = RR("example.com", QTYPE.SOA, ttl=300, rdata=SOA("ns.example.com", "h.example.com", (1, 2, 3, 4, 60)))
put("dns_message", "mx", answer("example.com", "MX", [RR("example.com", QTYPE.MX, rdata=MX("Mx1.Example.COM.", 10)),
                                                     RR("example.com", QTYPE.MX, rdata=MX("mx2.example.com", 20))]))
put("dns_message", "null_mx", answer("example.com", "MX", [RR("example.com", QTYPE.MX, rdata=MX(".", 0))]))
put("dns_message", "a", answer("mx1.example.com", "A", [RR("mx1.example.com", QTYPE.A, rdata=A("192.0.2.1"), ttl=60)]))
put("dns_message", "aaaa", answer("mx1.example.com", "AAAA", [RR("mx1.example.com", QTYPE.AAAA, rdata=AAAA("2001:db8::1"))]))
put("dns_message", "cname", answer("www.example.com", "A", [RR("www.example.com", QTYPE.CNAME, rdata=CNAME("a.example.net")),
                                                           RR("a.example.net", QTYPE.CNAME, rdata=CNAME("b.example.org")),
                                                           RR("b.example.org", QTYPE.A, rdata=A("192.0.2.9"))]))
put("dns_message", "cname_loop", answer("x.example.com", "A", [RR("x.example.com", QTYPE.CNAME, rdata=CNAME("y.example.com")),
                                                              RR("y.example.com", QTYPE.CNAME, rdata=CNAME("x.example.com"))]))
put("dns_message", "txt", answer("example.com", "TXT", [RR("example.com", QTYPE.TXT, rdata=TXT(["v=spf1 ", "-all"]))]))
put("dns_message", "ptr", answer("1.2.0.192.in-addr.arpa", "PTR", [RR("1.2.0.192.in-addr.arpa", QTYPE.PTR, rdata=PTR("host.example.com"))]))
put("dns_message", "nxdomain", answer("nope.example.com", "MX", [], rcode=3, auth=[soa]))
put("dns_message", "nodata", answer("example.com", "AAAA", [], auth=[soa]))
put("dns_message", "servfail", answer("example.com", "MX", [], rcode=2))
put("dns_message", "truncated", answer("example.com", "MX", [], tc=1))
put("dns_message", "wrong_type", answer("example.com", "MX", [RR("example.com", QTYPE.A, rdata=A("192.0.2.1"))]))
put("dns_message", "soa", answer("example.com", "SOA", [soa]))
# bounce: whole messages; a few of the repository's bounce corpus (test/data/bounces,
# sisimai's set-of-emails, BSD-2-Clause) and a hand-written DSN and auto-reply
bounces = os.path.join(top, "..", "test", "data", "bounces", "emails")
for name in ["rfc3464-01.eml", "lhost-qmail-01.eml", "lhost-exim-03.eml", "lhost-postfix-01.eml",
             "lhost-sendmail-03.eml", "lhost-exchange2007-01.eml", "lhost-gmail-01.eml",
             "rfc3834-01.eml"]:
    p = os.path.join(bounces, name)
    if os.path.exists(p):
        put("bounce", name, open(p, "rb").read())
put("bounce", "dsn_crlf", "From: MAILER-DAEMON@a.example\r\nContent-Type: multipart/report; "
    "report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status"
    "\r\n\r\nReporting-MTA: dns; a.example\r\n\r\nFinal-Recipient: rfc822; u@d.example\r\n"
    "Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 unknown\r\n\r\n"
    "--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "RnJvbTogYUBiLmV4YW1wbGUNCg0KaGk=\r\n--b--\r\n")
put("bounce", "nested", "Content-Type: message/rfc822\n\n" * 30 + "Subject: x\n\nx\n")

# complaint: the repository's ARF corpus copy (test/data/arf) and SES's complaint notification
os.makedirs(os.path.join(out, "complaint"), exist_ok=True)
arf = os.path.join(top, "..", "test", "data", "arf", "emails")
for f in sorted(os.listdir(arf)):
    if f.endswith(".eml"):
        shutil.copy(os.path.join(arf, f), os.path.join(out, "complaint", f))
put("complaint", "lhost-amazonses-11.eml",
    open(os.path.join(bounces, "lhost-amazonses-11.eml"), "rb").read())
put("complaint", "ses_raw.json", '{"notificationType":"Complaint","complaint":{"complainedRecipients":'
    '[{"emailAddress":"a@isp.example"}],"complaintFeedbackType":"abuse"},"mail":{"source":'
    '"b@sender.example","headers":[{"name":"X-Kasi-Id","value":"1"}]}}')
put("complaint", "arf_text", "Content-Type: multipart/report; report-type=feedback-report; "
    "boundary=x\n\n--y\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
    "User-Agent: a/1\n\n--y\nContent-Type: message/rfc822\n\nTo: c@isp.example\n\nhi\n--y--\n")
print("seeds written to", out)
