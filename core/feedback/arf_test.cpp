// The complaint parser (arf_parser.h): one handwritten message per format, the ways
// reports go wrong (bounded, never a crash), and the corpus measurement: every row of
// test/data/arf/expected.tsv (and of shared/corpora/arf/ when it is next to the source
// tree, or in $KASI_CORPORA) through parse_complaint, with the agreement printed per field.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/feedback/arf_parser.h"
#include "core/util/strings.h"

using namespace kasi;
using Kind = ComplaintReport::Kind;

namespace {

std::string crlf(std::string_view lf) {
    std::string out;
    for (char c : lf) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

bool one_line(const std::string& s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

// Every string of a report is one line (what the header of complaint_report.h promises).
bool all_one_line(const ComplaintReport& r) {
    bool ok = one_line(r.why) && one_line(r.format) && one_line(r.feedback_type) &&
              one_line(r.original_mail_from) && one_line(r.source_ip) && one_line(r.user_agent) &&
              one_line(r.arrival_date) && one_line(r.reporting_mta) &&
              one_line(r.original_message_id) && one_line(r.original_envelope_id);
    for (const auto& a : r.recipients) ok = ok && one_line(a);
    for (const auto& d : r.reported_domains) ok = ok && one_line(d);
    for (const auto& [n, v] : r.original_kasi_headers) ok = ok && one_line(n) && one_line(v);
    return ok;
}

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const std::string kStandard = R"(From: FBL <fbl@isp.example>
To: fbl-reports@sender.example
Subject: FW: Weekly news
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
    boundary="b1"

--b1
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.7.

--b1
Content-Type: message/feedback-report

Feedback-Type: Abuse
User-Agent: IspFeedback/2.1
Version: 1
Original-Mail-From: <B-12ab-Rcpt=isp.example@Return.Sender.example>
Original-Rcpt-To: <Alice@isp.example>
Original-Rcpt-To: bob@isp.example
Original-Rcpt-To: <alice@isp.example>
Arrival-Date: Mon, 3 Mar 2025 10:00:00 +0000
Source-IP: 192.0.2.7
Reported-Domain: Sender.example.
Reported-Domain: news.sender.example
Original-Envelope-Id: env-42
Reporting-MTA: dns; mx.isp.example

--b1
Content-Type: message/rfc822

Return-Path: <other@sender.example>
From: News <news@sender.example>
To: alice@isp.example
Subject: Weekly news
Message-ID: <msg-1@sender.example>
X-Kasi-Id: 0190aa.1
X-Kasi-Tenant: acme

Hello
--b1--
)";

}  // namespace

TEST_CASE("ARF: every field of a standard report", "[feedback][arf]") {
    for (const auto& raw : {kStandard, crlf(kStandard)}) {
        auto r = parse_complaint(raw);
        REQUIRE(r.kind == Kind::complaint);
        CHECK(r.format == "arf");
        CHECK(r.feedback_type == "abuse");
        CHECK(r.recipients == std::vector<std::string>{"alice@isp.example", "bob@isp.example"});
        CHECK(r.original_mail_from == "b-12ab-rcpt=isp.example@return.sender.example");
        CHECK(r.source_ip == "192.0.2.7");
        CHECK(r.reported_domains ==
              std::vector<std::string>{"sender.example", "news.sender.example"});
        CHECK(r.user_agent == "IspFeedback/2.1");
        CHECK(r.arrival_date == "Mon, 3 Mar 2025 10:00:00 +0000");
        CHECK(r.original_envelope_id == "env-42");
        CHECK(r.reporting_mta == "mx.isp.example");
        CHECK(r.original_return_path == "other@sender.example");
        CHECK(r.original_message_id == "<msg-1@sender.example>");
        REQUIRE(r.original_kasi_headers.size() == 2);
        CHECK(r.original_kasi_headers[0].first == "X-Kasi-Id");
        CHECK(r.original_kasi_headers[0].second == "0190aa.1");
        CHECK(r.original_kasi_headers[1].second == "acme");
    }
}

TEST_CASE("ARF: recipient and sender from the returned message", "[feedback][arf]") {
    std::string raw = R"(From: fbl@isp.example
Subject: complaint
Content-Type: multipart/report; report-type="feedback-report"; boundary=xyz

--xyz
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Dmarc/1
Version: 1
Received-Date: 1 Jan 2025 00:00:00 +0000
Source-IP: [2001:db8::5]

--xyz
Content-Type: text/rfc822-headers

RETURN-PATH: <Bounce@Sender.example>
From: looks-like@an-address
  <real@sender.example>
To: "Doe, Jane" <jane@isp.example>, other@isp.example
Message-ID: <m2@sender.example>
--xyz--
)";
    auto r = parse_complaint(raw);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.feedback_type == "auth-failure");
    CHECK(r.recipients == std::vector<std::string>{"jane@isp.example"});
    CHECK(r.original_mail_from == "real@sender.example");  // not the display name
    CHECK(r.original_return_path == "bounce@sender.example");
    CHECK(r.source_ip == "2001:db8::5");
    CHECK(r.arrival_date == "1 Jan 2025 00:00:00 +0000");
    CHECK(r.original_message_id == "<m2@sender.example>");

    // Without a From: the Return-Path.
    auto at = raw.find("From: looks");
    raw.erase(at, raw.find("To:", at) - at);
    r = parse_complaint(raw);
    CHECK(r.original_mail_from == "bounce@sender.example");
}

