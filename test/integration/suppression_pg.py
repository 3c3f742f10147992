"""The suppression list shared through PostgreSQL, end to end: a throwaway PostgreSQL
cluster made by the test (initdb in a temp dir, a free loopback port, fsync off) and two
kasi nodes whose suppression.ini names it. An operator's add on node A, or an ARF complaint
received by A, makes node B refuse the address at RCPT within the poll interval (plus a
margin), a removal reaches B the same way, the schema
migrations ran once although both nodes started together, a bad row put in the table by
hand is skipped (logged) without stopping the sharing, an offline import is pushed when the
node starts (a row PostgreSQL refuses as data stays local, logged), a migration that fails is
logged and retried while the node serves from its own list, a server that accepts and never
answers holds up neither reception nor a stop, and with PostgreSQL stopped node A
still adds (acknowledged, and kept through a kill -9), both nodes keep receiving, and the
change reaches B once PostgreSQL is back. Skipped when the PostgreSQL server binaries are
not installed (Debian: apt-get install postgresql)."""
import glob
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import feedback
import outbound
from harness import KASI, Kasi, Skip, free_port, run
from smtp_peer import Peer

POLL_S = 0.2  # poll_interval of the nodes
BOUND_S = POLL_S + 2.0  # what the test allows: the poll, a push and a margin for a busy box


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    """A PostgreSQL cluster on 127.0.0.1:port in a temp dir. As root, initdb and pg_ctl run
    as the `postgres` user (initdb refuses root)."""

    def __init__(self):
        self.bin = pg_bin()
        if not self.bin:
            raise Skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb)")
        self.user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise Skip("running as root and there is no 'postgres' user to run initdb as")
            self.user = "postgres"
        self.dir = tempfile.mkdtemp(prefix="kasi-pg-")
        os.chmod(self.dir, 0o700)
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        self.port = free_port()
        self.pid = None
        self.as_user([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "-A",
                      "trust", "-E", "UTF8", "--no-sync"])
        self.start()

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def as_user(self, cmd):
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        return r.stdout

    def start(self):
        self.as_user([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l",
                      os.path.join(self.dir, "pg.log"), "-w", "-t", "30", "-o",
                      f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off",
                      "start"])
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def stop(self):
        """A fast shutdown (SIGINT); the postmaster is not our child, so poll its pid."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, db="postgres"):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"

    def sql(self, text, db="postgres"):
        r = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-A", "-t", "-q", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", db, "-c", text],
                           capture_output=True, text=True)
        assert r.returncode == 0, (text, r.stderr)
        return r.stdout.strip()


_PG = None


def pg():
    global _PG
    if _PG is None:
        _PG = Postgres()
    return _PG


def node(p, http=None, db="postgres"):
    files = {"suppression.ini":
             f"[postgres]\ndsn = {p.dsn(db)}\npoll_interval = {int(POLL_S * 1000)}ms\n"}
    if http:
        files["http.ini"] = f"[main]\nlisten = 127.0.0.1:{http}\n[auth]\ntrusted = 127.0.0.1\n"
    return Kasi(extra=files).start()


def metric(http, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


def rcpt_code(k, addr):
    s = smtplib.SMTP("127.0.0.1", k.port, timeout=10)
    try:
        s.ehlo("x.test")
        s.mail("orig@sender.test")
        return s.rcpt(addr)[0]
    finally:
        s.quit()


def wait_code(k, addr, code, timeout):
    """Seconds until RCPT TO:<addr> on `k` answers `code`; fails after `timeout`."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        last = rcpt_code(k, addr)
        if last == code:
            return time.time() - t0
        time.sleep(0.02)
    raise AssertionError(f"{addr} on port {k.port}: {last}, not {code}, after {timeout} s")


def ctl_ok(k, *args):
    rc, out, err = k.ctl(*args)
    assert rc == 0, (args, out, err)
    return out


