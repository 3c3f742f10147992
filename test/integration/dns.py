"""Kasi's resolver and MX rules against the project's DNS fixture (dns_fixture.py, a real
server on loopback), through `kasictl resolve`: records and CNAMEs, negative answers,
SERVFAIL and timeouts with retries, TCP after truncation, spoofed and garbage packets,
coalescing and caching, several servers, and every MX rule of docs/config.md (delivery
routing); malformed answers (a temporary failure: deferred, never bounced) and the cap on MX
hosts per domain."""
import os
import smtplib
import socket
import subprocess
import time

from harness import Client, DnsServer, Kasi, Skip, free_port, run, ROOT
from smtp_peer import Peer

ZONE = os.path.join(ROOT, "data", "dns", "test.zone")
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns_fixture.py")


class Dns:
    def __init__(self):
        self.port = free_port()
        self.log = f"/tmp/kasi-dns-{self.port}.log"
        if os.path.exists(self.log):
            os.remove(self.log)
        self.proc = subprocess.Popen(["/usr/bin/python3", FIXTURE, "--zone", ZONE, "--port",
                                      str(self.port), "--log", self.log],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("dns fixture failed: " + self.proc.stderr.read())

    def queries(self):
        if not os.path.exists(self.log):
            return []
        return open(self.log).read().splitlines()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        if os.path.exists(self.log):
            os.remove(self.log)


_DNS = None


def dns():
    global _DNS
    if _DNS is None:
        _DNS = Dns()
    return _DNS


def kasi(servers=None, timeout="0.3", attempts=2):
    servers = servers or f"127.0.0.1:{dns().port}"
    return Kasi(extra={"dns.ini": f"[main]\nservers={servers}\ntimeout={timeout}\n"
                                  f"attempts={attempts}\n"})


def resolve(k, *args):
    rc, out, err = k.ctl("resolve", *args)
    return rc, out, err


def stats(out):
    line = [l for l in out.splitlines() if l.startswith("stats ")][-1]
    return {kv.split("=")[0]: int(kv.split("=")[1]) for kv in line.split()[1:]}


def test_records_and_cname():
    k = kasi()
    rc, out, err = resolve(k, "A", "target.test", "alias.test")
    assert rc == 0, err
    assert "target.test NOERROR\n  A 127.0.0.31 ttl=300" in out, out
    assert "alias.test NOERROR\n  A 127.0.0.31" in out, out
    rc, out, _ = resolve(k, "AAAA", "implicit.test")
    assert "AAAA ::1" in out, out
    rc, out, _ = resolve(k, "TXT", "txt.test")
    assert 'TXT "v=spf1 -all"' in out, out
    rc, out, _ = resolve(k, "MX", "nullmx.test")
    assert "MX 0 ." in out, out
    k.cleanup()


def test_negative_answers_failures_and_timeouts():
    k = kasi()
    rc, out, _ = resolve(k, "A", "nonexistent.test", "txt.test")
    assert "nonexistent.test NXDOMAIN" in out and "txt.test NODATA" in out, out
    before = len(dns().queries())
    t0 = time.time()
    rc, out, _ = resolve(k, "A", "x.servfail.test")
    assert "x.servfail.test SERVFAIL" in out, out
    tries = [q for q in dns().queries()[before:] if q.startswith("x.servfail.test.")]
    assert len(tries) == 2, tries  # attempts=2 with one server
    t0 = time.time()
    rc, out, _ = resolve(k, "A", "x.drop.test")
    took = time.time() - t0
    assert "x.drop.test TIMEOUT" in out and stats(out)["timeouts"] == 1, out
    assert 0.5 <= took < 2.5, took  # two tries of 0.3 s
    k.cleanup()


def test_truncated_answer_goes_to_tcp():
    k = kasi()
    before = len(dns().queries())
    rc, out, _ = resolve(k, "A", "big.tc.test")
    assert "A 127.0.0.41" in out and "A 127.0.0.42" in out, out
    assert stats(out)["tcp_fallbacks"] == 1
    protos = [q.split()[-1] for q in dns().queries()[before:] if q.startswith("big.tc.test.")]
    assert protos == ["udp", "tcp"], protos
    k.cleanup()


def test_spoofed_and_garbage_packets_are_ignored():
    k = kasi()
    rc, out, _ = resolve(k, "A", "a.spoof.test")
    assert "A 127.0.0.51" in out and "6.6.6.6" not in out, out
    assert stats(out)["ignored_packets"] >= 3, out
    rc, out, _ = resolve(k, "A", "a.spoofonly.test")
    assert "a.spoofonly.test TIMEOUT" in out, out
    k.cleanup()


def test_coalescing_and_caching():
    k = kasi()
    before = len(dns().queries())
    rc, out, _ = resolve(k, "A", "target.test", "target.test", "nonexistent2.test", "--again")
    s = stats(out)
    assert s["queries"] == 6 and s["cache_hits"] == 3, out
    asked = dns().queries()[before:]
    assert asked.count("target.test. A udp") == 1, asked
    assert asked.count("nonexistent2.test. A udp") == 1, asked  # negative answer cached
    k.cleanup()


def test_dead_first_server():
    dead = free_port()
    k = kasi(servers=f"127.0.0.1:{dead},127.0.0.1:{dns().port}", timeout="0.3", attempts=1)
    for _ in range(3):  # whichever server is tried first, the answer comes
        rc, out, _ = resolve(k, "A", "target.test")
        assert "A 127.0.0.31" in out, out
    k.cleanup()


def route(k, domain, *opts):
    rc, out, err = resolve(k, "route", domain, *opts)
    return out.splitlines()[0] if out else err, out


def test_mx_rules():
    k = kasi()
    first, out = route(k, "multi.test", "--local-mx-ok")
    lines = out.splitlines()
    assert first == "ok multi.test", out
    assert {lines[1].split()[1], lines[2].split()[1]} == {"mx-a.multi.test", "mx-c.multi.test"}
    assert lines[3].startswith("20 mx-b.multi.test 127.0.0.12"), out
    first, out = route(k, "implicit.test", "--local-mx-ok")
    assert "0 implicit.test (implicit) 127.0.0.21,::1" in out, out
    first, out = route(k, "implicit.test", "--local-mx-ok", "--prefer", "v6")
    assert "(implicit) ::1,127.0.0.21" in out, out
    first, out = route(k, "implicit.test", "--local-mx-ok", "--prefer", "only_v4")
    assert "(implicit) 127.0.0.21\n" in out, out
    assert route(k, "nullmx.test")[0].startswith("permanent 5.1.10"), out
    first, out = route(k, "nullplus.test", "--local-mx-ok")
    assert "10 mx.nullplus.test 127.0.0.22" in out, out
    assert route(k, "nonexistent.test")[0].startswith("permanent 5.1.2")
    assert route(k, "y.servfail.test")[0].startswith("temporary 4.4.3")
    assert route(k, "noaddr.test")[0].startswith("permanent 5.4.4")
    assert route(k, "brokenmx.test")[0].startswith("temporary 4.4.3")
    assert route(k, "local.test")[0].startswith("permanent 5.4.6")
    assert route(k, "local.test", "--local-mx-ok")[0] == "ok local.test"
    first, out = route(k, "bücher.test", "--local-mx-ok")
    assert first == "ok xn--bcher-kva.test" and "127.0.0.61" in out, out
    assert route(k, "a..b.test")[0].startswith("permanent 5.1.2")
    first, out = route(k, "[127.0.0.9]", "--local-mx-ok")
    assert first == "ok [127.0.0.9]" and "127.0.0.9" in out, out
    k.cleanup()


def test_equal_preferences_are_shuffled():
    k = kasi()
    firsts = set()
    for _ in range(20):
        _, out = route(k, "multi.test", "--local-mx-ok")
        firsts.add(out.splitlines()[1].split()[1])
    assert firsts == {"mx-a.multi.test", "mx-c.multi.test"}, firsts
    k.cleanup()


def test_connection_rdns_lookup():
    k = Kasi(extra={"dns.ini": f"[main]\nservers=127.0.0.1:{dns().port}\ntimeout=0.3\n",
                    "kasi.ini": "\n[smtp]\nrdns_lookup=true\n"}).start()
    try:
        c = Client(k.port)
        code, text = c.cmd("EHLO probe.test")
        assert code == 250 and "Hello client.example.test [127.0.0.1]" in text[0], text
        c.cmd("QUIT")
        c.close()
        deadline = time.time() + 5
        while "rdns=client.example.test" not in k.read_log() and time.time() < deadline:
            time.sleep(0.05)
        assert "rdns=client.example.test helo=probe.test" in k.read_log(), k.read_log()[-2000:]
        assert any("PTR 1.0.0.127.in-addr.arpa" in q or "1.0.0.127.in-addr.arpa" in q
                   for q in dns().queries()), dns().queries()[-5:]
    finally:
        k.cleanup()
    # The DNS server is down: the connection goes on (greeting without a name), DNSERROR.
    k = Kasi(extra={"dns.ini": f"[main]\nservers=127.0.0.1:{free_port()}\ntimeout=0.2\n"
                               "attempts=1\n",
                    "kasi.ini": "\n[smtp]\nrdns_lookup=true\n"}).start()
    try:
        c = Client(k.port)
        code, text = c.cmd("EHLO probe.test")
        assert code == 250 and "Hello [127.0.0.1]" in text[0], text
        c.cmd("QUIT")
        c.close()
        deadline = time.time() + 5
        while "rdns=DNSERROR" not in k.read_log() and time.time() < deadline:
            time.sleep(0.05)
        assert "rdns=DNSERROR" in k.read_log(), k.read_log()[-2000:]
    finally:
        k.cleanup()


def test_malformed_answers_are_temporary_failures():
    k = kasi()
    port = dns().port
    for kind in ("loop", "rdlength", "short"):
        name = f"{kind}.bad.test"
        before = len(dns().queries())
        rc, out, _ = resolve(k, "MX", name)
        assert f"{name} MALFORMED" in out, out
        tries = [q for q in dns().queries()[before:] if q.startswith(name + ".")]
        assert len(tries) == 2, tries  # a malformed answer moves on to the next try
        first, out = route(k, name)
        assert first.startswith(f"temporary 4.4.3 DNS: malformed answer from 127.0.0.1:{port} "
                                f"for {name}/MX ("), out
        assert "NXDOMAIN" not in out and "NODATA" not in out, out
    # asked again: a malformed answer is not cached (negatively or otherwise)
    before = len(dns().queries())
    rc, out, _ = resolve(k, "MX", "loop.bad.test", "--again")
    assert out.count("loop.bad.test MALFORMED") == 2, out
    assert len([q for q in dns().queries()[before:] if q.startswith("loop.bad.test.")]) == 4
    # the TCP retry after TC=1 is itself malformed
    before = len(dns().queries())
    first, out = route(k, "tcloop.bad.test")
    assert first.startswith("temporary 4.4.3 DNS: malformed answer from"), out
    protos = [q.split()[-1] for q in dns().queries()[before:] if q.startswith("tcloop.bad.test.")]
    assert protos[:2] == ["udp", "tcp"] and set(protos[2:]) <= {"tcp"}, protos
    # the MX answer is good, the address of the MX host is malformed
    first, out = route(k, "goodmx.bad.test", "--local-mx-ok")
    assert first.startswith("temporary 4.4.3 DNS failure resolving the MX hosts of "
                            "goodmx.bad.test: DNS: malformed answer from"), out
    assert "for mx.goodmx.bad.test/A" in first, out
    k.cleanup()


def fixture_with_log(zone):
    """A private DNS fixture on `zone` (text) that logs its queries: (DnsServer, log path)."""
    srv = DnsServer(zone)
    srv.proc.kill()
    srv.proc.wait()
    log = os.path.join(srv.dir, "queries.log")
    srv.proc = subprocess.Popen(["/usr/bin/python3", FIXTURE, "--zone",
                                 os.path.join(srv.dir, "zone"), "--port", str(srv.port),
                                 "--log", log], stdout=subprocess.PIPE, text=True)
    assert srv.proc.stdout.readline().strip() == "ready"
    return srv, log


def test_many_mx_hosts_cost_a_bounded_number_of_queries():
    zone = "$TTL 300\n" + "".join(
        f"many.test. IN MX {400 - i} mx{i}.many.test.\nmx{i}.many.test. IN A 127.0.1.{i % 250 + 1}\n"
        for i in range(400))
    srv, log = fixture_with_log(zone)
    try:
        for limit, extra in ((10, ""), (3, "mx_host_limit=3\n")):
            open(log, "w").close()
            k = Kasi(extra={"dns.ini": f"[main]\nservers=127.0.0.1:{srv.port}\ntimeout=1\n"
                                       f"{extra}"})
            first, out = route(k, "many.test", "--local-mx-ok")
            k.cleanup()
            assert first == "ok many.test", out
            hosts = [l.split()[1] for l in out.splitlines()[1:] if l[:1].isdigit()]
            # the lowest preferences, in order: mx399 has preference 1
            assert hosts == [f"mx{399 - i}.many.test" for i in range(limit)], out
            asked = open(log).read().splitlines()
            assert asked.count("many.test. MX udp") + asked.count("many.test. MX tcp") >= 1
            assert len(asked) <= 1 + 1 + 2 * limit, (len(asked), asked[:30])  # MX (+TCP), A+AAAA
    finally:
        srv.stop()


def test_malformed_mx_answer_defers_then_delivers():
    peer = Peer()
    zone_bad = ("$TTL 1\nmx.flip.test. IN A 127.0.0.1\n"
                "; malformed flip.test. MX short\n")
    srv = DnsServer(zone_bad)
    zone_path = os.path.join(srv.dir, "zone")
    k = Kasi(extra={"dns.ini": f"[main]\nservers=127.0.0.1:{srv.port}\ntimeout=0.5\n",
                    "outbound.ini": f"disabled=false\nlocal_mx_ok=true\nsmtp_port={peer.port}\n"
                                    "temp_fail_intervals=5s*6\n"})
    try:
        k.start()
        s = smtplib.SMTP("127.0.0.1", k.port)
        s.sendmail("sender@sender.test", ["rcpt@flip.test"], "Subject: flip\r\n\r\nhi\r\n")
        s.quit()
        shown = ""
        deadline = time.time() + 10
        while time.time() < deadline and "malformed answer" not in shown:
            time.sleep(0.2)
            ids = k.queued_ids()
            if ids:
                shown = k.ctl("show", ids[0])[1]
        assert "deferred" in shown and f"DNS: malformed answer from 127.0.0.1:{srv.port} " \
            "for flip.test/MX" in shown, shown + k.read_log()[-2000:]
        assert not peer.messages, "a DSN or the message went out: " + repr(peer.messages)
        with open(zone_path, "w") as f:  # the server answers properly from now on
            f.write("$TTL 1\nflip.test. IN MX 10 mx.flip.test.\nmx.flip.test. IN A 127.0.0.1\n")
        msgs = peer.wait_messages(1, 30)
        assert len(msgs) == 1 and msgs[0][1] == ["<rcpt@flip.test>"], \
            (msgs, k.read_log()[-3000:],
             open(os.path.join(k.dir, "log", "events.jsonl")).read()[-3000:])
        assert "Subject: flip" in msgs[0][2].decode(), msgs
    finally:
        k.cleanup()
        peer.stop()
        srv.stop()


def test_bad_dns_ini():
    k = Kasi(extra={"dns.ini": "[main]\nservers=not-an-ip:53\ntimeout=abc\n"})
    rc, out, err = resolve(k, "A", "x.test")
    assert rc == 1 and "dns.ini:2: servers: 'not-an-ip:53'" in err and "dns.ini:3: timeout" in err, err
    k.cleanup()


try:
    run(globals())
finally:
    if _DNS:
        _DNS.stop()
