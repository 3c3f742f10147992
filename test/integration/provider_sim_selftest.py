"""The provider simulator (provider_sim.py) itself: plain smtplib clients from two source
addresses (127.0.0.2, 127.0.0.3) find every profile accepting what stays under its limits,
refusing the connection over the cap at the greeting, deferring over the rate in the
provider's words, closing after too many messages on a connection, escalating a sender
that keeps pushing to the penalty box and then to a 5xx block, keeping senders apart, and
forgetting a penalty as it decays. Time is frozen (time_scale 0) and moved by
sim.advance(), so the cases count outcomes and never race the clock."""
import json
import os
import re
import signal
import smtplib
import subprocess
import tempfile
import threading
import time

from harness import Client, run
from provider_sim import ConfigError, ProviderSim

A, B = "127.0.0.2", "127.0.0.3"
BODY = "From: a@example.org\r\nTo: b@example.com\r\nSubject: sim\r\n\r\nhello\r\n"
PROFILES = ("gmail", "yahoo", "microsoft", "generic")


def simulator(profiles=None, **config):
    return ProviderSim(dict({"time_scale": 0, "profiles": profiles or {}}, **config)).start()


def connect(sim, profile, src=A):
    return smtplib.SMTP(sim.address(profile), sim.port, source_address=(src, 0), timeout=10)


