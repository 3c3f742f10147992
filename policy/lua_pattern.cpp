// Lua 5.1 pattern matching (as LuaJIT has it), written for Kasi's policy sandbox with a
// step budget; see lua_pattern.h for why and for the limits.
//
// The matcher follows the structure of the reference matcher (a recursive descent over
// the pattern that backtracks over the subject), so captures, position captures, %b, %f,
// anchors, back-references and the order in which alternatives are tried are those of
// Lua 5.1. Differences are only in what it refuses: more than the step limit, or more
// than 200 nested pattern items (LuaJIT's own depth limit). The matcher never raises: an
// error (malformed pattern, too many steps) is recorded in the MatchState, every level
// returns "no match", and the Lua binding raises it once the matcher is done, so no Lua
// error crosses C++ frames of the matcher.
#include "policy/lua_pattern.h"

#include <cstdint>
#include <cstring>

#include "policy/lua_state.h"

namespace kasi {

namespace {

constexpr int max_captures = 32;  // LUA_MAXCAPTURES
constexpr int max_depth = 200;    // LuaJIT's LJ_MAX_XLEVEL
constexpr uint64_t steps_per_byte = 32;
constexpr ptrdiff_t cap_unfinished = -1;
constexpr ptrdiff_t cap_position = -2;
constexpr char esc = '%';

const char* const too_deep = "pattern too complex";
const char* const too_many_steps = "(steps)";  // a marker, worded by the binding

int uchar(char c) {
    return static_cast<unsigned char>(c);
}

// LuaJIT's character classes: ASCII only, whatever the locale.
bool is_lower(int c) {
    return c >= 'a' && c <= 'z';
}
bool is_upper(int c) {
    return c >= 'A' && c <= 'Z';
}
bool is_digit(int c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(int c) {
    return is_lower(c) || is_upper(c);
}
bool is_alnum(int c) {
    return is_alpha(c) || is_digit(c);
}
bool is_space(int c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}
bool is_cntrl(int c) {
    return c < 32 || c == 127;
}
bool is_graph(int c) {
    return c > 32 && c < 127;
}
bool is_punct(int c) {
    return is_graph(c) && !is_alnum(c);
}
bool is_xdigit(int c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// %a, %A, ... (the upper-case letter is the complement); any other character stands for
// itself.
bool match_class(int c, int cl) {
    bool r;
    switch (cl | 0x20) {
        case 'a':
            r = is_alpha(c);
            break;
        case 'c':
            r = is_cntrl(c);
            break;
        case 'd':
            r = is_digit(c);
            break;
        case 'g':
            r = is_graph(c);
            break;
        case 'l':
            r = is_lower(c);
            break;
        case 'p':
            r = is_punct(c);
            break;
        case 's':
            r = is_space(c);
            break;
        case 'u':
            r = is_upper(c);
            break;
        case 'w':
            r = is_alnum(c);
            break;
        case 'x':
            r = is_xdigit(c);
            break;
        case 'z':
            if (cl == 'z') return c == 0;
            if (cl == 'Z') return c != 0;
            return cl == c;
        default:
            return cl == c;
    }
    if (!is_alpha(cl)) return cl == c;  // '!' | 0x20 is 'a' too
    return is_lower(cl) ? r : !r;
}

// [set]: p at the '[', ec at the closing ']'.
bool match_bracket(int c, const char* p, const char* ec) {
    bool sig = true;
    if (p[1] == '^') {
        sig = false;
        p++;
    }
    while (++p < ec) {
        if (*p == esc) {
            p++;
            if (match_class(c, uchar(*p))) return sig;
        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            if (uchar(p[-2]) <= c && c <= uchar(*p)) return sig;
        } else if (uchar(*p) == c) {
            return sig;
        }
    }
    return !sig;
}

struct Capture {
    const char* init;
    ptrdiff_t len;
};

struct MatchState {
    const char* src_init;
    const char* src_end;
    int level = 0;
    int depth = 0;
    uint64_t steps = 0;
    uint64_t max_steps = 0;
    const char* error = nullptr;  // static text; set once, then every level gives up
    Capture capture[max_captures];

    void fail(const char* why) {
        if (!error) error = why;
    }
    bool failed() const { return error != nullptr; }
    // Counts `n` steps; false (and failed) once over the limit.
    bool step(uint64_t n = 1) {
        steps += n;
        if (steps > max_steps) fail(too_many_steps);
        return !failed();
    }

    const char* class_end(const char* p);
    bool single(const char* s, const char* p, const char* ep);
    const char* match(const char* s, const char* p);
    const char* do_match(const char* s, const char* p);
    const char* balance(const char* s, const char* p);
    const char* max_expand(const char* s, const char* p, const char* ep);
    const char* min_expand(const char* s, const char* p, const char* ep);
    const char* start_capture(const char* s, const char* p, ptrdiff_t what);
    const char* end_capture(const char* s, const char* p);
    const char* match_capture(const char* s, int l);
};

// The end of the single-character class at p; null (failed) if it is malformed.
const char* MatchState::class_end(const char* p) {
    switch (*p++) {
        case esc:
            if (*p == '\0') {
                fail("malformed pattern (ends with '%')");
                return nullptr;
            }
            return p + 1;
        case '[': {
            const char* start = p;
            if (*p == '^') p++;
            do {
                if (*p == '\0') {
                    fail("malformed pattern (missing ']')");
                    return nullptr;
                }
                if (*(p++) == esc && *p != '\0') p++;
            } while (*p != ']');
            step(uint64_t(p - start));
            return p + 1;
        }
        default:
            return p;
    }
}

// Does the subject character at s (if any) match the class p..ep?
bool MatchState::single(const char* s, const char* p, const char* ep) {
    if (s >= src_end) return false;
    int c = uchar(*s);
    switch (*p) {
        case '.':
            return true;
        case esc:
            return match_class(c, uchar(p[1]));
        case '[':
            step(uint64_t(ep - p) / 8);
            return match_bracket(c, p, ep - 1);
        default:
            return uchar(*p) == c;
    }
}

const char* MatchState::balance(const char* s, const char* p) {
    if (p[0] == '\0' || p[1] == '\0') {
        fail("unbalanced pattern");
        return nullptr;
    }
    if (s >= src_end || *s != *p) return nullptr;
    char b = p[0], e = p[1];
    int cont = 1;
    const char* from = s;
    while (++s < src_end) {
        if (*s == e) {
            if (--cont == 0) {
                step(uint64_t(s - from));
                return failed() ? nullptr : s + 1;
            }
        } else if (*s == b) {
            cont++;
        }
    }
    step(uint64_t(s - from));
    return nullptr;
}

const char* MatchState::max_expand(const char* s, const char* p, const char* ep) {
    ptrdiff_t i = 0;
    while (single(s + i, p, ep)) {
        i++;
        if (!step()) return nullptr;
    }
    while (i >= 0) {  // the longest repetition first
        const char* res = match(s + i, ep + 1);
        if (res || failed()) return res;
        i--;
    }
    return nullptr;
}

const char* MatchState::min_expand(const char* s, const char* p, const char* ep) {
    for (;;) {
        const char* res = match(s, ep + 1);
        if (res || failed()) return res;
        if (!single(s, p, ep) || !step()) return nullptr;
        s++;
    }
}

const char* MatchState::start_capture(const char* s, const char* p, ptrdiff_t what) {
    if (level >= max_captures) {
        fail("too many captures");
        return nullptr;
    }
    capture[level].init = s;
    capture[level].len = what;
    level++;
    const char* res = match(s, p);
    if (!res) level--;
    return res;
}

const char* MatchState::end_capture(const char* s, const char* p) {
    int l = level - 1;
    while (l >= 0 && capture[l].len != cap_unfinished) l--;
    if (l < 0) {
        fail("invalid pattern capture");
        return nullptr;
    }
    capture[l].len = s - capture[l].init;
    const char* res = match(s, p);
    if (!res) capture[l].len = cap_unfinished;
    return res;
}

const char* MatchState::match_capture(const char* s, int l) {
    l -= '1';
    if (l < 0 || l >= level || capture[l].len == cap_unfinished) {
        fail("invalid capture index");
        return nullptr;
    }
    auto len = size_t(capture[l].len);
    if (!step(len / 8)) return nullptr;
    if (size_t(src_end - s) >= len && std::memcmp(capture[l].init, s, len) == 0) return s + len;
    return nullptr;
}

const char* MatchState::match(const char* s, const char* p) {
    if (++depth > max_depth) {
        fail(too_deep);
        return nullptr;
    }
    const char* res = do_match(s, p);
    depth--;
    return res;
}

const char* MatchState::do_match(const char* s, const char* p) {
    for (;;) {  // a loop where the tail of the pattern would recurse
        if (!step()) return nullptr;
        switch (*p) {
            case '(':
                if (p[1] == ')') return start_capture(s, p + 2, cap_position);
                return start_capture(s, p + 1, cap_unfinished);
            case ')':
                return end_capture(s, p + 1);
            case '\0':
                return s;
            case '$':
                if (p[1] == '\0') return s == src_end ? s : nullptr;
                break;
            case esc:
                if (p[1] == 'b') {
                    s = balance(s, p + 2);
                    if (!s) return nullptr;
                    p += 4;
                    continue;
                }
                if (p[1] == 'f') {
                    p += 2;
                    if (*p != '[') {
                        fail("missing '[' after '%f' in pattern");
                        return nullptr;
                    }
                    const char* ep = class_end(p);
                    if (!ep) return nullptr;
                    int prev = s == src_init ? 0 : uchar(s[-1]);
                    int cur = s < src_end ? uchar(*s) : 0;
                    if (match_bracket(prev, p, ep - 1) || !match_bracket(cur, p, ep - 1))
                        return nullptr;
                    p = ep;
                    continue;
                }
                if (is_digit(uchar(p[1]))) {
                    s = match_capture(s, uchar(p[1]));
                    if (!s) return nullptr;
                    p += 2;
                    continue;
                }
                break;
            default:
                break;
        }
        // a single-character class, maybe with a repetition suffix
        const char* ep = class_end(p);
        if (!ep) return nullptr;
        bool m = single(s, p, ep);
        switch (*ep) {
            case '?': {
                if (m) {
                    const char* res = match(s + 1, ep + 1);
                    if (res || failed()) return res;
                }
                p = ep + 1;
                continue;
            }
            case '*':
                return max_expand(s, p, ep);
            case '+':
                return m ? max_expand(s + 1, p, ep) : nullptr;
            case '-':
                return min_expand(s, p, ep);
            default:
                if (!m) return nullptr;
                s++;
                p = ep;
        }
    }
}

// ---- the Lua side ----

bool has_specials(const char* p, size_t len) {
    for (size_t i = 0; i < len; ++i)
        if (std::strchr("^$*+?.([%-", p[i]) && p[i] != '\0') return true;
    return false;
}

// A MatchState over `s` with this call's step limit.
void prepare(lua_State* L, MatchState& ms, const char* s, size_t len) {
    ms.src_init = s;
    ms.src_end = s + len;
    LuaState* st = LuaState::of(L);
    uint64_t limit = st ? st->limits().pattern_steps : LuaLimits{}.pattern_steps;
    limit += steps_per_byte * len;
    if (st && st->in_call()) limit = std::min(limit, st->left() + 1);
    ms.max_steps = limit;
}

// Charges the steps taken to the call's budget, then raises what stopped the matcher.
void settle(lua_State* L, const MatchState& ms) {
    if (LuaState* st = LuaState::of(L)) st->charge(L, ms.steps);
    if (ms.error == too_many_steps)
        luaL_error(L, "pattern too complex (more than %.0f steps)", double(ms.max_steps));
    if (ms.error) luaL_error(L, "%s", ms.error);
}

void push_one_capture(lua_State* L, const MatchState& ms, int i, const char* s, const char* e) {
    if (i >= ms.level) {
        if (i != 0) luaL_error(L, "invalid capture index");
        lua_pushlstring(L, s, size_t(e - s));  // the whole match
        return;
    }
    ptrdiff_t l = ms.capture[i].len;
    if (l == cap_unfinished) luaL_error(L, "unfinished capture");
    if (l == cap_position)
        lua_pushinteger(L, ms.capture[i].init - ms.src_init + 1);
    else
        lua_pushlstring(L, ms.capture[i].init, size_t(l));
}

int push_captures(lua_State* L, const MatchState& ms, const char* s, const char* e) {
    int n = (ms.level == 0 && s) ? 1 : ms.level;
    luaL_checkstack(L, n, "too many captures");
    for (int i = 0; i < n; i++) push_one_capture(L, ms, i, s, e);
    return n;
}

size_t start_index(lua_Integer pos, size_t len) {
    if (pos < 0) pos += lua_Integer(len) + 1;
    if (pos < 1) return 0;
    return std::min(size_t(pos - 1), len);
}

int find_aux(lua_State* L, bool find) {
    size_t l1 = 0, l2 = 0;
    const char* s = luaL_checklstring(L, 1, &l1);
    const char* p = luaL_checklstring(L, 2, &l2);
    size_t init = start_index(luaL_optinteger(L, 3, 1), l1);
    if (find && (lua_toboolean(L, 4) || !has_specials(p, l2))) {
        // memmem is linear (two-way), unlike a naive search
        const void* q = l2 == 0 ? s + init : ::memmem(s + init, l1 - init, p, l2);
        if (LuaState* st = LuaState::of(L)) st->charge(L, (l1 - init) / 64 + 1);
        if (!q) {
            lua_pushnil(L);
            return 1;
        }
        auto at = static_cast<const char*>(q) - s;
        lua_pushinteger(L, at + 1);
        lua_pushinteger(L, lua_Integer(at + l2));
        return 2;
    }
    MatchState ms;
    prepare(L, ms, s, l1);
    bool anchor = *p == '^';
    if (anchor) p++;
    const char* s1 = s + init;
    const char* res = nullptr;
    for (;;) {  // each start position up to the end itself (an empty match there)
        ms.level = 0;
        res = ms.match(s1, p);
        if (res || ms.failed() || anchor || s1 == ms.src_end) break;
        ++s1;
    }
    settle(L, ms);
    if (!res) {
        lua_pushnil(L);
        return 1;
    }
    if (!find) return push_captures(L, ms, s1, res);
    lua_pushinteger(L, s1 - s + 1);
    lua_pushinteger(L, res - s);
    return push_captures(L, ms, nullptr, nullptr) + 2;
}

int str_find(lua_State* L) {
    return find_aux(L, true);
}

int str_match(lua_State* L) {
    return find_aux(L, false);
}

// The gmatch iterator: upvalues are the subject, the pattern and the next position.
int gmatch_step(lua_State* L) {
    size_t len = 0;
    const char* s = lua_tolstring(L, lua_upvalueindex(1), &len);
    const char* p = lua_tostring(L, lua_upvalueindex(2));
    auto pos = size_t(lua_tointeger(L, lua_upvalueindex(3)));
    if (pos > len) return 0;  // past the end (after an empty match there)
    MatchState ms;
    prepare(L, ms, s, len);
    const char* e = nullptr;
    const char* src = s + pos;
    for (;;) {
        ms.level = 0;
        e = ms.match(src, p);
        if (e || ms.failed() || src == ms.src_end) break;
        ++src;
    }
    settle(L, ms);
    if (!e) return 0;
    lua_Integer next = e - s;
    if (e == src) next++;  // an empty match: move on
    lua_pushinteger(L, next);
    lua_replace(L, lua_upvalueindex(3));
    return push_captures(L, ms, src, e);
}

int str_gmatch(lua_State* L) {
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_step, 3);
    return 1;
}

// gsub's output, bounded by the sandbox's string cap.
struct GsubOut {
    luaL_Buffer b;
    size_t len = 0;
    size_t cap = 0;
};

void out_add(lua_State* L, GsubOut& o, size_t n) {
    o.len += n;
    if (o.len > o.cap)
        luaL_error(L,
                   "string.gsub: the result would be larger than %d bytes (lua.ini max_string_kb)",
                   int(o.cap));
}

// The replacement string (argument 3) with %0-%9 expanded.
void add_string(lua_State* L, const MatchState& ms, GsubOut& o, const char* s, const char* e) {
    size_t l = 0;
    const char* news = lua_tolstring(L, 3, &l);
    for (size_t i = 0; i < l; i++) {
        if (news[i] != esc) {
            out_add(L, o, 1);
            luaL_addchar(&o.b, news[i]);
            continue;
        }
        i++;  // news[l] is the terminating NUL, as in the reference
        if (!is_digit(uchar(news[i]))) {
            out_add(L, o, 1);
            luaL_addchar(&o.b, news[i]);
        } else if (news[i] == '0') {
            out_add(L, o, size_t(e - s));
            luaL_addlstring(&o.b, s, size_t(e - s));
        } else {
            push_one_capture(L, ms, news[i] - '1', s, e);
            out_add(L, o, lua_objlen(L, -1));
            luaL_addvalue(&o.b);
        }
    }
}

void add_value(lua_State* L, const MatchState& ms, GsubOut& o, const char* s, const char* e) {
    switch (lua_type(L, 3)) {
        case LUA_TNUMBER:
        case LUA_TSTRING:
            add_string(L, ms, o, s, e);
            return;
        case LUA_TFUNCTION: {
            lua_pushvalue(L, 3);
            int n = push_captures(L, ms, s, e);
            lua_call(L, n, 1);
            break;
        }
        default:  // a table
            push_one_capture(L, ms, 0, s, e);
            lua_gettable(L, 3);
    }
    if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
        lua_pop(L, 1);
        lua_pushlstring(L, s, size_t(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    out_add(L, o, lua_objlen(L, -1));
    luaL_addvalue(&o.b);
}

int str_gsub(lua_State* L) {
    size_t srcl = 0;
    const char* src = luaL_checklstring(L, 1, &srcl);
    const char* p = luaL_checkstring(L, 2);
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, lua_Integer(srcl) + 1);
    if (!(tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE))
        luaL_argerror(L, 3, "string/function/table expected");
    bool anchor = *p == '^';
    if (anchor) p++;
    LuaState* st = LuaState::of(L);
    GsubOut o;
    o.cap = st ? st->limits().max_string : LuaLimits{}.max_string;
    luaL_buffinit(L, &o.b);
    MatchState ms;
    prepare(L, ms, src, srcl);
    lua_Integer n = 0;
    while (n < max_s) {
        ms.level = 0;
        const char* e = ms.match(src, p);
        if (ms.failed()) break;
        if (e) {
            n++;
            add_value(L, ms, o, src, e);
        }
        if (e && e > src) {
            src = e;
        } else if (src < ms.src_end) {
            out_add(L, o, 1);
            luaL_addchar(&o.b, *src++);
        } else {
            break;
        }
        if (anchor) break;
    }
    settle(L, ms);
    out_add(L, o, size_t(ms.src_end - src));
    luaL_addlstring(&o.b, src, size_t(ms.src_end - src));
    luaL_pushresult(&o.b);
    lua_pushinteger(L, n);
    return 2;
}

}  // namespace

void install_lua_patterns(lua_State* L) {
    lua_getglobal(L, "string");
    static const luaL_Reg fns[] = {
        {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}};
    for (const auto& f : fns) {
        lua_pushcfunction(L, f.func);
        lua_setfield(L, -2, f.name);
    }
    lua_getfield(L, -1, "gfind");  // Lua 5.0's name, if this LuaJIT still has it
    bool gfind = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (gfind) {
        lua_pushcfunction(L, str_gmatch);
        lua_setfield(L, -2, "gfind");
    }
    lua_pop(L, 1);
}

}  // namespace kasi
