// The bounce parser and the MIME reader on messages written for these tests: each format
// the parser reads without knowing the MTA, auto-replies, messages that are not bounces,
// and hostile input (truncated MIME, wrong boundaries, deep nesting, a 50 MB attachment,
// broken encodings), which must be read in bounded time or reported, never crash.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "core/feedback/bounce_parser.h"
#include "core/feedback/bounce_text.h"
#include "core/feedback/delivery_status.h"
#include "core/feedback/mbox.h"
#include "core/feedback/ses_bounce.h"
#include "core/feedback/text_charset.h"
#include "core/mime/mime_tree.h"
#include "core/mime/transfer_decode.h"

using namespace kasi;

namespace {

const BounceParser& parser() {
    static BounceParser p([] {
        std::string err;
        auto c = Classifier::load_shipped(err);
        if (!c) FAIL(err);
        return c;
    }());
    return p;
}

const char* kDsn =
    "From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>\r\n"
    "To: bounces+abc@sender.example\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"B1\"\r\n"
    "\r\n"
    "--B1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "<alice@dest.example>: host mx.dest.example[192.0.2.1] said: 550 5.1.1\r\n"
    "    <alice@dest.example>: Recipient address rejected: User unknown (in reply to\r\n"
    "    RCPT TO command)\r\n"
    "\r\n"
    "--B1\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.sender.example\r\n"
    "\r\n"
    "Final-Recipient: rfc822; alice@dest.example\r\n"
    "Original-Recipient: rfc822;Alice@Dest.example\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.dest.example\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <alice@dest.example>: Recipient address\r\n"
    "    rejected: User unknown\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@dest.example\r\n"
    "Action: delayed\r\n"
    "Status: 4.2.2\r\n"
    "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n"
    "\r\n"
    "--B1\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "From: News <news@sender.example>\r\n"
    "To: alice@dest.example\r\n"
    "Message-ID: <m1@sender.example>\r\n"
    "X-Kasi-Id: 0123456789abcdef\r\n"
    "Subject: Hello\r\n"
    "\r\n"
    "--B1--\r\n";

}  // namespace

TEST_CASE("an RFC 3464 report: every recipient with its action, status and words") {
    auto r = parser().parse(kDsn);
    REQUIRE(r.kind == BounceReport::Kind::bounce);
    CHECK(r.format == "rfc3464");
    CHECK(r.reporting_mta == "mx.sender.example");
    REQUIRE(r.recipients.size() == 2);
    const auto& a = r.recipients[0];
    CHECK(a.recipient == "alice@dest.example");
    CHECK(a.original_recipient == "alice@dest.example");
    CHECK(a.action == "failed");
    CHECK(a.status == "5.1.1");
    CHECK(a.reply_code == 550);
    CHECK(a.remote_mta == "mx.dest.example");
    CHECK(a.command == "RCPT");  // from the human part
    CHECK(a.classification.reason == "userunknown");
    CHECK(a.classification.hard);
    const auto& b = r.recipients[1];
    CHECK(b.action == "delayed");
    CHECK(b.classification.reason == "mailboxfull");
    CHECK_FALSE(b.classification.hard);
    CHECK(r.addresser == "news@sender.example");
    CHECK(r.original_message_id == "<m1@sender.example>");
    REQUIRE(r.original_kasi_headers.size() == 1);
    CHECK(r.original_kasi_headers[0].second == "0123456789abcdef");
}