TEST_CASE("ARF: a To that names nobody leaves the recipient empty", "[feedback][arf]") {
    auto r =
        parse_complaint(R"(Content-Type: multipart/report; report-type=feedback-report; boundary=q

--q
Content-Type: message/feedback-report

Feedback-Type: fraud
User-Agent: x/1

--q
Content-Type: message/rfc822

From: <spam@sender.example>
To: <Undisclosed Recipients>

body
--q--
)");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.feedback_type == "fraud");
    CHECK(r.recipients.empty());
    CHECK(r.original_mail_from == "spam@sender.example");
}

TEST_CASE("ARF: fields in a text part, no message/feedback-report", "[feedback][arf]") {
    auto r =
        parse_complaint(R"(Content-Type: multipart/report; report-type=feedback-report; boundary=q

--q
Content-Type: text/plain

This is an abuse report.

Feedback-Type: not-spam
User-Agent: Webmail/3
Original-Rcpt-To: carol@isp.example
--q
Content-Type: message/rfc822

From: <news@sender.example>
To: dave@isp.example

body
--q--
)");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.format == "arf-text");
    CHECK(r.feedback_type == "not-spam");
    CHECK(r.user_agent == "Webmail/3");
    CHECK(r.recipients == std::vector<std::string>{"carol@isp.example"});
    CHECK(r.original_mail_from == "news@sender.example");
}

TEST_CASE("ARF: a wrong boundary leaves one text, still read", "[feedback][arf]") {
    auto r = parse_complaint(R"(Subject: report
Content-Type: multipart/report; report-type=feedback-report; boundary="not-this"

--other
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Fbl/1
Source-IP: 198.51.100.9

--other
Content-Type: message/rfc822

Return-Path: <rp@sender.example>
To: erin@isp.example
Message-ID: <m3@sender.example>

body
--other--
)");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.format == "arf-text");
    CHECK(r.source_ip == "198.51.100.9");
    CHECK(r.recipients == std::vector<std::string>{"erin@isp.example"});
    CHECK(r.original_mail_from == "rp@sender.example");
    CHECK(r.original_message_id == "<m3@sender.example>");
}

TEST_CASE("ARF: an opt-out report of the drafts names a Removal-Recipient", "[feedback][arf]") {
    auto r =
        parse_complaint(R"(Content-Type: multipart/report; report-type=feedback-report; boundary=o

--o
Content-Type: message/feedback-report

Feedback-Type: opt-out
User-Agent: Old/0.1
Version: 0.1
Removal-Recipient: <Kim@isp.example>

--o
Content-Type: message/rfc822

To: list@isp.example

body
--o--
)");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.feedback_type == "opt-out");
    CHECK(r.recipients == std::vector<std::string>{"kim@isp.example"});
}

TEST_CASE("ARF: report-type=feedback-report alone is a complaint", "[feedback][arf]") {
    auto r = parse_complaint(
        "Content-Type: multipart/report; report-type=feedback-report; boundary=z\n\n"
        "--z\nContent-Type: text/plain\n\nSomeone complained.\n--z--\n");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.feedback_type == "abuse");
    CHECK(r.recipients.empty());
}

