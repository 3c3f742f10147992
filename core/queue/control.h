// The delivery loop's control socket: a UNIX stream socket (queue/control.sock, mode 0600,
// so only the spool's owner may use it) taking one command line per connection and
// answering one reply, then closing. kasictl is its client:
//   flush [DOMAIN]                  scheduled deliveries (of DOMAIN) become due now
//   suspend DOMAIN|rq:KEY [REASON]  hold a domain's deliveries / a ready queue's connections
//   resume DOMAIN|rq:KEY
//   delete ID|@DOMAIN               drop messages without a DSN
//   bounce ID|@DOMAIN               fail their open recipients (5.0.0) with a DSN
//   reopen-logs                     open the log file and the event log again (logrotate)
//   reload | status | metrics       answered by the server (Outbound::set_admin_handler)
// Replies start with "ok" or "error".
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/util/uv_handle.h"

namespace kasi {

class ControlServer {
  public:
    // Answers a line through `reply`, now or later (on the loop's thread).
    using Handler =
        std::function<void(const std::string& line, std::function<void(std::string)> reply)>;
    ControlServer(uv_loop_t* loop, Handler h);
    ~ControlServer();
    bool listen(const std::string& path, std::string& err);

  private:
    struct Client;
    void on_connection();
    void on_read(Client* c, ssize_t n);
    void drop(Client* c);

    uv_loop_t* loop_;
    Handler handler_;
    std::string path_;
    UvHandle<uv_pipe_t> pipe_;
    std::map<Client*, std::unique_ptr<Client>> clients_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kasi
