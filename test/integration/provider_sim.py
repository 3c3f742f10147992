"""A mailbox-provider simulator: an SMTP server on loopback that answers like Gmail, Yahoo
and Microsoft do when a sender pushes too hard, so that Kasi's traffic shaping (limits per
provider, back-off on throttling replies, warm-up) can be tested and benchmarked.

Shape
-----
One port, several loopback addresses, one provider profile per address (the profile of a
connection is the local address it arrived at):

    gmail 127.0.0.10   yahoo 127.0.0.11   microsoft 127.0.0.12   generic 127.0.0.13

A test's DNS fixture points each provider's MX host at its address, and outbound.ini's
smtp_port sends every MX to the one port. Kasi names a destination's provider from the MX
host name (rules/providers.tsv), so name the MX hosts as the provider does, for example
gmail-smtp-in.l.google.com, mta7.am0.yahoodns.net, hotmail-com.olc.protection.outlook.com
(PROFILES[...]["mx_host"] holds these). The client's address (127.0.0.x) is the sender's
egress IP: every limit, the reputation and the statistics are per (profile, client IP).

What each (profile, client IP) is allowed, and what happens past it
--------------------------------------------------------------------
- max_conn concurrent connections: the next one is refused at the greeting (conn_refused).
- rate_per_min messages a minute, a token bucket of `burst` messages (default 10 s worth):
  one token per transaction, taken at the stage the `rate` reply names (mail, rcpt or
  data); without a token the transaction gets the provider's rate deferral (rate).
- max_msgs_per_conn accepted messages per connection: the next MAIL gets the provider's
  "too many messages" reply and the connection is closed (msgs_per_conn).
- rcpt_rate_per_min per recipient address (all senders together; 0 = off): Gmail's
  "receiving mail at a rate" 450 (rcpt_rate).
Each of these events adds penalty_per_violation points to the sender's penalty, which
halves every penalty_half_life_s. When a violation leaves the penalty at defer_threshold
or more, the sender enters the penalty box: every transaction is deferred (penalty_box)
for penalty_box_s, times penalty_box_growth for each box before it. At block_threshold the
sender is blocked for block_s: every transaction gets a 5xx (block). Deferrals and blocks
are violations too, so a sender that keeps pushing goes from rate deferrals to the box to
the block, and one that backs off decays back to a clean record. A limit or threshold of
0 is off.

Replies are the providers' own words (see REPLIES below: from the sisimai rhost tables
and KumoMTA's shaping rules in the project's corpora), a reply with code 421 closes the
connection, and a pipelined group is answered in order. `python3 provider_sim.py
--classify build-test/kasictl` prints how Kasi's bounce classifier reads each one.

Time: every window is in simulated seconds. The clock runs at config "time_scale" times
real time (60: a minute a second; 0: stopped) and sim.advance(seconds) moves it on, so a
test can be exact: freeze time, count outcomes, advance.

Use
---
    sim = ProviderSim({"time_scale": 0, "profiles": {"gmail": {"rate_per_min": 60}}})
    sim.start(); sim.port; sim.address("gmail")
    ... deliver ...
    sim.stats()["profiles"]["gmail"]["127.0.0.2"]["deferrals"]["rate"]
    sim.stop()

    python3 provider_sim.py --config sim.json [--port N] [--stats-file F]
        prints "ready PORT", runs until SIGTERM/SIGINT, then prints the stats as one JSON
        line (and writes them to F); SIGUSR1 prints (and writes) them while running.

Config (JSON; every key optional):
    {"time_scale": 1, "port": 0, "record": false,
     "addresses": {"gmail": "127.0.0.10", ...},        # profiles to serve, and where
     "profiles": {"*": {...for all...}, "gmail": {"rate_per_min": 60, "max_conn": 2,
                  "replies": {"rate": {"text": "450 4.2.1 ...", "at": "data"}}},
                  "mybox": {"base": "generic", ...}}}    # a profile of your own
Profile keys: see BASE. "record": keep (profile, client, from, rcpts, size) per accepted
message in sim.messages (size: the DATA bytes as sent, dot-stuffed).

Statistics per (profile, client IP): connections, messages, recipients, deferrals by kind,
blocks (5xx replies), max_concurrent, penalty, peak_penalty, penalty_boxes, in_penalty_box,
blocked, first_accepted / last_accepted (epoch seconds).
"""
import argparse
import copy
import email.utils
import errno
import json
import os
import random
import re
import selectors
import signal
import socket
import string
import subprocess
import sys
import threading
import time

