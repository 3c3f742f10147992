"""SMTP conversation against the real kasi: banner, EHLO, replies, PIPELINING, CHUNKING,
DATA edge cases, header additions, limits on size, lines and loops."""
import re
import time
from harness import Client, Kasi, free_port, message, run


def test_banner_and_ehlo_capabilities():
    with Kasi() as k:
        c = k.client()
        code, lines = c.banner
        assert code == 220 and re.match(r"220 mx\.kasi\.test ESMTP Kasi/\S+ ready \([0-9A-F]{6}\)", lines[0]), lines
        code, lines = c.cmd("EHLO client.test")
        assert code == 250
        assert lines[0] == "250-mx.kasi.test Hello [127.0.0.1], Kasi is at your service.", lines[0]
        caps = [l[4:] for l in lines[1:]]
        assert caps == ["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 100000", "ENHANCEDSTATUSCODES", "CHUNKING"], caps
        code, lines = c.cmd("HELO client.test")
        assert code == 250 and "Hello [127.0.0.1]" in lines[0]


def test_message_is_queued_with_added_headers():
    with Kasi() as k:
        c = k.client()
        code, lines = c.send_message("s@example.org", ["r@example.net"], "Subject: hi\n\nbody\n..dot\n")
        assert code == 250, lines
        m = re.match(r"250 2\.0\.0 Message Queued \(([0-9A-F-]{36}\.1)\)", lines[0])
        assert m, lines
        ids = k.queued_ids()
        assert ids == [m.group(1)], ids
        rc, out, err = k.ctl("show", m.group(1), "--body")
        assert rc == 0, err
        assert "from: <s@example.org>" in out and "<r@example.net> queued" in out, out
        body = out.split("\n\n", 1)[1]
        assert body.startswith("Received: from client.test ([127.0.0.1])\r\n\tby mx.kasi.test (Kasi/"), body[:200]
        assert "Message-ID: <%s@mx.kasi.test>" % m.group(1) in body
        assert "\r\nDate: " in body
        assert body.endswith("Subject: hi\r\n\r\nbody\r\n.dot\r\n"), repr(body[-60:])


def test_existing_message_id_and_date_are_kept():
    with Kasi() as k:
        c = k.client()
        code, lines = c.send_message("s@example.org", ["r@example.net"],
                                     "Message-Id: <x@y>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nb\n")
        assert code == 250
        rc, out, _ = k.ctl("show", k.queued_ids()[0], "--body")
        assert out.count("Message-ID") == 0 and out.count("Message-Id: <x@y>") == 1
        assert out.count("Date:") == 1


