#include "core/queue/control.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/uv_write.h"

namespace kasi {

struct ControlServer::Client {
    ControlServer* server = nullptr;
    UvHandle<uv_pipe_t> pipe;
    char buf[1024];
    std::string in;
    bool answered = false;
};

ControlServer::ControlServer(uv_loop_t* loop, Handler h) : loop_(loop), handler_(std::move(h)) {}

ControlServer::~ControlServer() {
    *alive_ = false;
    if (!path_.empty()) ::unlink(path_.c_str());
}

bool ControlServer::listen(const std::string& path, std::string& err) {
    ::unlink(path.c_str());  // a socket left by a previous run (the spool lock is ours)
    uv_pipe_init(loop_, pipe_.get(), 0);
    pipe_->data = this;
    mode_t old = ::umask(077);
    int rc = uv_pipe_bind(pipe_.get(), path.c_str());
    ::umask(old);
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe_.get()), 16,
                       [](uv_stream_t* s, int status) {
                           if (status == 0 && s->data)
                               static_cast<ControlServer*>(s->data)->on_connection();
                       });
    if (rc != 0) {
        err = fmt::format("control socket {}: {}", path, uv_strerror(rc));
        return false;
    }
    path_ = path;
    uv_unref(pipe_.handle());  // it never keeps the loop alive on its own
    return true;
}

void ControlServer::on_connection() {
    auto c = std::make_unique<Client>();
    Client* raw = c.get();
    raw->server = this;
    uv_pipe_init(loop_, raw->pipe.get(), 0);
    if (uv_accept(reinterpret_cast<uv_stream_t*>(pipe_.get()),
                  reinterpret_cast<uv_stream_t*>(raw->pipe.get())) != 0)
        return;
    raw->pipe->data = raw;
    clients_.emplace(raw, std::move(c));
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(raw->pipe.get()),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
            auto* cl = static_cast<Client*>(h->data);
            b->base = cl->buf;
            b->len = sizeof cl->buf;
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t*) {
            auto* cl = static_cast<Client*>(st->data);
            if (cl) cl->server->on_read(cl, n);
        });
}

void ControlServer::on_read(Client* c, ssize_t n) {
    if (c->answered) return;
    if (n < 0) return drop(c);
    c->in.append(c->buf, size_t(n));
    size_t nl = c->in.find('\n');
    if (nl == std::string::npos && c->in.size() < 4096) return;
    std::string line = c->in.substr(0, nl == std::string::npos ? 4096 : nl);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    c->answered = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(c->pipe.get()));
    std::weak_ptr<bool> alive = alive_;
    auto answer = [this, alive, c, line](std::string text) {
        if (!alive.lock()) return;  // the server went while the answer was being made
        text += "\n";
        log::info("control: {} -> {}", line, text.substr(0, text.find('\n')));
        // the client is dropped once the answer is written (or could not be); the write may
        // finish after the server is gone
        write_owned(reinterpret_cast<uv_stream_t*>(c->pipe.get()), std::move(text),
                    [this, alive, c](int) {
                        if (alive.lock()) drop(c);
                    });
    };
    if (nl == std::string::npos) return answer("error: command line too long");
    handler_(line, std::move(answer));
}

void ControlServer::drop(Client* c) {
    clients_.erase(c);  // closes the pipe
}

}  // namespace kasi
