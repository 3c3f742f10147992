#include "core/server/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/server/extensions.h"
#include "core/server/listen_socket.h"
#include "core/server/sd_notify.h"
#include "core/util/clock.h"

namespace kasi {

namespace {
std::string now_text() {
    return rfc5322_date(now_ms() / 1000);
}

// The last line of defence of a shutdown, once the main loop has stopped: if the other
// threads have not finished `grace` later, long-running calls are interrupted (extensions.h:
// a policy call ends at its next budget check, so its loop can stop); if they still have
// not finished after another `grace`, the process ends (a thread stuck where nothing can
// reach it must not keep a stopping MTA alive; every acknowledged message is on disk).
class ExitWatchdog {
  public:
    explicit ExitWatchdog(std::chrono::milliseconds grace)
        : thread_([this, grace] {
              std::unique_lock<std::mutex> lk(mu_);
              if (cv_.wait_for(lk, grace, [this] { return done_; })) return;
              log::warn("shutdown: threads still busy: interrupting policy calls");
              extensions().interrupt_all();
              if (cv_.wait_for(lk, grace, [this] { return done_; })) return;
              log::error("shutdown: threads still busy {} ms after the deadline: exiting now",
                         2 * grace.count());
              std::_Exit(1);
          }) {}
    ~ExitWatchdog() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    ExitWatchdog(const ExitWatchdog&) = delete;
    ExitWatchdog& operator=(const ExitWatchdog&) = delete;

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;  // last: starts once the members it uses exist
};

constexpr std::chrono::milliseconds exit_grace{3000};
}  // namespace

bool apply_log_settings(const Settings& s, std::string& err) {
    log::set_level(s.log_level);
    if (!log::set_file(s.log_file)) {
        err = fmt::format("cannot open log file {}: {}", s.log_file, std::strerror(errno));
        return false;
    }
    return true;
}

int Server::run(std::shared_ptr<const ServerConfig> cfg) {
    cfg_ = std::move(cfg);
    const auto& s = cfg_->settings;
    std::string err;
    spool_.set_segment_bytes(s.spool_segment_bytes);
    state_dir_ = s.queue_dir;
    extensions().load_state(state_dir_);  // policy counters (counters.tsv)
    QueueLoader recovered;                // the queue is rebuilt while the spool is read
    if (!spool_.open(s.queue_dir, err, [&recovered](SpooledMessage& m) { recovered.add(m); })) {
        log::crit("spool: {}", err);
        return 1;
    }
    if (!cfg_->outbound->events_file.empty()) {
        std::string evdir =
            cfg_->outbound->events_file.substr(0, cfg_->outbound->events_file.find_last_of('/'));
        if (!evdir.empty()) ::mkdir(evdir.c_str(), 0750);
    }
    outbound_ = std::make_unique<Outbound>(spool_, cfg_->outbound, cfg_->hooks, s.me);
    if (cfg_->suppression && cfg_->suppression->enabled) {
        auto* ob = outbound_.get();
        suppressions_ = SuppressionService::open(
            cfg_->suppression, [ob](std::string json) { ob->log_event(std::move(json)); }, err);
        if (!suppressions_) {
            log::crit("suppression list: {}", err);
            return 1;
        }
        log::notice("suppression list: {} entries in {}", suppressions_->store().size(),
                    cfg_->suppression->dir);
        outbound_->set_suppressions(suppressions_.get());
        suppressions_shown_.show(suppressions_.get());
    }
    if (cfg_->reputation && cfg_->reputation->enabled) {
        reputation_ = ReputationService::open(cfg_->reputation, err);
        if (!reputation_) {
            log::crit("reputation: {}", err);
            return 1;
        }
        outbound_->set_reputation(reputation_.get());
        reputation_shown_.show(reputation_.get());
    }
    if (!outbound_->start(err, recovered)) {
        log::crit("outbound: {}", err);
        return 1;
    }
    queue_sink_ = std::make_unique<QueueSink>(*outbound_);
    intake_ = std::make_unique<Intake>(spool_, queue_sink_.get());
    std::vector<Worker::Listen> socks;
    auto open_all = [&](const std::vector<ListenAddr>& list, bool http) {
        for (const auto& a : list) {
            int fd = open_listen_socket(a, err);
            if (fd < 0) {
                log::crit("{}", err);
                return false;
            }
            socks.push_back({fd, a.implicit_tls, http});
            log::notice("listening on {}{}{}", a.str(), http ? " (HTTP API)" : "",
                        a.implicit_tls ? (http ? " (HTTPS)" : " (implicit TLS)") : "");
        }
        return true;
    };
    if (!open_all(s.listen, false) || (cfg_->http && !open_all(cfg_->http->listen, true))) {
        for (const auto& l : socks) ::close(l.fd);
        return 1;
    }
    int n = s.workers > 0 ? s.workers : int(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) {
        std::vector<Worker::Listen> ls;
        for (const auto& l : socks) ls.push_back({::dup(l.fd), l.implicit_tls, l.http});
        workers_.push_back(std::make_unique<Worker>(i, cfg_, spool_, *intake_, limits_,
                                                    outbound_.get(), suppressions_.get()));
        workers_.back()->start(std::move(ls));
    }
    for (const auto& l : socks) ::close(l.fd);
    log::notice("kasi {} started: {} workers, spool {}", KASI_VERSION, n, s.queue_dir);

    uv_loop_init(&loop_);
    loop_.data = this;
    inbox_ = std::make_unique<LoopInbox>(&loop_);
    loaded_ = fmt::format("generation {} loaded at {} (start)", cfg_->generation, now_text());
    outbound_->set_admin_handler([this](const std::string& line) { return admin(line); });
    if (s.watch_config) {
        watch_ = std::make_unique<ConfigWatch>(
            &loop_,
            std::vector<std::string>{base_dir_ + "/config", base_dir_ + "/plugins",
                                     base_dir_ + "/lua"},
            uint64_t(s.watch_interval_ms), [this] {
                log::notice("configuration files changed: reloading");
                reload("file change");
            });
        watch_->start();
    }
    UvHandle<uv_signal_t> sigterm, sigint, sighup;
    UvHandle<uv_timer_t> poll;
    for (auto* h : {&sigterm, &sigint, &sighup}) uv_signal_init(&loop_, h->get());
    uv_timer_init(&loop_, poll.get());
    poll->data = this;
    sigterm->data = sigint->data = sighup->data = this;
    auto on_stop = [](uv_signal_t* h, int sig) {
        auto* self = static_cast<Server*>(h->data);
        log::notice("received {}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        self->begin_shutdown();
    };
    uv_signal_start(sigterm.get(), on_stop, SIGTERM);
    uv_signal_start(sigint.get(), on_stop, SIGINT);
    uv_signal_start(
        sighup.get(),
        [](uv_signal_t* h, int) {
            auto* self = static_cast<Server*>(h->data);
            self->outbound_->command("reopen-logs", [](std::string) {});  // logrotate
            log::notice("received SIGHUP: reloading the configuration");
            self->reload("SIGHUP");
        },
        SIGHUP);
    uv_timer_start(
        poll.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->check_drained(); }, 100,
        100);
    UvHandle<uv_timer_t> save_timer;
    uv_timer_init(&loop_, save_timer.get());
    save_timer->data = this;
    uv_timer_start(
        save_timer.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->save_state(); }, 5000,
        5000);
    sd_notify_state(fmt::format("READY=1\nMAINPID={}\nSTATUS=kasi {}: {} workers, generation {}",
                                ::getpid(), KASI_VERSION, n, cfg_->generation));
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Past the deadline, a policy call still running (a runaway loop under a large
    // instruction budget) ends at its next budget check, so its loop can stop.
    if (forced_) extensions().interrupt_all();
    auto watchdog = std::make_unique<ExitWatchdog>(exit_grace);
    for (auto* h : {&sigterm, &sigint, &sighup}) h->close();
    poll.close();
    save_timer.close();
    outbound_->set_admin_handler(nullptr);
    if (watch_) watch_->stop();
    inbox_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    for (auto& w : workers_) w->join();
    workers_.clear();
    outbound_->stop(2000);
    outbound_.reset();
    watchdog.reset();  // the loops are done; the spool may take its time to close
    save_state();
    auto st = spool_.stats();
    spool_.close();
    log::notice("stopped; spool wrote {} records in {} batches", st.records, st.batches);
    return 0;
}

std::string Server::reload(const std::string& why) {
    sd_notify_state(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", uv_hrtime() / 1000));
    std::string answer = reload_config(why);
    sd_notify_state(fmt::format("READY=1\nSTATUS={}", last_reload_.substr(0, 200)));
    return answer;
}

std::string Server::reload_config(const std::string& why) {
    Diagnostics d;
    auto cfg = load_server_config(base_dir_, d);
    for (const auto& w : d.warnings) log::warn("config: {}", w);
    if (!cfg) {
        std::string text;
        for (const auto& e : d.errors) {
            log::error("config: {}", e);
            text += "\n" + e;
        }
        log::error("reload refused: the running configuration stays in effect");
        last_reload_ = fmt::format("reload at {} ({}) refused; generation {} stays:{}", now_text(),
                                   why, cfg_->generation, text);
        return "error: " + last_reload_;
    }
    std::string err;
    if (!apply_log_settings(cfg->settings, err)) log::error("{}", err);
    if (cfg->settings.listen.size() != cfg_->settings.listen.size())
        log::warn("reload: listen addresses changed; they take effect at the next restart");
    auto http_listen = [](const ServerConfig& c) {
        std::string s;
        if (c.http)
            for (const auto& a : c.http->listen) s += a.str() + (a.implicit_tls ? "s " : " ");
        return s;
    };
    if (http_listen(*cfg) != http_listen(*cfg_))
        log::warn(
            "reload: http.ini listen addresses changed; they take effect at the next restart");
    cfg_ = cfg;
    for (auto& w : workers_) w->set_config(cfg);
    if (suppressions_ && cfg->suppression) suppressions_->set_policy(cfg->suppression);
    if (reputation_ && cfg->reputation) reputation_->set_config(cfg->reputation);
    outbound_->set_config(cfg->outbound, cfg->hooks, cfg->settings.me);
    log::notice("configuration generation {} in effect for new connections", cfg->generation);
    loaded_ = fmt::format("generation {} loaded at {} ({})", cfg->generation, now_text(), why);
    last_reload_ = loaded_;
    return "ok " + loaded_;
}

void Server::save_state() {
    extensions().save_state(state_dir_);
}

std::string Server::status() const {
    return fmt::format("ok {}\nlast reload: {}", loaded_,
                       last_reload_.empty() ? "none" : last_reload_);
}

std::optional<std::string> Server::admin(const std::string& line) {
    if (line == "reload")
        return on_main([this] {
            log::notice("kasictl reload: reloading the configuration");
            return reload("kasictl");
        });
    if (line == "status") return on_main([this] { return status(); });
    if (line == "metrics") return "ok\n" + extensions().prometheus();
    return std::nullopt;
}

std::string Server::on_main(std::function<std::string()> fn) {
    auto done = std::make_shared<std::promise<std::string>>();
    auto answer = done->get_future();
    inbox_->post([done, fn = std::move(fn)] { done->set_value(fn()); });
    if (answer.wait_for(std::chrono::seconds(30)) != std::future_status::ready)
        return "error: the main loop did not answer in 30 s";
    try {
        return answer.get();
    } catch (const std::future_error&) {  // the task was dropped: shutting down
        return "error: kasi is shutting down";
    }
}

void Server::begin_shutdown() {
    if (stopping_) return;
    stopping_ = true;
    sd_notify_state("STOPPING=1\nSTATUS=stopping");
    deadline_ms_ = now_ms() + int64_t(cfg_->settings.shutdown_timeout_s) * 1000;
    for (auto& w : workers_) w->begin_shutdown();
}

void Server::check_drained() {
    if (!stopping_) return;
    int open = 0;
    for (auto& w : workers_) open += w->session_count();
    if (open > 0 && now_ms() < deadline_ms_) return;
    forced_ = open > 0;
    for (auto& w : workers_) w->force_close();
    uv_stop(&loop_);
}

}  // namespace kasi
