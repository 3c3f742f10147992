#include "policy/lua_objects.h"

#include <fmt/format.h>

#include <memory>
#include <new>

#include "core/queue/queue_limits.h"
#include "core/queue/queued_message.h"
#include "core/smtp/headers.h"
#include "core/smtp/server/session.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

const char* const conn_meta = "kasi.connection";
const char* const txn_meta = "kasi.transaction";
const char* const notes_meta = "kasi.notes";
const char* const addr_meta = "kasi.address";

struct SessionRef {
    std::weak_ptr<Session> s;
};
struct TxnRef {
    std::weak_ptr<Session> s;
    std::string uuid;
};
struct NotesRef {
    std::weak_ptr<Session> s;
    std::string txn_uuid;  // empty: the connection's notes
};

template <class T>
T* new_ud(lua_State* L, const char* meta, T value) {
    void* mem = lua_newuserdata(L, sizeof(T));
    T* p = new (mem) T(std::move(value));
    luaL_getmetatable(L, meta);
    lua_setmetatable(L, -2);
    return p;
}

template <class T>
int gc_ud(lua_State* L) {
    static_cast<T*>(lua_touserdata(L, 1))->~T();
    return 0;
}

Session& live_session(lua_State* L, const std::weak_ptr<Session>& w) {
    auto s = w.lock();
    if (!s) luaL_error(L, "the connection has closed");
    return *s;  // the worker keeps it alive while this loop runs Lua
}

Transaction& live_txn(lua_State* L, const std::weak_ptr<Session>& w, const std::string& uuid) {
    Session& s = live_session(L, w);
    Transaction* t = s.transaction();
    if (!t || t->uuid != uuid) luaL_error(L, "transaction %s is over", uuid.c_str());
    return *t;
}

Transaction& live_txn(lua_State* L, const TxnRef& r) {
    return live_txn(L, r.s, r.uuid);
}

// Pushes `v`, or nothing (the field reads as nil) when it is empty; returns the count.
int push_opt(lua_State* L, const std::string& v) {
    if (v.empty()) return 0;
    lua_pushlstring(L, v.data(), v.size());
    return 1;
}

void set_str(lua_State* L, const char* key, const std::string& v) {
    lua_pushlstring(L, v.data(), v.size());
    lua_setfield(L, -2, key);
}

void push_address_str(lua_State* L, const std::string& full) {
    lua_createtable(L, 0, 4);
    size_t at = full.rfind('@');
    set_str(L, "address", full);
    set_str(L, "user", at == std::string::npos ? full : full.substr(0, at));
    set_str(L, "host", at == std::string::npos ? std::string() : full.substr(at + 1));
    lua_pushboolean(L, full.empty());
    lua_setfield(L, -2, "is_null");
    luaL_getmetatable(L, addr_meta);
    lua_setmetatable(L, -2);
}

void push_address(lua_State* L, const Address& a) {
    push_address_str(L, a.null ? std::string() : a.str());
}

std::map<std::string, std::string>* notes_of(lua_State* L, const NotesRef& n) {
    if (n.txn_uuid.empty()) return &live_session(L, n.s).notes();
    return &live_txn(L, n.s, n.txn_uuid).notes;
}

int notes_index(lua_State* L) {
    auto* n = static_cast<NotesRef*>(luaL_checkudata(L, 1, notes_meta));
    auto* m = notes_of(L, *n);
    auto it = m->find(luaL_checkstring(L, 2));
    if (it == m->end()) return 0;
    lua_pushlstring(L, it->second.data(), it->second.size());
    return 1;
}

// Notes are strings: numbers are converted, true becomes "true", false and nil delete.
int notes_newindex(lua_State* L) {
    auto* n = static_cast<NotesRef*>(luaL_checkudata(L, 1, notes_meta));
    auto* m = notes_of(L, *n);
    std::string key = luaL_checkstring(L, 2);
    if (key.rfind("kasi.", 0) == 0) return luaL_error(L, "notes named kasi.* are reserved");
    int t = lua_type(L, 3);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, 3))) {
        m->erase(key);
        return 0;
    }
    if (t == LUA_TBOOLEAN) {
        (*m)[key] = "true";
        return 0;
    }
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_error(L, "note %s: notes hold strings, not a %s", key.c_str(),
                          lua_typename(L, t));
    size_t len;
    const char* s = lua_tolstring(L, 3, &len);
    (*m)[key] = std::string(s, len);
    return 0;
}

