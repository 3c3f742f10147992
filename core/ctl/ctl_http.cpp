#include "core/ctl/ctl_http.h"

#include "core/ctl/ctl_socket.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include "core/http/json_parse.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/http/http_config.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// The status line and the headers of an answer, names lower-cased.
bool parse_head(const std::string& head, CtlHttpReply& out) {
    if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) return false;
    out.status = std::atoi(head.c_str() + 9);
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
        size_t end = head.find("\r\n", pos + 2);
        std::string line = head.substr(pos + 2, end == std::string::npos ? end : end - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string::npos)
            out.headers.emplace_back(to_lower(trim(std::string_view(line).substr(0, colon))),
                                     std::string(trim(std::string_view(line).substr(colon + 1))));
        pos = end;
    }
    return true;
}

bool write_all(int fd, const std::string& data, std::string& err) {
    for (size_t off = 0; off < data.size();) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n <= 0) {
            err = fmt::format("write: {}", std::strerror(errno));
            return false;
        }
        off += size_t(n);
    }
    return true;
}

}  // namespace

const std::string* CtlHttpReply::header(const std::string& lower_name) const {
    for (const auto& [k, v] : headers)
        if (k == lower_name) return &v;
    return nullptr;
}

std::optional<CtlHttpTarget> ctl_http_target(const std::string& dir) {
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    auto hc = HttpConfig::load(cfg, d);
    if (!hc) return std::nullopt;
    for (const auto& a : hc->listen)
        if (!a.implicit_tls) return CtlHttpTarget{a, hc->max_body_bytes};
    return std::nullopt;
}

bool ctl_http_request(const ListenAddr& a, const std::string& method, const std::string& path,
                      const std::string& content_type, const std::string& body, CtlHttpReply& out,
                      std::string& err, bool* refused) {
    std::string host = a.host;
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::" || host == "::0") host = "::1";
    addrinfo hints{}, *res = nullptr;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host.c_str(), std::to_string(a.port).c_str(), &hints, &res) != 0 || !res) {
        err = "bad address " + host;
        return false;
    }
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    int why = ok ? 0 : errno;
    freeaddrinfo(res);
    if (!ok) {
        if (refused) *refused = why == ECONNREFUSED;
        err = fmt::format("{}: {} (is kasi running?)", a.str(), std::strerror(why));
        if (fd >= 0) ::close(fd);
        return false;
    }
    std::string auth;
    if (const char* t = std::getenv("KASI_API_TOKEN"); t && *t)
        auth = fmt::format("Authorization: Bearer {}\r\n", t);
    std::string head = fmt::format(
        "{} {} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: {}\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        method, path, a.str(), auth, content_type, body.size());
    if (!write_all(fd, head, err) || !write_all(fd, body, err)) {
        ::close(fd);
        return false;
    }
    std::string resp;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, size_t(n));
    ::close(fd);
    auto head_end = resp.find("\r\n\r\n");
    if (head_end == std::string::npos || !parse_head(resp.substr(0, head_end), out)) {
        err = "no HTTP answer from " + a.str();
        return false;
    }
    out.body = resp.substr(head_end + 4);
    return true;
}

std::string ctl_http_error_text(const CtlHttpReply& r) {
    rapidjson::Document d;
    std::string err;  // whatever listens on the port answered: parsed with the API's bounds
    if (parse_json(d, r.body, JsonLimits{}, err) && d.IsObject() && d.HasMember("error") &&
        d["error"].IsObject() && d["error"].HasMember("message") &&
        d["error"]["message"].IsString()) {
        std::string field;
        if (d["error"].HasMember("field") && d["error"]["field"].IsString())
            field = fmt::format(" ({})", d["error"]["field"].GetString());
        return fmt::format("{}{}", d["error"]["message"].GetString(), field);
    }
    return r.body;
}

namespace {

// {"ok":true,"result":"..."} / {"error":{"message":"..."}} -> the control socket's text.
std::string as_control_text(const CtlHttpReply& r) {
    rapidjson::Document d;
    std::string err;
    if (parse_json(d, r.body, JsonLimits{}, err) && d.IsObject()) {
        if (d.HasMember("result") && d["result"].IsString())
            return fmt::format("ok: {}\n", d["result"].GetString());
        if (d.HasMember("error")) return "error: " + ctl_http_error_text(r) + "\n";
    }
    return r.body;
}

}  // namespace

std::optional<int> ctl_http(const std::string& dir, const std::string& cmd,
                            const std::vector<std::string>& args) {
    auto target = ctl_http_target(dir);
    if (!target) return std::nullopt;
    std::string method = "POST", path = "/api/v1/admin/" + cmd;
    JsonObject body;
    std::string arg = args.empty() ? "" : args[0], rest;
    for (size_t i = 1; i < args.size(); ++i) rest += (rest.empty() ? "" : " ") + args[i];
    if (cmd == "status" || cmd == "queue") method = "GET";
    if (cmd == "metrics") method = "GET", path = "/metrics";
    if (cmd == "flush" && !arg.empty()) body.str("domain", arg);
    if (cmd == "suspend" || cmd == "resume") {
        if (arg.rfind("rq:", 0) == 0)
            body.str("queue", arg.substr(3));
        else if (!arg.empty())
            body.str("domain", arg);
        if (!rest.empty()) body.str("reason", rest);
    }
    if (cmd == "suppress" || cmd == "tenant") {  // the words as the control socket reads them
        std::string words;
        for (const auto& w : args) words += (words.empty() ? "" : " ") + w;
        body.str("args", words);
    }
    if ((cmd == "delete" || cmd == "bounce") && !arg.empty()) {
        if (arg[0] == '@')
            body.str("domain", arg.substr(1));
        else
            body.str("id", arg);
    }
    CtlHttpReply r;
    std::string err;
    if (!ctl_http_request(target->addr, method, path, "application/json",
                          method == "GET" ? "" : body.done(), r, err)) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    std::string text =
        (cmd == "metrics" || cmd == "queue") && r.status == 200 ? r.body : as_control_text(r);
    if (cmd == "metrics" && r.status == 200) text = "ok\n" + text;
    std::fwrite(text.data(), 1, text.size(), stdout);
    return r.status == 200 ? 0 : 1;
}

std::optional<std::string> ctl_ask_json(const std::string& dir, const std::string& spool,
                                        const std::string& http_path,
                                        const std::string& socket_line, std::string& err) {
    if (auto t = ctl_http_target(dir)) {
        CtlHttpReply r;
        bool refused = false;
        if (ctl_http_request(t->addr, "GET", http_path, "", "", r, err, &refused)) {
            if (r.status == 200) return r.body;
            err = ctl_http_error_text(r);
            return std::string();
        }
        if (!refused) return std::string();
    }
    std::string reply;
    bool refused = false;
    if (!ctl_socket_request(spool, socket_line, reply, err, &refused))
        return refused ? std::nullopt : std::optional<std::string>(std::string());
    while (!reply.empty() && reply.back() == '\n') reply.pop_back();
    if (reply.rfind("ok ", 0) == 0) return reply.substr(3);
    err = reply;
    return std::string();
}

}  // namespace kasi
