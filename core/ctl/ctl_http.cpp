#include "core/ctl/ctl_http.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include "core/http/json_parse.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/http/http_config.h"
#include "core/util/json.h"

namespace kasi {

namespace {

struct Reply {
    int status = 0;
    std::string body;
};

// One request over a fresh connection (Connection: close); false with `err`.
bool request(const ListenAddr& a, const std::string& method, const std::string& path,
             const std::string& body, Reply& out, std::string& err) {
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
    freeaddrinfo(res);
    if (!ok) {
        err = fmt::format("{}: {} (is kasi running?)", a.str(), std::strerror(errno));
        if (fd >= 0) ::close(fd);
        return false;
    }
    std::string auth;
    if (const char* t = std::getenv("KASI_API_TOKEN"); t && *t)
        auth = fmt::format("Authorization: Bearer {}\r\n", t);
    std::string req = fmt::format(
        "{} {} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        method, path, a.str(), auth, body.size(), body);
    for (size_t off = 0; off < req.size();) {
        ssize_t n = ::write(fd, req.data() + off, req.size() - off);
        if (n <= 0) {
            err = fmt::format("write: {}", std::strerror(errno));
            ::close(fd);
            return false;
        }
        off += size_t(n);
    }
    std::string resp;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, size_t(n));
    ::close(fd);
    auto head_end = resp.find("\r\n\r\n");
    if (resp.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || resp.size() < 12) {
        err = "no HTTP answer from " + a.str();
        return false;
    }
    out.status = std::atoi(resp.c_str() + 9);
    out.body = resp.substr(head_end + 4);
    return true;
}

// {"ok":true,"result":"..."} / {"error":{"message":"..."}} -> the control socket's text.
std::string as_control_text(const Reply& r) {
    rapidjson::Document d;
    std::string err;  // whatever listens on the port answered: parsed with the API's bounds
    if (parse_json(d, r.body, JsonLimits{}, err) && d.IsObject()) {
        if (d.HasMember("result") && d["result"].IsString())
            return fmt::format("ok: {}\n", d["result"].GetString());
        if (d.HasMember("error") && d["error"].IsObject() && d["error"].HasMember("message") &&
            d["error"]["message"].IsString()) {
            std::string field;
            if (d["error"].HasMember("field") && d["error"]["field"].IsString())
                field = fmt::format(" ({})", d["error"]["field"].GetString());
            return fmt::format("error: {}{}\n", d["error"]["message"].GetString(), field);
        }
    }
    return r.body;
}

}  // namespace

std::optional<int> ctl_http(const std::string& dir, const std::string& cmd,
                            const std::vector<std::string>& args) {
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    auto hc = HttpConfig::load(cfg, d);
    if (!hc) return std::nullopt;
    const ListenAddr* plain = nullptr;
    for (const auto& a : hc->listen)
        if (!a.implicit_tls && !plain) plain = &a;
    if (!plain) return std::nullopt;
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
    if (cmd == "suppress") {  // the words as the control socket reads them
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
    Reply r;
    std::string err;
    if (!request(*plain, method, path, method == "GET" ? "" : body.done(), r, err)) {
        std::fprintf(stderr, "kasictl: %s\n", err.c_str());
        return 1;
    }
    std::string text =
        (cmd == "metrics" || cmd == "queue") && r.status == 200 ? r.body : as_control_text(r);
    if (cmd == "metrics" && r.status == 200) text = "ok\n" + text;
    std::fwrite(text.data(), 1, text.size(), stdout);
    return r.status == 200 ? 0 : 1;
}

}  // namespace kasi