KINDS = ("conn_refused", "rate", "rcpt_rate", "msgs_per_conn", "penalty_box", "block")
STAGES = {"conn_refused": ("greeting",), "rcpt_rate": ("rcpt",), "msgs_per_conn": ("mail",),
          "rate": ("mail", "rcpt", "data"), "penalty_box": ("mail", "rcpt", "data"),
          "block": ("mail", "rcpt", "data")}
DEFAULT_ADDRESSES = {"gmail": "127.0.0.10", "yahoo": "127.0.0.11",
                     "microsoft": "127.0.0.12", "generic": "127.0.0.13"}

# What every profile starts from. Numbers are per (profile, client IP).
BASE = {
    "rate_per_min": 300, "burst": 0,         # burst 0: rate_per_min / 6 (10 s worth)
    "max_conn": 20, "max_msgs_per_conn": 500,
    "rcpt_rate_per_min": 0, "rcpt_burst": 0,
    "penalty_per_violation": 1.0, "defer_threshold": 20, "block_threshold": 60,
    "penalty_half_life_s": 600, "penalty_box_s": 300, "penalty_box_growth": 2.0,
    "block_s": 3600,
    "max_size": 52428800,
    "host": "mx.generic.test",               # the server's name in its banner
    "mx_host": "mx.generic.test",            # an MX name of the provider (for --classify)
    "wrap": 0,                               # wrap replies into lines of this width
    "replies": {},
}

# The replies. {ip} is the client's address, {rcpt} the recipient, {host} the server's
# name, {id} a random queue id, {date} the date. "at" is the stage of a transaction where
# the condition is checked (conn_refused: greeting; msgs_per_conn: MAIL; rcpt_rate: RCPT).
GENERIC_REPLIES = {
    "greeting": {"text": "220 {host} ESMTP"},
    "conn_refused": {"text": "421 4.7.0 Too many connections from [{ip}], try again later"},
    "rate": {"text": "451 4.7.1 Sender IP [{ip}] temporarily rate limited, try again later",
             "at": "rcpt"},
    "rcpt_rate": {"text": "450 4.2.1 <{rcpt}>: Recipient is receiving mail too quickly, "
                          "try again later"},
    "msgs_per_conn": {"text": "421 4.7.0 Too many messages in this connection, closing"},
    "penalty_box": {"text": "451 4.7.1 Service temporarily unavailable; Client host [{ip}] "
                            "deferred due to poor reputation", "at": "mail"},
    "block": {"text": "554 5.7.1 Service unavailable; Client host [{ip}] blocked due to poor "
                      "reputation", "at": "rcpt"},
}

GMAIL_REPLIES = {
    "greeting": {"text": "220 mx.google.com ESMTP {id} - gsmtp"},
    # Gmail's refusal of an IP that opens too much (421 4.7.0 at the greeting)
    "conn_refused": {"text": "421 4.7.0 [{ip} 15] Our system has detected an unusual rate of "
                     "unsolicited mail originating from your IP address. To protect our users "
                     "from spam, mail sent from your IP address has been temporarily rate "
                     "limited. Please visit https://support.google.com/mail/"
                     "?p=UnsolicitedRateLimitError to review our Bulk Email Senders "
                     "Guidelines. {id} - gsmtp"},
    "rate": {"text": "421 4.7.28 [{ip} 15] Our system has detected an unusual rate of "
                     "unsolicited mail originating from your IP address. To protect our users "
                     "from spam, mail sent from your IP address has been temporarily rate "
                     "limited. Please visit https://support.google.com/mail/"
                     "?p=UnsolicitedRateLimitError to review our Bulk Email Senders "
                     "Guidelines. {id} - gsmtp", "at": "rcpt"},
    "rcpt_rate": {"text": "450 4.2.1 The user you are trying to contact is receiving mail at "
                          "a rate that prevents additional messages from being delivered. "
                          "Please resend your message at a later time. If the user is able "
                          "to receive mail at that time, your message will be delivered. "
                          "For more information, go to https://support.google.com/mail/"
                          "?p=ReceivingRate {id} - gsmtp"},
    "msgs_per_conn": {"text": "421 4.7.0 Try again later, closing connection. (MAIL) {id} - "
                              "gsmtp"},
    "penalty_box": {"text": "421 4.7.0 [{ip} 15] This message is suspicious due to the very "
                            "low reputation of the sending IP address. To protect our users "
                            "from spam, mail sent from your IP address has been temporarily "
                            "rate limited. For more information, go to "
                            "https://support.google.com/mail/answer/188131 {id} - gsmtp",
                    "at": "mail"},
    "block": {"text": "550 5.7.1 [{ip} 15] Our system has detected an unusual rate of "
                      "unsolicited mail originating from your IP address. To protect our "
                      "users from spam, mail sent from your IP address has been blocked. "
                      "Please visit https://support.google.com/mail/answer/81126 to review "
                      "our Bulk Email Senders Guidelines. {id} - gsmtp", "at": "data"},
}