def send(c, rcpts=("user@example.com",)):
    """One message on an open connection: (stage, code, text) of its outcome."""
    try:
        c.sendmail("sender@example.org", list(rcpts), BODY)
        return ("ok", 250, "")
    except smtplib.SMTPSenderRefused as e:
        return ("mail", e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        return ("rcpt", code, text.decode())
    except smtplib.SMTPDataError as e:
        return ("data", e.smtp_code, e.smtp_error.decode())


def folded(text):
    """A multi-line reply's text as one line, without the enhanced status smtplib keeps at
    the start of every line (as Kasi's classifier reads it)."""
    first, *rest = text.split("\n")
    return " ".join([first] + [re.sub(r"^\d\.\d{1,3}\.\d{1,3} ", "", l) for l in rest])


def close(c):
    try:
        c.quit()
    except (smtplib.SMTPException, OSError):
        c.close()


def attempt(sim, profile, src=A, rcpts=("user@example.com",)):
    """A connection with one message: (stage, code, text)."""
    try:
        c = connect(sim, profile, src)
    except smtplib.SMTPConnectError as e:
        return ("greeting", e.smtp_code, e.smtp_error.decode())
    try:
        return send(c, rcpts)
    finally:
        close(c)


def kind_of(sim, profile, src, fn):
    """What the simulator counted for fn(): 'accepted', a deferral kind, or 'block'."""
    before = sim.stat(profile, src)
    result = fn()
    after = sim.stat(profile, src)
    if after["messages"] > before["messages"]:
        return "accepted", result
    if after["blocks"] > before["blocks"]:
        return "block", result
    for kind, n in after["deferrals"].items():
        if n > before["deferrals"][kind]:
            return kind, result
    return None, result


def wait_concurrent_below(sim, profile, src, n, timeout=5):
    deadline = time.time() + timeout
    while sim.stat(profile, src)["concurrent"] >= n and time.time() < deadline:
        time.sleep(0.01)
    assert sim.stat(profile, src)["concurrent"] < n, sim.stat(profile, src)


def test_under_the_limits_every_profile_accepts_everything():
    sim = simulator()
    try:
        for profile in PROFILES:
            for _ in range(2):
                c = connect(sim, profile)
                for _ in range(5):
                    assert send(c, ["u1@example.com", "u2@example.com"])[0] == "ok", profile
                close(c)
            s = sim.stat(profile, A)
            assert (s["messages"], s["recipients"], s["connections"]) == (10, 20, 2), s
            assert sum(s["deferrals"].values()) == 0 and s["blocks"] == 0, s
            assert s["penalty"] == 0 and not s["in_penalty_box"] and not s["blocked"], s
            assert s["first_accepted"] <= s["last_accepted"], s
            assert 1 <= s["max_concurrent"] <= 2, s
        assert set(sim.stats()["profiles"]) == set(PROFILES)
        c = Client(sim.port, host=sim.address("gmail"), source=A)
        assert c.banner[0] == 220 and "gsmtp" in c.banner[1][0], c.banner
        c.close()
        c = Client(sim.port, host=sim.address("microsoft"), source=A)
        assert "Microsoft ESMTP MAIL Service" in c.banner[1][0], c.banner
        c.close()
    finally:
        sim.stop()


def test_ehlo_and_pipelined_commands_are_answered_in_order():
    sim = simulator(record=True)
    try:
        c = Client(sim.port, host=sim.address("generic"), source=A)
        code, lines = c.cmd("EHLO client.test")
        caps = " ".join(lines)
        assert code == 250 and all(x in caps for x in ("PIPELINING", "8BITMIME", "SIZE",
                                                        "ENHANCEDSTATUSCODES")), lines
        assert c.cmd("RCPT TO:<b@example.com>")[0] == 503
        c.send("MAIL FROM:<a@example.org> BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\n"
               "RCPT TO:<c@example.com>\r\nDATA\r\n")
        assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        c.send("Subject: x\r\n\r\n..a dot-stuffed line\r\n.\r\n")
        assert c.reply()[0] == 250
        c.send("MAIL FROM:<a@example.org> SIZE=999999999999\r\nRCPT TO:<b@example.com>\r\n"
               "DATA\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"
               "DATA\r\n")
        assert [c.reply()[0] for _ in range(7)] == [552, 503, 503, 250, 250, 250, 354]
        c.send(".\r\n")  # an empty message
        assert c.reply()[0] == 250
        assert c.cmd("QUIT")[0] == 221 and c.closed()
        s = sim.stat("generic", A)
        assert (s["messages"], s["recipients"]) == (2, 3), s
        m = sim.messages[0]
        assert (m["profile"], m["client"], m["from"], m["rcpts"], m["size"]) == \
            ("generic", A, "a@example.org", ["b@example.com", "c@example.com"], 36), m
        assert sim.messages[1]["size"] == 0, sim.messages
    finally:
        sim.stop()


def test_over_the_rate_each_provider_defers_in_its_own_words():
    sim = simulator({"*": {"rate_per_min": 60, "burst": 3, "defer_threshold": 0,
                           "block_threshold": 0}})
    expected = {"gmail": ("rcpt", 421, ["4.7.28", "unusual rate of unsolicited mail", A]),
                "yahoo": ("mail", 421, ["4.7.0 [TSS04] Messages from " + A,
                                        "unexpected volume"]),
                "microsoft": ("mail", 451, ["4.7.650 The mail server [" + A + "]",
                                            "temporarily rate limited due to IP reputation"]),
                "generic": ("rcpt", 451, ["4.7.1", "rate limited"])}
    try:
        for profile, (stage, code, words) in expected.items():
            c = connect(sim, profile)
            outcomes = [send(c) for _ in range(3)]
            assert all(o[0] == "ok" for o in outcomes), (profile, outcomes)
            close(c)
            for _ in range(2):
                got = attempt(sim, profile)
                assert got[:2] == (stage, code), (profile, got)
                assert all(w in folded(got[2]) for w in words), (profile, got)
            s = sim.stat(profile, A)
            assert (s["messages"], s["deferrals"]["rate"]) == (3, 2), s
            assert s["penalty"] == 2 and not s["in_penalty_box"], s
            sim.advance(60)  # the bucket refills (to its burst), the penalty does not matter
            assert [attempt(sim, profile)[0] for _ in range(3)] == ["ok"] * 3, profile
            assert attempt(sim, profile)[:2] == (stage, code), profile
    finally:
        sim.stop()


def test_a_421_answers_its_pipelined_command_and_closes_the_connection():
    sim = simulator({"gmail": {"rate_per_min": 60, "burst": 1}})
    try:
        assert attempt(sim, "gmail")[0] == "ok"
        c = Client(sim.port, host=sim.address("gmail"), source=A)
        c.cmd("EHLO client.test")
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        assert c.reply()[0] == 250
        code, lines = c.reply()
        assert code == 421 and len(lines) > 2, lines  # Gmail wraps its replies
        assert all(l.startswith("421-4.7.28 ") for l in lines[:-1]), lines
        assert lines[-1].startswith("421 4.7.28 ") and lines[-1].endswith("- gsmtp"), lines
        assert c.closed(), "DATA after a 421 must find the connection closed"
        assert sim.stat("gmail", A)["deferrals"]["rate"] == 1
    finally:
        sim.stop()


def test_over_the_connection_cap_the_greeting_refuses():
    sim = simulator({"*": {"max_conn": 2}})
    try:
        for profile, code, words in (("gmail", 421, ["4.7.0", "unusual rate", A]),
                                     ("microsoft", 451, ["4.7.652", "maximum number of "
                                                         "connections", A])):
            held = [connect(sim, profile), connect(sim, profile)]
            got = attempt(sim, profile)
            assert got[:2] == ("greeting", code), (profile, got)
            assert all(w in folded(got[2]) for w in words), (profile, got)
            assert attempt(sim, profile, src=B)[0] == "ok", "another IP has its own cap"
            assert send(held[0])[0] == "ok", "the connections in use go on"
            close(held[0])
            wait_concurrent_below(sim, profile, A, 2)
            assert attempt(sim, profile)[0] == "ok", "a connection freed is a place"
            close(held[1])
            s = sim.stat(profile, A)
            assert s["deferrals"]["conn_refused"] == 1 and s["max_concurrent"] == 2, s
            assert s["connections"] == 4 and s["messages"] == 2, s
    finally:
        sim.stop()


def test_too_many_messages_on_a_connection_close_it():
    sim = simulator({"*": {"max_msgs_per_conn": 3}})
    try:
        for profile, code, words in (("yahoo", 421, ["Max message per connection"]),
                                     ("microsoft", 421, ["maximum number of messages per "
                                                         "connection", A])):
            c = connect(sim, profile)
            assert [send(c)[0] for _ in range(3)] == ["ok"] * 3
            got = send(c)
            assert got[:2] == ("mail", code) and all(w in got[2] for w in words), got
            try:
                c.noop()
                raise AssertionError("the connection should be closed")
            except smtplib.SMTPServerDisconnected:
                pass
            assert attempt(sim, profile)[0] == "ok", "a new connection starts again"
            s = sim.stat(profile, A)
            assert (s["messages"], s["deferrals"]["msgs_per_conn"]) == (4, 1), s
    finally:
        sim.stop()


def test_pushing_on_escalates_to_the_penalty_box_then_a_block():
    sim = simulator({"*": {"rate_per_min": 60, "burst": 2, "defer_threshold": 3,
                           "block_threshold": 6, "penalty_box_s": 100, "block_s": 1000}})
    replies = {"gmail": {"penalty_box": ("mail", 421, "very low reputation"),
                         "block": ("data", 550, "mail sent from your IP address has been "
                                                "blocked")},
               "microsoft": {"penalty_box": ("rcpt", 451, "(S77714)"),
                             "block": ("rcpt", 550, "5.7.606 Access denied, banned sending "
                                                    "IP [" + A + "]")},
               "yahoo": {"penalty_box": ("mail", 421, "[TSS04]"),
                         "block": ("mail", 553, "[TSS09] All messages from " + A)},
               "generic": {"penalty_box": ("mail", 451, "poor reputation"),
                           "block": ("rcpt", 554, "blocked due to poor reputation")}}
    try:
        for profile, texts in replies.items():
            kinds = []
            for _ in range(10):
                kind, got = kind_of(sim, profile, A, lambda: attempt(sim, profile))
                kinds.append(kind)
                if kind in texts:
                    stage, code, words = texts[kind]
                    assert got[:2] == (stage, code) and words in folded(got[2]), \
                        (profile, kind, got)
            assert kinds == ["accepted"] * 2 + ["rate"] * 3 + ["penalty_box"] * 3 + \
                ["block"] * 2, (profile, kinds)
            s = sim.stat(profile, A)
            assert s["penalty_boxes"] == 1 and s["blocked"] and s["blocks"] == 2, s
            assert s["peak_penalty"] == 8, s
        sim.advance(150)  # the box is over, the block is not
        for profile in replies:
            assert kind_of(sim, profile, A, lambda: attempt(sim, profile))[0] == "block"
        sim.advance(1000 + 20 * 600)  # the block is over; 20 half-lives decay the penalty
        for profile in replies:
            assert attempt(sim, profile)[0] == "ok", profile
            s = sim.stat(profile, A)
            assert not s["blocked"] and s["penalty"] < 0.01, s
    finally:
        sim.stop()


def test_two_client_ips_are_independent():
    sim = simulator({"*": {"rate_per_min": 60, "burst": 2, "defer_threshold": 2,
                           "block_threshold": 4}})
    try:
        while not sim.stat("yahoo", A)["blocked"]:
            attempt(sim, "yahoo", A)
        assert attempt(sim, "yahoo", A)[1] == 553
        assert [attempt(sim, "yahoo", B)[0] for _ in range(2)] == ["ok", "ok"]
        assert attempt(sim, "gmail", A)[0] == "ok", "another provider knows nothing of it"
        b = sim.stat("yahoo", B)
        assert b["messages"] == 2 and sum(b["deferrals"].values()) == 0 and b["penalty"] == 0
        stats = sim.stats()["profiles"]
        assert set(stats["yahoo"]) == {A, B} and set(stats["gmail"]) == {A}, stats
        json.dumps(stats)
    finally:
        sim.stop()


def test_the_penalty_decays_and_each_box_lasts_longer():
    sim = simulator({"generic": {"rate_per_min": 60, "burst": 1, "defer_threshold": 3,
                                 "block_threshold": 100, "penalty_half_life_s": 10,
                                 "penalty_box_s": 20, "penalty_box_growth": 2}})

    def push():
        return kind_of(sim, "generic", A, lambda: attempt(sim, "generic"))[0]

    def stat():
        return sim.stat("generic", A)

    try:
        assert [push() for _ in range(4)] == ["accepted", "rate", "rate", "rate"]
        assert stat()["in_penalty_box"] and stat()["penalty_box_left_s"] == 20, stat()
        sim.advance(10)  # one half-life
        assert abs(stat()["penalty"] - 1.5) < 1e-3, stat()
        assert push() == "penalty_box"  # 10 s of the box left: 1.5 + 1
        sim.advance(11)  # out of the box; 2.5 decays to 1.17, the bucket is full again
        assert push() == "accepted"
        assert 1.1 < stat()["penalty"] < 1.2 and not stat()["in_penalty_box"], stat()
        assert push() == "rate" and not stat()["in_penalty_box"], stat()  # 2.17: no box
        assert push() == "rate" and stat()["in_penalty_box"], stat()  # 3.17: the 2nd box
        assert stat()["penalty_boxes"] == 2 and stat()["penalty_box_left_s"] == 40, stat()
        sim.advance(200)
        assert push() == "accepted"
        assert stat()["penalty"] < 0.001 and stat()["peak_penalty"] > 3, stat()
    finally:
        sim.stop()


def test_the_per_recipient_rate_is_shared_by_all_senders():
    sim = simulator({"gmail": {"rcpt_rate_per_min": 60, "rcpt_burst": 2}})
    try:
        assert attempt(sim, "gmail", A, ["busy@example.com"])[0] == "ok"
        assert attempt(sim, "gmail", B, ["busy@example.com"])[0] == "ok"
        got = attempt(sim, "gmail", A, ["busy@example.com"])
        assert got[:2] == ("rcpt", 450) and "4.2.1" in got[2] and \
            "receiving mail at a rate" in folded(got[2]), got
        assert attempt(sim, "gmail", A, ["quiet@example.com"])[0] == "ok"
        assert sim.stat("gmail", A)["deferrals"]["rcpt_rate"] == 1
    finally:
        sim.stop()


def test_replies_and_their_stages_can_be_changed_and_bad_config_is_refused():
    sim = simulator({"gmail": {"rate_per_min": 60, "burst": 1, "replies": {
        "rate": {"text": "450 4.2.1 slow down {ip}", "at": "data"}}}})
    try:
        assert attempt(sim, "gmail")[0] == "ok"
        assert attempt(sim, "gmail") == ("data", 450, "4.2.1 slow down " + A)
    finally:
        sim.stop()
    for bad in ({"profiles": {"gmail": {"rate_per_minute": 5}}},
                {"profiles": {"gmail": {"replies": {"rate": {"at": "greeting"}}}}},
                {"profiles": {"gmail": {"replies": {"nonsense": "450 x"}}}},
                {"profiles": {"gmail": {"replies": {"rate": "no code here"}}}},
                {"profiles": {"aol": {}}},
                {"profiles": {"gmail": {"max_conn": "5"}}},
                {"timescale": 2}):
        try:
            ProviderSim(bad)
            raise AssertionError(f"accepted {bad}")
        except ConfigError:
            pass


def test_time_scale_runs_the_clock_faster():
    sim = simulator({"generic": {"max_msgs_per_conn": 1, "defer_threshold": 0,
                                 "penalty_half_life_s": 60}}, time_scale=600)
    try:
        t0 = sim.now()
        time.sleep(0.05)
        assert sim.now() - t0 >= 30, "600 times 0.05 s"
        c = connect(sim, "generic")
        assert [send(c)[0] for _ in range(2)] == ["ok", "mail"]  # one violation
        assert sim.stat("generic", A)["penalty"] > 0.5
        time.sleep(0.5)  # at least 300 simulated seconds: five half-lives
        assert sim.stat("generic", A)["penalty"] < 1 / 16, sim.stat("generic", A)
    finally:
        sim.stop()


def test_many_parallel_connections():
    sim = simulator({"generic": {"max_conn": 100, "rate_per_min": 10 ** 6,
                                 "max_msgs_per_conn": 1000}})
    n_conn, n_msg = 40, 25
    barrier = threading.Barrier(n_conn)
    errors = []

    def client(i):
        try:
            c = connect(sim, "generic", A if i % 2 else B)
            barrier.wait(10)
            for _ in range(n_msg):
                assert send(c)[0] == "ok"
            close(c)
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n_conn)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:3]
        a, b = sim.stat("generic", A), sim.stat("generic", B)
        assert a["messages"] + b["messages"] == n_conn * n_msg, (a, b)
        assert a["max_concurrent"] == b["max_concurrent"] == n_conn // 2, (a, b)
    finally:
        sim.stop()


