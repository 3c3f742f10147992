"""The Debian package, end to end on this machine (as root): build it with
dpkg-buildpackage, check it with lintian, install it, start the installed binary against
/etc/kasi the way kasi.service does (the pre-start check and kasi itself as user kasi,
only CAP_NET_BIND_SERVICE, Type=notify readiness on $NOTIFY_SOCKET: systemd itself is not
running here), send mail through SMTP and the HTTP API into postfix's smtp-sink, reload
and stop it, follow docs/dkim.md (a key made by root, signing enabled, the service starts
and signs), rotate the logs with the shipped logrotate file, upgrade over a spool with a
queued message and an edited conffile, and purge.

  /usr/bin/python3 test/package/package_test.py [--deb PATH] [--log testlog.json]

Prints 'cases: P passed, F failed' and, with --log, writes a meson-style testlog.json line
for test/count_results.py."""
import argparse
import gzip
import json
import os
import pwd
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import dkim  # python3-dkim; before test/integration is on the path (its dns.py would shadow dnspython)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "test", "integration"))
from harness import DnsServer, free_port  # noqa: E402
from outbound import Sink  # noqa: E402  (postfix's smtp-sink, counting messages)
from smtp_peer import Peer  # noqa: E402  (keeps the messages it takes)

CFG = "/etc/kasi/config"
results = []