// transaction:get_header(name) -> first value or nil
int txn_get_header(lua_State* L) {
    auto* r = static_cast<TxnRef*>(luaL_checkudata(L, 1, txn_meta));
    Transaction& t = live_txn(L, *r);
    auto v = header_values(t.body, luaL_checkstring(L, 2));
    if (v.empty()) return 0;
    lua_pushlstring(L, v[0].data(), v[0].size());
    return 1;
}

int txn_get_headers(lua_State* L) {
    auto* r = static_cast<TxnRef*>(luaL_checkudata(L, 1, txn_meta));
    Transaction& t = live_txn(L, *r);
    auto v = header_values(t.body, luaL_checkstring(L, 2));
    lua_createtable(L, int(v.size()), 0);
    for (size_t i = 0; i < v.size(); ++i) {
        lua_pushlstring(L, v[i].data(), v[i].size());
        lua_rawseti(L, -2, int(i + 1));
    }
    return 1;
}

Transaction& txn_with_body(lua_State* L, int idx) {
    auto* r = static_cast<TxnRef*>(luaL_checkudata(L, idx, txn_meta));
    Transaction& t = live_txn(L, *r);
    if (t.body.empty()) luaL_error(L, "headers can be changed from data_post on");
    return t;
}

int txn_add_header_impl(lua_State* L, bool at_end) {
    Transaction& t = txn_with_body(L, 1);
    size_t nl, vl;
    const char* n = luaL_checklstring(L, 2, &nl);
    const char* v = luaL_checklstring(L, 3, &vl);
    std::string err;
    if (!header_field_ok({n, nl}, {v, vl}, err)) return luaL_error(L, "%s", err.c_str());
    header_add(t.body, {n, nl}, {v, vl}, at_end);
    return 0;
}

int txn_add_header(lua_State* L) {
    return txn_add_header_impl(L, false);
}
int txn_add_header_end(lua_State* L) {
    return txn_add_header_impl(L, true);
}

int txn_remove_header(lua_State* L) {
    Transaction& t = txn_with_body(L, 1);
    lua_pushinteger(L, lua_Integer(header_remove(t.body, luaL_checkstring(L, 2))));
    return 1;
}

int txn_index(lua_State* L) {
    auto* r = static_cast<TxnRef*>(luaL_checkudata(L, 1, txn_meta));
    std::string key = luaL_checkstring(L, 2);
    static const luaL_Reg methods[] = {{"get_header", txn_get_header},
                                       {"get_headers", txn_get_headers},
                                       {"add_header", txn_add_header},
                                       {"add_header_end", txn_add_header_end},
                                       {"remove_header", txn_remove_header}};
    for (const auto& m : methods)
        if (key == m.name) {
            lua_pushcfunction(L, m.func);
            return 1;
        }
    Transaction& t = live_txn(L, *r);
    if (key == "uuid") {
        lua_pushstring(L, t.uuid.c_str());
    } else if (key == "mail_from") {
        push_address(L, t.mail_from);
    } else if (key == "rcpt_to") {
        lua_createtable(L, int(t.rcpts.size()), 0);
        for (size_t i = 0; i < t.rcpts.size(); ++i) {
            push_address(L, t.rcpts[i]);
            lua_rawseti(L, -2, int(i + 1));
        }
    } else if (key == "notes") {
        new_ud(L, notes_meta, NotesRef{r->s, r->uuid});
    } else if (key == "data_bytes") {
        lua_pushinteger(L, lua_Integer(t.body.size()));
    } else if (key == "tenant" || key == "campaign" || key == "region") {
        auto it = t.notes.find(key);
        return it == t.notes.end() ? 0 : push_opt(L, it->second);
    } else {
        return 0;
    }
    return 1;
}

