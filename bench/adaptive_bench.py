#!/usr/bin/python3
"""Adaptive shaping against the provider simulator: the driver behind bench/adaptive-bench.sh.

One batch of mail (600 messages by default: Gmail, Outlook.com, Yahoo and a domain of no
known provider) goes through a fresh Kasi in each mode to test/integration/provider_sim.py,
which answers like those providers do when a new IP pushes too hard. Modes:

  none              outbound.ini defaults (32 connections per ready queue, no rate limit)
  static-published  the throttle plugin (kasi.throttle) with its shipped profiles
                    (lua/kasi/providers.lua: the published, common-practice numbers)
  static-tuned      the throttle plugin with the limits a careful operator sets after
                    reading the simulator's limits (TUNED): the best static case
  adaptive          the adaptive plugin with its shipped rules (lua/kasi/adaptive.lua) and
                    outbound.ini defaults; nothing else

Every mode uses the same retry intervals (RETRY): the throttle plugin's are overridden with
them, so the modes differ in their limits and reactions, not in how soon they retry.

The wrapper builds Kasi, starts the DNS fixture (MX of gmail.test, yahoo.test, outlook.test
and other.test at the simulator's addresses) and makes a template config directory
(bench/lib.sh kasi_config); this driver, per run and mode: starts a fresh simulator, copies
the template, writes the mode's files, starts kasi, injects the batch over SMTP, reads the
event log until every recipient is delivered or failed (or the cap), then takes the
simulator's statistics and stops both. It prints one line per run and mode, then a table of
medians.

Time: the simulator runs at time_scale 1, so its windows are real seconds like Kasi's. A
time_scale k would make every limit Kasi sees k times higher and every penalty k times
shorter-lived while Kasi's own clocks (retry intervals, the rules' windows, holds and
suspensions, the static profiles' per-minute rates) stay as they are: the modes would no
longer be compared against the same provider. The limits below are what Kasi sees.
"""
import argparse
import json
import os
import random
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "test", "integration"))
from provider_sim import ProviderSim  # noqa: E402

# The simulated providers: a new IP, per client IP (each of Kasi's two egress sources).
# Penalties, boxes and blocks keep the simulator's defaults (provider_sim.BASE): +1 per
# violation, half-life 10 min, the penalty box at 20 (5 min, doubling), the block at 60
# (1 h of 5xx). Rates are per real minute (time_scale 1).
SIM = {
    "time_scale": 1,
    "profiles": {
        # below the published 100/min and 5 connections: Gmail is wary of a new IP
        "gmail": {"rate_per_min": 60, "max_conn": 4, "max_msgs_per_conn": 100},
        # below the published 50/min and 5 connections; 20 per connection as published
        "yahoo": {"rate_per_min": 30, "max_conn": 3, "max_msgs_per_conn": 20},
        # above the published 80/min, 5 connections, 50 per connection: not every
        # provider is stricter than the published numbers
        "microsoft": {"rate_per_min": 100, "max_conn": 6, "max_msgs_per_conn": 100},
        # a company's own MX: generous rate, few connections
        "generic": {"rate_per_min": 120, "max_conn": 5, "max_msgs_per_conn": 100},
    },
}

# The batch: recipients per domain, and each domain's MX host (named as rules/providers.tsv
# and lua/kasi/providers.lua know it) and simulator profile.
DOMAINS = {
    "gmail.test": ("gmail-smtp-in.l.google.com", "gmail", 240),
    "outlook.test": ("hotmail-com.olc.protection.outlook.com", "microsoft", 150),
    "yahoo.test": ("mta7.am0.yahoodns.net", "yahoo", 90),
    "other.test": ("mx.other.test", "generic", 120),
}
SIZES = [(1500, 30), (4000, 35), (12000, 20), (40000, 10), (120000, 5)]  # bytes, weight

# Retries for every mode (outbound.ini temp_fail_intervals and the throttle plugin's).
RETRY = [10, 20, 40] + [60] * 30
RETRY_INI = "10s,20s,40s,1m*30"

# static-tuned: a little under each limit of SIM (rate x0.9; the connection and
# per-connection caps as they are). The operator cannot know them, but can learn them.
TUNED = {
    "gmail": {"max_message_rate": "54/min", "max_connections": 4,
              "max_messages_per_connection": 100},
    "yahoo": {"max_message_rate": "27/min", "max_connections": 3,
              "max_messages_per_connection": 20},
    "outlook": {"max_message_rate": "90/min", "max_connections": 6,
                "max_messages_per_connection": 100},
}
TUNED_OTHER = {"max_message_rate": "108/min", "max_connections": 5,
               "max_messages_per_connection": 100}