def wait_log(k, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in k.read_log():
            return
        time.sleep(0.05)
    raise AssertionError(f"'{text}' not in the log:\n{k.read_log()[-3000:]}")


def test_adds_and_removes_on_one_node_reach_the_other_within_the_poll_interval():
    p = pg()
    a = b = None
    try:
        # Both nodes start while a session holds the migration lock: neither may touch the
        # schema until it is released, then they apply it one after the other, once.
        holder = subprocess.Popen(
            [os.path.join(p.bin, "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(p.port),
             "-U", "postgres", "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        holder.stdin.write("SELECT pg_advisory_lock(5422706999328505857);\n")
        holder.stdin.flush()
        deadline = time.time() + 10
        while p.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") != "1":
            assert time.time() < deadline
            time.sleep(0.05)
        a, b = node(p), node(p)
        deadline = time.time() + 10  # both waiting for the lock
        while p.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") != "2":
            assert time.time() < deadline, [k.read_log()[-2000:] for k in (a, b)]
            time.sleep(0.05)
        assert p.sql("SELECT to_regclass('kasi_schema_migrations') IS NULL") == "t"
        holder.stdin.write("SELECT pg_advisory_unlock_all();\n")
        holder.stdin.close()
        holder.wait()
        wait_log(a, "suppression: PostgreSQL 127.0.0.1:")
        wait_log(b, "suppression: PostgreSQL 127.0.0.1:")
        assert p.sql("SELECT version FROM kasi_schema_migrations") == "1"
        assert rcpt_code(b, "shared@sink.test") == 250
        ctl_ok(a, "suppress", "add", "Shared@Sink.test", "-", "complaint")
        took = wait_code(b, "shared@sink.test", 550, BOUND_S)
        print(f"an add on A refused at RCPT on B after {took:.2f} s (poll {POLL_S} s)")
        assert "reason=complaint" in ctl_ok(b, "suppress", "check", "shared@sink.test")
        row = p.sql("SELECT scope, address, reason, deleted FROM kasi_suppression")
        assert row == "|shared@sink.test|complaint|f", row
        # a removal is a tombstone that the other node applies
        ctl_ok(a, "suppress", "remove", "shared@sink.test")
        took = wait_code(b, "shared@sink.test", 250, BOUND_S)
        print(f"a removal on A reached B after {took:.2f} s")
        assert p.sql("SELECT deleted FROM kasi_suppression") == "t"
        # and the other way, in a tenant scope
        ctl_ok(b, "suppress", "add", "t@sink.test", "tenant:acme")
        deadline = time.time() + BOUND_S
        while "reason=manual" not in ctl_ok(a, "suppress", "check", "t@sink.test", "tenant:acme"):
            assert time.time() < deadline, ctl_ok(a, "suppress", "check", "t@sink.test", "tenant:acme")
            time.sleep(0.05)
        # a row nobody should have written: logged and skipped; sharing goes on
        p.sql("INSERT INTO kasi_suppression (scope, address, reason, created, seq) VALUES "
              "('', 'bad@sink.test', 'bogus', 1, nextval('kasi_suppression_seq')), "
              "('', 'no-at-sign', 'manual', 1, nextval('kasi_suppression_seq'))")
        ctl_ok(a, "suppress", "add", "after@sink.test")
        wait_code(b, "after@sink.test", 550, BOUND_S)
        wait_log(b, "unknown reason 'bogus'")
        assert rcpt_code(b, "bad@sink.test") == 250
        for k in (a, b):
            assert "migration failed" not in k.read_log(), k.read_log()[-3000:]
        # the first test on a fresh database: exactly one of the two applied the schema
        migrated = [k for k in (a, b) if "schema migrated from version 0 to 1" in k.read_log()]
        assert len(migrated) == 1, [k.read_log()[-2000:] for k in (a, b)]
        # an import with kasi stopped goes to the outbox too: A pushes it when it starts. A
        # Latin-1 address is a valid local entry that PostgreSQL (UTF8) refuses: it stays on
        # A, logged, and does not hold back the entries after it.
        a.stop()
        csv = os.path.join(a.dir, "list.csv")
        with open(csv, "wb") as f:
            f.write(b"address,scope,reason\ncaf\xe9@sink.test,,import\nimported@sink.test,,import\n")
        rc, out, err = a.ctl("suppress", "import", csv)
        assert rc == 0 and "imported 2 of 2 rows" in out, (out, err)
        a.start()
        wait_code(b, "imported@sink.test", 550, BOUND_S + 5)
        wait_log(a, "stays on this node only")
        assert "caf" not in p.sql("SELECT string_agg(address, ' ') FROM kasi_suppression")
    finally:
        for k in (a, b):
            if k:
                k.cleanup()


def test_a_complaint_received_by_one_node_suppresses_the_address_on_the_other():
    """The path a real report takes: node A relays a message with a VERP return path to a
    scripted peer, an ARF complaint about it comes back to A's feedback address, and B then
    refuses the recipient at RCPT."""
    p = pg()
    peer = Peer()
    a = b = None
    try:
        files = dict(feedback.FILES)
        files["suppression.ini"] = (f"[postgres]\ndsn = {p.dsn()}\n"
                                    f"poll_interval = {int(POLL_S * 1000)}ms\n")
        a = outbound.kasi(peer.port, extra=files)
        b = node(p)
        wait_log(b, "suppression: PostgreSQL 127.0.0.1:")
        verp, _ = feedback.sent_verp_address(a, peer)
        assert rcpt_code(b, "alice@sink.test") == 250
        code = feedback.report(a, "fbl@esp.test", feedback.ARF.format(verp=verp),
                               sender="fbl@hotmail.test")
        assert code == 250
        took = wait_code(b, "alice@sink.test", 550, BOUND_S + 3)  # + reading the report
        print(f"a complaint accepted by A: refused at RCPT on B after {took:.2f} s")
        assert "reason=complaint" in ctl_ok(b, "suppress", "check", "alice@sink.test")
    finally:
        for k in (a, b):
            if k:
                k.cleanup()
        peer.stop()


def test_a_failed_migration_is_logged_and_the_node_serves_from_its_own_list():
    p = pg()
    p.sql("CREATE DATABASE broken")
    # a table of that name, not Kasi's: migration 1 cannot create its own
    p.sql("CREATE TABLE kasi_suppression (x int)", db="broken")
    a = None
    try:
        a = node(p, db="broken")
        wait_log(a, "schema migration failed: migration 1 (")
        assert 'relation "kasi_suppression" already exists' in a.read_log()
        # rolled back whole: not even the bookkeeping table is left
        assert p.sql("SELECT to_regclass('kasi_schema_migrations') IS NULL", db="broken") == "t"
        ctl_ok(a, "suppress", "add", "local@sink.test")  # changes still acknowledged
        assert rcpt_code(a, "local@sink.test") == 550
        assert rcpt_code(a, "other@sink.test") == 250
        p.sql("DROP TABLE kasi_suppression", db="broken")  # the operator fixes it: a retry works
        wait_log(a, "PostgreSQL schema migrated from version 0 to 1")
        deadline = time.time() + BOUND_S
        while p.sql("SELECT count(*) FROM kasi_suppression", db="broken") != "1":
            assert time.time() < deadline, a.read_log()[-3000:]
            time.sleep(0.05)
    finally:
        if a:
            a.cleanup()


def test_check_config_names_a_bad_dsn_or_interval_without_the_password():
    for ini, want in (("dsn = host=db bogus=1 password=s3cret\n",
                       '[postgres] dsn: invalid connection option "bogus"'),
                      ("dsn = host=db password=s3cret\npoll_interval = 10ms\n",
                       "[postgres] poll_interval = 10ms: a duration from 100ms to 1h")):
        k = Kasi(extra={"suppression.ini": "[postgres]\n" + ini})
        try:
            r = subprocess.run([KASI, "-c", k.dir, "--check-config"], capture_output=True,
                               text=True)
            out = r.stdout + r.stderr
            assert r.returncode != 0 and want in out and "s3cret" not in out, out
        finally:
            k.cleanup()


def test_a_server_that_never_answers_holds_up_neither_start_nor_reception_nor_stop():
    """A listener on loopback that accepts and then says nothing (a hung database, a
    half-open connection): no PostgreSQL needed."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    files = {"suppression.ini": f"[postgres]\ndsn = host=127.0.0.1 port={srv.getsockname()[1]} "
                                "user=postgres dbname=postgres connect_timeout=60\n"}
    k = None
    try:
        k = Kasi(extra=files).start()
        t0 = time.time()
        out = ctl_ok(k, "suppress", "add", "hung@sink.test")
        assert "added" in out and time.time() - t0 < 2, out
        assert rcpt_code(k, "hung@sink.test") == 550
        assert rcpt_code(k, "other@sink.test") == 250
        assert held, "kasi never connected"
        t0 = time.time()
        rc = k.stop()
        took = time.time() - t0
        assert rc == 0 and took < 3, (rc, took, k.read_log()[-2000:])
        print(f"stopped in {took:.2f} s with a connection attempt hanging")
    finally:
        srv.close()
        for c in held:
            c.close()
        if k:
            k.cleanup()


def test_postgres_down_changes_wait_in_the_outbox_and_arrive_when_it_is_back():
    p = pg()
    a = b = None
    try:
        http = free_port()
        a, b = node(p, http), node(p)
        wait_log(a, "suppression: PostgreSQL 127.0.0.1:")
        wait_log(b, "suppression: PostgreSQL 127.0.0.1:")
        assert metric(http, "kasi_suppression_pg_connected") == 1
        assert metric(http, "kasi_suppression_pg_last_pull_seconds") > time.time() - 60
        p.stop()
        t0 = time.time()
        out = ctl_ok(a, "suppress", "add", "during@sink.test", "-", "hard_bounce")
        assert "added during@sink.test" in out and time.time() - t0 < 2, out
        assert rcpt_code(a, "during@sink.test") == 550  # local at once
        assert rcpt_code(a, "other@sink.test") == 250  # reception goes on on both
        assert rcpt_code(b, "other@sink.test") == 250
        wait_log(a, "the local list keeps serving")
        assert metric(http, "kasi_suppression_pg_connected") == 0
        assert metric(http, "kasi_suppression_pg_pending") == 1
        # the acknowledged change survives a kill -9 while it waits for PostgreSQL
        a.stop(signal.SIGKILL)
        a.start()
        assert rcpt_code(a, "during@sink.test") == 550
        time.sleep(POLL_S * 3)
        assert rcpt_code(b, "during@sink.test") == 250  # B could not have heard of it
        p.start()
        took = wait_code(b, "during@sink.test", 550, 5 + BOUND_S)  # retry at most 5 s, then poll
        print(f"after PostgreSQL came back, A's change reached B in {took:.2f} s")
        n = p.sql("SELECT count(*) FROM kasi_suppression WHERE address = 'during@sink.test'")
        assert n == "1", n
        deadline = time.time() + 5
        while metric(http, "kasi_suppression_pg_pending") != 0:
            assert time.time() < deadline
            time.sleep(0.05)
        assert metric(http, "kasi_suppression_pg_connected") == 1
    finally:
        for k in (a, b):
            if k:
                k.cleanup()


if __name__ == "__main__":
    try:
        run(globals())
    finally:
        if _PG:
            _PG.cleanup()
        if outbound._DNS:
            outbound._DNS.proc.kill()
