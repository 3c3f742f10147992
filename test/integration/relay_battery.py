"""Never an open relay: a client outside relay_acl_allow (connecting from 127.0.0.2) may
only send to local domains (host_list), whatever tricks the address uses."""
from harness import Kasi, run

OUTSIDER = "127.0.0.2"

REFUSED = [
    "victim@remote.example",
    "@kasi.test:victim@remote.example",           # source route through a local domain
    "@kasi.test,@bounces.kasi.test:victim@remote.example",
    "victim%remote.example@kasi.test",            # the percent hack
    "remote.example!victim@kasi.test",            # bang path
    '"victim@remote.example"@kasi.test',          # quoted @
    '"victim%remote.example"@kasi.test',
    "victim@remote.example.",                     # trailing dot
    "victim@[127.0.0.1]",                         # IP literals
    "victim@[IPv6:::1]",
    "victim@kasi.test.remote.example",            # local domain as a prefix
    "victim@remote-kasi.test",
    "victim@sub.kasi.test",                       # subdomain of a local domain
]

SYNTAX_ERRORS = [
    "victim@remote.example@kasi.test",            # two unquoted @
    "victim@k\u0430si.test",                      # Cyrillic a, without SMTPUTF8
    "victim@kasi.test:25",
    "victim@kasi..test",
]

ACCEPTED_LOCAL = ["postmaster@kasi.test", "User@KASI.TEST", "user@kasi.test.", "b@bounces.kasi.test"]


def session(k):
    c = k.client(source=OUTSIDER)
    assert c.cmd("EHLO outsider.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    return c


def test_outsider_cannot_relay():
    with Kasi() as k:
        c = session(k)
        for rcpt in REFUSED:
            code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
            assert code == 550, (rcpt, lines)
        for rcpt in SYNTAX_ERRORS:
            code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
            assert code == 501, (rcpt, lines)
        # Nothing was accepted, so DATA has no recipients.
        assert c.cmd("DATA")[0] == 503


def test_unicode_lookalike_with_smtputf8_is_refused():
    with Kasi() as k:
        c = k.client(source=OUTSIDER)
        c.cmd("EHLO outsider.test")
        assert c.cmd("MAIL FROM:<a@remote.example> SMTPUTF8")[0] == 250
        for rcpt in ["victim@k\u0430si.test", "victim@\uff4basi.test", "victim@kasi.test\u200b"]:
            code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
            assert code in (550, 501), (rcpt, lines)
            assert code != 250


def test_outsider_may_send_to_local_domains():
    with Kasi() as k:
        c = session(k)
        for rcpt in ACCEPTED_LOCAL:
            code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
            assert code == 250, (rcpt, lines)
        # No queue plugin handles local mail in this config: Haraka's 451.
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        code, lines = c.reply()
        assert code == 451 and "Queuing declined" in lines[0], lines
        assert k.queued_ids() == []


def test_acl_client_may_relay():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO inside.test")
        c.cmd("MAIL FROM:<a@kasi.test>")
        assert c.cmd("RCPT TO:<victim@remote.example>")[0] == 250
        assert c.cmd("RCPT TO:<victim%x@kasi.test>")[0] == 250  # relaying clients are trusted


def test_relay_acl_cidr_and_dest_domains():
    extra = {
        "relay_acl_allow": "127.0.0.3/32 # a comment\n",
        "relay.ini": "[relay]\ndest_domains=true\n",
        "relay_dest_domains.ini": '[domains]\npartner.example = { "action": "accept", "nexthop": "127.0.0.1:2526" }\n'
                                  'blocked.example = { "action": "deny" }\n',
    }
    with Kasi(extra=extra) as k:
        c = k.client(source="127.0.0.3")
        c.cmd("EHLO acl3.test")
        c.cmd("MAIL FROM:<a@kasi.test>")
        assert c.cmd("RCPT TO:<x@anywhere.example>")[0] == 250
        d = k.client(source=OUTSIDER)
        d.cmd("EHLO out.test")
        d.cmd("MAIL FROM:<a@remote.example>")
        assert d.cmd("RCPT TO:<x@partner.example>")[0] == 250
        code, lines = d.cmd("RCPT TO:<x@blocked.example>")
        assert code == 550 and "not allowed to relay" in lines[0], lines


run(globals())