YAHOO_TSS04 = ("421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected "
               "volume or user complaints - 4.16.55.1; see "
               "https://postmaster.yahooinc.com/error-codes")
YAHOO_REPLIES = {
    "greeting": {"text": "220 {host} ESMTP ready"},
    "conn_refused": {"text": YAHOO_TSS04},
    "rate": {"text": YAHOO_TSS04, "at": "mail"},
    "rcpt_rate": {"text": "450 User is receiving mail too quickly"},
    "msgs_per_conn": {"text": "421 Max message per connection reached, closing transmission "
                              "channel"},
    "penalty_box": {"text": YAHOO_TSS04, "at": "mail"},
    "block": {"text": "553 5.7.2 [TSS09] All messages from {ip} will be permanently "
                      "deferred; Retrying will NOT succeed. See "
                      "https://postmaster.yahooinc.com/error-codes", "at": "mail"},
}

MICROSOFT_REPLIES = {
    "greeting": {"text": "220 {host} Microsoft ESMTP MAIL Service ready at {date}"},
    "conn_refused": {"text": "451 4.7.652 The mail server [{ip}] has exceeded the maximum "
                             "number of connections. (S3115) [Name=Protocol Filter Agent]"
                             "[AGT=PFA][MxId={id}] [{host}]"},
    "rate": {"text": "451 4.7.650 The mail server [{ip}] has been temporarily rate limited "
                     "due to IP reputation. For e-mail delivery information, see "
                     "https://postmaster.live.com (S3113) [{host}]", "at": "mail"},
    "msgs_per_conn": {"text": "421 4.7.0 The mail server [{ip}] has exceeded maximum number "
                              "of messages per connection. [{host}]"},
    "penalty_box": {"text": "451 4.7.500 Server busy. Please try again later from [{ip}]. "
                            "(S77714) For more information please go to "
                            "http://go.microsoft.com/fwlink/?LinkId=526653. [{host}]",
                    "at": "rcpt"},
    "block": {"text": "550 5.7.606 Access denied, banned sending IP [{ip}]. To request "
                      "removal from this list please visit https://sender.office.com/ and "
                      "follow the directions. For more information please go to "
                      "http://go.microsoft.com/fwlink/?LinkID=526655 (AS16012609)",
              "at": "rcpt"},
}

# The built-in profiles: BASE plus these. The limits sit somewhat above kasi.throttle's
# profiles for the same providers (lua/kasi/providers.lua), so that Kasi following its
# profile stays clear and Kasi without it runs into them.
PROFILES = {
    "gmail": {"rate_per_min": 150, "max_conn": 10, "max_msgs_per_conn": 100,
              "host": "mx.google.com", "mx_host": "gmail-smtp-in.l.google.com", "wrap": 68,
              "replies": GMAIL_REPLIES},
    "yahoo": {"rate_per_min": 75, "max_conn": 8, "max_msgs_per_conn": 30,
              "host": "mta7.am0.yahoodns.net", "mx_host": "mta7.am0.yahoodns.net",
              "replies": YAHOO_REPLIES},
    "microsoft": {"rate_per_min": 120, "max_conn": 8, "max_msgs_per_conn": 100,
                  "host": "SN1PEPF000252A0.namprd05.prod.outlook.com",
                  "mx_host": "hotmail-com.olc.protection.outlook.com",
                  "replies": MICROSOFT_REPLIES},
    "generic": {"replies": GENERIC_REPLIES},
}


class ConfigError(ValueError):
    pass


