#include <catch2/catch.hpp>

#include "core/smtp/data_reader.h"
#include "core/smtp/headers.h"

using namespace kasi;

static DataReader::Status feed_all(DataReader& r, const std::string& in, std::string& body,
                                   size_t step = 0) {
    size_t pos = 0;
    std::string buf;
    DataReader::Status st = DataReader::Status::more;
    if (step == 0) return r.feed(in, pos, body);
    // Deliver in small pieces, as a network would.
    for (size_t i = 0; i < in.size(); i += step) {
        buf.append(in, i, step);
        st = r.feed(buf, pos, body);
        if (st != DataReader::Status::more) return st;
    }
    return st;
}

TEST_CASE("DATA: end marker and dot-unstuffing, whatever the read boundaries") {
    std::string in = "Subject: x\r\n\r\n..leading dot\r\n.\r\nMAIL FROM:<a@b>\r\n";
    for (size_t step : {0, 1, 2, 3, 7}) {
        DataReader r;
        r.reset(1000, 992);
        std::string body;
        CHECK(feed_all(r, in, body, step) == DataReader::Status::done);
        CHECK(body == "Subject: x\r\n\r\n.leading dot\r\n");
    }
}

TEST_CASE("DATA: bare LF is refused (SMTP smuggling)") {
    for (std::string in : {"a\r\n\n.\r\n", "a\r\n.\n", "line\nmore\r\n.\r\n"}) {
        DataReader r;
        r.reset(1000, 992);
        std::string body;
        size_t pos = 0;
        CHECK(r.feed(in, pos, body) == DataReader::Status::bare_lf);
    }
}

TEST_CASE("DATA: size limit marks the message and keeps reading to the end") {
    DataReader r;
    r.reset(10, 992);
    std::string body, in = "0123456789abcdef\r\nmore\r\n.\r\n";
    size_t pos = 0;
    CHECK(r.feed(in, pos, body) == DataReader::Status::done);
    CHECK(r.too_big());
    CHECK(pos == in.size());
}

TEST_CASE("DATA: long lines are wrapped") {
    DataReader r;
    r.reset(100000, 10);
    std::string body, in = std::string(25, 'x') + "\r\n.\r\n";
    size_t pos = 0;
    CHECK(r.feed(in, pos, body) == DataReader::Status::done);
    CHECK(r.wrapped());
    CHECK(body == std::string(10, 'x') + "\r\n " + std::string(9, 'x') + "\r\n " +
                      std::string(6, 'x') + "\r\n");
}

TEST_CASE("headers: facts") {
    auto f =
        scan_headers("Received: a\r\n\tb\r\nreceived: c\r\nMessage-Id: <x>\r\n\r\nDate: no\r\n");
    CHECK(f.received == 2);
    CHECK(f.has_message_id);
    CHECK_FALSE(f.has_date);
}
