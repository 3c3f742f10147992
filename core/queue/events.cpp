#include "core/queue/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/json.h"

namespace kasi {

EventLog::~EventLog() {
    close();
}

bool EventLog::open(const std::string& path, std::string& err) {
    close();
    path_ = path;
    if (path.empty()) return true;
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        return false;
    }
    return true;
}

bool EventLog::reopen(std::string& err) {
    if (fd_ < 0) return true;
    flush();
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        err = fmt::format("{}: {} (still writing to the file open before)", path_,
                          std::strerror(errno));
        return false;
    }
    ::close(fd_);
    fd_ = fd;
    return true;
}

void EventLog::close() {
    flush();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void EventLog::put(const std::string& line) {
    if (fd_ < 0) return;
    buf_ += line;
    buf_ += '\n';
    ++written_;
    if (buf_.size() >= 256 * 1024) flush();
}

void EventLog::flush() {
    if (fd_ < 0 || buf_.empty()) return;
    ssize_t n = ::write(fd_, buf_.data(), buf_.size());
    if (n != ssize_t(buf_.size())) {
        if (!failed_)
            log::error("events: writing {}: {}", path_,
                       n < 0 ? std::strerror(errno) : "short write");
        failed_ = true;
    } else if (failed_) {
        log::notice("events: writing {} works again", path_);
        failed_ = false;
    }
    buf_.clear();
}

void EventLog::reception(const QueuedMessage& m) {
    if (fd_ < 0) return;
    JsonObject o;
    o.str("type", "Reception").num("time_ms", m.received_ms).str("id", m.id);
    o.str("sender", m.mail_from);
    std::string rcpts = "[";
    for (size_t i = 0; i < m.rcpts.size(); ++i) {
        if (i) rcpts += ',';
        json_escape(rcpts, m.rcpts[i].address);
    }
    rcpts += ']';
    o.raw("recipients", rcpts).num("size", int64_t(m.body_size));
    if (!m.tenant().empty()) o.str("tenant", m.tenant());
    if (!m.campaign().empty()) o.str("campaign", m.campaign());
    if (m.is_dsn) o.boolean("dsn", true);
    put(o.done());
}

void EventLog::recipient(const char* type, const QueuedMessage& m, uint32_t rcpt,
                         const std::string& queue, const EventPeer& peer, const SmtpReply& reply,
                         const Classification& c, int attempt, int64_t now, int64_t next_due_ms) {
    if (fd_ < 0) return;
    JsonObject o;
    o.str("type", type).num("time_ms", now).str("id", m.id);
    o.str("sender", m.mail_from).str("recipient", m.rcpts[rcpt].address);
    if (!m.tenant().empty()) o.str("tenant", m.tenant());
    if (!m.campaign().empty()) o.str("campaign", m.campaign());
    o.str("queue", queue);
    if (!peer.ready_queue.empty()) {
        o.str("ready_queue", peer.ready_queue).str("source", peer.source);
        o.str("site", peer.site);
    }
    if (!peer.mx_ip.empty()) {
        o.str("egress_ip", peer.egress_ip).str("mx_host", peer.mx_host).str("mx_ip", peer.mx_ip);
        if (!peer.tls_version.empty()) {
            JsonObject t;
            t.str("version", peer.tls_version).str("cipher", peer.tls_cipher);
            t.boolean("verified", peer.tls_verified);
            o.raw("tls", t.done());
        }
    }
    o.num("code", reply.code).str("enhanced", reply.enhanced).str("response", reply.text());
    o.str("reason", c.reason).str("class", c.cls).boolean("hard", c.hard);
    o.str("scope", scope_name(c.scope)).str("provider", c.provider);
    o.num("attempt", attempt).num("size", int64_t(m.body_size));
    o.num("queued_ms", now - m.received_ms);
    if (next_due_ms) o.num("next_due_ms", next_due_ms);
    put(o.done());
}

}  // namespace kasi
