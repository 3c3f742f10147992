#include "core/server/loop_inbox.h"

namespace kasi {

LoopInbox::LoopInbox(uv_loop_t* loop) {
    uv_async_init(loop, async_.get(), [](uv_async_t* a) {
        if (auto* self = static_cast<LoopInbox*>(a->data)) self->drain();
    });
    async_->data = this;
}

LoopInbox::~LoopInbox() {
    close();
}

void LoopInbox::post(std::function<void()> task) {
    {
        std::lock_guard lk(mu_);
        if (closed_) return;
        tasks_.push_back(std::move(task));
        uv_async_send(async_.get());  // under the lock: close() cannot free the handle meanwhile
    }
}

void LoopInbox::close() {
    {
        std::lock_guard lk(mu_);
        if (closed_) return;
        closed_ = true;
        tasks_.clear();
    }
    async_.close();
}

void LoopInbox::drain() {
    std::vector<std::function<void()>> run;
    {
        std::lock_guard lk(mu_);
        run.swap(tasks_);
    }
    for (auto& t : run) t();
}

}  // namespace kasi
