"""kasictl bounce classify: the daemon's classifier on reply lines, the operator's rule
files from -c DIR, and a bad rule file refused with its file:line (exit 1)."""
import os
import shutil
import subprocess
import tempfile
from harness import KASICTL, ROOT, run

LINES = [
    "550\t5.1.1\t550 5.1.1 <a@example.org>: Recipient address rejected: User unknown\tmx.example.org\tRCPT",
    "452\t4.2.2\t452 4.2.2 The recipient's inbox is out of storage space.\tgmail-smtp-in.l.google.com",
    "554\t5.7.1\t554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org\tmx.example.net",
    "250\t2.0.0\t250 2.0.0 Ok: queued\tmta7.am0.yahoodns.net",
    "",                      # nothing at all
    "not a number",          # one field
    "550\t\tuser unknown",   # three fields, no status
    "550\t5.1.1\t\xe2\x80\x9cbad\xff\tx\t\t\t\textra\tfields",
]


def classify(lines, config=None, args=("bounce", "classify")):
    cmd = [KASICTL] + (["-c", config] if config else []) + list(args)
    data = "".join(l + "\n" for l in lines).encode("utf-8", "surrogateescape")
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def with_config(files):
    d = tempfile.mkdtemp(prefix="kasi-bc-")
    for name, text in files.items():
        p = os.path.join(d, "config", name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    return d


def test_shipped_rules_one_line_out_per_line_in():
    rc, out, err = classify(LINES)
    assert rc == 0, err
    rows = [l.split("\t") for l in out.splitlines()]
    assert len(rows) == len(LINES), out
    assert all(len(r) == 5 for r in rows), out
    assert rows[0] == ["userunknown", "invalid_recipient", "hard", "recipient", "other"], rows[0]
    assert rows[1] == ["mailboxfull", "mailbox_full", "soft", "recipient", "google"], rows[1]
    assert rows[2][:4] == ["blocked", "reputation_block", "soft", "sender"], rows[2]
    assert rows[3] == ["delivered", "delivered", "soft", "recipient", "yahoo"], rows[3]
    assert rows[4][0] == "undefined" and rows[5][0] == "undefined", rows
    assert rows[6][0] == "userunknown", rows[6]
    assert rows[7][0] == "userunknown", rows[7]


def test_crlf_input_and_no_final_newline():
    cmd = [KASICTL, "bounce", "classify"]
    r = subprocess.run(cmd, input=b"550\t5.2.2\tmailbox full\r\n421\t4.7.0\ttry later", capture_output=True)
    assert r.returncode == 0, r.stderr
    rows = [l.split("\t") for l in r.stdout.decode().splitlines()]
    assert [x[0] for x in rows] == ["mailboxfull", "securityerror"], rows


def test_operator_rules_override_shipped_ones():
    d = with_config({"classify.rules": "# our gateway says 'user unknown' for blocked senders\n"
                                       "rule blocked \"user unknown\" host=gw.example.net\n",
                     "classify.d/10-more.rules": "phrase mailboxfull \"casier plein\"\n"})
    try:
        lines = ["550\t5.1.1\t550 5.1.1 user unknown\tgw.example.net\tRCPT",
                 "550\t5.1.1\t550 5.1.1 user unknown\tmx.example.net\tRCPT",
                 "550\t\tcasier plein\tmx.example.net"]
        rc, out, err = classify(lines, config=d)
        assert rc == 0, err
        assert [l.split("\t")[0] for l in out.splitlines()] == ["blocked", "userunknown", "mailboxfull"], out
        # without -c the shipped rules alone
        rc, out, _ = classify(lines)
        assert [l.split("\t")[0] for l in out.splitlines()][0] == "userunknown", out
    finally:
        shutil.rmtree(d)


def test_bad_operator_rule_file_exits_1_with_file_and_line():
    d = with_config({"classify.rules": "# fine\nrule blocked \"x\"\nrule notareason \"y\"\n"})
    try:
        rc, out, err = classify(LINES, config=d)
        assert rc == 1, (rc, out, err)
        assert out == "", out
        assert os.path.join(d, "config", "classify.rules") + ":3: unknown reason 'notareason'" in err, err
    finally:
        shutil.rmtree(d)
    d = with_config({"classify.d/20-x.rules": "rule spamdetected /unclosed(/\n"})
    try:
        rc, out, err = classify(LINES, config=d)
        assert rc == 1 and "classify.d/20-x.rules:1: bad regex" in err, (rc, err)
    finally:
        shutil.rmtree(d)


def test_broken_shipped_rules_exit_1():
    d = tempfile.mkdtemp(prefix="kasi-bc-rules-")
    try:
        shutil.copytree(os.path.join(ROOT, "..", "rules"), os.path.join(d, "rules"))
        with open(os.path.join(d, "rules", "classify", "40-phrases.rules"), "a") as f:
            f.write("phrase blocked \"ok\"\nrule blocked code=6xx\n")
        env = dict(os.environ, KASI_RULES_DIR=os.path.join(d, "rules"))
        r = subprocess.run([KASICTL, "bounce", "classify"], input=b"550\n", capture_output=True, env=env)
        assert r.returncode == 1, r
        assert b"40-phrases.rules:" in r.stderr and b"bad reply code pattern '6xx'" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)


def test_usage_errors_exit_2():
    for args in (("bounce", "classify", "extra"), ("bounce", "classify", "--nope")):
        rc, out, err = classify(["550"], args=args)
        assert rc == 2 and "usage: kasictl [-c DIR] bounce classify" in err, (args, rc, err)


run(globals())