TEST_CASE("bounces written for people: qmail, Exim and Sendmail layouts") {
    std::string qmail =
        "From: MAILER-DAEMON@mx.sender.example\n"
        "Subject: failure notice\n\n"
        "Hi. This is the qmail-send program at mx.sender.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<carol@dest.example>:\n"
        "192.0.2.7 does not like recipient.\n"
        "Remote host said: 552 5.2.2 Mailbox quota exceeded\n"
        "Giving up on 192.0.2.7.\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Return-Path: <news@sender.example>\n"
        "From: news@sender.example\n"
        "To: carol@dest.example\n\nhello\n";
    auto q = parser().parse(qmail);
    REQUIRE(q.recipients.size() == 1);
    CHECK(q.format == "text");
    CHECK(q.recipients[0].recipient == "carol@dest.example");
    CHECK(q.recipients[0].reply_code == 552);
    CHECK(q.recipients[0].classification.reason == "mailboxfull");
    CHECK(q.addresser == "news@sender.example");

    std::string exim =
        "From: Mail Delivery System <Mailer-Daemon@relay.example>\n"
        "Subject: Mail delivery failed: returning message to sender\n"
        "X-Failed-Recipients: dave@dest.example\n\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  dave@dest.example\n"
        "    SMTP error from remote mail server after RCPT TO:<dave@dest.example>:\n"
        "    host mx.dest.example [192.0.2.9]: 550 5.1.1 No such user here\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        "From: news@sender.example\nTo: dave@dest.example\n\nhi\n";
    auto e = parser().parse(exim);
    REQUIRE(e.recipients.size() == 1);
    CHECK(e.recipients[0].recipient == "dave@dest.example");
    CHECK(e.recipients[0].command == "RCPT");
    CHECK(e.recipients[0].remote_mta == "mx.dest.example");
    CHECK(e.recipients[0].classification.reason == "userunknown");

    std::string sendmail =
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.sender.example>\n"
        "Subject: Returned mail: see transcript for details\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n"
        "<erin@dest.example>\n"
        "    (reason: 550 5.7.1 Service unavailable; client host blocked using zen)\n\n"
        "   ----- Transcript of session follows -----\n"
        "... while talking to mx.dest.example.:\n"
        ">>> MAIL From:<news@sender.example>\n"
        "<<< 550 5.7.1 Service unavailable; client host blocked using zen\n";
    auto s = parser().parse(sendmail);
    REQUIRE(s.recipients.size() == 1);
    CHECK(s.recipients[0].recipient == "erin@dest.example");
    CHECK(s.recipients[0].status == "5.7.1");
    CHECK(s.recipients[0].classification.reason == "blocked");
}

TEST_CASE("auto-replies are not bounces; other mail is neither") {
    auto v = parser().parse(
        "From: Frank <frank@dest.example>\nTo: news@sender.example\n"
        "Auto-Submitted: auto-replied\nSubject: Out of office\n\nBack on Monday.\n");
    CHECK(v.kind == BounceReport::Kind::auto_reply);
    REQUIRE(v.recipients.size() == 1);
    CHECK(v.recipients[0].recipient == "frank@dest.example");
    CHECK(v.recipients[0].classification.reason == "vacation");
    CHECK_FALSE(v.recipients[0].classification.hard);

    auto n = parser().parse(
        "From: grace@dest.example\nTo: news@sender.example\nSubject: thanks!\n\n"
        "Thanks for the newsletter, write to heidi@dest.example too.\n");
    CHECK(n.kind == BounceReport::Kind::not_bounce);
    CHECK(n.recipients.empty());
}

TEST_CASE("hostile input: bounded, never a crash") {
    using clock = std::chrono::steady_clock;
    SECTION("truncated MIME and a boundary that never comes") {
        std::string t(kDsn);
        for (size_t cut : {size_t(10), t.size() / 3, t.size() / 2, t.size() - 20}) {
            auto r = parser().parse(t.substr(0, cut));
            (void)r;
        }
        auto r = parser().parse(
            "From: MAILER-DAEMON@x.example\nContent-Type: multipart/report; boundary=\"nope\"\n\n"
            "<ivan@dest.example>: 550 5.1.1 unknown user\n");
        REQUIRE(r.recipients.size() == 1);  // read as text
        CHECK(r.recipients[0].classification.reason == "userunknown");
    }
    SECTION("nesting far deeper than the limit") {
        std::string m = "From: MAILER-DAEMON@x.example\n";
        for (int i = 0; i < 200; ++i)
            m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" +
                 std::to_string(i) + "\n";
        m += "Content-Type: text/plain\n\nhello\n";
        auto msg = mime::parse_message(m);
        size_t depth = 0;
        for (const mime::Part* p = &msg.top; !p->children.empty(); p = &p->children[0]) ++depth;
        CHECK(depth <= mime::Limits{}.max_depth);
        (void)parser().parse(m);
    }
    SECTION("a 50 MB attachment is skipped, not decoded") {
        std::string m =
            "From: MAILER-DAEMON@x.example\nSubject: Undeliverable\n"
            "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n"
            "<judy@dest.example>: 550 5.1.1 no such user\n--b\n"
            "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n";
        m += std::string(50 << 20, 'A');
        m += "\n--b--\n";
        auto start = clock::now();
        auto r = parser().parse(m);
        auto secs = std::chrono::duration<double>(clock::now() - start).count();
        REQUIRE(r.recipients.size() == 1);
        CHECK(r.recipients[0].recipient == "judy@dest.example");
        WARN("50 MB attachment parsed in " << secs << " s");
    }
    SECTION("broken encodings") {
        bool t = false;
        CHECK(mime::decode_base64_lenient("aGVs*bG8=\n===", 100, t) == "hello");
        CHECK(mime::decode_quoted_printable("a=3Db=\nc=ZZ=", 100, t) == "a=bc=ZZ");
        CHECK(mime::decode_words("=?utf-8?B?aMOp?= =?utf-8?Q?llo?=") == "h\xc3\xa9llo");
        CHECK(mime::decode_words("=?broken") == "=?broken");
        t = false;
        CHECK(mime::decode_base64_lenient("QUJDREVG", 3, t) == "ABC");
        CHECK(t);
    }
    SECTION("many recipients stop at a bound") {
        std::string ds = "Reporting-MTA: dns; x\n\n";
        for (int i = 0; i < 5000; ++i)
            ds += "Final-Recipient: rfc822; u" + std::to_string(i) +
                  "@dest.example\nAction: failed\n\n";
        CHECK(parse_delivery_status(ds).recipients.size() <= 1000);
    }
}

