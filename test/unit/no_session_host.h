// For unit tests that need a Session only as the subject of a HookCall: a SessionHost on a
// given loop that never spools, delivers or is told anything. The session is never started.
#pragma once

#include <uv.h>

#include <memory>
#include <stdexcept>

#include "core/smtp/server/session.h"

namespace kasi::test {

struct NoHost : SessionHost {
    uv_loop_t* lp;
    explicit NoHost(uv_loop_t* l) : lp(l) {}
    uv_loop_t* loop() override { return lp; }
    Intake& intake() override { throw std::logic_error("unused"); }
    LoopInbox& inbox() override { throw std::logic_error("unused"); }
    void session_closed(Session*) override {}
};

}  // namespace kasi::test
