"""Two independent DKIM verifiers for the integration tests, with keys served by the
project's DNS fixture (dns_fixture.py), never by the system resolver:

  dkimpy   Debian's python3-dkim, with a dnsfunc that asks the fixture on its port;
  OpenDKIM opendkim-testmsg, which reads /etc/resolv.conf: it runs in a private mount
           namespace (unshare -m) where a resolv.conf naming the fixture on
           127.83.75.N port 53 is bind-mounted over the real one.

verify_all(msg) checks every DKIM-Signature of a message on its own with both, and returns
the tag dicts of the signatures (for assertions on d=, s=, a=, c=, h=)."""
import os
import random
import shutil
import subprocess
import tempfile

from dnslib import DNSRecord

from harness import Skip


def _import_dkimpy():
    # dkimpy imports the package "dns" (dnspython); this folder has a test named dns.py,
    # so look it up without this folder on the path.
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import dkim as mod
    finally:
        sys.path[:] = saved
    return mod


dkim = _import_dkimpy()


class Verifiers:
    def __init__(self, zone):
        self.dir = tempfile.mkdtemp(prefix="kasi-dkimv-")
        path = os.path.join(self.dir, "zone")
        with open(path, "w") as f:
            f.write(zone)
        if shutil.which("opendkim-testmsg") is None:
            raise Skip("opendkim-testmsg is not installed (opendkim-tools)")
        fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns_fixture.py")
        for _ in range(20):  # port 53 on a loopback address of our own
            self.addr = f"127.83.75.{random.randint(2, 250)}"
            self.proc = subprocess.Popen(["/usr/bin/python3", fixture, "--zone", path, "--port",
                                          "53", "--address", self.addr],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True)
            if self.proc.stdout.readline().strip() == "ready":
                break
            self.proc.wait()
        else:
            raise AssertionError("cannot start the DNS fixture on port 53")
        self.resolv = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write(f"nameserver {self.addr}\noptions timeout:2 attempts:1\n")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dnsfunc(self, name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        reply = DNSRecord.parse(DNSRecord.question(name, "TXT").send(self.addr, 53,
                                                                     timeout=timeout))
        out = b""
        for rr in reply.rr:
            if rr.rtype == 16:
                out += b"".join(rr.rdata.data)
        return out

    def dkimpy(self, msg, idx):
        return dkim.DKIM(msg).verify(idx=idx, dnsfunc=self.dnsfunc)

    def opendkim(self, msg):
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            f"mount --bind {self.resolv} /etc/resolv.conf && "
                            "exec opendkim-testmsg"], input=msg, capture_output=True)
        return r.returncode, r.stderr.decode(errors="replace")

    def verify_all(self, msg, opendkim=True):
        sigs = signature_fields(msg)
        assert sigs, "not signed:\n" + msg.decode(errors="replace")[:2000]
        tags = []
        for i, (start, end) in enumerate(sigs):
            assert self.dkimpy(msg, i), f"dkimpy: signature {i} fails:\n" + msg.decode()[:3000]
            if opendkim:
                # only this signature: OpenDKIM reports on the set
                alone = msg[:0]
                pos = 0
                for j, (s, e) in enumerate(sigs):
                    if j != i:
                        alone += msg[pos:s]
                        pos = e
                alone += msg[pos:]
                rc, err = self.opendkim(alone)
                assert rc == 0, f"opendkim: signature {i} fails ({rc}): {err}\n" + \
                    msg.decode()[:3000]
            tags.append(parse_tags(msg[sigs[i][0]:sigs[i][1]]))
        return tags


def signature_fields(msg):
    """(start, end) of each DKIM-Signature field in the header block."""
    out, pos = [], 0
    while True:
        eol = msg.find(b"\r\n", pos)
        if eol <= pos:  # blank line (or end): the header block is over
            return out
        end = eol + 2
        while msg[end:end + 1] in (b" ", b"\t"):
            end = msg.find(b"\r\n", end) + 2
        if msg[pos:pos + 15].lower() == b"dkim-signature:":
            out.append((pos, end))
        pos = end


def parse_tags(field):
    value = field.split(b":", 1)[1].decode()
    tags = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k.strip()] = "".join(v.split())
    return tags
