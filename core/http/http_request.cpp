#include "core/http/http_request.h"

#include <climits>

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

const std::string* HttpRequest::header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
        if (k == lower_name) return &v;
    return nullptr;
}

std::string HttpRequest::query_param(std::string_view name) const {
    for (const auto& pair : split_list(query, "&")) {
        auto eq = pair.find('=');
        std::string key, val;
        if (!percent_decode(std::string_view(pair).substr(0, eq), key, true)) continue;
        if (key != name) continue;
        if (eq != std::string::npos &&
            percent_decode(std::string_view(pair).substr(eq + 1), val, true))
            return val;
        return {};
    }
    return {};
}

bool HttpRequest::query_pairs(std::vector<std::pair<std::string, std::string>>& out) const {
    for (const auto& part : split_list(query, "&")) {
        auto eq = part.find('=');
        std::string k, v;
        if (!percent_decode(std::string_view(part).substr(0, eq), k, true) ||
            (eq != std::string::npos &&
             !percent_decode(std::string_view(part).substr(eq + 1), v, true)))
            return false;
        out.emplace_back(std::move(k), std::move(v));
    }
    return true;
}

bool percent_decode(std::string_view in, std::string& out, bool plus_space) {
    out.clear();
    auto hexv = [](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '+' && plus_space) {
            out += ' ';
        } else if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hexv(in[i + 1]), lo = hexv(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out += char(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return true;
}

RequestParser::RequestParser() {
    http_parser_settings_init(&settings_);
    settings_.on_message_begin = on_message_begin;
    settings_.on_url = on_url;
    settings_.on_header_field = on_header_field;
    settings_.on_header_value = on_header_value;
    settings_.on_headers_complete = on_headers_complete;
    settings_.on_body = on_body;
    settings_.on_message_complete = on_message_complete;
    reset();
}

void RequestParser::set_limits(size_t max_header, size_t max_body, size_t max_batch_body) {
    max_header_ = max_header;
    max_body_ = max_body;
    max_batch_ = max_batch_body;
}

void RequestParser::reset() {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    req_ = HttpRequest{};
    url_.clear();
    in_value_ = started_ = complete_ = continue_ = false;
    header_bytes_ = 0;
    body_limit_ = 0;
    status_ = 0;
    error_.clear();
}

RequestParser::State RequestParser::feed(const char* data, size_t n, size_t& used) {
    used = http_parser_execute(&parser_, &settings_, data, n);
    if (complete_) {
        http_parser_pause(&parser_, 0);
        return State::done;
    }
    if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
        if (status_ == 0) {
            status_ = 400;
            error_ = fmt::format("malformed request: {}",
                                 http_errno_description(HTTP_PARSER_ERRNO(&parser_)));
        }
        return State::error;
    }
    return State::more;
}

int RequestParser::fail(int status, std::string why) {
    status_ = status;
    error_ = std::move(why);
    return -1;  // stops the parser with a callback error (1 would mean "no body" after headers)
}

bool RequestParser::header_budget(size_t n) {
    header_bytes_ += n;
    return header_bytes_ <= max_header_;
}

int RequestParser::on_message_begin(http_parser* p) {
    static_cast<RequestParser*>(p->data)->started_ = true;
    return 0;
}

int RequestParser::on_url(http_parser* p, const char* at, size_t n) {
    auto* self = static_cast<RequestParser*>(p->data);
    if (!self->header_budget(n)) return self->fail(431, "request line and headers too large");
    self->url_.append(at, n);
    return 0;
}

int RequestParser::on_header_field(http_parser* p, const char* at, size_t n) {
    auto* self = static_cast<RequestParser*>(p->data);
    if (!self->header_budget(n)) return self->fail(431, "request headers too large");
    if (self->in_value_ || self->req_.headers.empty()) self->req_.headers.emplace_back();
    self->in_value_ = false;
    self->req_.headers.back().first += to_lower(std::string_view(at, n));
    return 0;
}

int RequestParser::on_header_value(http_parser* p, const char* at, size_t n) {
    auto* self = static_cast<RequestParser*>(p->data);
    if (!self->header_budget(n)) return self->fail(431, "request headers too large");
    self->in_value_ = true;
    self->req_.headers.back().second.append(at, n);
    return 0;
}

int RequestParser::on_headers_complete(http_parser* p) {
    auto* self = static_cast<RequestParser*>(p->data);
    auto& r = self->req_;
    r.method = http_method_str(http_method(p->method));
    r.keep_alive = http_should_keep_alive(p) != 0;
    if (p->http_major != 1) return self->fail(505, "only HTTP/1.x is served");
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(self->url_.data(), self->url_.size(), 0, &u) != 0)
        return self->fail(400, "malformed request target");
    std::string_view url(self->url_);
    if (u.field_set & (1 << UF_PATH)) {
        if (!percent_decode(url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len),
                            r.path, false))
            return self->fail(400, "malformed percent-escape in the path");
    }
    if (u.field_set & (1 << UF_QUERY))
        r.query = url.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    self->body_limit_ = r.path == "/api/v1/send/batch" ? self->max_batch_ : self->max_body_;
    // Content-Length is known before any body byte arrives: refuse at once.
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > self->body_limit_)
        return self->fail(413, fmt::format("request body of {} bytes exceeds the limit of {}",
                                           p->content_length, self->body_limit_));
    if (p->content_length > 0 && p->content_length != ULLONG_MAX)
        r.body.reserve(size_t(p->content_length));
    if (const std::string* e = r.header("expect"); e && iequals(*e, "100-continue"))
        self->continue_ = true;
    return 0;
}

int RequestParser::on_body(http_parser* p, const char* at, size_t n) {
    auto* self = static_cast<RequestParser*>(p->data);
    if (self->req_.body.size() + n > self->body_limit_)
        return self->fail(
            413, fmt::format("request body exceeds the limit of {} bytes", self->body_limit_));
    self->req_.body.append(at, n);
    return 0;
}

int RequestParser::on_message_complete(http_parser* p) {
    auto* self = static_cast<RequestParser*>(p->data);
    self->complete_ = true;
    http_parser_pause(p, 1);
    return 0;
}

}  // namespace kasi
