#include "plugins/dkim/signer.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include "core/smtp/headers.h"
#include "core/tls/ssl_ptr.h"
#include "core/util/base64.h"
#include "core/util/strings.h"

namespace kasi::dkim {

namespace {

class ShaSink : public BodySink {
  public:
    explicit ShaSink(int64_t limit) : ctx_(EVP_MD_CTX_new()), left_(limit) {
        EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
    }
    void put(std::string_view b) override {
        if (left_ >= 0) {
            if (left_ == 0) return;
            if (int64_t(b.size()) > left_) b = b.substr(0, size_t(left_));
            left_ -= int64_t(b.size());
        }
        EVP_DigestUpdate(ctx_.get(), b.data(), b.size());
    }
    std::string digest() {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx_.get(), d, &n);
        return std::string(reinterpret_cast<char*>(d), n);
    }

  private:
    MdCtxPtr ctx_;
    int64_t left_;
};

struct Span {
    std::string_view name;
    size_t start, end;
    bool used = false;
};

std::string_view body_of(std::string_view m) {
    size_t end = for_each_header_field(m, [](std::string_view, size_t, size_t) {});
    if (m.substr(end, 2) == "\r\n") return m.substr(end + 2);
    return m.substr(end);
}

// "h=" value: names joined by ':', folded before a ':' when a line would grow too long.
std::string h_list(const std::vector<std::string>& names) {
    std::string out;
    size_t line = 3;  // "\th="
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) {
            if (line + names[i].size() + 1 > 76) {
                out += "\r\n\t";
                line = 1;
            }
            out += ':';
            ++line;
        }
        out += names[i];
        line += names[i].size();
    }
    return out;
}

std::string wrap_b64(std::string_view b) {
    std::string out;
    size_t first = 73;  // "\tb=" + 73 = 76 columns
    for (size_t pos = 0; pos < b.size();) {
        size_t n = pos == 0 ? first : 75;
        if (pos > 0) out += "\r\n\t";
        out.append(b.substr(pos, n));
        pos += n;
    }
    return out;
}

}  // namespace

std::string body_hash(std::string_view message, Canon c, int64_t limit) {
    ShaSink sink(limit);
    canon_body(c, body_of(message), sink);
    return base64_encode(sink.digest());
}

namespace {

std::vector<Span> index_headers(std::string_view m) {
    std::vector<Span> spans;
    spans.reserve(32);
    for_each_header_field(m, [&](std::string_view name, size_t s, size_t e) {
        spans.push_back({name, s, e});
    });
    return spans;
}

// `spans` is taken by value: its `used` marks are this signature's.
std::string hash_input(std::string_view m, std::vector<Span> spans, Canon c,
                       const std::vector<std::string>& h, std::string_view sig_field) {
    std::string out;
    out.reserve(1024);
    for (const auto& name : h) {
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
            if (it->used || !iequals(it->name, name)) continue;
            it->used = true;
            canon_header(c, m.substr(it->start, it->end - it->start), out);
            break;
        }
    }
    canon_header(c, sig_field, out);
    if (c == Canon::relaxed && out.ends_with("\r\n")) out.resize(out.size() - 2);
    return out;
}

}  // namespace

std::string header_hash_input(std::string_view m, Canon c, const std::vector<std::string>& h,
                              std::string_view sig_field) {
    return hash_input(m, index_headers(m), c, h, sig_field);
}

