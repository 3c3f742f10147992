// The points where what lies above core attaches to it: the Lua engine (policy/) and the
// native plugins (plugins/). Core calls them and includes nothing of either; each layer
// adds what it brings (policy/lua_extensions.h, plugins/registry.h), and the program's
// entry point (app/kasi.cpp), the one file that knows every layer, installs the result
// before any loop or thread starts. From then on it is read-only and shared by every loop:
// the process's one deliberate sharing point of this kind (DESIGN §2.1). Without it (unit
// tests, tools) every point is empty and core runs on its own.
//
//   build_plugins  config/plugins -> a generation's hook table (load_server_config)
//   on_loop_close  each event loop (a worker's, the delivery loop) runs these on its own
//                  thread after its last turn, before the turns that run the close
//                  callbacks: what an extension still holds on that loop (timers,
//                  connections) is closed there, never from another thread
//   metrics        Prometheus text appended to GET /metrics and `kasictl metrics`
//   state          process state kept in the spool directory: loaded at start (before
//                  the spool is opened), saved every few seconds and once more at stop
//   interrupt      the shutdown deadline passed: stop long-running calls so that every
//                  loop can stop (called from any thread)
//   suppressions   the node's suppression list, once it is open (kasi.suppression), and
//                  null before it closes
//   reputation     the node's reputation matrix, likewise (kasi.reputation)
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace kasi {

class ConfigDir;
struct Settings;
struct Diagnostics;
class HookTable;
class SuppressionService;
class ReputationService;

struct Extensions {
    // Reads config/plugins into `table` and finalizes it; errors go to `d`.
    using PluginBuilder =
        std::function<bool(const ConfigDir&, const Settings&, Diagnostics& d, HookTable& table)>;
    struct State {
        std::function<void(const std::string&dir)> load, save;  // log their own failures
    };

    PluginBuilder build_plugins;
    std::vector<std::function<void(uv_loop_t*)>> on_loop_close;
    std::vector<std::function<std::string()>> metrics;
    std::vector<State> state;
    std::vector<std::function<void()>> interrupt;
    std::vector<std::function<void(SuppressionService*)>> suppressions;
    std::vector<std::function<void(ReputationService*)>> reputation;

    // Each runs every callback of its point, in the order they were added.
    void close_loop(uv_loop_t* loop) const;
    std::string prometheus() const;
    void load_state(const std::string& dir) const;
    void save_state(const std::string& dir) const;
    void interrupt_all() const;
    void set_suppressions(SuppressionService* list) const;
    void set_reputation(ReputationService* matrix) const;
};

// Once, from main, before anything reads extensions().
void install_extensions(Extensions e);
const Extensions& extensions();

// Shows a service (the suppression list, the reputation matrix) to the extensions for as
// long as it lives: its owner declares one after the service, so that it is withdrawn
// before the service goes.
template <class T, void (Extensions::*Set)(T*) const>
class ServiceShown {
  public:
    ServiceShown() = default;
    ~ServiceShown() {
        if (shown_) (extensions().*Set)(nullptr);
    }
    ServiceShown(const ServiceShown&) = delete;
    ServiceShown& operator=(const ServiceShown&) = delete;
    void show(T* service) {
        (extensions().*Set)(service);
        shown_ = service != nullptr;
    }

  private:
    bool shown_ = false;
};
using SuppressionsShown = ServiceShown<SuppressionService, &Extensions::set_suppressions>;
using ReputationShown = ServiceShown<ReputationService, &Extensions::set_reputation>;

}  // namespace kasi