MODES = ["none", "static-published", "static-tuned", "adaptive"]
# The profiles of lua/kasi/providers.lua, whose retry intervals RETRY replaces.
THROTTLE_PROFILES = ["gmail", "outlook", "office365", "yahoo", "apple", "gmx", "orange",
                     "comcast", "mimecast", "yandex", "mailru", "zoho"]


def zone(sim_addresses):
    """The DNS fixture's zone: each domain's MX at its simulator address."""
    lines = ["$TTL 300"]
    for domain, (mx, profile, _) in DOMAINS.items():
        lines.append(f"{domain}. IN MX 10 {mx}.")
        lines.append(f"{mx}. IN A {sim_addresses[profile]}")
    return "\n".join(lines) + "\n"


def batch(seed):
    """[(recipient, size)]: the same every run, domains interleaved."""
    rnd = random.Random(seed)
    out = []
    for domain, (_, _, n) in DOMAINS.items():
        for i in range(n):
            size = rnd.choices([s for s, _ in SIZES], [w for _, w in SIZES])[0]
            out.append((f"user{i:04d}@{domain}", size))
    rnd.shuffle(out)
    return out


def lua_table(d):
    def val(v):
        return repr(v) if isinstance(v, str) else str(v)
    return "{ " + ", ".join(f"{k} = {val(v)}" for k, v in d.items()) + " }"


def throttle_plugin(tuned):
    """plugins/throttle.lua: the shipped profiles (or TUNED over them), RETRY for all."""
    retry = "{ " + ", ".join(map(str, RETRY)) + " }"
    out = ["local retry = " + retry, "return require('kasi.throttle').plugin{",
           "  retry = { " + ", ".join(f"{n} = retry" for n in THROTTLE_PROFILES) + " },"]
    if tuned:
        out.append("  overrides = {")
        for name, lim in TUNED.items():
            out.append(f"    {name} = {lua_table(lim)},")
        out.append("  },")
        out.append("  extra = { { name = 'other', mx_suffixes = { '.other.test' }, "
                   f"limits = {lua_table(TUNED_OTHER)}, retry = retry }} }},")
    out.append("}")
    return "\n".join(out) + "\n"


def write_mode(d, mode, sim_port, log_level="notice"):
    cfg = os.path.join(d, "config")
    with open(os.path.join(cfg, "outbound.ini"), "w") as f:
        f.write(f"[main]\nlocal_mx_ok=true\nsmtp_port={sim_port}\nenable_tls=false\n"
                f"temp_fail_intervals={RETRY_INI}\n")
    with open(os.path.join(cfg, "egress.ini"), "w") as f:
        f.write("[source:s1]\naddress=127.0.0.2\n[source:s2]\naddress=127.0.0.3\n"
                "[pool:default]\ns1=1\ns2=1\n")
    with open(os.path.join(cfg, "log.ini"), "w") as f:
        f.write(f"[main]\nlevel={log_level}\n")
    plugins = open(os.path.join(cfg, "plugins")).read()
    if mode.startswith("static"):
        os.makedirs(os.path.join(d, "plugins"), exist_ok=True)
        with open(os.path.join(d, "plugins", "throttle.lua"), "w") as f:
            f.write(throttle_plugin(mode == "static-tuned"))
        plugins += "throttle\n"
    elif mode == "adaptive":
        plugins += "adaptive\n"
    with open(os.path.join(cfg, "plugins"), "w") as f:
        f.write(plugins)