TEST_CASE("reply facts: code, status, command and host out of a diagnostic") {
    auto f = reply_facts(
        "SMTP error from remote mail server after end of data: host mx.d.example "
        "[192.0.2.20]: 554 5.7.0 Header error");
    CHECK(f.code == 554);
    CHECK(f.status == "5.7.0");
    CHECK(f.command == "DATA");
    CHECK(f.host == "mx.d.example");
    CHECK(reply_facts("did not like our final DATA:550 5.7.509 Access denied").code == 550);
    CHECK(reply_facts("550-5.2.1 The email account is disabled").status == "5.2.1");
    CHECK(reply_facts("Sorry (#5.1.1)").status == "5.1.1");
    CHECK(reply_facts("delivered at 2024-05-01 10:20:30, ref 550-1234").code == 0);
    CHECK(reply_facts("version 5.4.10 of the software").code == 0);
}

TEST_CASE("MIME: parameters, RFC 2231 continuations, parts and the human text") {
    auto ct = mime::parse_content_type(
        "Multipart/Report; report-type=\"delivery-status\"; boundary*0=\"ab\"; boundary*1=cd");
    CHECK(ct.type == "multipart/report");
    CHECK(ct.param("report-type") == "delivery-status");
    CHECK(ct.param("boundary") == "abcd");
    CHECK(mime::parse_content_type("garbage").type == "text/plain");
    auto m = mime::parse_message(
        "Content-Type: multipart/alternative; boundary=x\n\n--x\nContent-Type: text/html\n\n"
        "<p>Delivery&nbsp;failed</p><style>p{}</style>\n--x--\n");
    CHECK(mime::human_text(m.top).find("Delivery failed") != std::string::npos);
    CHECK(mime::human_text(m.top).find("p{}") == std::string::npos);
}

namespace {

BounceReport parse_text(const std::string& headers, const std::string& body) {
    return parser().parse(headers + "\n" + body);
}

const BouncedRecipient* find(const BounceReport& r, std::string_view who) {
    for (const auto& b : r.recipients)
        if (b.recipient == who) return &b;
    return nullptr;
}

}  // namespace

TEST_CASE("'user unknown' needs the RCPT stage or an X.1.x status; else the filter refused it") {
    const std::string h =
        "From: MAILER-DAEMON@mx.example\nTo: s@sender.example\nSubject: Returned mail\n";
    // no command, no status: the recipient's filter (sisimai's reading)
    auto r = parse_text(h, "<a@dest.example>\n    550 User unknown\n");
    REQUIRE(find(r, "a@dest.example"));
    CHECK(find(r, "a@dest.example")->classification.reason == "filtered");
    // a transcript names the command: RCPT, so the mailbox does not exist
    r = parse_text(h,
                   "   ----- Transcript of session follows -----\n"
                   "... while talking to mx.dest.example.:\n"
                   ">>> RCPT To:<a@dest.example>\n"
                   "<<< 550 <a@dest.example>... User unknown\n"
                   "550 <a@dest.example>... User unknown\n");
    REQUIRE(find(r, "a@dest.example"));
    CHECK(find(r, "a@dest.example")->command == "RCPT");
    CHECK(find(r, "a@dest.example")->classification.reason == "userunknown");
    // after DATA it is the filter again
    r = parse_text(h,
                   "   ----- Transcript of session follows -----\n"
                   ">>> DATA\n"
                   "<<< 550 5.0.0 <a@dest.example>... User unknown\n"
                   "<<< 503 5.0.0 Need RCPT (recipient)\n");
    REQUIRE(find(r, "a@dest.example"));
    CHECK(find(r, "a@dest.example")->command == "DATA");
    CHECK(find(r, "a@dest.example")->classification.reason == "filtered");
    // a gateway known to mean a missing mailbox by it (McAfee)
    r = parse_text(h + "X-NAI-Header: Modified by McAfee Email Gateway\n",
                   "<a@dest.example>   (Unknown user a@dest.example)\n");
    REQUIRE(find(r, "a@dest.example"));
    CHECK(r.mta == "mcafee");
    CHECK(find(r, "a@dest.example")->classification.reason == "userunknown");
}