// transaction.tenant = "acme" is shorthand for the note of that name.
int txn_newindex(lua_State* L) {
    auto* r = static_cast<TxnRef*>(luaL_checkudata(L, 1, txn_meta));
    std::string key = luaL_checkstring(L, 2);
    if (key != "tenant" && key != "campaign" && key != "region")
        return luaL_error(L, "transaction.%s is read-only", key.c_str());
    Transaction& t = live_txn(L, *r);
    if (lua_isnil(L, 3)) {
        t.notes.erase(key);
        return 0;
    }
    t.notes[key] = luaL_checkstring(L, 3);
    return 0;
}

int conn_index(lua_State* L) {
    auto* r = static_cast<SessionRef*>(luaL_checkudata(L, 1, conn_meta));
    std::string key = luaL_checkstring(L, 2);
    Session& s = live_session(L, r->s);
    if (key == "uuid") {
        lua_pushstring(L, s.uuid().c_str());
    } else if (key == "remote") {
        lua_createtable(L, 0, 3);
        set_str(L, "ip", s.remote_ip().str());
        lua_pushinteger(L, s.remote_port());
        lua_setfield(L, -2, "port");
        if (!s.remote_host().empty()) set_str(L, "host", s.remote_host());  // nil if unknown
    } else if (key == "remote_ip") {
        lua_pushstring(L, s.remote_ip().str().c_str());
    } else if (key == "remote_port") {
        lua_pushinteger(L, s.remote_port());
    } else if (key == "remote_host") {
        return push_opt(L, s.remote_host());
    } else if (key == "local_ip") {
        lua_pushstring(L, s.local_ip().c_str());
    } else if (key == "local_port") {
        lua_pushinteger(L, s.local_port());
    } else if (key == "proxy_ip") {
        return push_opt(L, s.proxy_ip());
    } else if (key == "hello") {
        lua_createtable(L, 0, 1);
        set_str(L, "host", s.hello_host());
    } else if (key == "hello_host") {
        return push_opt(L, s.hello_host());
    } else if (key == "relaying") {
        lua_pushboolean(L, s.relaying());
    } else if (key == "tls") {
        lua_createtable(L, 0, 3);
        lua_pushboolean(L, s.tls_established());
        lua_setfield(L, -2, "enabled");
        set_str(L, "cipher", s.tls_cipher());
        set_str(L, "version", s.tls_version());
    } else if (key == "auth_user") {
        return push_opt(L, s.auth_user());
    } else if (key == "notes") {
        new_ud(L, notes_meta, NotesRef{r->s, {}});
    } else if (key == "transaction") {
        Transaction* t = s.transaction();
        if (!t) return 0;
        new_ud(L, txn_meta, TxnRef{r->s, t->uuid});
    } else {
        return 0;
    }
    return 1;
}

int conn_newindex(lua_State* L) {
    auto* r = static_cast<SessionRef*>(luaL_checkudata(L, 1, conn_meta));
    std::string key = luaL_checkstring(L, 2);
    if (key != "relaying") return luaL_error(L, "connection.%s is read-only", key.c_str());
    live_session(L, r->s).set_relaying(lua_toboolean(L, 3));
    return 0;
}