def sh(*cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def case(name):
    def wrap(fn):
        def run(*a):
            t0 = time.time()
            try:
                out = fn(*a)
                results.append((name, True))
                print(f"PASS {name} ({time.time() - t0:.2f}s)", flush=True)
                return out
            except Exception:
                results.append((name, False))
                print(f"FAIL {name} ({time.time() - t0:.2f}s)", flush=True)
                traceback.print_exc()
                return None
        return run
    return wrap


class Installed:
    """The installed kasi started as kasi.service would start it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sockdir = tempfile.mkdtemp(prefix="kasi-pkg-notify-")
        os.chmod(self.sockdir, 0o755)
        self.path = os.path.join(self.sockdir, "notify")
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)  # kasi runs as user kasi
        self.sock.settimeout(15)
        self.log = tempfile.NamedTemporaryFile(prefix="kasi-pkg-log-", delete=False)
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        # ExecStartPre runs as User=kasi; an operator runs the same check as root, which
        # checks as kasi too
        sh("setpriv", "--reuid=kasi", "--regid=kasi", "--init-groups",
           "/usr/sbin/kasi", "-c", "/etc/kasi", "--check-config")
        r = sh("/usr/sbin/kasi", "-c", "/etc/kasi", "--check-config")
        assert "checked as root and as user kasi" in r.stdout, r.stdout
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=kasi", "--regid=kasi", "--init-groups",
             "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service",
             "--bounding-set=-all,+net_bind_service", "--no-new-privs",
             "/usr/sbin/kasi", "-c", "/etc/kasi"],
            stdout=self.log, stderr=self.log, env=env, umask=0o027)

    def notified(self):
        return self.sock.recv(4096).decode()

    def read_log(self):
        return open(self.log.name, errors="replace").read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()
        return self.proc.returncode


def set_conf(name, text):
    with open(os.path.join(CFG, name), "w") as f:
        f.write(text)


@case("build the package and lintian reports no errors")
def build(out):
    r = sh("bash", os.path.join(TOP, "packaging", "build-deb.sh"), out, check=False)
    print(r.stdout[-3000:], r.stderr[-2000:])
    assert r.returncode == 0, "build-deb.sh failed"
    debs = [f for f in os.listdir(out) if re.fullmatch(r"kasi_[^_]+_[a-z0-9]+\.deb", f)]
    assert len(debs) == 1, debs
    lint = sh("lintian", "--fail-on", "error,warning", os.path.join(out, debs[0]), check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    return os.path.join(out, debs[0])


@case("install: user, conffiles, spool, unit, man pages")
def install(deb):
    sh("dpkg", "--purge", "kasi", check=False)
    sh("dpkg", "-i", deb)
    u = pwd.getpwnam("kasi")
    assert u.pw_shell in ("/usr/sbin/nologin", "/bin/false"), u
    st = os.stat("/var/spool/kasi")
    assert st.st_uid == u.pw_uid and oct(st.st_mode & 0o777) == "0o750", st
    conff = sh("dpkg-query", "-W", "-f=${Conffiles}", "kasi").stdout
    for f in ("smtp.ini", "http.ini", "plugins", "relay_acl_allow", "outbound.ini"):
        assert f"/etc/kasi/config/{f} " in conff, conff
    unit = open("/lib/systemd/system/kasi.service").read()
    for line in ("Type=notify", "User=kasi", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                 "ReadWritePaths=/var/spool/kasi /var/log/kasi"):
        assert line in unit, line
    if os.path.exists("/usr/bin/systemd-analyze"):
        r = sh("systemd-analyze", "verify", "/lib/systemd/system/kasi.service", check=False)
        assert "kasi.service" not in r.stderr or r.returncode == 0, r.stderr
    assert os.path.exists("/usr/share/man/man8/kasi.8.gz")
    assert os.path.exists("/usr/share/man/man8/kasictl.8.gz")
    assert os.path.exists("/usr/share/kasi/lua/kasi/warmup.lua")
    assert os.path.exists("/usr/share/kasi/rules/providers.tsv")
    assert os.path.exists("/usr/share/kasi/rules/classify/00-reasons.rules")
    assert not os.path.exists("/usr/share/kasi/rules/tools")
    assert sh("/usr/sbin/kasi", "--version").stdout.startswith("kasi ")


def point_at_sink(sink_port, dns_port, smtp_port):
    set_conf("smtp.ini", f"listen=127.0.0.1:{smtp_port}\nnodes=2\n")
    set_conf("dns.ini", f"[main]\nservers=127.0.0.1:{dns_port}\ntimeout=0.5\n")
    set_conf("outbound.ini", "events_file=/var/log/kasi/events.jsonl\nlocal_mx_ok=true\n"
                             f"smtp_port={sink_port}\n")


@case("run as the unit does: READY=1, SMTP and HTTP mail into smtp-sink, reload, stop")
def run_installed(sink, dns, smtp_port):
    point_at_sink(sink.port, dns.port, smtp_port)
    k = Installed()
    try:
        ready = k.notified()
        assert ready.startswith("READY=1"), ready
        s = smtplib.SMTP("127.0.0.1", smtp_port)
        s.sendmail("app@sender.test", ["one@sink.test"], "Subject: via smtp\r\n\r\nhi\r\n")
        s.quit()
        req = urllib.request.Request(
            "http://127.0.0.1:8025/api/v1/send", method="POST",
            data=json.dumps({"from": "app@sender.test", "to": "two@sink.test",
                             "subject": "via http", "text": "hi"}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["recipients"]
        deadline = time.time() + 20
        while sink.count() < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert sink.count() == 2, (sink.count(), k.read_log()[-2000:])
        with urllib.request.urlopen("http://127.0.0.1:8025/health", timeout=10) as r:
            assert json.loads(r.read())["ready"] is True
        st = sh("/usr/sbin/kasictl", "-c", "/etc/kasi", "status")
        assert st.stdout.startswith("ok: generation"), st.stdout
        k.proc.send_signal(signal.SIGHUP)
        assert k.notified().startswith("RELOADING=1")
        assert k.notified().startswith("READY=1")
        k.proc.send_signal(signal.SIGTERM)
        assert k.notified().startswith("STOPPING=1")
        assert k.stop() == 0, k.read_log()[-2000:]
        ev = open("/var/log/kasi/events.jsonl").read()
        assert ev.count('"type":"Delivery"') == 2, ev
        # it could write nothing but the spool and the log directory: it ran as kasi
        spool_owner = {os.stat(os.path.join("/var/spool/kasi", f)).st_uid
                       for f in os.listdir("/var/spool/kasi")}
        assert spool_owner == {pwd.getpwnam("kasi").pw_uid}, spool_owner
    finally:
        k.stop()


def dkim_record(zone_line):
    return "".join(re.findall(r'"([^"]*)"', zone_line))


@case("DKIM as docs/dkim.md says: keygen as root, enable, the service's check passes, it signs")
def dkim_flow(sink, dns, smtp_port):
    peer = Peer()
    k = None
    plugins, dkim_ini = open(os.path.join(CFG, "plugins")).read(), open(os.path.join(CFG, "dkim.ini")).read()
    try:
        point_at_sink(peer.port, dns.port, smtp_port)
        r = sh("/usr/sbin/kasictl", "-c", "/etc/kasi", "dkim", "keygen", "sender.test", "pkg")
        key = os.path.join(CFG, "dkim", "sender.test", "pkg.private")
        st = os.stat(key)
        assert st.st_uid == pwd.getpwnam("kasi").pw_uid and st.st_mode & 0o777 == 0o600, st
        record = dkim_record(r.stdout.split("\n", 2)[2])
        set_conf("plugins", plugins + "dkim\n")
        set_conf("dkim.ini", dkim_ini.replace("enabled=false", "enabled=true"))
        k = Installed()  # the pre-start check as kasi must pass
        assert k.notified().startswith("READY=1")
        s = smtplib.SMTP("127.0.0.1", smtp_port)
        s.sendmail("app@sender.test", ["signed@sink.test"],
                   "From: app@sender.test\r\nTo: signed@sink.test\r\nSubject: signed\r\n\r\nhi\r\n")
        s.quit()
        msgs = peer.wait_messages(1, 20)
        assert msgs, k.read_log()[-2000:]
        body = msgs[0][2]
        body = body if isinstance(body, bytes) else body.encode()
        assert b"s=pkg" in body and b"d=sender.test" in body, body[:600]
        assert dkim.verify(body, dnsfunc=lambda name, timeout=5: record.encode()), body[:600]
    finally:
        if k:
            assert k.stop() == 0, k.read_log()[-2000:]
        set_conf("plugins", plugins)
        set_conf("dkim.ini", dkim_ini)
        point_at_sink(sink.port, dns.port, smtp_port)
        peer.stop()


def deliveries(path):
    if not os.path.exists(path):
        return 0
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read().count('"type":"Delivery"')


def wait_until(pred, timeout):
    deadline = time.time() + timeout
    while not pred() and time.time() < deadline:
        time.sleep(0.2)
    return pred()


@case("logrotate -f with the shipped file: rotated, reopened, compressed, no event lost")
def rotate_logs(sink, dns, smtp_port):
    assert os.path.exists("/etc/logrotate.d/kasi")
    ev = "/var/log/kasi/events.jsonl"
    state = tempfile.NamedTemporaryFile(prefix="kasi-logrotate-state-", delete=False).name
    base = deliveries(ev)  # the earlier cases' deliveries
    k = Installed()
    try:
        assert k.notified().startswith("READY=1")
        for round_ in range(3):
            s = smtplib.SMTP("127.0.0.1", smtp_port)
            for i in range(2):
                s.sendmail("app@sender.test", ["r@sink.test"], f"Subject: {round_} {i}\r\n\r\nhi\r\n")
            s.quit()
            want = (base if round_ == 0 else 0) + 2  # in the file kasi writes now
            assert wait_until(lambda: deliveries(ev) == want, 20), \
                (round_, want, deliveries(ev), k.read_log()[-2000:])
            r = sh("logrotate", "-f", "-s", state, "/etc/logrotate.d/kasi")
            assert not os.path.exists(ev) or deliveries(ev) == 0, (r.stdout, r.stderr)
        names = sorted(os.listdir("/var/log/kasi"))
        assert {"events.jsonl.1", "events.jsonl.2.gz", "events.jsonl.3.gz"} <= set(names), names
        # every delivery is in exactly one file: the last round's in the uncompressed one
        assert deliveries(ev + ".1") == 2 and deliveries(ev + ".2.gz") == 2, names
        assert deliveries(ev + ".3.gz") == base + 2, (base, names)
        assert "log files reopened" in k.read_log(), k.read_log()[-2000:]
    finally:
        assert k.stop() == 0, k.read_log()[-2000:]
        os.unlink(state)


@case("upgrade keeps an edited conffile and the spool")
def upgrade(deb, sink, dns, smtp_port):
    k = Installed()
    try:
        assert k.notified().startswith("READY=1")
        sh("/usr/sbin/kasictl", "-c", "/etc/kasi", "suspend", "held.test")
        s = smtplib.SMTP("127.0.0.1", smtp_port)
        s.sendmail("app@sender.test", ["x@held.test"], "Subject: held\r\n\r\nhi\r\n")
        s.quit()
    finally:
        assert k.stop() == 0
    assert sh("/usr/sbin/kasictl", "-c", "/etc/kasi", "count").stdout.startswith("messages 1\n")
    r = sh("dpkg", "-i", "--force-confold", deb)
    assert f"listen=127.0.0.1:{smtp_port}" in open(os.path.join(CFG, "smtp.ini")).read()
    assert sh("/usr/sbin/kasictl", "-c", "/etc/kasi", "count").stdout.startswith("messages 1\n"), r
    assert pwd.getpwnam("kasi")


@case("purge removes the package's files, spool, logs and user, keeps an operator's key")
def purge():
    os.unlink(os.path.join(CFG, "dns.ini"))  # the test's own file
    key = os.path.join(CFG, "dkim", "example.test", "s1.private")
    os.makedirs(os.path.dirname(key))
    open(key, "w").write("operator's key\n")
    sh("dpkg", "--purge", "kasi")
    assert open(key).read() == "operator's key\n"
    sh("rm", "-rf", "/etc/kasi")
    for p in ("/usr/sbin/kasi", "/etc/kasi", "/var/spool/kasi", "/var/log/kasi",
              "/lib/systemd/system/kasi.service"):
        assert not os.path.exists(p), p
    try:
        pwd.getpwnam("kasi")
        raise AssertionError("user kasi is still there")
    except KeyError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deb")
    ap.add_argument("--out", default=os.path.join(TOP, "build-deb"))
    ap.add_argument("--log")
    a = ap.parse_args()
    if os.getuid() != 0:
        print("package_test: needs root (dpkg -i)")
        sys.exit(1)
    deb = a.deb or build(a.out)
    if deb:
        sink = Sink()
        dns = DnsServer("$TTL 300\nsink.test. IN MX 10 mx.sink.test.\nmx.sink.test. IN A 127.0.0.1\n"
                        "held.test. IN MX 10 mx.sink.test.\n")
        smtp_port = free_port()
        try:
            install(deb)
            run_installed(sink, dns, smtp_port)
            dkim_flow(sink, dns, smtp_port)
            rotate_logs(sink, dns, smtp_port)
            upgrade(deb, sink, dns, smtp_port)
        finally:
            purge()
            sink.stop()
            dns.stop()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed + (0 if deb else 0)
    summary = f"cases: {passed} passed, {failed} failed, 0 skipped"
    print(summary, flush=True)
    if a.log:
        with open(a.log, "w") as f:
            f.write(json.dumps({"name": "package", "result": "OK" if not failed else "FAIL",
                                "stdout": summary}) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
