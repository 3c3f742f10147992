"""No acknowledged message is ever lost: real kill -9 of kasi under concurrent load, many
rounds. Every message that got '250 ... Message Queued (<id>)' must be in the spool after
the crash, and must still be there after a restart recovers it."""
import random
import signal
import socket
import threading
import time
from harness import Kasi, message, run

ROUNDS = 12
SENDERS = 6


def sender(k, acked, stop):
    while not stop.is_set():
        try:
            c = k.client(timeout=3)
            c.cmd("EHLO load.test")
            while not stop.is_set():
                code, lines = c.send_message("s@example.org", ["r@example.net", "q@example.org"],
                                             message("load", size=random.choice([200, 3000, 20000])), ehlo=None)
                if code == 250:
                    acked.append(lines[0].rsplit("(", 1)[1].rstrip(")"))
        except (OSError, EOFError, AssertionError, ValueError):
            time.sleep(0.01)


def test_kill9_under_load_loses_no_acknowledged_message():
    k = Kasi()
    try:
        total_acked = 0
        for rnd in range(ROUNDS):
            k.start()
            acked, stop = [], threading.Event()
            threads = [threading.Thread(target=sender, args=(k, acked, stop)) for _ in range(SENDERS)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.3, 1.0))
            k.proc.send_signal(signal.SIGKILL)   # at an arbitrary moment of the load
            k.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            on_disk = set(k.queued_ids())
            missing = [a for a in acked if a not in on_disk]
            assert not missing, f"round {rnd}: {len(missing)} acknowledged messages lost: {missing[:5]}"
            assert len(on_disk) >= total_acked + len(acked)
            total_acked += len(acked)
            assert len(acked) > 0, f"round {rnd}: the load sent nothing"
        # a restart recovers everything and the spool reads the same afterwards
        before = set(k.queued_ids())
        k.start()
        assert set(k.queued_ids()) == before
        assert k.stop() == 0
        assert set(k.queued_ids()) == before
        print(f"{ROUNDS} rounds, {total_acked} acknowledged messages, all recovered ({len(before)} on disk)")
    finally:
        k.cleanup()


run(globals())