TEST_CASE("ARF: a forwarded report takes its own returned message", "[feedback][arf]") {
    std::string raw =
        "From: postmaster@isp.example\nSubject: Fwd: report\n"
        "Content-Type: multipart/mixed; boundary=outer\n\n"
        "--outer\nContent-Type: text/plain\n\nSee attached.\n"
        "--outer\nContent-Type: message/rfc822\n\n" +
        kStandard + "--outer--\n";
    auto r = parse_complaint(raw);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.format == "arf");
    CHECK(r.original_message_id == "<msg-1@sender.example>");
    CHECK(r.recipients.size() == 2);
}

TEST_CASE("Microsoft JMRP: the attached message says who", "[feedback][hotmail]") {
    auto r = parse_complaint(R"(From: staff@hotmail.com
To: jmrp@sender.example
Subject: complaint about message from 203.0.113.5
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: message/rfc822
Content-Disposition: inline

X-HmXmrOriginalRecipient: <Frank@outlook.example>
From: Sender <news@sender.example>
To: someone-else@outlook.example
Message-ID: <m4@sender.example>
X-Kasi-Id: 0190bb.2
X-OriginalArrivalTime: 3 Mar 2025 10:00:00.0000 (UTC) FILETIME=[1:2]

body
--B--
)");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.format == "hotmail");
    CHECK(r.feedback_type == "abuse");
    CHECK(r.recipients == std::vector<std::string>{"frank@outlook.example"});
    CHECK(r.original_mail_from == "news@sender.example");
    CHECK(r.source_ip == "203.0.113.5");
    CHECK(r.arrival_date == "3 Mar 2025 10:00:00.0000 (UTC)");
    CHECK(r.original_message_id == "<m4@sender.example>");
    REQUIRE(r.original_kasi_headers.size() == 1);
}

TEST_CASE("Apple Mail opt-out: From unsubscribes from To", "[feedback][apple]") {
    auto r = parse_complaint(R"(From: Grace <grace@icloud.example>
To: unsub-7f3a@sender.example
Subject: unsubscribe
In-Reply-To: <m5@sender.example>
Auto-Submitted: auto-replied
X-Apple-Unsubscribe: true

Apple Mail sent this email to unsubscribe from the message.
)");
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.format == "apple-opt-out");
    CHECK(r.feedback_type == "opt-out");
    CHECK(r.recipients == std::vector<std::string>{"grace@icloud.example"});
    CHECK(r.original_mail_from == "unsub-7f3a@sender.example");
    CHECK(r.original_message_id == "<m5@sender.example>");
    CHECK(parse_complaint("From: a@b.example\nX-Apple-Unsubscribe: false\n\nhi\n").kind ==
          Kind::not_complaint);
}

namespace {

const std::string kSesJson =
    R"({"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"heidi@isp.example"},)"
    R"({"emailAddress":"Ivan@isp.example"}],"timestamp":"2025-03-03T10:00:05.000Z","arrivalDate":"2025-03-03T10:00:00.000Z",)"
    R"("userAgent":"ISP FBL","complaintFeedbackType":"abuse"},"mail":{"source":"Bounce <b-1@return.sender.example>",)"
    R"("sourceIp":"192.0.2.99","destination":["heidi@isp.example","ivan@isp.example"],)"
    R"("headers":[{"name":"Message-ID","value":"<m6@sender.example>"},{"name":"X-Kasi-Id","value":"0190cc.3"}]}})";

}  // namespace

TEST_CASE("SES: a Complaint notification, by mail, raw and in an SNS envelope", "[feedback][ses]") {
    auto check = [](const ComplaintReport& r) {
        REQUIRE(r.kind == Kind::complaint);
        CHECK(r.format == "ses-json");
        CHECK(r.feedback_type == "abuse");
        CHECK(r.recipients == std::vector<std::string>{"heidi@isp.example", "ivan@isp.example"});
        CHECK(r.original_mail_from == "b-1@return.sender.example");
        CHECK(r.source_ip.empty());  // mail.sourceIp is the API client, not the sending MTA
        CHECK(r.user_agent == "ISP FBL");
        CHECK(r.arrival_date == "2025-03-03T10:00:00.000Z");
        CHECK(r.original_message_id == "<m6@sender.example>");
        REQUIRE(r.original_kasi_headers.size() == 1);
    };
    // By mail, the long line cut with "!" + LF + space, as mail systems do past 998 octets.
    std::string cut = kSesJson;
    cut.insert(cut.find("ISP FBL") + 3, "!\n ");
    check(
        parse_complaint("From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n"
                        "Content-Type: text/plain\n\n" +
                        cut + "\n\n--\nIf you wish to stop receiving notifications...\n"));
    check(parse_complaint(kSesJson));
    std::string escaped;
    for (char c : kSesJson) {
        if (c == '"') escaped += '\\';
        escaped += c;
    }
    check(
        parse_complaint(R"({"Type":"Notification","MessageId":"x","Message":")" + escaped + "\"}"));
    // SES event publishing says eventType; a missing feedback type is taken as abuse.
    auto ev = kSesJson;
    ev.replace(ev.find("notificationType"), 16, "eventType");
    ev.replace(ev.find(R"("complaintFeedbackType":"abuse")"), 31, R"("x":1)");
    check(parse_complaint(ev));
}

