#include "core/server/extensions.h"

namespace kasi {

namespace {
Extensions& installed() {
    static Extensions e;
    return e;
}
}  // namespace

void install_extensions(Extensions e) {
    installed() = std::move(e);
}

const Extensions& extensions() {
    return installed();
}

void Extensions::close_loop(uv_loop_t* loop) const {
    for (const auto& f : on_loop_close) f(loop);
}

std::string Extensions::prometheus() const {
    std::string text;
    for (const auto& f : metrics) text += f();
    return text;
}

void Extensions::load_state(const std::string& dir) const {
    for (const auto& s : state)
        if (s.load) s.load(dir);
}

void Extensions::save_state(const std::string& dir) const {
    for (const auto& s : state)
        if (s.save) s.save(dir);
}

void Extensions::interrupt_all() const {
    for (const auto& f : interrupt) f();
}

void Extensions::set_suppressions(SuppressionService* list) const {
    for (const auto& fn : suppressions) fn(list);
}

void Extensions::set_reputation(ReputationService* matrix) const {
    for (const auto& fn : reputation) fn(matrix);
}

}  // namespace kasi