int addr_tostring(lua_State* L) {
    lua_getfield(L, 1, "address");
    lua_pushfstring(L, "<%s>", lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    return 1;
}

void make_meta(lua_State* L, const char* name, lua_CFunction index, lua_CFunction newindex,
               lua_CFunction gc) {
    luaL_newmetatable(L, name);
    if (index) {
        lua_pushcfunction(L, index);
        lua_setfield(L, -2, "__index");
    }
    if (newindex) {
        lua_pushcfunction(L, newindex);
        lua_setfield(L, -2, "__newindex");
    }
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");  // getmetatable() shows the name, setmetatable fails
    lua_pop(L, 1);
}

bool domain_of(const std::string& addr, std::string_view domain) {
    size_t at = addr.rfind('@');
    return at != std::string::npos && iequals(std::string_view(addr).substr(at + 1), domain);
}

void push_hmail(lua_State* L, const QueuedMessage& m, std::string_view domain,
                const OutboundEvent* ev) {
    lua_createtable(L, 0, 12);
    set_str(L, "uuid", m.id);
    push_address_str(L, m.mail_from);
    lua_setfield(L, -2, "mail_from");
    lua_newtable(L);
    int n = 0;
    if (ev) {
        for (const auto& a : ev->rcpts) {
            push_address_str(L, a);
            lua_rawseti(L, -2, ++n);
        }
    } else {
        for (const auto& r : m.rcpts)
            if (!r.deleted && (domain.empty() || domain_of(r.address, domain))) {
                push_address_str(L, r.address);
                lua_rawseti(L, -2, ++n);
            }
    }
    lua_setfield(L, -2, "rcpt_to");
    lua_pushlstring(L, domain.data(), domain.size());
    lua_setfield(L, -2, "domain");
    lua_newtable(L);
    if (m.extra)
        for (const auto& [k, v] : m.extra->notes) set_str(L, k.c_str(), v);
    lua_setfield(L, -2, "notes");
    set_str(L, "tenant", m.tenant());
    set_str(L, "campaign", m.campaign());
    lua_pushinteger(L, m.attempts);
    lua_setfield(L, -2, "num_failures");
    lua_pushnumber(L, double(m.received_ms) / 1000.0);
    lua_setfield(L, -2, "queue_time");
    lua_pushinteger(L, lua_Integer(m.body_size));
    lua_setfield(L, -2, "size");
    lua_pushboolean(L, m.is_dsn);
    lua_setfield(L, -2, "is_bounce");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "todo");  // Haraka's hmail.todo.*
}

// queue_limits' argument: { key, source, site, domain, mx_hosts = {...}, limits = {...} }
void push_queue_info(lua_State* L, const QueueInfo& q) {
    lua_createtable(L, 0, 6);
    set_str(L, "key", q.key);
    set_str(L, "source", q.source);
    set_str(L, "site", q.site);
    set_str(L, "domain", q.domain);
    lua_createtable(L, int(q.mx_hosts.size()), 0);
    for (size_t i = 0; i < q.mx_hosts.size(); ++i) {
        lua_pushstring(L, q.mx_hosts[i].c_str());
        lua_rawseti(L, -2, int(i + 1));
    }
    lua_setfield(L, -2, "mx_hosts");
    push_limits(L, q.limits);
    lua_setfield(L, -2, "limits");
}

// reason, class, hard, scope, provider of a classification, into the table on top.
void set_classification(lua_State* L, const Classification& c) {
    set_str(L, "reason", c.reason);
    set_str(L, "class", c.cls);
    lua_pushboolean(L, c.hard);
    lua_setfield(L, -2, "hard");
    set_str(L, "scope", std::string(scope_name(c.scope)));
    set_str(L, "provider", c.provider);
}

// classify_response's argument: one recipient's outcome, its classification, the verdict.
void push_response(lua_State* L, const ResponseEvent& e) {
    lua_createtable(L, 0, 18);
    push_address_str(L, e.rcpt);
    lua_setfield(L, -2, "rcpt");
    set_str(L, "domain", e.domain);
    set_str(L, "kind", std::string(outcome_kind_name(e.kind)));
    lua_pushinteger(L, e.code);
    lua_setfield(L, -2, "code");
    set_str(L, "enhanced", e.enhanced);
    set_str(L, "err", e.text);
    set_str(L, "command", e.command);
    set_str(L, "host", e.host);
    set_str(L, "ip", e.ip);
    set_classification(L, e.classification);
    set_str(L, "verdict", std::string(verdict_name(e.verdict)));
    lua_pushinteger(L, lua_Integer(e.retry_s));
    lua_setfield(L, -2, "delay");
}

// inbound_report's argument: one matched recipient of a report and the planned suppression.
void push_report(lua_State* L, const ReportEvent& e) {
    lua_createtable(L, 0, 28);
    set_str(L, "kind", e.kind);
    set_str(L, "report_id", e.report_id);
    set_str(L, "report_from", e.report_from);
    set_str(L, "id", e.message_id);
    push_address_str(L, e.rcpt);
    lua_setfield(L, -2, "rcpt");
    set_str(L, "tenant", e.tenant);
    set_str(L, "sending_domain", e.sending_domain);
    set_str(L, "matched_by", e.matched_by);
    if (e.kind != "complaint") {
        set_str(L, "action", e.action);
        set_str(L, "status", e.status);
        set_str(L, "diagnostic", e.diagnostic);
        set_str(L, "remote_mta", e.remote_mta);
        lua_pushinteger(L, e.code);
        lua_setfield(L, -2, "code");
        set_classification(L, e.classification);
    } else {
        set_str(L, "feedback_type", e.feedback_type);
        set_str(L, "source_ip", e.source_ip);
        set_str(L, "user_agent", e.user_agent);
    }
    lua_pushboolean(L, e.suppress);
    lua_setfield(L, -2, "suppress");
    if (e.suppress) {
        set_str(L, "scope", e.scope.empty() ? std::string("global") : e.scope);
        set_str(L, "suppression_reason", e.reason);
        lua_pushinteger(L, lua_Integer(e.expires));
        lua_setfield(L, -2, "expires");
    }
}