TEST_CASE("SES: other notifications and other JSON are not complaints", "[feedback][ses]") {
    auto r = parse_complaint(R"({"notificationType":"Bounce","bounce":{}})");
    CHECK(r.kind == Kind::not_complaint);
    CHECK(r.why.find("Bounce") != std::string::npos);
    CHECK(parse_complaint(R"({"a":[1,2,3]})").kind == Kind::not_complaint);
    CHECK(parse_complaint("{\"notificationType\":\"Complaint\"").kind == Kind::not_complaint);
    CHECK(parse_complaint(std::string(100000, '[')).kind == Kind::not_complaint);
    CHECK(parse_complaint("{" + std::string(100000, '[')).kind == Kind::not_complaint);
}

TEST_CASE("SES: sisimai's complaint notification", "[feedback][ses]") {
    auto raw = read(KASI_SOURCE_ROOT "/test/data/bounces/emails/lhost-amazonses-11.eml");
    REQUIRE(!raw.empty());
    auto r = parse_complaint(raw);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.format == "ses-json");
    CHECK(r.feedback_type == "abuse");
    CHECK(r.recipients == std::vector<std::string>{"complaint@simulator.amazonses.com"});
    CHECK(r.original_mail_from == "kijitora@neko.example.jp");
}

TEST_CASE("Not complaints: bounces, receipts, plain mail, nothing", "[feedback][arf]") {
    CHECK(parse_complaint("").kind == Kind::not_complaint);
    CHECK(parse_complaint("\r\n\r\n").kind == Kind::not_complaint);
    CHECK(parse_complaint("From: a@b.example\nSubject: hello\n\nHi there\n").kind ==
          Kind::not_complaint);
    // A subject alone says nothing.
    CHECK(parse_complaint("Subject: complaint about message from 192.0.2.1\n\nhi\n").kind ==
          Kind::not_complaint);
    // A bounce of a complaint is a bounce.
    std::string dsn =
        "Content-Type: multipart/report; report-type=delivery-status; boundary=d\n\n"
        "--d\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; fbl@sender.example\nAction: failed\n"
        "Status: 5.1.1\n\n--d\nContent-Type: message/rfc822\n\n" +
        kStandard + "--d--\n";
    auto r = parse_complaint(dsn);
    CHECK(r.kind == Kind::not_complaint);
    CHECK(r.why.find("delivery-status") != std::string::npos);
    r = parse_complaint(
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=m\n\n"
        "--m\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/"
        "MDN-sent-manually; displayed\n--m--\n");
    CHECK(r.kind == Kind::not_complaint);
    // "Feedback-Type:" in a letter, with no other ARF field, is not a report.
    CHECK(parse_complaint("Subject: q\n\nFeedback-Type: abuse\nthanks\n").kind ==
          Kind::not_complaint);
}

TEST_CASE("Bad input: truncated at every point, never a crash", "[feedback][arf][bounded]") {
    for (const auto& full : {kStandard, crlf(kStandard)}) {
        for (size_t n = 0; n <= full.size(); ++n) {
            auto r = parse_complaint(std::string_view(full).substr(0, n));
            REQUIRE(all_one_line(r));
            if (r.kind == Kind::complaint) REQUIRE(!r.feedback_type.empty());
        }
    }
    // Cut inside the returned message: the report's fields survive.
    auto cut = kStandard.substr(0, kStandard.find("Subject: Weekly news\nMessage-ID"));
    auto r = parse_complaint(cut);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.recipients.size() == 2);
    CHECK(r.source_ip == "192.0.2.7");
}

