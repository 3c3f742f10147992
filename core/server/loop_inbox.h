// A thread-safe queue of tasks into one libuv loop. Other threads (the spool writer, the
// signal handler's loop, a reload) post closures; the loop runs them in order from its
// uv_async callback. This is the only way another thread touches a loop's state.
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

#include "core/util/uv_handle.h"

namespace kasi {

class LoopInbox {
  public:
    explicit LoopInbox(uv_loop_t* loop);
    ~LoopInbox();
    LoopInbox(const LoopInbox&) = delete;
    LoopInbox& operator=(const LoopInbox&) = delete;

    void post(std::function<void()> task);  // any thread
    void close();                           // loop thread; drops unrun tasks

  private:
    void drain();

    std::mutex mu_;
    std::vector<std::function<void()>> tasks_;
    UvHandle<uv_async_t> async_;
    bool closed_ = false;
};

}  // namespace kasi
