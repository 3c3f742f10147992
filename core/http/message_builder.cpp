#include "core/http/message_builder.h"

#include <openssl/rand.h>

#include <cstring>

#include <fmt/format.h>

#include "core/util/base64.h"

namespace kasi {

namespace {

bool plain_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 127 || (c < 32 && c != '\t')) return false;
    return true;
}

// Short-lined 7-bit text can go as is; anything else is quoted-printable. Line by line
// (memchr finds the ends); each line's bytes are checked without an early exit, which the
// compiler vectorises.
bool needs_qp(std::string_view crlf_text) {
    const char* p = crlf_text.data();
    const char* end = p + crlf_text.size();
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        const char* stop = nl ? nl : end;
        if (nl && (nl == p || nl[-1] != '\r')) return true;  // a bare LF
        const char* last = nl ? nl - 1 : end;                // the line without its CR
        if (last - p > 900) return true;
        bool bad = false;
        for (const char* q = p; q < last; ++q) {
            unsigned char c = static_cast<unsigned char>(*q);
            bad |= (c >= 127) | (c == 0) | (c == '\r');
        }
        if (bad) return true;
        p = stop + (nl ? 1 : 0);
    }
    return false;
}

std::string boundary() {
    unsigned char raw[12];
    RAND_bytes(raw, sizeof raw);
    std::string b = "=_kasi_";
    for (unsigned char c : raw) b += fmt::format("{:02x}", c);
    return b;
}

std::string text_part(std::string_view subtype, const std::string& body) {
    std::string crlf = to_crlf(body);
    if (!crlf.empty() && !crlf.ends_with("\r\n")) crlf += "\r\n";
    if (!needs_qp(crlf))
        return fmt::format(
            "Content-Type: text/{}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n{}",
            subtype, crlf);
    return fmt::format(
        "Content-Type: text/{}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n{}",
        subtype, quoted_printable(crlf));
}

std::string wrap76(const std::string& b64) {
    std::string out;
    out.reserve(b64.size() + b64.size() / 76 * 2 + 2);
    for (size_t i = 0; i < b64.size(); i += 76) out.append(b64, i, 76).append("\r\n");
    return out;
}

// RFC 2231 for a non-ASCII or awkward file name, a quoted string otherwise.
std::string filename_param(const std::string& name) {
    bool simple = plain_ascii(name) && name.find_first_of("\"\\") == std::string::npos;
    if (simple) return fmt::format("filename=\"{}\"", name);
    std::string enc;
    for (unsigned char c : name) {
        if (isalnum(c) || std::string_view("!#$&+-.^_`|~").find(char(c)) != std::string_view::npos)
            enc += char(c);
        else
            enc += fmt::format("%{:02X}", c);
    }
    return fmt::format("filename*=utf-8''{}", enc);
}

std::string attachment_part(const Attachment& a) {
    std::string h =
        fmt::format("Content-Type: {}\r\nContent-Transfer-Encoding: base64\r\n", a.content_type);
    std::string disp = a.content_id.empty() ? "attachment" : "inline";
    h += a.filename.empty()
             ? fmt::format("Content-Disposition: {}\r\n", disp)
             : fmt::format("Content-Disposition: {}; {}\r\n", disp, filename_param(a.filename));
    if (!a.content_id.empty()) h += fmt::format("Content-ID: <{}>\r\n", a.content_id);
    return h + "\r\n" + wrap76(base64_encode(a.data));
}

std::string multipart(std::string_view subtype, const std::vector<std::string>& parts) {
    std::string b = boundary();
    std::string out =
        fmt::format("Content-Type: multipart/{}; boundary=\"{}\"\r\n\r\n", subtype, b);
    for (const auto& p : parts) out += fmt::format("--{}\r\n{}\r\n", b, p);
    out += fmt::format("--{}--\r\n", b);
    return out;
}

std::string address_list(const std::vector<MailAddr>& list) {
    std::string out;
    for (size_t i = 0; i < list.size(); ++i) out += (i ? ",\r\n " : "") + list[i].header_form();
    return out;
}

}  // namespace

std::string MailAddr::header_form() const {
    if (name.empty()) return email;
    if (!plain_ascii(name)) return fmt::format("{} <{}>", encode_word(name), email);
    std::string q;
    for (char c : name) {
        if (c == '"' || c == '\\') q += '\\';
        q += c;
    }
    return fmt::format("\"{}\" <{}>", q, email);
}

