"""Signals: graceful stop (SIGTERM/SIGINT) and reload (SIGHUP); recovery of the spool at
start; disk full (ENOSPC on a small tmpfs)."""
import os
import signal
import subprocess
import time
from harness import Kasi, Skip, message, run


def test_sigterm_lets_a_transaction_in_flight_finish():
    k = Kasi().start()
    try:
        c = k.client()
        c.cmd("EHLO c.test")
        c.cmd("MAIL FROM:<s@example.org>")
        c.cmd("RCPT TO:<r@example.net>")
        assert c.cmd("DATA")[0] == 354
        idle = k.client()
        k.send_signal(signal.SIGTERM)
        code, lines = idle.reply()   # an idle session is told at once
        assert code == 421, lines
        time.sleep(0.3)
        c.send("Subject: late\r\n\r\nstill accepted\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        assert c.cmd("NOOP")[0] == 421
        assert k.proc.wait(10) == 0
        assert len(k.queued_ids()) == 1
    finally:
        k.cleanup()


def test_shutdown_is_bounded():
    k = Kasi(extra={"smtp.ini": "force_shutdown_timeout=1\n"}).start()
    try:
        c = k.client()
        c.cmd("EHLO c.test")
        c.cmd("MAIL FROM:<s@example.org>")
        c.cmd("RCPT TO:<r@example.net>")
        c.cmd("DATA")          # and then never finishes
        t0 = time.time()
        k.send_signal(signal.SIGINT)
        assert k.proc.wait(10) == 0
        assert time.time() - t0 < 5
        assert k.queued_ids() == []
    finally:
        k.cleanup()


def test_restart_recovers_the_spool():
    k = Kasi().start()
    try:
        c = k.client()
        for i in range(5):
            code, _ = c.send_message("s@example.org", ["r@example.net"], message(f"m{i}"), ehlo="c.test" if i == 0 else None)
            assert code == 250
        ids = k.queued_ids()
        assert k.stop() == 0
        k.start()
        assert "recovered 5 queued messages" in k.read_log()
        assert k.queued_ids() == ids
    finally:
        k.cleanup()


def wait_log(k, text, timeout=15):
    """The log once it holds `text` (or after `timeout` seconds: the caller's assert says)."""
    deadline = time.time() + timeout
    log = k.read_log()
    while text not in log and time.time() < deadline:
        time.sleep(0.05)
        log = k.read_log()
    return log


def test_sighup_reloads_and_refuses_a_broken_config():
    k = Kasi().start()
    try:
        c = k.client(source="127.0.0.2")
        c.cmd("EHLO c.test")
        c.cmd("MAIL FROM:<a@remote.example>")
        assert c.cmd("RCPT TO:<x@new-local.test>")[0] == 550
        with open(os.path.join(k.dir, "config", "host_list"), "a") as f:
            f.write("new-local.test\n")
        k.send_signal(signal.SIGHUP)
        wait_log(k, "configuration generation 2 in effect")
        d = k.client(source="127.0.0.2")
        d.cmd("EHLO c.test")
        d.cmd("MAIL FROM:<a@remote.example>")
        assert d.cmd("RCPT TO:<x@new-local.test>")[0] == 250
        with open(os.path.join(k.dir, "config", "plugins"), "a") as f:
            f.write("not_a_plugin\n")
        k.send_signal(signal.SIGHUP)
        log = wait_log(k, "reload refused")
        assert "unknown plugin 'not_a_plugin'" in log and "reload refused" in log, log
        e = k.client(source="127.0.0.2")
        e.cmd("EHLO c.test")
        e.cmd("MAIL FROM:<a@remote.example>")
        assert e.cmd("RCPT TO:<x@new-local.test>")[0] == 250
        assert k.proc.poll() is None
    finally:
        k.cleanup()


def test_systemd_notify_ready_reloading_stopping():
    """Type=notify: READY=1 once listening, RELOADING=1 then READY=1 around a SIGHUP reload,
    STOPPING=1 at SIGTERM, on a datagram socket named by $NOTIFY_SOCKET (path and abstract)."""
    import socket
    import tempfile
    for abstract in (False, True):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "@kasi-notify-%d" % os.getpid()
            sock.bind("\0" + name[1:])
        else:
            name = os.path.join(tempfile.mkdtemp(prefix="kasi-notify-"), "notify.sock")
            sock.bind(name)
        sock.settimeout(10)
        os.environ["NOTIFY_SOCKET"] = name
        try:
            k = Kasi().start(wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            ready = sock.recv(4096).decode()
            assert ready.startswith("READY=1\n") and "MAINPID=%d" % k.proc.pid in ready, ready
            c = k.client()  # ready means listening
            c.cmd("EHLO c.test")
            k.send_signal(signal.SIGHUP)
            assert sock.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
            again = sock.recv(4096).decode()
            assert again.startswith("READY=1\nSTATUS=generation "), again
            c.close()
            k.send_signal(signal.SIGTERM)
            assert sock.recv(4096).decode().startswith("STOPPING=1")
            assert k.stop() == 0
        finally:
            k.cleanup()
            sock.close()


def test_disk_full_gives_452_and_recovers():
    if os.geteuid() != 0:
        raise Skip("needs root to mount a small tmpfs")
    k = Kasi()
    mnt = os.path.join(k.dir, "small")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip("cannot mount tmpfs here: " + r.stderr.strip())
    try:
        with open(os.path.join(k.dir, "config", "queue_dir"), "w") as f:
            f.write(mnt + "/queue\n")
        k.start()
        c = k.client()
        codes = []
        for i in range(80):
            code, lines = c.send_message("s@example.org", ["r@example.net"], message(f"m{i}", size=60000),
                                         ehlo="c.test" if i == 0 else None)
            codes.append(code)
            if code == 452:
                assert "4.3.1" in lines[0], lines
                break
        assert codes[-1] == 452 and codes.count(250) >= 1, codes
        acked = codes.count(250)
        assert len(k.queued_ids()) == acked
        log = k.read_log()
        assert log.count("No space left on device") == 1, log
        # make room (the spool's own files stay), and the next message is accepted again
        with open(os.path.join(mnt, "filler"), "wb"):
            pass
        subprocess.run(["mount", "-o", "remount,size=8m", mnt], check=True)
        code, lines = c.send_message("s@example.org", ["r@example.net"], message("after", size=60000), ehlo=None)
        assert code == 250, lines
        assert "writes to" in k.read_log() and "succeed again" in k.read_log()
        assert len(k.queued_ids()) == acked + 1
        k.stop()
    finally:
        k.stop(signal.SIGKILL)
        subprocess.run(["umount", "-l", mnt])
        k.cleanup()


run(globals())