TEST_CASE("Bad input: garbage fields", "[feedback][arf][bounded]") {
    std::string huge(100000, 'A');
    std::string raw =
        "Content-Type: multipart/report; report-type=feedback-report; boundary=g\n\n"
        "--g\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: \x01\x02%%%\n"
        "User-Agent: " +
        huge + "\r\r\x7f\n" +
        "Source-IP: 999.1.2.3\n"
        "Reported-Domain: bad/domain*, ok.example\n"
        "Original-Mail-From: no address here\n"
        "Arrival-Date: \x00\x01\n";
    for (int i = 0; i < 1000; ++i)
        raw += "Original-Rcpt-To: u" + std::to_string(i) + "@isp.example\n";
    raw +=
        "\n--g\nContent-Type: message/rfc822\n\nFrom: <x@sender.example>\nX-Kasi-A: "
        "1\r\n\r\n--g--\n";
    auto r = parse_complaint(raw);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(all_one_line(r));
    CHECK(r.feedback_type == "abuse");
    CHECK(r.user_agent.size() <= 256);
    CHECK(r.source_ip.empty());
    CHECK(r.reported_domains == std::vector<std::string>{"ok.example"});
    CHECK(r.recipients.size() == 100);
    CHECK(r.original_mail_from == "x@sender.example");

    // Binary noise.
    std::string noise;
    for (int i = 0; i < 200000; ++i) noise += char((i * 7919 + 13) % 256);
    CHECK(all_one_line(parse_complaint(noise)));
    CHECK(
        all_one_line(parse_complaint("Content-Type: multipart/report; report-type=feedback-report;"
                                     " boundary=n\n\n--n\n" +
                                     noise)));
}

TEST_CASE("Bad input: a 50 MB body", "[feedback][arf][bounded]") {
    std::string raw = kStandard;
    auto at = raw.find("Hello\n");
    std::string big;
    big.reserve(50u << 20);
    while (big.size() < (50u << 20)) big += "-- spam spam spam spam spam spam spam spam spam --b\n";
    raw.insert(at, big);
    auto t0 = std::chrono::steady_clock::now();
    auto r = parse_complaint(raw);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("a 50 MB report parsed in %.2f s\n", secs);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.recipients.size() == 2);
    CHECK(r.original_message_id == "<msg-1@sender.example>");
    // The same bytes as the feedback-report part itself: read up to the MIME reader's cap.
    std::string fat =
        "Content-Type: multipart/report; report-type=feedback-report; boundary=f\n\n"
        "--f\nContent-Type: message/feedback-report\n\nFeedback-Type: virus\n"
        "User-Agent: v/1\n" +
        big + "--f--\n";
    r = parse_complaint(fat);
    REQUIRE(r.kind == Kind::complaint);
    CHECK(r.feedback_type == "virus");
}

TEST_CASE("Bad input: nesting 20 deep", "[feedback][arf][bounded]") {
    auto nest = [](int depth, const std::string& inner) {
        std::string head, tail;
        for (int i = 0; i < depth; ++i) {
            std::string b = "n" + std::to_string(i);
            head += "Content-Type: multipart/mixed; boundary=" + b + "\n\n--" + b + "\n";
            tail = "\n--" + b + "--\n" + tail;
        }
        return head + inner + tail;
    };
    std::string report =
        "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
        "User-Agent: deep/1\nOriginal-Rcpt-To: deep@isp.example\n";
    for (int depth : {3, 20}) {
        auto r = parse_complaint(nest(depth, report));
        REQUIRE(all_one_line(r));
        if (depth == 3) {
            REQUIRE(r.kind == Kind::complaint);
            CHECK(r.recipients == std::vector<std::string>{"deep@isp.example"});
        }
    }
    // Messages inside messages, 20 deep.
    std::string m = kStandard;
    for (int i = 0; i < 20; ++i)
        m = "Subject: fwd " + std::to_string(i) + "\nContent-Type: message/rfc822\n\n" + m;
    CHECK(all_one_line(parse_complaint(m)));
    // Far beyond: 5000 levels are bounded by the MIME reader's depth limit.
    CHECK(all_one_line(parse_complaint(nest(5000, report))));
}

// --- the corpus ---------------------------------------------------------------------------

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
        f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    return f;
}

