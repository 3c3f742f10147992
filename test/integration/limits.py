"""Connection and recipient limits (kasi.ini [limits])."""
from harness import Kasi, run


def test_connection_limit_per_ip():
    with Kasi(extra={"kasi.ini": "[limits]\nmax_connections_per_ip=2\n"}) as k:
        a, b = k.client(), k.client()
        c = k.client(banner=False)
        code, lines = c.reply()
        assert code == 421 and "Too many connections" in lines[0], lines
        assert c.closed()
        d = k.client(source="127.0.0.2")  # another address still gets in
        assert d.banner[0] == 220
        a.cmd("QUIT")
        a.closed()
        import time
        time.sleep(0.3)
        e = k.client()
        assert e.banner[0] == 220


def test_total_connection_limit():
    with Kasi(extra={"kasi.ini": "[limits]\nmax_connections=1\n"}) as k:
        a = k.client()
        b = k.client(banner=False, source="127.0.0.2")
        assert b.reply()[0] == 421


def test_recipient_limit():
    with Kasi(extra={"kasi.ini": "[limits]\nmax_recipients=3\n"}) as k:
        c = k.client()
        c.cmd("EHLO c.test")
        c.cmd("MAIL FROM:<s@example.org>")
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@example.net>")[0] == 250
        code, lines = c.cmd("RCPT TO:<r4@example.net>")
        assert code == 452 and "4.5.3" in lines[0], lines



def multipart(n):
    body = "From: a@example.org\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
    for i in range(n):
        body += f"--b1\nContent-Type: text/plain\n\npart {i}\n"
    return body + "--b1--\n"


def test_mime_parts_limit():
    with Kasi(extra={"connection.ini": "\n[max]\nmime_parts=5\n"}) as k:
        c = k.client()
        code, lines = c.send_message("a@example.org", ["x@elsewhere.example"], multipart(4))
        assert code == 250, lines
        code, lines = c.send_message("a@example.org", ["x@elsewhere.example"], multipart(5),
                                     ehlo=None)
        assert code == 554 and "too many MIME parts" in lines[0], lines
        assert c.closed()
        assert len(k.queued_ids()) == 1


def test_header_line_parsing_limit_warns():
    with Kasi(extra={"connection.ini": "\n[headers]\nmax_lines=10\n"}) as k:
        c = k.client()
        body = "".join(f"X-H{i}: v\n" for i in range(30)) + "\nbody\n"
        code, lines = c.send_message("a@example.org", ["x@elsewhere.example"], body)
        assert code == 250, lines
        assert "header parsing limit of 10 lines" in k.read_log()

run(globals())