def test_pipelining_batches_are_answered_in_order():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO client.test")
        c.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 354
        # end of data, then a whole new transaction and QUIT in the same write (RFC 2920)
        c.send("Subject: one\r\n\r\nx\r\n.\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
        code, lines = c.reply()
        assert code == 250 and "Message Queued" in lines[0], lines
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 354
        c.send("Subject: two\r\n\r\ny\r\n.\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 221
        assert c.closed()
        assert len(k.queued_ids()) == 2


def test_bdat_chunks():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<s@example.org>")
        c.cmd("RCPT TO:<r@example.net>")
        part1 = b"Subject: chunked\r\n\r\n"
        part2 = b".leading dot kept\r\nend\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        code, lines = c.reply()
        assert code == 250 and "octets received" in lines[0], lines
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, lines = c.reply()
        assert code == 250 and "Message Queued" in lines[0], lines
        rc, out, _ = k.ctl("show", k.queued_ids()[0], "--body")
        assert out.endswith("Subject: chunked\r\n\r\n.leading dot kept\r\nend\r\n"), repr(out[-80:])


def test_bdat_without_recipients_consumes_the_chunk():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO client.test")
        c.send(b"BDAT 5\r\nNOOP\nNOOP\r\n")
        code, _ = c.reply()
        assert code == 503
        assert c.cmd("NOOP")[0] == 250  # NOOP after the 5 chunk bytes was read as a command


def test_bare_lf_is_refused_and_disconnects():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<s@example.org>")
        c.cmd("RCPT TO:<r@example.net>")
        c.cmd("DATA")
        c.send("Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n")
        code, lines = c.reply()
        assert code == 451 and "Bare line-feed" in lines[0], lines
        assert c.closed()
        assert k.queued_ids() == []


def test_bdat_bare_lf_is_found_in_any_chunk_and_across_chunks():
    # (chunks, refused?): a CR ending one chunk pairs with the LF starting the next
    cases = [([b"Subject: a\r\n\r\nok\r\n"], False),
             ([b"Subject: a\r\n\r\n" + b"x" * 5000 + b"\nbare\r\n"], True),
             ([b"Subject: a\r\n\r\nsplit\r", b"\nfine\r\n"], False),
             ([b"Subject: a\r\n\r\nsplit", b"\nbare\r\n"], True),
             ([b"Subject: a\r\n\r\none\r\n", b"two\r\n", b"three\n"], True)]
    with Kasi() as k:
        for chunks, refused in cases:
            c = k.client()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<s@example.org>")
            c.cmd("RCPT TO:<r@example.net>")
            for i, ch in enumerate(chunks):
                last = i == len(chunks) - 1
                c.send(b"BDAT %d%s\r\n" % (len(ch), b" LAST" if last else b"") + ch)
                code, lines = c.reply()
                if not last:
                    assert code == 250, lines
            if refused:
                assert code == 451 and "Bare line-feed" in lines[0], (chunks, lines)
            else:
                assert code == 250 and "Message Queued" in lines[0], (chunks, lines)
            c.close()
        assert len(k.queued_ids()) == 2


def _data_in_pieces(k, pieces):
    """DATA with the body sent in separate writes (a pause between them, so that they arrive
    as separate reads); returns the reply and whether the server closed the connection."""
    c = k.client()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<s@example.org>")
    c.cmd("RCPT TO:<r@example.net>")
    assert c.cmd("DATA")[0] == 354
    for i, p in enumerate(pieces):
        if i:
            time.sleep(0.15)
        c.send(p)
    code, lines = c.reply()
    closed = c.closed(timeout=2)
    c.close()
    return code, lines, closed


def test_bare_cr_is_refused_like_bare_lf():
    # "\r.\r" ends DATA at receivers that accept <CR>.<CR>: a bare CR anywhere, also one
    # ending a network read, gets Haraka's bare-LF answer, nothing is stored, the session ends
    head = b"Subject: smuggle\r\n\r\n"
    refused = [[head + b"mid\rline\r\n.\r\n"],
               [head + b"hello\r\n\r.\rMAIL FROM:<evil@example.org>\r\n.\r\n"],
               [head + b"hello\r.\r\n.\r\n"],
               [head + b"cr cr lf\r\r\n.\r\n"],
               [head + b"split\r", b"next\r\n.\r\n"],
               [head + b"x" * 70000 + b"\r" + b"y" * 100 + b"\r\n.\r\n"]]
    accepted = [[head + b"split\r", b"\nfine\r\n.\r\n"],
                [head + b"ok\r\n.\r", b"\n"]]
    with Kasi() as k:
        for pieces in refused:
            code, lines, closed = _data_in_pieces(k, pieces)
            assert code == 451 and lines[0].startswith("451 4.5.0 Bare line-feed"), (pieces, lines)
            assert closed, pieces
            assert k.queued_ids() == [], pieces
        for pieces in accepted:
            code, lines, closed = _data_in_pieces(k, pieces)
            assert code == 250 and "Message Queued" in lines[0], (pieces, lines)
        ids = k.queued_ids()
        assert len(ids) == 2, ids
        rc, out, _ = k.ctl("show", sorted(ids)[0], "--body")
        assert "\r" not in out.replace("\r\n", ""), repr(out)


def test_bdat_bare_cr_is_found_in_any_chunk_and_across_chunks():
    head = b"Subject: a\r\n\r\n"
    # (chunks, refused?); a chunk given as a tuple is sent in two writes (two reads)
    cases = [([head + b"mid\rline\r\n"], True),
             ([head + b"hello\r\n\r.\rMAIL FROM:<evil@example.org>\r\n"], True),
             ([head + b"cr cr lf\r\r\n"], True),
             ([head + b"split\r", b"next\r\n"], True),
             ([head + b"ends on cr\r"], True),
             ([head + b"one\r\n", b"two\r", b""], True),
             ([(head + b"read\r", b"next\r\n")], True),
             ([(head + b"read\r", b"\nnext\r\n")], False),
             ([head + b"split\r", b"\nfine\r\n"], False),
             ([head + b"no final line end"], False)]
    with Kasi() as k:
        for chunks, refused in cases:
            c = k.client()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<s@example.org>")
            c.cmd("RCPT TO:<r@example.net>")
            for i, ch in enumerate(chunks):
                last = i == len(chunks) - 1
                parts = ch if isinstance(ch, tuple) else (ch,)
                size = sum(len(p) for p in parts)
                c.send(b"BDAT %d%s\r\n" % (size, b" LAST" if last else b""))
                for j, p in enumerate(parts):
                    if j:
                        time.sleep(0.15)
                    c.send(p)
                code, lines = c.reply()
                if not last:
                    assert code == 250, lines
            if refused:
                assert code == 451 and lines[0].startswith("451 4.5.0 Bare line-feed"), (chunks, lines)
                assert c.closed(timeout=2), chunks
            else:
                assert code == 250 and "Message Queued" in lines[0], (chunks, lines)
            c.close()
        assert len(k.queued_ids()) == 3


def test_sequence_and_syntax_errors():
    with Kasi() as k:
        c = k.client()
        assert c.cmd("MAIL FROM:<s@example.org>") == (503, ["503 5.5.1 Use EHLO/HELO before MAIL"])
        assert c.cmd("EHLO")[0] == 501
        c.cmd("EHLO client.test")
        assert c.cmd("RCPT TO:<r@example.net>")[0] == 503
        assert c.cmd("DATA")[0] == 503
        assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
        assert c.cmd("DATA")[0] == 503
        assert c.cmd("RCPT TO:<>")[0] == 501
        assert c.cmd("FOO bar") == (500, ["500 5.5.1 Unrecognized command"])
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("VRFY x")[0] == 252
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("RSET now")[0] == 501
        assert c.cmd("QUIT")[0] == 221
        assert c.closed()


def test_sloppy_mail_and_rcpt_as_haraka_accepts_them_unless_strict():
    sloppy = [("MAIL FROM:s@example.org", 250, 501),
              ("RCPT TO:r@example.net", 250, 501),
              ("RCPT TO:<r2@example.net> NOTIFY=NEVER", 250, 555),
              ("MAIL FROM:<s@example.org> X-FOO=bar", 250, 555),
              ("MAIL FROM:<s@example.org> SIZE=abc", 250, 501),
              ("MAIL FROM:<s@example.org> BODY=9BIT", 250, 501),
              ("MAIL FROM:", 250, 501),
              ("MAIL FROM:\t<s@example.org>", 250, 250),  # strict skips blanks too
              ("MAIL FROM:<s@example.org> SMTPUTF8=yes", 250, 555)]
    for strict in (False, True):
        with Kasi(extra={"smtp.ini": "strict=true\n"} if strict else None) as k:
            c = k.client()
            c.cmd("EHLO client.test")
            for line, lenient_code, strict_code in sloppy:
                if line.startswith("RCPT"):
                    c.cmd("MAIL FROM:<s@example.org>")
                code, lines = c.cmd(line)
                assert code == (strict_code if strict else lenient_code), (strict, line, lines)
                c.cmd("RSET")
            # what is accepted is what was meant: the brackets come back, the parameter goes
            if not strict:
                code, lines = c.send_message("s@example.org", ["r@example.net"], message(),
                                             ehlo=None)
                assert code == 250, lines
            # never lenient: an address with a space, a path with junk, <> as a recipient
            c.cmd("MAIL FROM:<s@example.org>")
            assert c.cmd("RCPT TO:<>")[0] == 501
            assert c.cmd("RCPT TO:a b@example.net")[0] == 501
            assert c.cmd("RCPT TO:<postmaster>")[0] == 550


def test_params_need_ehlo():
    with Kasi() as k:
        c = k.client()
        c.cmd("HELO client.test")
        assert c.cmd("MAIL FROM:<s@example.org> SIZE=10")[0] == 555
        # an RFC 821 session is 7-bit: any 8-bit command is a syntax error, as in Haraka
        code, lines = c.cmd("NOOP caf\u00e9")
        assert code == 501 and "8-bit" in lines[0], lines
        assert c.cmd("MAIL FROM:<j\u00f6s@example.org>")[0] == 501
        c.cmd("EHLO client.test")
        assert c.cmd("NOOP caf\u00e9")[0] == 250


def test_size_limits():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO client.test")
        code, lines = c.cmd("MAIL FROM:<s@example.org> SIZE=200000")
        assert code == 552 and "5.3.4" in lines[0], lines
        code, lines = c.send_message("s@example.org", ["r@example.net"], message(size=150000), ehlo=None)
        assert code == 552, lines
        code, lines = c.send_message("s@example.org", ["r@example.net"], message(size=1000), ehlo=None)
        assert code == 250, lines


def test_mail_loop_is_refused():
    with Kasi() as k:
        c = k.client()
        hdrs = "".join("Received: from hop%d by x; Mon, 1 Jan 2024 00:00:00 +0000\n" % i for i in range(6))
        code, lines = c.send_message("s@example.org", ["r@example.net"], hdrs + "\nbody\n")
        assert code == 554 and "5.4.6" in lines[0], lines


def test_long_command_line_disconnects():
    with Kasi() as k:
        c = k.client()
        c.send("NOOP " + "x" * 600 + "\r\n")
        code, lines = c.reply()
        assert code == 521, lines
        assert c.closed()


def test_utf8_addresses_need_smtputf8():
    with Kasi() as k:
        c = k.client()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<j\u00f6rg@example.org>")[0] == 553
        assert c.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8")[0] == 250
        assert c.cmd("RCPT TO:<\u00fc@b\u00e4d.example>")[0] == 250


def test_disconnect_summary_line():
    with Kasi() as k:
        c = k.client()
        c.send_message("s@example.org", ["r@example.net"], message())
        c.cmd("QUIT")
        c.closed()
        time.sleep(0.2)
        log = k.read_log()
        assert re.search(r"disconnect ip=127\.0\.0\.1 rdns= helo=client\.test relay=Y early=N esmtp=Y "
                         r"tls=N pipe=N errors=0 txns=1 rcpts=1/0/0 msgs=1/0/0 bytes=\d+ lr=\"\" time=\d", log), log


def test_inactivity_timeout():
    with Kasi(extra={"smtp.ini": "inactivity_timeout=1\n"}) as k:
        c = k.client()
        code, lines = c.reply()
        assert code == 421 and "timeout" in lines[0], lines
        assert c.closed()



def test_several_listeners_ipv4_and_ipv6():
    k = Kasi()
    p6 = free_port()
    with open(k.dir + "/config/smtp.ini", "a") as f:
        f.write(f"\nlisten=127.0.0.1:{k.port},[::1]:{p6}\n")
    with k:
        c = Client(p6, host="::1")
        assert c.banner[0] == 220
        code, lines = c.cmd("EHLO v6.test")
        assert "[::1]" in lines[0], lines
        code, lines = c.send_message("a@example.org", ["x@elsewhere.example"], message(),
                                     ehlo=None)
        assert code == 550, lines  # ::1 is not in relay_acl_allow (127.0.0.1/32)
        c4 = k.client()
        assert c4.banner[0] == 220

run(globals())