void push_event(lua_State* L, Hook h, const OutboundEvent& e) {
    lua_createtable(L, 0, 18);
    lua_createtable(L, int(e.rcpts.size()), 0);
    for (size_t i = 0; i < e.rcpts.size(); ++i) {
        push_address_str(L, e.rcpts[i]);
        lua_rawseti(L, -2, int(i + 1));
    }
    lua_setfield(L, -2, h == Hook::delivered ? "ok_recips" : "rcpts");
    lua_pushinteger(L, e.code);
    lua_setfield(L, -2, "code");
    set_str(L, "enhanced", e.enhanced);
    set_str(L, h == Hook::delivered ? "response" : "err", e.text);
    lua_pushinteger(L, lua_Integer(e.delay_s));
    lua_setfield(L, -2, "delay");
    set_str(L, "host", e.host);
    set_str(L, "ip", e.ip);
    lua_pushinteger(L, e.port);
    lua_setfield(L, -2, "port");
    set_str(L, "mode", e.lmtp ? "LMTP" : "SMTP");
    set_str(L, "queue", e.queue);
    lua_pushboolean(L, e.tls);
    lua_setfield(L, -2, "secured");
    lua_pushboolean(L, e.auth);
    lua_setfield(L, -2, "authenticated");
    if (h == Hook::delivered) return;
    set_classification(L, e.classification);
    // one classification per entry of rcpts, in the same order
    lua_createtable(L, int(e.rcpts.size()), 0);
    for (size_t i = 0; i < e.rcpts.size(); ++i) {
        lua_createtable(L, 0, 5);
        set_classification(L, i < e.per_rcpt.size() ? e.per_rcpt[i] : e.classification);
        lua_rawseti(L, -2, int(i + 1));
    }
    lua_setfield(L, -2, "classifications");
}

}  // namespace

void push_limits(lua_State* L, const QueueLimits& l) {
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, l.max_connections);
    lua_setfield(L, -2, "max_connections");
    lua_pushinteger(L, l.max_messages_per_connection);
    lua_setfield(L, -2, "max_messages_per_connection");
    lua_pushnumber(L, l.max_message_rate);
    lua_setfield(L, -2, "max_message_rate");
    lua_pushinteger(L, l.max_recipients);
    lua_setfield(L, -2, "max_recipients");
    lua_pushnumber(L, l.idle_timeout_ms / 1000.0);
    lua_setfield(L, -2, "idle_timeout");
    set_str(L, "set_by", l.origin);
}

