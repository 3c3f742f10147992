#include "plugins/limit/limit.h"

#include <map>

#include <fmt/format.h>

#include "core/smtp/address.h"
#include "core/smtp/server/session.h"
#include "core/util/clock.h"
#include "core/util/ip.h"
#include "core/util/strings.h"
#include "core/util/uv_handle.h"
#include "plugins/limit/rate_table.h"

namespace kasi {

std::vector<std::string> limit_host_keys(const std::string& ip_text, const std::string& rdns) {
    std::vector<std::string> keys;
    auto ip = IpAddr::parse(ip_text);
    if (ip) {
        IpAddr u = ip->unmapped();
        std::vector<std::string> parts;
        if (!u.v6) {
            for (int i = 0; i < 4; ++i) parts.push_back(std::to_string(u.b[size_t(i)]));
        } else {
            for (int i = 0; i < 8; ++i)
                parts.push_back(
                    fmt::format("{:x}", (u.b[size_t(2 * i)] << 8) | u.b[size_t(2 * i + 1)]));
        }
        std::string sep = u.v6 ? ":" : ".";
        for (size_t n = parts.size(); n > 0; --n) {
            std::string k;
            for (size_t i = 0; i < n; ++i) k += (i ? sep : "") + parts[i];
            keys.push_back(k);
        }
    }
    std::string host = to_lower(rdns);
    while (!host.empty()) {
        keys.push_back(host);
        auto dot = host.find('.');
        if (dot == std::string::npos) break;
        host = host.substr(dot + 1);
    }
    return keys;
}

namespace {

struct RateSection {
    bool enabled = false;
    std::map<std::string, RateSpec> keys;  // lower-case keys, "default" included
};

struct Found {
    std::string key;
    RateSpec spec;
};

class Limit : public Plugin {
  public:
    std::string name() const override { return "limit"; }

    uint64_t tarpit_ms = 0;
    bool concurrency = false, recipients = false, unrecognized = false, errors = false;
    int64_t concurrency_max = 3;
    uint64_t recipients_max = 0, recipients_max_relaying = 0;
    uint64_t unrecognized_max = 10, errors_max = 10;
    RateSection rate_conn, rate_rcpt_host, rate_rcpt_sender, rate_rcpt, rate_rcpt_null;
    RateSection rate_outbound;

    // Haraka's [rate_outbound]: a fixed window of messages per recipient domain, checked
    // when a delivery is about to be routed; over the limit it waits the whole window
    // (DELAY), as Haraka does. Kasi's own per-destination rate is outbound.ini
    // max_message_rate, which smooths instead of bursting.
    std::optional<Result> send_email(HookCall& c) const {
        if (!rate_outbound.enabled) return Result::cont();
        std::string dom = to_lower(c.domain);
        auto f = lookup(rate_outbound, {dom}, dom);
        if (!f || !f->spec.limit) return Result::cont();
        if (limit_store().fixed_hit("rate_outbound|" + f->key, f->spec, now_ms()) <= f->spec.limit)
            return Result::cont();
        return Result{Code::delay, std::to_string(std::max<uint64_t>(1, f->spec.period_ms / 1000))};
    }

    std::optional<Result> penalize(HookCall& c, bool disconnect, std::string msg) const {
        Result r{disconnect ? Code::denysoftdisconnect : Code::denysoft, std::move(msg)};
        if (tarpit_ms == 0) return r;
        return c.answer_after(tarpit_ms, std::move(r));
    }

    static std::optional<Found> lookup(const RateSection& s, const std::vector<std::string>& keys,
                                       const std::string& fallback_key) {
        for (const auto& k : keys)
            if (auto it = s.keys.find(k); it != s.keys.end()) return Found{k, it->second};
        if (auto it = s.keys.find("default"); it != s.keys.end())
            return Found{fallback_key, it->second};
        return std::nullopt;
    }

    static std::optional<Found> host_lookup(const RateSection& s, Session& ses) {
        return lookup(s, limit_host_keys(ses.remote_ip().str(), ses.remote_host()),
                      ses.remote_ip().unmapped().str());
    }

    static std::optional<Found> mail_lookup(const RateSection& s, const Address& a) {
        std::vector<std::string> keys;
        std::string full = to_lower(a.str());
        keys.push_back(full);
        std::string d = a.domain;
        while (!d.empty()) {
            keys.push_back(d);
            auto dot = d.find('.');
            if (dot == std::string::npos) break;
            d = d.substr(dot + 1);
        }
        return lookup(s, keys, full);
    }