std::string strip_b_value(std::string_view f) {
    // Tags start after the colon or a ';'; find the one whose name is exactly "b".
    size_t pos = f.find(':');
    while (pos != std::string_view::npos && pos < f.size()) {
        size_t i = pos + 1;
        while (i < f.size() && (f[i] == ' ' || f[i] == '\t' || f[i] == '\r' || f[i] == '\n')) ++i;
        size_t name_end = i;
        while (name_end < f.size() && f[name_end] != '=' && f[name_end] != ';' &&
               f[name_end] != ' ' && f[name_end] != '\t' && f[name_end] != '\r')
            ++name_end;
        size_t eq = name_end;
        while (eq < f.size() && (f[eq] == ' ' || f[eq] == '\t' || f[eq] == '\r' || f[eq] == '\n'))
            ++eq;
        size_t next = f.find(';', i);
        if (f.substr(i, name_end - i) == "b" && eq < f.size() && f[eq] == '=') {
            size_t vend = next == std::string_view::npos ? f.size() : next;
            // keep a final CRLF (it is not part of the value)
            std::string out(f.substr(0, eq + 1));
            if (next == std::string_view::npos && f.ends_with("\r\n")) vend = f.size() - 2;
            out.append(f.substr(vend));
            return out;
        }
        pos = next;
    }
    return std::string(f);
}

std::vector<std::pair<std::string, std::string>> parse_tags(std::string_view list) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto part : split_list(list, ";")) {
        size_t eq = part.find('=');
        if (eq == std::string::npos) continue;
        std::string name(trim(std::string_view(part).substr(0, eq)));
        std::string value;
        for (char c : std::string_view(part).substr(eq + 1))
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value.push_back(c);
        out.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

namespace {

std::optional<std::string> sign_one(std::string_view m, const std::vector<Span>& spans,
                                    const SignSpec& s, const std::string& bh, std::string& err) {
    // The names in h=: every present instance of each listed header, bottom-up as the
    // verifier will pick them, then the over-signed names once more.
    auto count = [&](std::string_view name) {
        int n = 0;
        for (const auto& sp : spans) n += iequals(sp.name, name);
        return n;
    };
    if (count("from") == 0) {
        err = "the message has no From header";
        return std::nullopt;
    }
    std::vector<std::string> h;
    for (size_t i = 0; i < s.headers.size(); ++i) {
        const auto& name = s.headers[i];
        bool seen = false;  // a name listed twice is signed once
        for (size_t j = 0; j < i; ++j) seen |= s.headers[j] == name;
        if (seen) continue;
        for (int k = count(name); k > 0; --k) h.push_back(name);
    }
    for (const auto& name : s.oversign) h.push_back(name);
    // Short tags fill lines of up to 76 columns; h=, bh= and b= start lines of their own.
    std::string field = "DKIM-Signature:";
    size_t col = field.size();
    auto add = [&](const std::string& t, bool own_line) {
        if (own_line || col + 1 + t.size() > 76) {
            field += "\r\n\t";
            col = 1;
        } else {
            field += ' ';
            ++col;
        }
        field += t;
        col += t.size();
    };
    add("v=1;", false);
    add(fmt::format("a={};", s.key->algorithm()), false);
    add(fmt::format("c={}/{};", canon_name(s.header), canon_name(s.body)), false);
    add(fmt::format("d={};", s.domain), false);
    add(fmt::format("s={};", s.selector), false);
    if (s.timestamp > 0) add(fmt::format("t={};", s.timestamp), false);
    if (s.expire > 0) add(fmt::format("x={};", s.expire), false);
    add(fmt::format("h={};", h_list(h)), true);
    add(fmt::format("bh={};", bh), true);
    add("b=", true);
    auto sig = s.key->sign(hash_input(m, spans, s.header, h, field));
    if (!sig) {
        err = "signing failed: " + ssl_errors("unknown error");
        return std::nullopt;
    }
    field += wrap_b64(base64_encode(*sig));
    field += "\r\n";
    return field;
}

}  // namespace

std::optional<std::string> sign_message(std::string_view m, const SignSpec& s, std::string& err) {
    return sign_one(m, index_headers(m), s, body_hash(m, s.body), err);
}

std::optional<std::string> sign_message(std::string_view m, const std::vector<SignSpec>& specs,
                                        std::string& err) {
    std::string out, bh[2];
    auto spans = index_headers(m);
    for (const auto& s : specs) {
        std::string& h = bh[int(s.body)];
        if (h.empty()) h = body_hash(m, s.body);
        auto f = sign_one(m, spans, s, h, err);
        if (!f) return std::nullopt;
        out += *f;
    }
    return out;
}

}  // namespace kasi::dkim
