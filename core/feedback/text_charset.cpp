#include "core/feedback/text_charset.h"

#include <iconv.h>

#include <cerrno>

#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t kMaxOut = 4 << 20;  // bytes of UTF-8 one conversion may produce

// The iconv handle, closed however the conversion ends.
struct Iconv {
    iconv_t cd;
    explicit Iconv(const std::string& from) : cd(iconv_open("UTF-8", from.c_str())) {}
    ~Iconv() {
        if (ok()) iconv_close(cd);
    }
    Iconv(const Iconv&) = delete;
    Iconv& operator=(const Iconv&) = delete;
    bool ok() const { return cd != reinterpret_cast<iconv_t>(-1); }
};

bool ascii_only(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80 || c == 0x1b) return false;
    return true;
}

bool needs_no_conversion(const std::string& cs) {
    return cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii";
}

}  // namespace

std::string to_utf8(std::string_view text, std::string_view charset) {
    auto cs = to_lower(trim(charset));
    if (needs_no_conversion(cs) || ascii_only(text)) return std::string(text);
    Iconv conv(cs);
    if (!conv.ok()) return std::string(text);
    std::string out;
    out.resize(std::min(kMaxOut, text.size() * 4 + 16));
    char* in = const_cast<char*>(text.data());
    size_t in_left = text.size();
    char* o = out.data();
    size_t out_left = out.size();
    while (in_left > 0) {
        if (iconv(conv.cd, &in, &in_left, &o, &out_left) != size_t(-1)) break;
        if (errno == E2BIG) break;  // the cap: keep what fits
        // EILSEQ or EINVAL: skip the byte that does not convert, start the shift state over
        ++in;
        --in_left;
        iconv(conv.cd, nullptr, nullptr, nullptr, nullptr);
    }
    iconv(conv.cd, nullptr, nullptr, &o, &out_left);  // back to the initial shift state
    out.resize(out.size() - out_left);
    return out;
}

std::string iso2022_to_utf8(std::string_view text) {
    for (std::string_view esc : {"\x1b$B", "\x1b$@", "\x1b(J"})
        if (text.find(esc) != std::string_view::npos) return to_utf8(text, "ISO-2022-JP");
    return std::string(text);
}

namespace {

// The part mime::human_text() reads (its rule: the first non-empty part of that type outside
// any returned message).
const mime::Part* first_text(const mime::Part& p, std::string_view type) {
    if (p.content_type.is(type) && !trim(p.body).empty()) return &p;
    if (p.is_message() && p.parent) return nullptr;
    for (const auto& c : p.children)
        if (auto* t = first_text(c, type)) return t;
    return nullptr;
}

}  // namespace

std::string human_text_utf8(const mime::Part& top) {
    auto text = mime::human_text(top);
    const mime::Part* p = first_text(top, "text/plain");
    if (!p) p = first_text(top, "text/html");
    auto cs = p ? p->content_type.param("charset") : std::string_view();
    auto out = to_utf8(text, cs);
    return to_lower(cs).find("2022") == std::string::npos ? iso2022_to_utf8(out) : out;
}

}  // namespace kasi
