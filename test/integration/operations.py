"""Operating a running kasi: kasictl's argument checking (usage errors exit 2, unknown
message ids exit 1) and reopening the log files after logrotate renamed them (SIGHUP,
`kasictl reopen-logs` over the control socket and over the admin API): every event is in
exactly one file, the ones after the reopen in the new file."""
import json
import os
import signal
import smtplib
import time

from harness import Kasi, free_port, run


def queue_kasi(extra=None):
    """A kasi with delivery off (messages stay queued) and a main log file."""
    k = Kasi(extra=extra)
    with open(os.path.join(k.dir, "config", "log.ini"), "a") as f:
        f.write(f"\nfile={k.dir}/main.log\n")
    return k


def send(k, n, tag):
    s = smtplib.SMTP("127.0.0.1", k.port)
    for i in range(n):
        s.sendmail("app@kasi.test", ["to@example.net"],
                   f"From: app@kasi.test\r\nSubject: {tag} {i}\r\n\r\nhello\r\n")
    s.quit()


def receptions(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line)["id"] for line in f if '"type":"Reception"' in line]


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_usage_errors_exit_2_with_a_message():
    k = Kasi().start()
    try:
        bad = [["list", "--limit", "abc"], ["list", "--limit"], ["list", "--limit", "-3"],
               ["list", "extra"], ["list", "--bogus"], ["count", "--body"],
               ["count", "--limit", "3"], ["show"], ["show", "a", "b"], ["export"],
               ["delete"], ["delete", "a", "b"], ["bounce"], ["resume"], ["resume", "a", "b"],
               ["suspend"], ["flush", "a", "b"], ["status", "x"], ["reload", "x"],
               ["reopen-logs", "x"], ["queue", "x"], ["nosuchcommand"], [],
               ["dkim", "records", "a", "b"], ["dkim", "keygen", "a.test"],
               ["dkim", "keygen", "a.test", "s", "--bits", "abc"], ["dkim", "nope"],
               ["resolve", "A"], ["resolve", "--prefer", "v5", "A", "x.test"],
               ["resolve", "--prefer"], ["resolve", "--nope", "A", "x.test"],
               ["resolve", "route", "a.test", "b.test"], ["verp"], ["unsubscribe", "x"],
               ["http", "token"]]
        for args in bad:
            rc, out, err = k.ctl(*args)
            assert rc == 2, (args, rc, out, err)
            assert err.strip(), (args, err)
            assert out == "", (args, out)
        rc, out, err = k.ctl("list", "--limit", "5")
        assert rc == 0 and err == "", (rc, err)
        rc, out, err = k.ctl("count")
        assert rc == 0 and out.startswith("messages 0\n"), (rc, out, err)
    finally:
        k.cleanup()


def test_unknown_message_ids_are_errors():
    k = queue_kasi()
    try:
        k.start()
        send(k, 1, "kept")
        assert wait_for(lambda: len(k.queued_ids()) == 1)
        real = k.queued_ids()[0]
        for args in (["show", "nosuchid"], ["delete", "nosuchid"], ["bounce", "nosuchid"]):
            rc, out, err = k.ctl(*args)
            assert rc == 1, (args, rc, out, err)
            assert "kasictl: no queued message with id nosuchid" in err and out == "", \
                (args, out, err)
        rc, out, err = k.ctl("delete", real)
        assert rc == 0 and out.startswith("ok: deleted 1 "), (rc, out, err)
        assert wait_for(lambda: k.queued_ids() == [])
        rc, out, err = k.ctl("delete", real)  # gone now
        assert rc == 1 and "no queued message" in err, (rc, out, err)
        rc, out, err = k.ctl("delete", "@example.net")  # a domain with nothing queued
        assert rc == 0 and out.startswith("ok: deleted 0 "), (rc, out, err)
    finally:
        k.cleanup()