def test_command_line_ready_stats_on_sigusr1_and_at_sigterm():
    d = tempfile.mkdtemp(prefix="kasi-sim-")
    cfg = os.path.join(d, "sim.json")
    statsf = os.path.join(d, "stats.json")
    with open(cfg, "w") as f:
        json.dump({"addresses": {"generic": "127.0.0.13", "mybox": "127.0.0.14"},
                   "profiles": {"mybox": {"base": "gmail", "max_conn": 2}}}, f)
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(here, "provider_sim.py"),
                             "--config", cfg, "--stats-file", statsf],
                            stdout=subprocess.PIPE, text=True)
    try:
        word, port = proc.stdout.readline().split()
        assert word == "ready", word
        raw = Client(int(port), host="127.0.0.14", source=A)
        assert "gsmtp" in raw.banner[1][0], raw.banner  # a profile based on gmail
        c = smtplib.SMTP("127.0.0.14", int(port), source_address=(A, 0), timeout=10)
        assert send(c)[0] == "ok"
        try:
            smtplib.SMTP("127.0.0.14", int(port), source_address=(A, 0), timeout=10)
            raise AssertionError("over mybox's max_conn of 2")
        except smtplib.SMTPConnectError as e:
            assert e.smtp_code == 421
        close(c)
        raw.close()
        proc.send_signal(signal.SIGUSR1)
        live = json.loads(proc.stdout.readline())
        assert live["port"] == int(port), live
        assert live["profiles"]["mybox"][A]["messages"] == 1, live
        with open(statsf) as f:
            assert json.load(f)["profiles"]["mybox"][A]["messages"] == 1
        proc.send_signal(signal.SIGTERM)
        final = json.loads(proc.stdout.readline())
        assert proc.wait(10) == 0
        s = final["profiles"]["mybox"][A]
        assert s["deferrals"]["conn_refused"] == 1 and s["connections"] == 3, s
        assert "generic" not in final["profiles"], final
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


run(globals())
