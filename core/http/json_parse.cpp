#include "core/http/json_parse.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>

#include <fmt/format.h>

namespace kasi {

namespace {

using rapidjson::SizeType;

// Forwards the reader's events to `inner` (the document being built) and stops the parse
// (the handler returns false: kParseErrorTermination) at the first array or object that
// opens one level too many.
template <typename Inner>
class DepthLimit {
  public:
    DepthLimit(Inner& inner, size_t max) : in_(inner), max_(max) {}
    bool too_deep() const { return too_deep_; }

    bool Null() { return in_.Null(); }
    bool Bool(bool b) { return in_.Bool(b); }
    bool Int(int i) { return in_.Int(i); }
    bool Uint(unsigned u) { return in_.Uint(u); }
    bool Int64(int64_t i) { return in_.Int64(i); }
    bool Uint64(uint64_t u) { return in_.Uint64(u); }
    bool Double(double d) { return in_.Double(d); }
    bool RawNumber(const char* s, SizeType n, bool copy) { return in_.RawNumber(s, n, copy); }
    bool String(const char* s, SizeType n, bool copy) { return in_.String(s, n, copy); }
    bool Key(const char* s, SizeType n, bool copy) { return in_.Key(s, n, copy); }
    bool StartObject() { return open() && in_.StartObject(); }
    bool EndObject(SizeType n) { return --depth_, in_.EndObject(n); }
    bool StartArray() { return open() && in_.StartArray(); }
    bool EndArray(SizeType n) { return --depth_, in_.EndArray(n); }

  private:
    bool open() {
        if (++depth_ <= max_) return true;
        too_deep_ = true;
        return false;
    }
    Inner& in_;
    size_t max_;
    size_t depth_ = 0;
    bool too_deep_ = false;
};

// What every text is checked for before the parser sees it: the size, and NUL (never valid
// in JSON text, and the end of input to RapidJSON's streams, which would hide what follows).
bool precheck(std::string_view text, const JsonLimits& limits, std::string& err) {
    if (text.size() > limits.max_bytes) {
        err =
            fmt::format("JSON of {} bytes is over the limit of {}", text.size(), limits.max_bytes);
        return false;
    }
    if (const void* nul = std::memchr(text.data(), 0, text.size())) {
        err = fmt::format("malformed JSON at offset {}: a NUL byte",
                          static_cast<const char*>(nul) - text.data());
        return false;
    }
    return true;
}

template <unsigned extra_flags, typename Stream>
bool parse_stream(rapidjson::Document& doc, Stream& is, const JsonLimits& limits,
                  std::string& err) {
    constexpr unsigned flags =
        extra_flags | rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
    rapidjson::ParseResult res;
    bool too_deep = false;
    auto generate = [&](rapidjson::Document& d) {
        DepthLimit<rapidjson::Document> h(d, limits.max_depth);
        rapidjson::Reader reader;
        res = reader.Parse<flags>(is, h);
        too_deep = h.too_deep();
        return !res.IsError();
    };
    doc.Populate(generate);
    if (!res.IsError()) return true;
    doc.SetNull();
    if (too_deep)
        err = fmt::format("JSON nested deeper than {} levels at offset {}", limits.max_depth,
                          res.Offset());  // where the bracket of one level too many is
    else
        err = fmt::format("malformed JSON at offset {}: {}", res.Offset(),
                          rapidjson::GetParseError_En(res.Code()));
    return false;
}

}  // namespace

bool parse_json_insitu(rapidjson::Document& doc, std::string& text, const JsonLimits& limits,
                       std::string& err) {
    if (!precheck(text, limits, err)) return doc.SetNull(), false;
    // RapidJSON's UTF-8 validation takes every continuation byte a lead byte announces
    // before it looks at them, so a text ending in a lead byte would be read up to three
    // bytes past its NUL: pad with NULs (the parse stops at the first), then drop them
    // (shrinking keeps the buffer the document's strings point into).
    text.append(3, '\0');
    rapidjson::InsituStringStream is(text.data());
    bool ok = parse_stream<rapidjson::kParseInsituFlag>(doc, is, limits, err);
    text.resize(text.size() - 3);
    return ok;
}

bool parse_json(rapidjson::Document& doc, std::string_view text, const JsonLimits& limits,
                std::string& err) {
    if (!precheck(text, limits, err)) return doc.SetNull(), false;
    rapidjson::MemoryStream is(text.data(), text.size());  // Peek() is '\0' at the end
    return parse_stream<0>(doc, is, limits, err);
}

}  // namespace kasi