void install_lua_objects(lua_State* L) {
    make_meta(L, conn_meta, conn_index, conn_newindex, gc_ud<SessionRef>);
    make_meta(L, txn_meta, txn_index, txn_newindex, gc_ud<TxnRef>);
    make_meta(L, notes_meta, notes_index, notes_newindex, gc_ud<NotesRef>);
    luaL_newmetatable(L, addr_meta);
    lua_pushcfunction(L, addr_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}

int push_hook_args(lua_State* L, HookCall& c) {
    lua_checkstack(L, 8);
    if (c.queue) {
        push_queue_info(L, *c.queue);
        return 1;
    }
    if (c.hmail) {
        push_hmail(L, *c.hmail, c.domain, c.event);
        if (c.hook == Hook::get_mx || c.hook == Hook::get_egress) {
            lua_pushlstring(L, c.domain.data(), c.domain.size());
            return 2;
        }
        if (c.event) {
            push_event(L, c.hook, *c.event);
            return 2;
        }
        if (c.response) {
            push_response(L, *c.response);
            return 2;
        }
        if (c.report) {
            push_report(L, *c.report);
            return 2;
        }
        return 1;
    }
    if (!c.session) return 0;
    new_ud(L, conn_meta, SessionRef{c.session->weak_from_this()});
    switch (c.hook) {
        case Hook::helo:
        case Hook::ehlo:
        case Hook::unrecognized_command:
            lua_pushlstring(L, c.arg.data(), c.arg.size());
            return 2;
        case Hook::mail:
        case Hook::rcpt:
        case Hook::rcpt_ok:
            lua_createtable(L, 2, 0);
            if (c.address) {
                push_address(L, *c.address);
                lua_rawseti(L, -2, 1);
            }
            lua_newtable(L);
            lua_rawseti(L, -2, 2);
            return 2;
        case Hook::deny:
            lua_createtable(L, 0, 4);
            if (c.denial) {
                lua_pushinteger(L, int(c.denial->code));
                lua_setfield(L, -2, "code");
                set_str(L, "msg", c.denial->msg);
            }
            set_str(L, "plugin", std::string(c.denied_by));
            if (c.denied_hook != Hook::count_)
                set_str(L, "hook", std::string(hook_name(c.denied_hook)));
            return 2;
        default:
            return 1;
    }
}

namespace {
// A reason or class name: 1-32 of [a-z0-9_] (the rule set decides which are known).
bool is_label(const std::string& v) {
    if (v.empty() || v.size() > 32) return false;
    for (char ch : v)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
    return true;
}
}  // namespace

bool response_override_from_lua(lua_State* L, int idx, ResponseOverride& o, std::string& err) {
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            err = "classify_response: keys must be names";
            return false;
        }
        std::string key = lua_tostring(L, -2);
        int t = lua_type(L, -1);
        std::string v = t == LUA_TSTRING ? lua_tostring(L, -1) : "";
        bool ok = true;
        if (key == "reason" || key == "class") {
            ok = t == LUA_TSTRING && is_label(v);
            (key == "reason" ? o.reason : o.cls) = v;
        } else if (key == "hard") {
            ok = t == LUA_TBOOLEAN;
            o.hard = bool(lua_toboolean(L, -1));
        } else if (key == "scope") {
            Scope sc{};
            ok = t == LUA_TSTRING && scope_from_name(v, sc);
            o.scope = sc;
        } else if (key == "verdict") {
            ok = t == LUA_TSTRING && (v == "defer" || v == "bounce");
            o.verdict = v == "bounce" ? Verdict::bounce : Verdict::defer;
        } else if (key == "delay") {
            ok =
                t == LUA_TNUMBER && lua_tonumber(L, -1) >= 0 && lua_tonumber(L, -1) <= 30 * 86400.0;
            o.retry_s = int64_t(lua_tonumber(L, -1));
        } else {
            lua_pop(L, 2);
            err = fmt::format("classify_response: unknown field '{}'", key);
            return false;
        }
        if (!ok) {
            err = fmt::format("classify_response: bad value for {}", key);
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
    }
    return true;
}

bool report_override_from_lua(lua_State* L, int idx, ReportOverride& o, std::string& err) {
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            err = "inbound_report: keys must be names";
            return false;
        }
        std::string key = lua_tostring(L, -2);
        int t = lua_type(L, -1);
        bool ok = true;
        if (key == "suppress") {
            ok = t == LUA_TBOOLEAN;
            o.suppress = bool(lua_toboolean(L, -1));
        } else if (key == "scope" || key == "reason") {
            ok = t == LUA_TSTRING;
            (key == "scope" ? o.scope : o.reason) = ok ? lua_tostring(L, -1) : "";
        } else if (key == "expires") {
            double v = t == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
            ok = v >= 0 && v <= 100.0 * 365 * 86400;
            o.expires_in_s = int64_t(v);
        } else {
            lua_pop(L, 2);
            err = fmt::format("inbound_report: unknown field '{}'", key);
            return false;
        }
        if (!ok) {
            err = fmt::format("inbound_report: bad value for {}", key);
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
    }
    return true;
}