class Profile:
    """One profile's settings, merged and checked; replies as {kind: (text, stage)}."""

    def __init__(self, name, settings):
        self.name = name
        for key, value in settings.items():
            if key != "replies":
                setattr(self, key, value)
        if not self.burst:
            self.burst = max(1.0, self.rate_per_min / 6.0)
        if not self.rcpt_burst:
            self.rcpt_burst = max(1.0, self.rcpt_rate_per_min / 6.0)
        self.replies = {}
        for kind, r in settings["replies"].items():
            stages = STAGES.get(kind, ("greeting",) if kind == "greeting" else None)
            if stages is None:
                raise ConfigError(f"profile {name}: unknown reply kind {kind!r}")
            at = r.get("at", stages[0])
            if at not in stages:
                raise ConfigError(f"profile {name}: {kind} cannot be at {at!r}")
            text = r["text"]
            if not re.match(r"[2-5]\d\d( |-|$)", text):
                raise ConfigError(f"profile {name}: {kind} reply {text!r} has no code")
            self.replies[kind] = (text, at)
        missing = [k for k in ("greeting",) + KINDS
                   if k not in self.replies and k != "rcpt_rate"]
        if missing:
            raise ConfigError(f"profile {name}: no reply for {missing}")
        self.replies.setdefault("rcpt_rate", (GENERIC_REPLIES["rcpt_rate"]["text"], "rcpt"))

    def stage(self, kind):
        return self.replies[kind][1]


def _merge_replies(into, over, where):
    for kind, r in over.items():
        if isinstance(r, str):
            r = {"text": r}
        if not isinstance(r, dict) or set(r) - {"text", "at"}:
            raise ConfigError(f"{where}: reply {kind} must be a text or {{text, at}}")
        into.setdefault(kind, {}).update(r)


def _apply(settings, over, where):
    for key, value in over.items():
        if key == "base":
            continue
        if key not in BASE:
            raise ConfigError(f"{where}: unknown key {key!r}")
        if key == "replies":
            _merge_replies(settings["replies"], value, where)
        elif type(BASE[key]) in (int, float) and not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key} must be a number")
        else:
            settings[key] = value


def read_config(config):
    """A config given as a dict, a JSON file name or None, as a dict."""
    if config is None:
        return {}
    if isinstance(config, str):
        with open(config) as f:
            return json.load(f)
    return dict(config)


def load_config(config):
    """The config (a dict, a JSON file name or None) merged over the defaults:
    (time_scale, port, record, addresses, {name: Profile})."""
    config = read_config(config)
    unknown = set(config) - {"time_scale", "port", "record", "addresses", "profiles"}
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(unknown)}")
    given = config.get("profiles", {})
    common = given.get("*", {})
    addresses = dict(config.get("addresses", DEFAULT_ADDRESSES))
    profiles = {}
    for name in addresses:
        over = given.get(name, {})
        base = over.get("base", name)
        if base not in PROFILES:
            raise ConfigError(f"profile {name}: no built-in profile {base!r} to start from")
        settings = copy.deepcopy(BASE)
        _apply(settings, PROFILES[base], f"built-in {base}")
        _apply(settings, common, "profiles.*")
        _apply(settings, over, f"profiles.{name}")
        profiles[name] = Profile(name, settings)
    extra = set(given) - set(addresses) - {"*"}
    if extra:
        raise ConfigError(f"profiles {sorted(extra)} have no address")
    return (float(config.get("time_scale", 1.0)), int(config.get("port", 0)),
            bool(config.get("record", False)), addresses, profiles)