TEST_CASE("a DSN's cut multi-line reply is read whole from the transcript") {
    auto r = parser().parse(
        "From: MAILER-DAEMON@mx.example\nTo: s@sender.example\nSubject: Returned mail\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
        "boundary=B\n\n--B\nContent-Type: text/plain\n\n"
        "   ----- Transcript of session follows -----\n"
        ">>> DATA\n"
        "<<< 550-5.7.1 Unauthenticated email from sender.example is not accepted due to\n"
        "<<< 550-5.7.1 domain's DMARC policy.\n"
        "<<< 550 5.7.1 More words.\n"
        "554 5.0.0 Service unavailable\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example\n\n"
        "Final-Recipient: RFC822; a@dest.example\nAction: failed\nStatus: 5.7.1\n"
        "Diagnostic-Code: SMTP; 550-5.7.1 Unauthenticated email from sender.example is not "
        "accepted due to\n--B--\n");
    REQUIRE(find(r, "a@dest.example"));
    auto& b = *find(r, "a@dest.example");
    CHECK(b.diagnostic.find("DMARC policy") != std::string::npos);
    CHECK(b.command == "DATA");
    CHECK(b.classification.reason == "authfailure");
}

TEST_CASE("report texts in other charsets are read as UTF-8") {
    // "ユーザー" in ISO-2022-JP, inside a DSN field that names no charset
    std::string iso = "\x1b$B%f!<%6!<\x1b(B";
    CHECK(iso2022_to_utf8(iso) == "ユーザー");
    CHECK(iso2022_to_utf8("plain") == "plain");
    CHECK(to_utf8("caf\xe9", "ISO-8859-1") == "café");
    CHECK(to_utf8("caf\xe9", "no-such-charset") == "caf\xe9");
    CHECK(to_utf8("\xff\xfe\xfd", "ISO-2022-JP").size() < 16);  // bad bytes skipped
    std::string big(1 << 20, '\x1b');
    CHECK(iso2022_to_utf8(big + "$B").size() <= 4u << 20);
}

TEST_CASE("Amazon SES notifications in JSON: bounce, delivery, complaint") {
    const std::string h =
        "From: no-reply@sns.amazonaws.com\nTo: s@sender.example\nSubject: AWS Notification "
        "Message\n";
    auto r = parse_text(
        h, R"({"notificationType":"Bounce","bounce":{"bounceType":"Permanent",)"
           R"("bounceSubType":"General","reportingMTA":"dsn; a1.smtp-out.amazonses.com",)"
           R"("bouncedRecipients":[{"emailAddress":"a@dest.example","action":"failed",)"
           R"("status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},)"
           R"("mail":{"source":"s@sender.example","headers":[{"name":"Message-ID",)"
           R"("value":"<m1@sender.example>"},{"name":"X-Kasi-Id","value":"q1"}]}})");
    CHECK(r.format == "ses-json");
    REQUIRE(find(r, "a@dest.example"));
    CHECK(find(r, "a@dest.example")->status == "5.1.1");
    CHECK(find(r, "a@dest.example")->reply_code == 550);
    CHECK(find(r, "a@dest.example")->classification.reason == "userunknown");
    CHECK(r.original_message_id == "<m1@sender.example>");
    CHECK(r.addresser == "s@sender.example");
    REQUIRE(r.original_kasi_headers.size() == 1);
    r = parse_text(h, R"({"notificationType":"Bounce","bounce":{"bounceType":"Transient",)"
                      R"("bounceSubType":"MailboxFull","bouncedRecipients":[)"
                      R"({"emailAddress":"b@dest.example"}]}})");
    REQUIRE(find(r, "b@dest.example"));
    CHECK(find(r, "b@dest.example")->classification.reason == "mailboxfull");
    r = parse_text(h, R"({"notificationType":"Delivery","delivery":{"recipients":)"
                      R"(["c@dest.example"],"smtpResponse":"250 2.6.0 Message received"}})");
    REQUIRE(find(r, "c@dest.example"));
    CHECK(find(r, "c@dest.example")->classification.reason == "delivered");
    r = parse_text(h, R"({"notificationType":"Complaint","complaint":{"complainedRecipients":)"
                      R"([{"emailAddress":"d@dest.example"}]}})");
    REQUIRE(find(r, "d@dest.example"));
    CHECK(find(r, "d@dest.example")->classification.reason == "feedback");
    // JSON that is not a notification, or does not parse, is read as any other text
    CHECK(ses_bounce(R"({"notificationType":"Other"})").kind == BounceReport::Kind::not_bounce);
    CHECK(ses_bounce(R"({"bounce": [)").kind == BounceReport::Kind::not_bounce);
    CHECK(ses_bounce(std::string(100000, '{')).kind == BounceReport::Kind::not_bounce);
}

