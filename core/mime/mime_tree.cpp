#include "core/mime/mime_tree.h"

#include "core/mime/transfer_decode.h"
#include "core/util/strings.h"

namespace kasi::mime {

namespace {

struct Reader {
    const Limits& limits;
    size_t parts = 0;

    void read_part(Part& p, std::string_view raw, size_t depth, bool digest_child);
    void read_body(Part& p, std::string_view body, size_t depth);
    void split(Part& p, std::string_view body, size_t depth);
    void decode_leaf(Part& p, std::string_view body);
};

bool text_like(const ContentType& ct) {
    const auto& t = ct.type;
    return t.rfind("text/", 0) == 0 || t.rfind("message/", 0) == 0 ||
           t == "application/octet-stream" || t == "application/x-delivery-status";
}

// The offsets of each delimiter line "--boundary" (at a line start) in body.
struct Delimiter {
    size_t line_start, next_line;
    bool close;
};

std::vector<Delimiter> delimiters(std::string_view body, std::string_view boundary,
                                  size_t max_count) {
    std::vector<Delimiter> out;
    std::string marker = "--" + std::string(boundary);
    size_t pos = 0;
    while (out.size() < max_count) {
        size_t at = body.find(marker, pos);
        if (at == std::string_view::npos) break;
        pos = at + marker.size();
        if (at != 0 && body[at - 1] != '\n') continue;
        size_t nl = body.find('\n', pos);
        size_t next = nl == std::string_view::npos ? body.size() : nl + 1;
        bool close = body.substr(pos, 2) == "--";
        out.push_back({at, next, close});
        if (close) break;
        pos = next;
    }
    return out;
}

// A part's content ends before the line end that precedes the next delimiter.
std::string_view between(std::string_view body, size_t from, size_t to) {
    if (to > from && body[to - 1] == '\n') --to;
    if (to > from && body[to - 1] == '\r') --to;
    return body.substr(from, to - from);
}

void Reader::split(Part& p, std::string_view body, size_t depth) {
    auto boundary = p.content_type.param("boundary");
    auto ds = boundary.empty() ? std::vector<Delimiter>{}
                               : delimiters(body, boundary, limits.max_parts + 1);
    if (ds.empty()) {  // no usable boundary: keep the words as one text part
        p.opaque = true;
        decode_leaf(p, body);
        return;
    }
    bool digest = p.content_type.is("multipart/digest");
    for (size_t i = 0; i < ds.size() && !ds[i].close; ++i) {
        size_t end = i + 1 < ds.size() ? ds[i + 1].line_start : body.size();
        if (parts >= limits.max_parts) {
            p.opaque = true;
            break;
        }
        Part child;
        child.parent = &p;
        read_part(child, between(body, ds[i].next_line, end), depth + 1, digest);
        p.children.push_back(std::move(child));
    }
}

void Reader::decode_leaf(Part& p, std::string_view body) {
    p.body = decode_transfer(p.headers.get("Content-Transfer-Encoding"), body,
                             limits.max_text_bytes, p.truncated);
}

void Reader::read_body(Part& p, std::string_view body, size_t depth) {
    if (depth >= limits.max_depth) {
        p.opaque = true;
        if (text_like(p.content_type)) decode_leaf(p, body);
        return;
    }
    if (p.content_type.multipart()) return split(p, body, depth);
    if (p.is_message()) {
        // The returned message. A transfer encoding on it is against RFC 2046 §5.2.1 but
        // seen; undo it before reading the message inside.
        auto cte = p.headers.get("Content-Transfer-Encoding");
        std::string decoded;
        if (iequals(trim(cte), "base64") || iequals(trim(cte), "quoted-printable")) {
            decoded = decode_transfer(cte, body, limits.max_text_bytes * 8, p.truncated);
            body = decoded;
        }
        if (p.content_type.is("text/rfc822-headers"))
            p.body = std::string(body.substr(0, std::min(body.size(), limits.max_text_bytes)));
        Part inner;
        inner.parent = &p;
        read_part(inner, body, depth + 1, false);
        p.children.push_back(std::move(inner));
        return;
    }
    if (text_like(p.content_type)) decode_leaf(p, body);
}

void Reader::read_part(Part& p, std::string_view raw, size_t depth, bool digest_child) {
    ++parts;
    size_t consumed = 0;
    p.headers = parse_fields(raw, consumed);
    auto ct = p.headers.get("Content-Type");
    if (ct.empty())
        p.content_type.type = digest_child ? "message/rfc822" : "text/plain";
    else
        p.content_type = parse_content_type(ct);
    read_body(p, raw.substr(consumed), depth);
}

// Re-point each child's parent after the vectors stopped moving.
void fix_parents(Part& p) {
    for (auto& c : p.children) {
        c.parent = &p;
        fix_parents(c);
    }
}

void collect(const Part& p, std::string_view type, std::vector<const Part*>& out, bool first) {
    if (p.content_type.type == type) {
        out.push_back(&p);
        if (first) return;
    }
    for (const auto& c : p.children) {
        collect(c, type, out, first);
        if (first && !out.empty()) return;
    }
}

const Part* first_text(const Part& p, std::string_view type) {
    if (p.content_type.is(type) && !trim(p.body).empty()) return &p;
    if (p.is_message() && p.parent) return nullptr;  // a returned message is not the report
    for (const auto& c : p.children)
        if (auto* t = first_text(c, type)) return t;
    return nullptr;
}

}  // namespace

bool Part::is_message() const {
    const auto& t = content_type.type;
    return t == "message/rfc822" || t == "message/global" || t == "text/rfc822-headers" ||
           t == "message/rfc822-headers";
}

Message parse_message(std::string_view raw, const Limits& limits) {
    // An mbox "From sender date" line (how many mailboxes store a message) is not a header.
    if (raw.substr(0, 5) == "From ") {
        size_t nl = raw.find('\n');
        raw = nl == std::string_view::npos ? std::string_view() : raw.substr(nl + 1);
    }
    Message m;
    Reader r{limits};
    r.read_part(m.top, raw, 0, false);
    fix_parents(m.top);
    m.parts = r.parts;
    return m;
}

const Part* find_part(const Part& from, std::string_view type) {
    std::vector<const Part*> out;
    collect(from, type, out, true);
    return out.empty() ? nullptr : out.front();
}

std::vector<const Part*> find_parts(const Part& from, std::string_view type) {
    std::vector<const Part*> out;
    collect(from, type, out, false);
    return out;
}

std::string human_text(const Part& top) {
    if (auto* t = first_text(top, "text/plain")) return t->body;
    if (auto* h = first_text(top, "text/html")) return html_to_text(h->body);
    return {};
}

std::string html_to_text(std::string_view html) {
    std::string out;
    out.reserve(html.size());
    size_t i = 0;
    while (i < html.size()) {
        char c = html[i];
        if (c == '<') {
            size_t end = html.find('>', i);
            if (end == std::string_view::npos) break;
            auto tag = to_lower(html.substr(i + 1, std::min<size_t>(end - i - 1, 8)));
            if (tag.rfind("br", 0) == 0 || tag.rfind("p", 0) == 0 || tag.rfind("/p", 0) == 0 ||
                tag.rfind("div", 0) == 0 || tag.rfind("/div", 0) == 0 || tag.rfind("tr", 0) == 0 ||
                tag.rfind("li", 0) == 0)
                out += '\n';
            else if (tag.rfind("td", 0) == 0)
                out += ' ';
            if (tag.rfind("style", 0) == 0 || tag.rfind("script", 0) == 0) {
                auto close = html.find(tag.rfind("style", 0) == 0 ? "</style" : "</script", end);
                end = close == std::string_view::npos ? html.size() - 1 : html.find('>', close);
                if (end == std::string_view::npos) break;
            }
            i = end + 1;
            continue;
        }
        if (c == '&') {
            static const std::pair<std::string_view, char> entities[] = {
                {"&lt;", '<'},   {"&gt;", '>'},   {"&amp;", '&'},  {"&quot;", '"'},
                {"&nbsp;", ' '}, {"&#39;", '\''}, {"&apos;", '\''}};
            bool done = false;
            for (auto [name, ch] : entities)
                if (html.substr(i, name.size()) == name) {
                    out += ch;
                    i += name.size();
                    done = true;
                    break;
                }
            if (done) continue;
        }
        out += c;
        ++i;
    }
    return out;
}

}  // namespace kasi::mime