def format_reply(text, wrap=0, **values):
    """The reply's wire form (CRLF-terminated): placeholders filled, wrapped into
    continuation lines ("421-4.7.28 ...") when wrap > 0 or the text has newlines."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    m = re.match(r"(\d{3})[ -]?(\d\.\d{1,3}\.\d{1,3} )?(.*)", text, re.S)
    code, status, body = m.group(1), m.group(2) or "", m.group(3)
    lines = []
    for para in body.split("\n"):
        if wrap <= 0:
            lines.append(para)
            continue
        line = ""
        words = para.split()
        if len(words) > 2 and words[-2] == "-":  # "... - gsmtp" stays on one line
            words[-2:] = ["- " + words[-1]]
        for word in words:
            if line and len(line) + 1 + len(word) > wrap:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    out = [f"{code}{'-' if i < len(lines) - 1 else ' '}{status}{l}".rstrip()
           for i, l in enumerate(lines)]
    return ("\r\n".join(out) + "\r\n").encode()


def _queue_id():
    return "".join(random.choices(string.ascii_letters + string.digits, k=14)) + \
        f".{random.randint(1, 999)}"


class Clock:
    """Simulated seconds: real time times `scale`, plus whatever advance() added."""

    def __init__(self, scale):
        self.scale = scale
        self.t0 = time.monotonic()
        self.offset = 0.0

    def now(self):
        return (time.monotonic() - self.t0) * self.scale + self.offset

    def advance(self, seconds):
        self.offset += seconds


class Bucket:
    def __init__(self, per_min, burst, now):
        self.rate = per_min / 60.0
        self.cap = float(burst)
        self.tokens = float(burst)
        self.t = now

    def take(self, now):
        self.tokens = min(self.cap, self.tokens + max(0.0, now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Sender:
    """What one profile knows about one client IP: its limits' state, its penalty, its
    statistics. Guarded by ProviderSim.lock."""

    def __init__(self, profile, now):
        self.p = profile
        self.bucket = Bucket(profile.rate_per_min, profile.burst, now)
        self.current = 0
        self.penalty_value = 0.0
        self.penalty_t = now
        self.box_until = float("-inf")
        self.blocked_until = float("-inf")
        self.boxes = 0
        self.connections = self.messages = self.recipients = self.blocks = 0
        self.deferrals = {k: 0 for k in KINDS if k != "block"}
        self.max_concurrent = 0
        self.peak_penalty = 0.0
        self.first_accepted = self.last_accepted = None

    def penalty(self, now):
        h = self.p.penalty_half_life_s
        if h > 0 and now > self.penalty_t:
            self.penalty_value *= 0.5 ** ((now - self.penalty_t) / h)
        self.penalty_t = max(self.penalty_t, now)
        return self.penalty_value

    def blocked(self, now):
        return now < self.blocked_until

    def boxed(self, now):
        return now < self.box_until

    def violation(self, kind, now):
        """Counts an over-limit event and escalates: the box, then the block."""
        if kind == "block":
            self.blocks += 1
        else:
            self.deferrals[kind] += 1
        p = self.p
        value = self.penalty(now) + p.penalty_per_violation
        self.penalty_value = value
        self.peak_penalty = max(self.peak_penalty, value)
        if p.block_threshold > 0 and value >= p.block_threshold:
            self.blocked_until = max(self.blocked_until, now + p.block_s)
        elif p.defer_threshold > 0 and value >= p.defer_threshold and not self.boxed(now):
            self.box_until = now + p.penalty_box_s * p.penalty_box_growth ** self.boxes
            self.boxes += 1

    def snapshot(self, now):
        return {
            "connections": self.connections, "messages": self.messages,
            "recipients": self.recipients, "deferrals": dict(self.deferrals),
            "blocks": self.blocks, "concurrent": self.current,
            "max_concurrent": self.max_concurrent,
            "penalty": round(self.penalty(now), 6), "peak_penalty": round(self.peak_penalty, 6),
            "penalty_boxes": self.boxes, "in_penalty_box": self.boxed(now),
            "penalty_box_left_s": max(0.0, self.box_until - now) if self.boxed(now) else 0.0,
            "blocked": self.blocked(now),
            "first_accepted": self.first_accepted, "last_accepted": self.last_accepted,
        }


class _Close(Exception):
    """The session ends after the replies queued so far."""


class Session:
    """One SMTP connection: reads commands (pipelined or not), answers them in order, asks
    the simulator at each stage whether the sender may go on."""

    def __init__(self, sim, conn, profile, client):
        self.sim = sim
        self.conn = conn
        self.p = profile
        self.client = client
        self.rbuf = bytearray()
        self.out = []
        self.helo = False
        self.accepted = 0  # messages accepted on this connection
        self.reset()

    def reset(self):
        self.mail_from = None
        self.rcpts = []
        self.token = False

    def say(self, kind_or_text, rcpt=""):
        text = self.p.replies[kind_or_text][0] if kind_or_text in self.p.replies \
            else kind_or_text
        wire = format_reply(text, self.p.wrap, ip=self.client, rcpt=rcpt, host=self.p.host,
                            id=_queue_id(), date=email.utils.formatdate(localtime=True))
        self.out.append(wire)
        if wire.startswith(b"421"):
            raise _Close()
        return wire

    def flush(self):
        if self.out:
            self.conn.sendall(b"".join(self.out))
            self.out.clear()

    def recv(self):
        self.flush()
        data = self.conn.recv(65536)
        if not data:
            raise EOFError
        self.rbuf += data

    def readline(self):
        while True:
            i = self.rbuf.find(b"\n")
            if i >= 0:
                line = bytes(self.rbuf[:i]).rstrip(b"\r")
                del self.rbuf[:i + 1]
                return line.decode("utf-8", "replace")
            if len(self.rbuf) > 65536:
                self.say("500 5.5.2 Line too long")
                self.flush()
                raise EOFError
            self.recv()

    def read_data(self):
        """The message body's size; consumes it up to and including CRLF.CRLF."""
        self.rbuf[0:0] = b"\r\n"  # the body may be empty: ".\r\n" right away
        start = 0
        while True:
            i = self.rbuf.find(b"\r\n.\r\n", start)
            if i >= 0:
                del self.rbuf[:i + 5]
                return i
            start = max(0, len(self.rbuf) - 4)
            self.recv()

    def run(self):
        try:
            refusal = self.sim._admit(self)
            if refusal:
                self.say(refusal)
                raise _Close()  # whatever its code: the refused connection ends here
            self.say("greeting")
            while True:
                self.command(self.readline())
        except _Close:
            self.linger()
        except (OSError, EOFError):
            pass
        finally:
            self.sim._leave(self)
            try:
                self.conn.close()
            except OSError:
                pass

    def linger(self):
        """Sends the last replies, then reads what the client had already pipelined
        until it closes, so that the close does not reset the connection under them."""
        try:
            self.flush()
            self.conn.shutdown(socket.SHUT_WR)
            self.conn.settimeout(2)
            while self.conn.recv(65536):
                pass
        except OSError:
            pass

    def command(self, line):
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        if verb in ("EHLO", "HELO"):
            self.reset()
            self.helo = True
            if verb == "HELO":
                return self.say(f"250 {self.p.host}")
            caps = [f"{self.p.host} at your service, [{self.client}]",
                    f"SIZE {self.p.max_size}", "8BITMIME", "PIPELINING",
                    "ENHANCEDSTATUSCODES"]
            self.out.append("".join(f"250{'-' if i < len(caps) - 1 else ' '}{c}\r\n"
                                    for i, c in enumerate(caps)).encode())
        elif verb == "MAIL":
            self.mail(arg)
        elif verb == "RCPT":
            self.rcpt(arg)
        elif verb == "DATA":
            self.data()
        elif verb == "RSET":
            self.reset()
            self.say("250 2.0.0 OK")
        elif verb == "NOOP":
            self.say("250 2.0.0 OK")
        elif verb == "QUIT":
            self.say("221 2.0.0 closing connection")
            raise _Close()
        elif verb == "VRFY":
            self.say("252 2.1.5 Cannot VRFY user, but will accept message")
        else:
            self.say("502 5.5.1 Unrecognized command")

    def mail(self, arg):
        if not self.helo:
            return self.say("503 5.5.1 EHLO/HELO first")
        if self.mail_from is not None:
            return self.say("503 5.5.1 Nested MAIL command")
        m = re.match(r"(?i)FROM:\s*<([^>]*)>(.*)", arg)
        if not m:
            return self.say("501 5.5.4 Syntax error in MAIL command")
        size = re.search(r"(?i)\bSIZE=(\d+)", m.group(2))
        if size and int(size.group(1)) > self.p.max_size:
            return self.say("552 5.3.4 Message size exceeds fixed maximum message size")
        if self.p.max_msgs_per_conn and self.accepted >= self.p.max_msgs_per_conn:
            self.sim._violation(self, "msgs_per_conn")
            self.say("msgs_per_conn")
            raise _Close()
        refusal = self.sim._gate(self, "mail")
        if refusal:
            return self.say(refusal)
        self.mail_from = m.group(1)
        self.say("250 2.1.0 OK")

    def rcpt(self, arg):
        if self.mail_from is None:
            return self.say("503 5.5.1 MAIL first")
        m = re.match(r"(?i)TO:\s*<([^>]+)>", arg)
        if not m:
            return self.say("501 5.5.4 Syntax error in RCPT command")
        rcpt = m.group(1)
        refusal = self.sim._gate(self, "rcpt") or self.sim._rcpt_rate(self, rcpt)
        if refusal:
            return self.say(refusal, rcpt)
        self.rcpts.append(rcpt)
        self.say("250 2.1.5 OK")

    def data(self):
        if self.mail_from is None:
            return self.say("503 5.5.1 MAIL first")
        if not self.rcpts:
            return self.say("554 5.5.1 No valid recipients")
        self.say("354 Go ahead")
        size = self.read_data()
        try:
            if size > self.p.max_size:
                return self.say("552 5.3.4 Message size exceeds fixed maximum message size")
            refusal = self.sim._gate(self, "data")
            if refusal:
                return self.say(refusal)
            self.sim._accepted(self, size)
            self.accepted += 1
            self.say("250 2.0.0 OK queued as " + _queue_id())
        finally:
            self.reset()