TEST_CASE("what a report's writer and fields say outright") {
    const std::string h = "From: MAILER-DAEMON@mx.example\nTo: s@sender.example\n";
    // a local program's exit status
    auto r =
        parser().parse(h +
                       "Subject: Returned mail\nMIME-Version: 1.0\nContent-Type: multipart/report; "
                       "boundary=B\n\n--B\nContent-Type: message/delivery-status\n\n"
                       "Final-Recipient: RFC822; a@dest.example\nAction: failed\nStatus: 5.0.0\n"
                       "Diagnostic-Code: X-Unix; 75\n\n"
                       "Final-Recipient: RFC822; b@dest.example\nAction: failed\nStatus: 5.0.0\n"
                       "Diagnostic-Code: smtp; 554 delivery error\n"
                       "X-PowerMTA-BounceCategory: bad-mailbox\n--B--\n");
    REQUIRE(find(r, "a@dest.example"));
    CHECK(find(r, "a@dest.example")->classification.reason == "mailererror");
    REQUIRE(find(r, "b@dest.example"));
    CHECK(find(r, "b@dest.example")->classification.reason == "userunknown");
    // Google Groups: four reasons in a list, whatever the language
    r = parse_text(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "To: s@sender.example\nSubject: Delivery Status Notification (Failure)\n"
        "X-Failed-Recipients: list@googlegroups.com\nX-Google-Smtp-Source: x\n",
        "Hallo, die Gruppe existiert vielleicht nicht:\n\n * a\n * b\n * c\n * d\n");
    CHECK(r.mta == "googlegroups");
    REQUIRE(find(r, "list@googlegroups.com"));
    CHECK(find(r, "list@googlegroups.com")->classification.reason == "rejected");
    // a delayed report nothing else explains has waited too long
    r = parser().parse(
        h +
        "Subject: Warning: could not send message for past 4 hours\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; boundary=B\n\n--B\n"
        "Content-Type: message/delivery-status\n\n"
        "Final-Recipient: RFC822; c@dest.example\nAction: delayed\nStatus: 4.5.0\n"
        "Diagnostic-Code: SMTP; 421 Warning: message still undelivered after 4 hours\n--B--\n");
    REQUIRE(find(r, "c@dest.example"));
    CHECK(find(r, "c@dest.example")->classification.reason == "expired");
}

TEST_CASE("an mbox holds one report after another") {
    std::string one = "From MAILER-DAEMON  Thu Apr 29 23:34:45 2015\nSubject: a\n\nbody\n";
    std::string two =
        "From x@y  Thu Apr 29 23:34:46 2015\nSubject: b\n\nline\nFrom here on, not a new message\n";
    std::string both = one + "\n" + two;  // the views point into it
    auto ms = mbox_messages(both);
    REQUIRE(ms.size() == 2);
    CHECK(ms[1].substr(0, 7) == "From x@");
    CHECK(mbox_messages("Subject: plain\n\nFrom me\n").size() == 1);
    std::string three = both + "\n" + one;
    CHECK(mbox_messages(three, 2).size() == 2);
}

TEST_CASE("hostile input: many recipients over a long transcript stay bounded") {
    std::string m =
        "From: MAILER-DAEMON@mx.example\nTo: s@sender.example\nSubject: Returned mail\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; boundary=B\n\n--B\n"
        "Content-Type: text/plain\n\n";
    for (int i = 0; i < 20000; ++i)
        m += ">>> RCPT To:<x" + std::to_string(i) + "@d.example>\n<<< 250 ok\n";
    m += "--B\nContent-Type: message/delivery-status\n\n";
    for (int i = 0; i < 1000; ++i)
        m += "Final-Recipient: rfc822; r" + std::to_string(i) +
             "@d.example\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550-5.0.0 x\n\n";
    m += "--B--\n";
    auto t0 = std::chrono::steady_clock::now();
    auto r = parser().parse(m);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.recipients.size() == 1000);
    // a figure, not an assertion: timing depends on the build and the machine's load
    std::printf("1000 recipients over a 20000-line transcript parsed in %.2f s\n", s);
}