// Addresses compare bare and lower-cased (mail-auth's values are the raw fields, with
// angle brackets); sisimai writes this placeholder where a report names no recipient,
// where Kasi reports none.
std::string normal_address(std::string s) {
    s = std::string(trim(s));
    if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
    s = to_lower(s);
    return s == "undisclosed-recipient-in-headers@libsisimai.org.invalid" ? std::string() : s;
}

struct Tally {
    int hits = 0, asserted = 0;
};

// Runs every row of DIR/expected.tsv; prints the misses and the figure per field. True
// when every asserted field agrees.
bool run_corpus(const std::string& dir) {
    static const char* names[] = {"feedback_type", "recipient",       "original_mail_from",
                                  "source_ip",     "reported_domain", "user_agent"};
    std::ifstream in(dir + "/expected.tsv");
    std::string line;
    std::getline(in, line);  // header
    std::map<std::string, ComplaintReport> parsed;
    std::map<std::string, Tally> tally;
    int rows = 0;
    while (std::getline(in, line)) {
        auto f = split_tabs(line);
        if (f.size() < 8) continue;
        ++rows;
        if (!parsed.count(f[0])) parsed[f[0]] = parse_complaint(read(dir + "/emails/" + f[0]));
        const auto& r = parsed[f[0]];
        size_t index = std::stoul(f[1]);
        bool have = r.kind == Kind::complaint &&
                    (index <= r.recipients.size() || (index == 1 && r.recipients.empty()));
        std::string got[6];
        if (have) {
            got[0] = r.feedback_type;
            got[1] = r.recipients.empty() ? "" : r.recipients[index - 1];
            got[2] = r.original_mail_from;
            got[3] = r.source_ip;
            got[4] = r.reported_domains.empty() ? "" : r.reported_domains[0];
            got[5] = r.user_agent;
        }
        for (int k = 0; k < 6; ++k) {
            std::string want = f[2 + k];
            if (want.empty()) continue;
            std::string g = got[k];
            if (k == 1 || k == 2) {
                want = normal_address(want);
                g = normal_address(g);
            }
            bool ok = have && g == want;
            auto& t = tally[names[k]];
            ++t.asserted;
            t.hits += ok;
            if (!ok)
                std::printf("  miss %s #%zu %s: expected '%s', got '%s'%s\n", f[0].c_str(), index,
                            names[k], want.c_str(), g.c_str(), have ? "" : " (no such row)");
        }
    }
    std::printf("ARF corpus %s: %d rows, %zu files\n", dir.c_str(), rows, parsed.size());
    bool all = rows > 0;
    for (auto* n : names) {
        const auto& t = tally[n];
        std::printf("  %-19s %d/%d (%.1f%%)\n", n, t.hits, t.asserted,
                    t.asserted ? 100.0 * t.hits / t.asserted : 100.0);
        all = all && t.hits == t.asserted;
    }
    return all;
}

}  // namespace

TEST_CASE("corpus: test/data/arf, every asserted field", "[feedback][arf][corpus]") {
    CHECK(run_corpus(KASI_SOURCE_ROOT "/test/data/arf"));
}

TEST_CASE("corpus: shared/corpora/arf next to the source tree", "[feedback][arf][corpus]") {
    const char* env = std::getenv("KASI_CORPORA");  // else the developer copy's place
    std::string corpora = env && *env ? env : KASI_SOURCE_ROOT "/../shared/corpora";
    std::string dir = corpora + "/arf";
    if (!std::filesystem::exists(dir + "/expected.tsv")) {
        WARN("skipped: no " << dir << " (the developer copy of the corpora)");
        return;
    }
    CHECK(run_corpus(dir));
}

TEST_CASE("corpus: no message of the bounce corpus is a complaint but SES's notification",
          "[feedback][arf][corpus]") {
    int complaints = 0, files = 0;
    for (std::string sub : {"emails", "not-bounce"}) {
        std::string dir = KASI_SOURCE_ROOT "/test/data/bounces/" + sub;
        REQUIRE(std::filesystem::exists(dir));
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            ++files;
            auto r = parse_complaint(read(e.path().string()));
            if (r.kind != Kind::complaint) continue;
            ++complaints;
            std::printf("  bounce corpus complaint: %s (%s)\n", e.path().filename().c_str(),
                        r.format.c_str());
            CHECK(r.format == "ses-json");
        }
    }
    std::printf("bounce corpus: %d of %d messages are complaints\n", complaints, files);
    CHECK(files > 300);
}