class ProviderSim:
    """The simulator: sim = ProviderSim(config, addresses=...); sim.start(); ...;
    sim.stop(). `addresses` ({profile: ip}) replaces the config's."""

    def __init__(self, config=None, addresses=None, port=None):
        if addresses is not None:
            config = dict(read_config(config), addresses=addresses)
        scale, cfg_port, record, addrs, profiles = load_config(config)
        self.clock = Clock(scale)
        self.time_scale = scale
        self.wanted_port = cfg_port if port is None else port
        self.port = None
        self.addresses = addrs
        self.profiles = profiles
        self.by_address = {ip: name for name, ip in addrs.items()}
        if len(self.by_address) != len(addrs):
            raise ConfigError("two profiles on one address")
        self.lock = threading.Lock()
        self.senders = {}
        self.rcpt_buckets = {}
        self.messages = [] if record else None
        self.sessions = set()
        self.listeners = []
        self.started_at = None
        self.thread = None
        self.wake_r, self.wake_w = socket.socketpair()

    # --- the API --------------------------------------------------------------------

    def start(self):
        self._bind()
        self.started_at = time.time()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread is None:
            return
        self.wake_w.send(b"x")
        self.thread.join(5)
        self.thread = None
        for s in self.listeners:
            s.close()
        with self.lock:
            live = list(self.sessions)
        for sess in live:
            try:
                sess.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.time() + 5
        while time.time() < deadline:
            with self.lock:
                if not self.sessions:
                    break
            time.sleep(0.01)
        self.wake_r.close()
        self.wake_w.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def address(self, profile):
        return self.addresses[profile]

    def now(self):
        return self.clock.now()

    def advance(self, seconds):
        """Moves simulated time on: buckets refill, penalties decay, boxes end."""
        with self.lock:
            self.clock.advance(seconds)

    def stats(self):
        """{"started_at", "time_scale", "port", "addresses", "now",
        "profiles": {profile: {client_ip: {...}}}} (JSON-ready)."""
        with self.lock:
            now = self.clock.now()
            out = {}
            for (profile, client), s in sorted(self.senders.items()):
                out.setdefault(profile, {})[client] = s.snapshot(now)
        return {"started_at": self.started_at, "time_scale": self.time_scale,
                "port": self.port, "addresses": self.addresses, "now": now,
                "profiles": out}

    def stat(self, profile, client):
        """One (profile, client IP)'s statistics (zeros if it never connected)."""
        with self.lock:
            s = self.senders.get((profile, client)) or \
                Sender(self.profiles[profile], self.clock.now())
            return s.snapshot(self.clock.now())

    # --- listening ------------------------------------------------------------------

    def _bind(self):
        for _ in range(50):
            socks = []
            port = self.wanted_port
            try:
                for ip in self.addresses.values():
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((ip, port))
                    s.listen(512)
                    port = s.getsockname()[1]
                self.listeners, self.port = socks, port
                return
            except OSError as e:
                for s in socks:
                    s.close()
                if self.wanted_port or e.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no port free on every address")

    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        for s in self.listeners:
            sel.register(s, selectors.EVENT_READ)
        sel.register(self.wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fileobj is self.wake_r:
                    sel.close()
                    return
                try:
                    conn, addr = key.fileobj.accept()
                except OSError:
                    continue
                local = conn.getsockname()[0]
                sess = Session(self, conn, self.profiles[self.by_address[local]], addr[0])
                with self.lock:  # stop() shuts down every session it knows of
                    self.sessions.add(sess)
                threading.Thread(target=sess.run, daemon=True).start()

    # --- what the sessions ask ------------------------------------------------------

    def _sender(self, sess):
        key = (sess.p.name, sess.client)
        s = self.senders.get(key)
        if s is None:
            s = self.senders[key] = Sender(sess.p, self.clock.now())
        return s

    def _admit(self, sess):
        """None if the connection may go on, else the kind of its refusal."""
        sess.conn.settimeout(300)
        with self.lock:
            s = self._sender(sess)
            s.connections += 1
            if sess.p.max_conn and s.current >= sess.p.max_conn:
                s.violation("conn_refused", self.clock.now())
                return "conn_refused"
            s.current += 1
            sess.counted = True
            s.max_concurrent = max(s.max_concurrent, s.current)
        return None

    def _leave(self, sess):
        with self.lock:
            self.sessions.discard(sess)
            if getattr(sess, "counted", False):
                self._sender(sess).current -= 1
                sess.counted = False

    def _violation(self, sess, kind):
        with self.lock:
            self._sender(sess).violation(kind, self.clock.now())

    def _gate(self, sess, stage):
        """The kind of refusal this transaction gets at `stage`, or None: a block, the
        penalty box, then the message rate, each checked at its own stage."""
        p = sess.p
        with self.lock:
            now = self.clock.now()
            s = self._sender(sess)
            if s.blocked(now):
                kind = "block" if p.stage("block") == stage else None
            elif s.boxed(now):
                kind = "penalty_box" if p.stage("penalty_box") == stage else None
            elif p.rate_per_min and p.stage("rate") == stage and not sess.token:
                sess.token = s.bucket.take(now)
                kind = None if sess.token else "rate"
            else:
                kind = None
            if kind:
                s.violation(kind, now)
            return kind

    def _rcpt_rate(self, sess, rcpt):
        p = sess.p
        if not p.rcpt_rate_per_min:
            return None
        with self.lock:
            now = self.clock.now()
            key = (p.name, rcpt.lower())
            b = self.rcpt_buckets.get(key)
            if b is None:
                b = self.rcpt_buckets[key] = Bucket(p.rcpt_rate_per_min, p.rcpt_burst, now)
            if b.take(now):
                return None
            self._sender(sess).violation("rcpt_rate", now)
            return "rcpt_rate"

    def _accepted(self, sess, size):
        t = time.time()
        with self.lock:
            s = self._sender(sess)
            s.messages += 1
            s.recipients += len(sess.rcpts)
            if s.first_accepted is None:
                s.first_accepted = t
            s.last_accepted = t
            if self.messages is not None:
                self.messages.append({"profile": sess.p.name, "client": sess.client,
                                      "from": sess.mail_from, "rcpts": list(sess.rcpts),
                                      "size": size, "time": t})


# --- the command line -------------------------------------------------------------------

COMMAND = {"greeting": "CONNECT", "mail": "MAIL", "rcpt": "RCPT", "data": "DATA"}


def reply_table(config=None, ip="192.0.2.1"):
    """[(profile, kind, stage, code, status, one-line text, mx host)] of every reply."""
    _, _, _, _, profiles = load_config(config)
    rows = []
    for name, p in profiles.items():
        for kind in KINDS:
            text, stage = p.replies[kind]
            wire = format_reply(text, 0, ip=ip, rcpt="user@example.com", host=p.host,
                                id="a1b2c3d4e5f6g7.1", date="Mon, 1 Jan 2024 00:00:00 +0000")
            line = wire.decode().strip()
            m = re.match(r"(\d{3}) (\d\.\d{1,3}\.\d{1,3})?", line)
            rows.append((name, kind, stage, m.group(1), m.group(2) or "", line, p.mx_host))
    return rows


def classify(kasictl, config=None):
    """Each reply as Kasi's bounce classifier reads it (kasictl bounce classify)."""
    rows = reply_table(config)
    stdin = "".join(f"{code}\t{status}\t{text}\t{mx}\t{COMMAND[stage]}\n"
                    for _, _, stage, code, status, text, mx in rows)
    r = subprocess.run([kasictl, "bounce", "classify"], input=stdin, capture_output=True,
                       text=True, check=True)
    return [(row, line.split("\t")) for row, line in zip(rows, r.stdout.splitlines())]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="JSON config file")
    ap.add_argument("--port", type=int, help="the port (else the config's, else free)")
    ap.add_argument("--stats-file", help="also write the stats (JSON) here")
    ap.add_argument("--replies", action="store_true",
                    help="print the replies as kasictl bounce classify input, and exit")
    ap.add_argument("--classify", metavar="KASICTL",
                    help="print how kasictl's classifier reads each reply, and exit")
    args = ap.parse_args(argv)
    if args.replies:
        for _, _, stage, code, status, text, mx in reply_table(args.config):
            print(f"{code}\t{status}\t{text}\t{mx}\t{COMMAND[stage]}")
        return 0
    if args.classify:
        for row, verdict in classify(args.classify, args.config):
            name, kind, stage, code, status = row[:5]
            print(f"{name:10} {kind:14} {stage:8} {code} {status:8} -> " + " ".join(verdict))
        return 0
    sim = ProviderSim(args.config, port=args.port).start()
    done = threading.Event()

    def dump(*_):
        text = json.dumps(sim.stats(), sort_keys=True)
        if args.stats_file:  # first: whoever reads the line may then read the file
            tmp = args.stats_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(text + "\n")
            os.replace(tmp, args.stats_file)
        print(text, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGUSR1, dump)
    print("ready", sim.port, flush=True)
    while not done.is_set():
        done.wait(0.5)
    sim.stop()
    dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
