#!/usr/bin/python3
"""The project's DNS server for tests (Debian's python3-dnslib), on loopback only.

usage: dns_fixture.py --zone FILE --port P [--log FILE]
Answers from a zone file (dnslib zone syntax), following CNAMEs inside the zone, with an
SOA (minimum 60) in the authority section of negative answers. Names choose misbehaviour:
  *.servfail.test   SERVFAIL              *.drop.test      no answer (client times out)
  *.tc.test         UDP answers are empty with TC=1; TCP answers in full
  *.spoof.test      first a reply with a wrong id, then one for a wrong question, then
                    garbage bytes, then the right answer (all on UDP)
  *.spoofonly.test  only the wrong-id reply: the client must time out
  *.slow.test       the answer comes after 0.5 s
A zone comment line "; malformed NAME TYPE KIND" makes the answer for NAME/TYPE raw broken
bytes (right id and question): KIND "loop" (the answer's owner name is a compression
pointer to itself), "rdlength" (an rdata length past the end of the packet), "short" (a
record whose rdata is two octets: an MX with no exchange), or "tcloop" (UDP: empty with
TC=1; TCP: the "loop" answer). The zone file is read again whenever it changes, so a
test can switch a name from broken to good while the fixture runs.
Every query received is appended to --log as "name type proto".
"""
import argparse
import socket
import struct
import sys
import threading
import time

import os

from dnslib import DNSRecord, DNSHeader, RR, QTYPE, RCODE, DNSLabel, SOA

SOA_RR = RR("test.", QTYPE.SOA, ttl=300,
            rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60)))


class Zone:
    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.lock = threading.Lock()
        self.reload()

    def reload(self):
        with self.lock:
            st = os.stat(self.path)
            if self.stamp == (st.st_mtime_ns, st.st_size):
                return
            text = open(self.path).read()
            names, broken = {}, {}
            for rr in RR.fromZone(text):
                names.setdefault(str(rr.rname).lower(), []).append(rr)
            for line in text.splitlines():
                w = line.split()
                if len(w) == 5 and w[:2] == [";", "malformed"]:
                    broken[(w[2].lower().rstrip(".") + ".", w[3].upper())] = w[4]
            self.names, self.broken, self.stamp = names, broken, (st.st_mtime_ns, st.st_size)

    def malformed(self, req, proto):
        """Raw broken bytes answering `req`, or None when its name answers normally."""
        kind = self.broken.get((str(req.q.qname).lower(), QTYPE[req.q.qtype]))
        if kind is None:
            return None
        head = DNSRecord(DNSHeader(id=req.header.id, qr=1, rd=1, ra=1), q=req.q)
        if kind == "tcloop" and proto == "udp":
            head.header.tc = 1
            return head.pack()
        pkt = bytearray(head.pack())
        pkt[7] = 1  # ANCOUNT
        if kind == "short":
            return bytes(pkt) + struct.pack("!HHHIHH", 0xc00c, req.q.qtype, 1, 300, 2, 10)
        if kind == "rdlength":
            return bytes(pkt) + struct.pack("!HHHIH", 0xc00c, req.q.qtype, 1, 300, 200) + b"abcd"
        here = len(pkt)  # "loop"/"tcloop": an owner name pointing at itself
        return bytes(pkt) + struct.pack("!HHHIH", 0xc000 | here, req.q.qtype, 1, 300, 0)

    def answer(self, req):
        reply = req.reply()
        reply.header.ra = 1
        qname = str(req.q.qname).lower()
        qtype = req.q.qtype
        if qname.endswith("servfail.test."):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name, seen = qname, set()
        while True:
            rrs = self.names.get(name)
            if rrs is None:
                if name == qname:
                    reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(SOA_RR)
                return reply
            hits = [r for r in rrs if r.rtype == qtype]
            cname = [r for r in rrs if r.rtype == QTYPE.CNAME]
            for r in hits or cname:
                reply.add_answer(RR(DNSLabel(name), r.rtype, r.rclass, r.ttl, r.rdata))
            if hits or not cname or name in seen:
                if not hits and not cname:
                    reply.add_auth(SOA_RR)
                return reply
            seen.add(name)
            name = str(cname[0].rdata.label).lower()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--log", default=None)
    a = ap.parse_args()
    if not (a.address.startswith("127.") or a.address == "::1"):
        sys.exit("loopback only")
    zone = Zone(a.zone)
    lock = threading.Lock()

    def log(req, proto):
        if a.log:
            with lock, open(a.log, "a") as f:
                f.write(f"{str(req.q.qname).lower()} {QTYPE[req.q.qtype]} {proto}\n")

    fam = socket.AF_INET6 if ":" in a.address else socket.AF_INET
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    udp.bind((a.address, a.port))
    tcp = socket.socket(fam, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((a.address, a.port))
    tcp.listen(16)

    def handle_udp(data, peer):
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return
        log(req, "udp")
        zone.reload()
        raw = zone.malformed(req, "udp")
        if raw is not None:
            udp.sendto(raw, peer)
            return
        q = str(req.q.qname).lower()
        if q.endswith("drop.test."):
            return
        if q.endswith("slow.test."):
            time.sleep(0.5)
        reply = zone.answer(req)
        if q.endswith("spoof.test.") or q.endswith("spoofonly.test."):
            bad = DNSRecord.parse(reply.pack())
            bad.header.id = (req.header.id + 1) & 0xffff
            udp.sendto(bad.pack(), peer)
            if q.endswith("spoofonly.test."):
                return
            other = DNSRecord.question("other.test", "A")
            other.header.id = req.header.id
            other = other.reply()
            other.add_answer(RR("other.test.", QTYPE.A, rdata=__import__("dnslib").A("6.6.6.6")))
            udp.sendto(other.pack(), peer)
            udp.sendto(struct.pack("!H", req.header.id) + b"\x81\x80garbage", peer)
        if q.endswith("tc.test."):
            reply = req.reply()
            reply.header.tc = 1
        udp.sendto(reply.pack(), peer)

    def udp_loop():
        while True:
            data, peer = udp.recvfrom(65535)
            threading.Thread(target=handle_udp, args=(data, peer), daemon=True).start()

    def tcp_conn(c):
        with c:
            try:
                hdr = c.recv(2)
                (n,) = struct.unpack("!H", hdr)
                data = b""
                while len(data) < n:
                    chunk = c.recv(n - len(data))
                    if not chunk:
                        return
                    data += chunk
                req = DNSRecord.parse(data)
                log(req, "tcp")
                zone.reload()
                out = zone.malformed(req, "tcp")
                if out is None:
                    out = zone.answer(req).pack()
                c.sendall(struct.pack("!H", len(out)) + out)
            except Exception:
                return

    def tcp_loop():
        while True:
            c, _ = tcp.accept()
            threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()

    threading.Thread(target=udp_loop, daemon=True).start()
    threading.Thread(target=tcp_loop, daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