def wait_port(port, up=True, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            if up:
                return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


def inject(port, msgs, sessions=8):
    """Sends every (recipient, size) as its own message over `sessions` connections."""
    errors = []

    def worker(part):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                for rcpt, size in part:
                    body = ("x" * 76 + "\r\n") * max(1, size // 78)
                    msg = (f"From: news@bench.test\r\nTo: {rcpt}\r\nSubject: batch\r\n"
                           f"Message-ID: <{rcpt}.{time.time_ns()}@bench.test>\r\n\r\n{body}")
                    s.sendmail("news@bench.test", [rcpt], msg)
        except Exception as e:  # noqa: BLE001 - reported, the run is then void
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(msgs[i::sessions],))
               for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("injection failed: " + "; ".join(errors[:3]))


class Events:
    """Reads the event log as it grows: final outcomes and deferrals of the batch's
    recipients, and Adaptive events."""

    def __init__(self, path, recipients):
        self.path = path
        self.want = set(recipients)
        self.pos = 0
        self.partial = b""
        self.delivered, self.failed = {}, {}
        self.deferrals = 0
        self.deferrals_by = {}
        self.adaptive = {}
        self.adaptive_lines = []

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        self.pos += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                self.event(json.loads(line))

    def event(self, e):
        t = e.get("type")
        if t == "Adaptive":
            self.adaptive[e.get("action")] = self.adaptive.get(e.get("action"), 0) + 1
            self.adaptive_lines.append(e)
            return
        r = e.get("recipient")
        if r not in self.want:
            return
        if t == "Delivery":
            self.delivered[r] = e["time_ms"]
        elif t in ("Bounce", "Expiration"):
            self.failed[r] = e["time_ms"]
        elif t == "TransientFailure":
            self.deferrals += 1
            key = (e.get("provider", "?"), e.get("reason", "?"))
            self.deferrals_by[key] = self.deferrals_by.get(key, 0) + 1

    def done(self):
        return len(self.delivered) + len(self.failed) >= len(self.want)


def sim_summary(stats):
    """Totals over every (profile, client IP), and the worst any of them reached."""
    s = {"sim_deferrals": 0, "conn_refused": 0, "blocks": 0, "boxes": 0, "peak_penalty": 0.0,
         "blocked": 0, "per": {}}
    for profile, clients in stats["profiles"].items():
        for ip, c in clients.items():
            d = sum(c["deferrals"].values())
            s["sim_deferrals"] += d
            s["conn_refused"] += c["deferrals"]["conn_refused"]
            s["blocks"] += c["blocks"]
            s["boxes"] += c["penalty_boxes"]
            s["peak_penalty"] = max(s["peak_penalty"], c["peak_penalty"])
            reached_block = c["blocks"] > 0 or c["blocked"] or c["peak_penalty"] >= 60
            s["blocked"] += 1 if reached_block else 0
            p = s["per"].setdefault(profile, {"deferrals": 0, "boxes": 0, "peak": 0.0,
                                              "blocked": 0, "messages": 0, "max_conc": 0})
            p["deferrals"] += d
            p["boxes"] += c["penalty_boxes"]
            p["peak"] = max(p["peak"], c["peak_penalty"])
            p["blocked"] += 1 if reached_block else 0
            p["messages"] += c["messages"]
            p["max_conc"] = max(p["max_conc"], c["max_concurrent"])
    return s


def adaptive_snapshot(build, d):
    """What `kasictl adaptive` prints; when it cannot, the control socket's raw answer."""
    r = subprocess.run([os.path.join(build, "kasictl"), "-c", d, "adaptive"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout
    raw = b""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(d, "queue", "control.sock"))
            s.sendall(b"adaptive\n")
            while chunk := s.recv(65536):
                raw += chunk
    except OSError as e:
        raw = repr(e).encode()
    return f"kasictl failed: {r.stderr.strip()}\ncontrol socket: {raw.decode(errors='replace')}\n"


def timeline_point(stats):
    out = {}
    for profile, clients in stats["profiles"].items():
        for ip, c in clients.items():
            out[f"{profile}/{ip}"] = [c["messages"], c["deferrals"]["conn_refused"],
                                      sum(c["deferrals"].values()), c["blocks"],
                                      round(c["penalty"], 1), c["in_penalty_box"], c["blocked"],
                                      c["concurrent"]]
    return out


def run_mode(args, mode, run, msgs, out_dir):
    sim = ProviderSim(SIM).start()
    d = os.path.join(out_dir, f"{mode}-{run}")
    shutil.copytree(args.template, d)
    write_mode(d, mode, sim.port, args.log_level)
    kasi = subprocess.Popen([os.path.join(args.build, "kasi"), "-c", d],
                            stdout=open(os.path.join(d, "kasi.log"), "w"),
                            stderr=subprocess.STDOUT)
    try:
        if not wait_port(args.kasi_port):
            raise RuntimeError(f"{mode}: kasi did not start: " +
                               open(os.path.join(d, "kasi.log")).read()[-2000:])
        ev = Events(os.path.join(d, "log", "events.jsonl"), [r for r, _ in msgs])
        t0 = time.monotonic()
        t0_ms = time.time() * 1000
        inject(args.kasi_port, msgs)
        t_inject = time.monotonic() - t0
        snap_at = 0.0
        snaps = []
        timeline = open(os.path.join(d, "timeline.jsonl"), "w")
        tl_at = 0.0
        while True:
            time.sleep(0.25)
            ev.read()
            el = time.monotonic() - t0
            if ev.done() or el > args.cap:
                break
            if el >= tl_at:  # the simulator's view, every 2 s
                tl_at += 2
                timeline.write(json.dumps({"t": round(el, 1), "delivered": len(ev.delivered),
                                           "failed": len(ev.failed),
                                           "sim": timeline_point(sim.stats())}) + "\n")
            if "adaptive" in mode and el >= snap_at:  # what `kasictl adaptive` shows
                snap_at += 30
                snaps.append(f"--- t={el:.0f}s\n" + adaptive_snapshot(args.build, d))
        elapsed = time.monotonic() - t0
        stats = sim.stats()
        timeline.close()
        if "adaptive" in mode:
            snaps.append(f"--- t={elapsed:.0f}s (end)\n" + adaptive_snapshot(args.build, d))
    finally:
        kasi.send_signal(signal.SIGTERM)
        try:
            kasi.wait(15)
        except subprocess.TimeoutExpired:
            kasi.kill()
            kasi.wait()
        sim.stop()
        wait_port(args.kasi_port, up=False)
    ev.read()
    finals = list(ev.delivered.values()) + list(ev.failed.values())
    all_done = ev.done()
    last = (max(finals) - t0_ms) / 1000 if finals and all_done else elapsed
    s = sim_summary(stats)
    row = {
        "mode": mode, "run": run, "time_s": round(last, 1), "complete": all_done,
        "delivered": len(ev.delivered), "failed": len(ev.failed),
        "left": len(msgs) - len(ev.delivered) - len(ev.failed),
        "kasi_deferrals": ev.deferrals, "sim_deferrals": s["sim_deferrals"],
        "conn_refused": s["conn_refused"], "blocks": s["blocks"], "boxes": s["boxes"],
        "peak_penalty": round(s["peak_penalty"], 1), "blocked_ips": s["blocked"],
        "adaptive_events": sum(ev.adaptive.values()), "inject_s": round(t_inject, 1),
    }
    detail = {"row": row, "per_profile": s["per"], "adaptive": ev.adaptive,
              "deferrals_by": {f"{p}/{r}": n for (p, r), n in sorted(ev.deferrals_by.items())},
              "adaptive_events": ev.adaptive_lines}
    with open(os.path.join(d, "bench-result.json"), "w") as f:
        json.dump(detail, f, indent=1)
    if snaps:
        with open(os.path.join(d, "kasictl-adaptive.txt"), "w") as f:
            f.write("\n".join(snaps))
    if not args.keep:
        for sub in ("queue", "spool"):
            shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
    return row, detail


# time_s: until every recipient was delivered or bounced, else the cap.
COLUMNS = [("time_s", "batch done (s)"), ("delivered", "delivered"),
           ("failed", "bounced"), ("left", "left at cap"),
           ("kasi_deferrals", "Kasi deferrals"), ("sim_deferrals", "sim deferrals"),
           ("conn_refused", "of which conn refused"), ("boxes", "penalty boxes"),
           ("peak_penalty", "peak penalty"), ("blocks", "5xx blocks"),
           ("blocked_ips", "(provider, IP) at block level"),
           ("adaptive_events", "Adaptive events")]


def line(row):
    return " ".join(f"{k}={row[k]}" for k in ["mode", "run"] + [c for c, _ in COLUMNS] +
                    ["complete", "inject_s"])


def table(rows, runs):
    out = ["| mode | " + " | ".join(h for _, h in COLUMNS) + " |",
           "|---" * (len(COLUMNS) + 1) + "|"]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode]
        cells = []
        for key, _ in COLUMNS:
            v = statistics.median(r[key] for r in mine)
            v = round(v, 1) if isinstance(v, float) and not v.is_integer() else int(v)
            if key == "time_s" and not all(r["complete"] for r in mine):
                v = f"{v} (cap in {sum(not r['complete'] for r in mine)}/{len(mine)} runs)"
            cells.append(str(v))
        out.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(out) + f"\n(medians of {runs} run{'s' if runs > 1 else ''})"


def medians(rows, mode):
    mine = [r for r in rows if r["mode"] == mode]
    m = {k: statistics.median(r[k] for r in mine) for k, _ in COLUMNS}
    m["all_delivered"] = all(r["delivered"] == r["delivered"] + r["failed"] + r["left"]
                             for r in mine)
    return m


def verdict(rows):
    """The target: adaptive delivers the batch no slower than the static mode, with at most
    half its deferrals (Kasi's and the simulator's), and reaches no block level."""
    modes = set(r["mode"] for r in rows)
    if "adaptive" not in modes:
        return []
    a = medians(rows, "adaptive")
    out = []
    for base in ("static-published", "static-tuned"):
        if base not in modes:
            continue
        b = medians(rows, base)
        if a["all_delivered"] and b["all_delivered"]:
            t = "met" if a["time_s"] <= b["time_s"] else "missed"
            t += f" ({a['time_s']:.0f} s vs {b['time_s']:.0f} s)"
        elif a["all_delivered"]:
            t = f"met ({base} did not deliver the whole batch)"
        else:
            t = (f"missed (adaptive delivered {a['delivered']:.0f} of the batch, "
                 f"{base} {b['delivered']:.0f})")
        k = "met" if a["kasi_deferrals"] <= b["kasi_deferrals"] / 2 else "missed"
        sd = "met" if a["sim_deferrals"] <= b["sim_deferrals"] / 2 else "missed"
        out.append(f"target vs {base}: time {t}; Kasi deferrals {k} "
                   f"({a['kasi_deferrals']:.0f} vs {b['kasi_deferrals']:.0f}); "
                   f"simulator deferrals {sd} ({a['sim_deferrals']:.0f} vs "
                   f"{b['sim_deferrals']:.0f})")
    blocked = a["blocks"] > 0 or a["blocked_ips"] > 0
    out.append("target: no block level: " +
               (f"missed ({a['blocked_ips']:.0f} (provider, IP) pairs reached it, "
                f"{a['blocks']:.0f} 5xx blocks)" if blocked else "met"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", help="config dir made by kasi_config")
    ap.add_argument("--build", help="the build directory (kasi, kasictl)")
    ap.add_argument("--kasi-port", type=int, help="kasi's SMTP port (as in the template)")
    ap.add_argument("--out", help="where the mode directories go")
    ap.add_argument("-r", "--runs", type=int, default=1)
    ap.add_argument("-t", "--cap", type=float, default=240, help="seconds per mode")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the spools too")
    ap.add_argument("--log-level", default="notice", help="kasi's log.ini level")
    ap.add_argument("--zone", help="write the DNS zone to this file and exit")
    ap.add_argument("--sim", help="JSON merged into the simulator's profiles (diagnostics: "
                    "the figures are then not the benchmark's)")
    args = ap.parse_args()
    if args.sim:
        for name, over in json.loads(args.sim).items():
            SIM["profiles"].setdefault(name, {}).update(over)
        print(f"simulator profiles changed: {json.dumps(SIM['profiles'])}", flush=True)
    if args.zone:
        with open(args.zone, "w") as f:
            f.write(zone(ProviderSim(SIM).addresses))
        return 0
    if not (args.template and args.build and args.kasi_port and args.out):
        ap.error("--template, --build, --kasi-port and --out are needed")
    modes = args.modes.split(",")
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m} (one of {', '.join(MODES)})")
    msgs = batch(args.seed)
    print(f"batch: {len(msgs)} messages " +
          ", ".join(f"{d} {n}" for d, (_, _, n) in DOMAINS.items()) +
          f"; cap {args.cap:.0f} s per mode; {args.runs} run(s)", flush=True)
    rows = []
    for run in range(1, args.runs + 1):
        for mode in modes:
            row, detail = run_mode(args, mode, run, msgs, args.out)
            rows.append(row)
            print(line(row), flush=True)
            per = " ".join(f"{p}:def={v['deferrals']},box={v['boxes']},peak={v['peak']:.0f},"
                           f"blk={v['blocked']},conc={v['max_conc']}"
                           for p, v in sorted(detail["per_profile"].items()))
            print(f"  sim per provider: {per}", flush=True)
            if detail["adaptive"]:
                print(f"  adaptive events: {detail['adaptive']}", flush=True)
            time.sleep(1)
    print(table(rows, args.runs))
    for v in verdict(rows):
        print(v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