bool limits_from_lua(lua_State* L, int idx, LimitOverride& o, std::string& err) {
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            err = "queue limits: keys must be names";
            return false;
        }
        std::string key = lua_tostring(L, -2);
        auto number = [&](double lo, double hi, double& out) {
            if (lua_type(L, -1) != LUA_TNUMBER) return false;
            out = lua_tonumber(L, -1);
            return out >= lo && out <= hi;
        };
        double v = 0;
        bool ok = true;
        if (key == "max_connections") {
            ok = number(0, 100000, v);
            o.max_connections = int(v);
        } else if (key == "max_messages_per_connection") {
            ok = number(1, 1e7, v);
            o.max_messages_per_connection = int(v);
        } else if (key == "max_recipients") {
            ok = number(1, 100000, v);
            o.max_recipients = int(v);
        } else if (key == "idle_timeout") {
            ok = number(0, 3600, v);
            o.idle_timeout_ms = int(v * 1000);
        } else if (key == "max_message_rate") {
            if (lua_type(L, -1) == LUA_TSTRING)
                ok = parse_rate(lua_tostring(L, -1), o.max_message_rate);
            else
                ok = number(0, 1e9, o.max_message_rate);
        } else if (key == "set_by") {
            ok = lua_type(L, -1) == LUA_TSTRING;
            if (ok) o.origin = lua_tostring(L, -1);
        } else {
            lua_pop(L, 2);
            err = fmt::format("queue limits: unknown field '{}'", key);
            return false;
        }
        if (!ok) {
            err = fmt::format("queue limits: bad value for {}", key);
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
    }
    return true;
}

bool next_hops_from_lua(lua_State* L, int idx, std::vector<NextHop>& out, std::string& err) {
    auto one = [&](int i) -> bool {
        if (lua_type(L, i) == LUA_TSTRING) {
            auto h = parse_next_hop(lua_tostring(L, i), err);
            if (!h) return false;
            out.push_back(*h);
            return true;
        }
        if (!lua_istable(L, i)) {
            err = fmt::format("get_mx: a next hop is a string or a table, not a {}",
                              luaL_typename(L, i));
            return false;
        }
        lua_getfield(L, i, "exchange");
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_getfield(L, i, "host");
        }
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            err = "get_mx: a next hop table needs exchange (or host)";
            return false;
        }
        auto h = parse_next_hop(lua_tostring(L, -1), err);
        lua_pop(L, 1);
        if (!h) return false;
        auto str = [&](const char* k, std::string& dst) {
            lua_getfield(L, i, k);
            if (lua_isstring(L, -1)) dst = lua_tostring(L, -1);
            lua_pop(L, 1);
        };
        lua_getfield(L, i, "port");
        if (lua_isnumber(L, -1)) {
            lua_Integer p = lua_tointeger(L, -1);
            if (p < 1 || p > 65535) {
                lua_pop(L, 1);
                err = "get_mx: port out of range";
                return false;
            }
            h->port = uint16_t(p);
        }
        lua_pop(L, 1);
        lua_getfield(L, i, "priority");
        if (lua_isnumber(L, -1)) h->priority = int(lua_tointeger(L, -1));
        lua_pop(L, 1);
        lua_getfield(L, i, "using_lmtp");
        if (lua_toboolean(L, -1)) h->lmtp = true;
        lua_pop(L, 1);
        str("bind", h->bind);
        str("bind_helo", h->bind_helo);
        str("auth_user", h->auth_user);
        str("auth_pass", h->auth_pass);
        lua_getfield(L, i, "auth_allow_cleartext");
        if (lua_toboolean(L, -1)) h->auth_allow_cleartext = true;
        lua_pop(L, 1);
        out.push_back(std::move(*h));
        return true;
    };
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    if (lua_type(L, idx) == LUA_TSTRING) return one(idx);
    lua_getfield(L, idx, "exchange");
    bool single = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (single) return one(idx);
    size_t n = lua_objlen(L, idx);
    for (size_t k = 1; k <= n; ++k) {
        lua_rawgeti(L, idx, int(k));
        bool ok = one(lua_gettop(L));
        lua_pop(L, 1);
        if (!ok) return false;
    }
    if (out.empty()) err = "get_mx: OK with an empty list of next hops";
    return !out.empty();
}

}  // namespace kasi