def rotate_and_reopen(k, reopen):
    """Events before the rename, between the rename and the reopen, and after it."""
    events = os.path.join(k.dir, "log", "events.jsonl")
    main_log = os.path.join(k.dir, "main.log")
    k.start()
    send(k, 5, "before")
    assert wait_for(lambda: len(receptions(events)) == 5), receptions(events)
    os.rename(events, events + ".1")
    os.rename(main_log, main_log + ".1")
    send(k, 3, "between")  # may still sit in the buffer when the reopen comes
    reopen()
    assert wait_for(lambda: os.path.exists(events)), "the event log was not opened again"
    send(k, 4, "after")
    assert wait_for(lambda: len(receptions(events + ".1")) + len(receptions(events)) == 12), \
        (receptions(events + ".1"), receptions(events))
    time.sleep(1.5)  # a flush more: nothing further may turn up
    old, new = receptions(events + ".1"), receptions(events)
    assert len(old) + len(new) == 12 and len(set(old + new)) == 12, (old, new)
    assert len(old) >= 8, (old, new)  # the 'before' and 'between' ones stayed in the old file
    after = set(new[-4:])
    assert len(new) >= 4 and not after & set(old), (old, new)
    assert wait_for(lambda: os.path.exists(main_log)), "the log file was not opened again"
    assert wait_for(lambda: "log files reopened" in open(main_log).read()), \
        open(main_log).read()
    assert "log files reopened" not in open(main_log + ".1").read()


def test_sighup_reopens_the_event_log_and_the_log_file():
    k = queue_kasi()
    try:
        rotate_and_reopen(k, lambda: k.send_signal(signal.SIGHUP))
    finally:
        k.cleanup()


def test_kasictl_reopen_logs_over_the_control_socket():
    k = queue_kasi()

    def reopen():
        rc, out, err = k.ctl("reopen-logs")
        assert rc == 0 and out.startswith("ok: reopened"), (rc, out, err)
    try:
        rotate_and_reopen(k, reopen)
    finally:
        k.cleanup()


def test_kasictl_reopen_logs_over_the_admin_api():
    port = free_port()
    k = queue_kasi(extra={"http.ini": f"[main]\nlisten = 127.0.0.1:{port}\n"
                                      "[auth]\ntrusted = 127.0.0.1\n"})

    def reopen():
        rc, out, err = k.ctl("reopen-logs")
        assert rc == 0 and out.startswith("ok: reopened"), (rc, out, err)
        assert "http: admin reopen-logs" in open(os.path.join(k.dir, "main.log.1")).read()
    try:
        rotate_and_reopen(k, reopen)
    finally:
        k.cleanup()


def test_reopen_keeps_the_old_file_when_the_path_cannot_be_opened():
    k = queue_kasi()
    try:
        k.start()
        events = os.path.join(k.dir, "log", "events.jsonl")
        send(k, 2, "one")
        assert wait_for(lambda: len(receptions(events)) == 2)
        os.rename(events, events + ".1")
        os.mkdir(events)  # the path is now a directory: it cannot be opened for writing
        rc, out, err = k.ctl("reopen-logs")
        assert rc == 1 and "events" in out and "still writing" in out, (rc, out, err)
        send(k, 2, "two")
        assert wait_for(lambda: len(receptions(events + ".1")) == 4), receptions(events + ".1")
        os.rmdir(events)
        rc, out, err = k.ctl("reopen-logs")
        assert rc == 0, (rc, out, err)
        send(k, 1, "three")
        assert wait_for(lambda: len(receptions(events)) == 1)
    finally:
        k.cleanup()


def test_kasictl_survives_a_hostile_http_answer():
    # kasictl parses what answers on the admin port with the API's bounded JSON parser: an
    # answer of 500,000 '[' is shown as text, never a stack overflow.
    import socket
    import subprocess
    import tempfile
    import threading
    from harness import KASICTL
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    body = b"[" * 500000

    def serve():
        for _ in range(2):
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    d = tempfile.mkdtemp(prefix="kasi-ctl-")
    os.makedirs(os.path.join(d, "config"))
    with open(os.path.join(d, "config", "http.ini"), "w") as f:
        f.write(f"listen=127.0.0.1:{port}\n")
    try:
        for cmd in (["status"], ["flush"]):
            p = subprocess.run([KASICTL, "-c", d] + cmd, capture_output=True, timeout=20)
            assert p.returncode in (0, 1), (cmd, p.returncode, p.stderr[-300:])
            assert p.stdout.startswith(b"[[[["), (cmd, p.stdout[:80])
    finally:
        srv.close()


run(globals())