    // ---- hooks ----
    std::optional<Result> connect_init(HookCall& c) const {
        Session& s = *c.session;
        if (concurrency) {
            limit_store().concurrency_add("concurrency|" + s.remote_ip().unmapped().str(), 1);
            s.notes()["limit.concurrency"] = "1";
        }
        if (rate_conn.enabled) {
            if (auto f = host_lookup(rate_conn, s); f && f->spec.limit) {
                uint64_t n = limit_store().sliding_hit("rate_conn|" + f->key, f->spec, now_ms());
                if (n > f->spec.limit) s.notes()["limit.rate_conn"] = std::to_string(n);
            }
        }
        return Result::cont();
    }

    std::optional<Result> connect(HookCall& c) const {
        Session& s = *c.session;
        if (concurrency) {
            int64_t n =
                limit_store().concurrency_add("concurrency|" + s.remote_ip().unmapped().str(), 0);
            if (n > concurrency_max) return penalize(c, true, "Too many concurrent connections");
        }
        if (s.notes().count("limit.rate_conn"))
            return penalize(c, true, "connection rate limit exceeded");
        if (rate_rcpt_host.enabled) {
            if (auto f = host_lookup(rate_rcpt_host, s); f && f->spec.limit) {
                if (limit_store().fixed_peek("rate_rcpt_host|" + f->key, now_ms()) > f->spec.limit)
                    return penalize(c, false, "recipient rate limit exceeded");
            }
        }
        return Result::cont();
    }

    std::optional<Result> disconnect(HookCall& c) const {
        Session& s = *c.session;
        if (s.notes().erase("limit.concurrency"))
            limit_store().concurrency_add("concurrency|" + s.remote_ip().unmapped().str(), -1);
        return Result::cont();
    }

    std::optional<Result> check_errors(HookCall& c) const {
        if (uint64_t(c.session->errors()) > errors_max) return penalize(c, true, "Too many errors");
        return Result::cont();
    }

    std::optional<Result> rcpt(HookCall& c) const {
        Session& s = *c.session;
        if (errors && uint64_t(s.errors()) > errors_max)
            return penalize(c, true, "Too many errors");
        if (recipients) {
            uint64_t max =
                s.relaying() && recipients_max_relaying ? recipients_max_relaying : recipients_max;
            if (max && uint64_t(s.rcpt_attempts()) + 1 > max)
                return penalize(c, false, "Too many recipient attempts");
        }
        int64_t now = now_ms();
        if (rate_rcpt_host.enabled) {
            if (auto f = host_lookup(rate_rcpt_host, s); f && f->spec.limit)
                limit_store().fixed_hit("rate_rcpt_host|" + f->key, f->spec, now);
        }
        Transaction* t = s.transaction();
        if (rate_rcpt_sender.enabled && t) {
            if (auto f = mail_lookup(rate_rcpt_sender, t->mail_from); f && f->spec.limit) {
                if (limit_store().fixed_hit("rate_rcpt_sender|" + f->key, f->spec, now) >
                    f->spec.limit)
                    return penalize(c, false, "rcpt rate limit exceeded");
            }
        }
        if (rate_rcpt_null.enabled && t && t->mail_from.null && c.address) {
            if (auto f = mail_lookup(rate_rcpt_null, *c.address); f && f->spec.limit) {
                if (limit_store().fixed_hit("rate_rcpt_null|" + f->key, f->spec, now) >
                    f->spec.limit)
                    return penalize(c, false, "null recip rate limit");
            }
        }
        if (rate_rcpt.enabled && c.address) {
            if (auto f = mail_lookup(rate_rcpt, *c.address); f && f->spec.limit) {
                if (limit_store().fixed_hit("rate_rcpt|" + f->key, f->spec, now) > f->spec.limit)
                    return penalize(c, false, "rate limit exceeded");
            }
        }
        return Result::cont();
    }