std::string encode_word(std::string_view text) {
    if (plain_ascii(text)) return std::string(text);
    // Encoded words are at most 75 characters: 45 bytes of UTF-8 each, never split inside a
    // character.
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        size_t n = std::min<size_t>(45, text.size() - i);
        while (i + n < text.size() && n > 0 &&
               (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80)
            --n;
        if (n == 0) n = std::min<size_t>(45, text.size() - i);
        out += (out.empty() ? "" : "\r\n ") +
               fmt::format("=?utf-8?B?{}?=", base64_encode(text.substr(i, n)));
        i += n;
    }
    return out;
}

std::string quoted_printable(std::string_view text) {
    std::string out;
    size_t col = 0;
    auto put = [&](std::string_view s) {
        if (col + s.size() > 75) {
            out += "=\r\n";
            col = 0;
        }
        out += s;
        col += s.size();
    };
    for (size_t i = 0; i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
            out += "\r\n";
            col = 0;
            ++i;
            continue;
        }
        bool line_end = i + 1 == text.size() || text[i + 1] == '\r';
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
        // A leading '.' or "From " is escaped too, so no transport can mangle it.
        if (literal && col == 0 && c == '.') literal = false;
        if (literal) {
            char ch = char(c);
            put(std::string_view(&ch, 1));
        } else {
            put(fmt::format("={:02X}", c));
        }
    }
    return out;
}

std::string to_crlf(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 40);
    const char* p = text.data();
    const char* end = p + text.size();
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        const char* stop = nl ? nl : end;
        // bare CRs before the line end become CRLF; a CR right before the LF is its pair
        bool paired = false;
        while (const char* cr = static_cast<const char*>(std::memchr(p, '\r', size_t(stop - p)))) {
            out.append(p, cr).append("\r\n");
            p = cr + 1;
            if (p == nl) {  // CR LF: one line end, already written
                p = nl + 1;
                paired = true;
                break;
            }
        }
        if (paired) continue;
        out.append(p, stop);
        if (nl) out.append("\r\n");
        p = stop + (nl ? 1 : 0);
    }
    return out;
}

std::string substitute(std::string_view text, const std::map<std::string, std::string>& subs,
                       bool html) {
    std::string out;
    size_t pos = 0;
    while (true) {
        size_t open = text.find("{{", pos);
        size_t close = open == std::string_view::npos ? open : text.find("}}", open + 2);
        if (close == std::string_view::npos) break;
        out.append(text, pos, open - pos);
        std::string_view key = text.substr(open + 2, close - open - 2);
        while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
        while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
        auto it = subs.find(std::string(key));
        if (it != subs.end()) {
            if (!html) {
                out += it->second;
            } else {
                for (char c : it->second) {
                    switch (c) {
                        case '&':
                            out += "&amp;";
                            break;
                        case '<':
                            out += "&lt;";
                            break;
                        case '>':
                            out += "&gt;";
                            break;
                        case '"':
                            out += "&quot;";
                            break;
                        case '\'':
                            out += "&#39;";
                            break;
                        default:
                            out += c;
                    }
                }
            }
        }
        pos = close + 2;
    }
    out.append(text, pos);
    return out;
}

std::string build_message(const MessageFields& f, const std::string& message_id,
                          const std::string& date) {
    std::string h = fmt::format("From: {}\r\n", f.from.header_form());
    if (!f.to.empty()) h += fmt::format("To: {}\r\n", address_list(f.to));
    if (!f.cc.empty()) h += fmt::format("Cc: {}\r\n", address_list(f.cc));
    if (!f.reply_to.empty()) h += fmt::format("Reply-To: {}\r\n", address_list(f.reply_to));
    h += fmt::format("Subject: {}\r\nDate: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\n",
                     encode_word(f.subject), date, message_id);
    for (const auto& [k, v] : f.headers) h += fmt::format("{}: {}\r\n", k, v);
    std::string body;
    std::vector<std::string> alts;
    if (f.has_text) alts.push_back(text_part("plain", f.text));
    if (f.has_html) alts.push_back(text_part("html", f.html));
    if (alts.empty() && f.attachments.empty()) alts.push_back(text_part("plain", ""));
    std::string main = alts.size() > 1 ? multipart("alternative", alts)
                       : alts.empty()  ? std::string()
                                       : alts[0];
    if (f.attachments.empty()) return h + main;
    std::vector<std::string> parts;
    if (!main.empty()) parts.push_back(std::move(main));
    for (const auto& a : f.attachments) parts.push_back(attachment_part(a));
    return h + multipart("mixed", parts);
}

}  // namespace kasi
