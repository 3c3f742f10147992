"""HAProxy PROXY protocol v1/v2 from connection.ini [haproxy] hosts only: the client's
address replaces the proxy's for relay decisions, logs and the Received header; bad
headers, timeouts and PROXY from other hosts are refused."""
import socket
import struct
import time

from harness import Kasi, run

PROXY_IP = "127.0.0.5"
CFG = {"connection.ini": "\n[haproxy]\nhosts[]=127.0.0.5\n",
       "relay_acl_allow": "\n10.0.0.0/8\n",
       "kasi.ini": "\n[smtp]\nproxy_timeout=1\n"}


def v2_tcp4(src, dst, sport, dport, cmd=1):
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 | cmd, 0x11]) + struct.pack("!H", len(addr)) + addr


def v2_tcp6(src, dst, sport, dport):
    addr = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport))
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21]) + struct.pack("!H", len(addr)) + addr


def proxied(k, header):
    c = k.client(source=PROXY_IP, banner=False)
    c.send(header)
    c.banner = c.reply()
    return c


def test_v1_client_address_is_used():
    with Kasi(extra=CFG) as k:
        c = proxied(k, "PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n")
        assert c.banner[0] == 220
        code, lines = c.cmd("EHLO client.test")
        assert "[203.0.113.9]" in lines[0], lines
        c.cmd("MAIL FROM:<a@example.org>")
        # 127.0.0.5 is not the client any more; 203.0.113.9 may not relay
        assert c.cmd("RCPT TO:<x@elsewhere.example>")[0] == 550
        assert c.cmd("RCPT TO:<x@kasi.test>")[0] == 250
        log = k.read_log()
        assert "PROXY v1 from 127.0.0.5: client 203.0.113.9" in log
        c.cmd("QUIT")
        c.closed()
        time.sleep(0.2)
        assert "disconnect ip=203.0.113.9" in k.read_log()


def test_v1_relaying_client_through_proxy():
    with Kasi(extra=CFG) as k:
        c = proxied(k, "PROXY TCP4 10.0.0.9 192.0.2.1 40001 25\r\n")  # in relay_acl_allow
        c.cmd("EHLO client.test")
        code, lines = c.send_message("a@example.org", ["x@elsewhere.example"],
                                     "Subject: t\n\nhi\n", ehlo=None)
        assert code == 250, lines
        rc, out, _ = k.ctl("show", k.queued_ids()[0], "--body")
        received = out[out.index("Received:"):][:300]
        assert "[10.0.0.9]" in received and "127.0.0.5" not in received, received


def test_v2_tcp4_tcp6_and_local():
    with Kasi(extra=CFG) as k:
        c = proxied(k, v2_tcp4("198.51.100.7", "192.0.2.1", 1234, 25))
        assert "[198.51.100.7]" in c.cmd("EHLO a.test")[1][0]
        c = proxied(k, v2_tcp6("2001:db8::7", "2001:db8::1", 1234, 25))
        assert "[2001:db8::7]" in c.cmd("EHLO a.test")[1][0]
        c = proxied(k, v2_tcp4("0.0.0.0", "0.0.0.0", 0, 0, cmd=0))  # LOCAL: a health check
        assert "[127.0.0.5]" in c.cmd("EHLO a.test")[1][0]


def test_header_split_across_packets():
    with Kasi(extra=CFG) as k:
        c = k.client(source=PROXY_IP, banner=False)
        for part in (b"PROXY TCP4 203.0", b".113.9 192.0.2.1 4", b"0000 25\r\n"):
            c.send(part)
            time.sleep(0.05)
        assert c.reply()[0] == 220


def test_bad_header_and_timeout():
    with Kasi(extra=CFG) as k:
        c = k.client(source=PROXY_IP, banner=False)
        c.send("EHLO not-a-proxy\r\n")
        code, lines = c.reply()
        assert code == 421 and "Invalid PROXY format" in lines[0], lines
        assert c.closed()
        c = k.client(source=PROXY_IP, banner=False)
        t0 = time.time()
        code, lines = c.reply()
        assert code == 421 and "PROXY timeout" in lines[0], lines
        assert 0.9 <= time.time() - t0 < 3
        # a slow drip does not extend the deadline
        c = k.client(source=PROXY_IP, banner=False)
        t0 = time.time()
        try:
            for ch in "PROXY TCP4 ":
                c.send(ch)
                time.sleep(0.15)
        except OSError:
            pass  # closed by the server while we dripped
        code, lines = c.reply()
        assert code == 421 and time.time() - t0 < 3, lines


def test_proxy_from_other_hosts_refused():
    with Kasi(extra=CFG) as k:
        c = k.client(source="127.0.0.2")
        assert c.banner[0] == 220
        code, lines = c.cmd("PROXY TCP4 1.2.3.4 5.6.7.8 1 25")
        assert code == 421 and "PROXY not allowed from 127.0.0.2" in lines[0], lines
        assert c.closed()


run(globals())