    std::optional<Result> unrecognized_command(HookCall& c) const {
        auto& n = c.session->notes()["limit.unrecognized"];
        uint64_t count = n.empty() ? 1 : std::stoull(n) + 1;
        n = std::to_string(count);
        if (count > unrecognized_max) return penalize(c, true, "Too many unrecognized commands");
        return Result::cont();
    }
};

void read_rate_section(const Ini& ini, IniReader& r, std::string_view name, RateSection& out,
                       Diagnostics& d) {
    out.enabled = r.get_bool(name, "enabled", false);
    const auto* s = ini.section(name);
    if (!s) return;
    for (const auto& e : s->entries) {
        if (e.key == "enabled") continue;
        auto spec = RateSpec::parse(e.value.value_or(""));
        if (!spec) {
            d.error(ini.path, e.line,
                    fmt::format("[{}] {}: '{}' is not N or N/T (T in s, m, h or d)", name, e.key,
                                e.value.value_or("")));
            continue;
        }
        out.keys[to_lower(e.key)] = *spec;
    }
}

}  // namespace

std::shared_ptr<Plugin> make_limit_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                          HookTable& table, uint32_t timeout_ms) {
    auto p = std::make_shared<Limit>();
    Ini ini = cfg.ini("limit.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "concurrency", "recipients", "unrecognized_commands", "errors",
                      "rate_conn", "rate_rcpt_host", "rate_rcpt_sender", "rate_rcpt",
                      "rate_rcpt_null", "redis", "outbound", "rate_outbound", "concurrency_history",
                      "recipients_history", "rate_conn_history"});
    r.check_known("main", {"tarpit_delay"});
    r.check_known("concurrency", {"enabled", "max"});
    r.check_known("recipients", {"enabled", "max", "max_relaying"});
    r.check_known("unrecognized_commands", {"enabled", "max"});
    r.check_known("errors", {"enabled", "max"});
    for (std::string_view s :
         {"redis", "concurrency_history", "recipients_history", "rate_conn_history", "outbound"}) {
        if (!ini.section(s)) continue;
        bool on = r.get_bool(s, "enabled", false);
        if (!on && s != "redis") continue;
        d.warn(
            ini.path, 0,
            s == "redis" ? std::string("[redis] is ignored: Kasi keeps limit counters in memory")
            : s.ends_with("_history")
                ? fmt::format("[{}] needs the karma plugin, which Kasi does not have; ignored", s)
                : fmt::format("[{}] is outbound shaping, set per destination in Kasi's queue "
                              "configuration; ignored here",
                              s));
    }
    uint64_t tarpit = uint64_t(r.get_int("main", "tarpit_delay", 0, 0, 3600));
    if (timeout_ms && tarpit * 1000 >= timeout_ms)
        d.error(ini.path, 0,
                fmt::format("[main] tarpit_delay ({} s) must be shorter than the plugin timeout "
                            "({} s)",
                            tarpit, timeout_ms / 1000));
    p->tarpit_ms = tarpit * 1000;
    p->concurrency = r.get_bool("concurrency", "enabled", false);
    p->concurrency_max = r.get_int("concurrency", "max", 3, 1, 1000000);
    p->recipients = r.get_bool("recipients", "enabled", false);
    p->recipients_max = uint64_t(r.get_int("recipients", "max", 0, 0, 100000000));
    p->recipients_max_relaying = uint64_t(r.get_int("recipients", "max_relaying", 0, 0, 100000000));
    p->unrecognized = r.get_bool("unrecognized_commands", "enabled", false);
    p->unrecognized_max = uint64_t(r.get_int("unrecognized_commands", "max", 10, 0, 1000000));
    p->errors = r.get_bool("errors", "enabled", false);
    p->errors_max = uint64_t(r.get_int("errors", "max", 10, 0, 1000000));
    read_rate_section(ini, r, "rate_conn", p->rate_conn, d);
    read_rate_section(ini, r, "rate_rcpt_host", p->rate_rcpt_host, d);
    read_rate_section(ini, r, "rate_rcpt_sender", p->rate_rcpt_sender, d);
    read_rate_section(ini, r, "rate_rcpt", p->rate_rcpt, d);
    read_rate_section(ini, r, "rate_rcpt_null", p->rate_rcpt_null, d);
    read_rate_section(ini, r, "rate_outbound", p->rate_outbound, d);

    Limit* self = p.get();
    const std::string n = "limit";
    if (p->concurrency || p->rate_conn.enabled)
        table.add(
            Hook::connect_init, n, [self](HookCall& c) { return self->connect_init(c); }, 0,
            timeout_ms);
    if (p->concurrency || p->rate_conn.enabled || p->rate_rcpt_host.enabled)
        table.add(
            Hook::connect, n, [self](HookCall& c) { return self->connect(c); }, 0, timeout_ms);
    if (p->concurrency)
        table.add(
            Hook::disconnect, n, [self](HookCall& c) { return self->disconnect(c); }, 0,
            timeout_ms);
    if (p->errors)
        for (Hook h : {Hook::helo, Hook::ehlo, Hook::mail, Hook::data})
            table.add(
                h, n, [self](HookCall& c) { return self->check_errors(c); }, 0, timeout_ms);
    if (p->errors || p->recipients || p->rate_rcpt_host.enabled || p->rate_rcpt_sender.enabled ||
        p->rate_rcpt.enabled || p->rate_rcpt_null.enabled)
        table.add(
            Hook::rcpt, n, [self](HookCall& c) { return self->rcpt(c); }, 0, timeout_ms);
    if (p->rate_outbound.enabled)
        table.add(
            Hook::send_email, n, [self](HookCall& c) { return self->send_email(c); }, 0,
            timeout_ms);
    if (p->unrecognized)
        table.add(
            Hook::unrecognized_command, n,
            [self](HookCall& c) { return self->unrecognized_command(c); }, 100, timeout_ms);
    return p;
}

}  // namespace kasi
