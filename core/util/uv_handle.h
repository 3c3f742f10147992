// RAII ownership of libuv handles. A uv handle may only be freed after its close callback
// runs, so UvHandle<T> hands the memory to uv_close() on destruction (or close()) and frees
// it in the callback. At close, handle->data is taken over by the close bookkeeping, so a
// callback that still fires sees no owner; owners must not rely on data after close().
#pragma once

#include <uv.h>

#include <functional>
#include <memory>

namespace kasi {

template <class T>
class UvHandle {
  public:
    UvHandle() : h_(std::make_unique<T>()) { h_->loop = nullptr; }
    ~UvHandle() { close(); }
    UvHandle(const UvHandle&) = delete;
    UvHandle& operator=(const UvHandle&) = delete;

    T* get() { return h_.get(); }
    const T* get() const { return h_.get(); }
    T* operator->() { return h_.get(); }
    uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(h_.get()); }
    bool initialized() const { return h_ && h_->loop != nullptr; }

    // Closes the handle (if it was initialised) and frees it once libuv is done with it;
    // `then` runs at that point (or at once for a handle that was never initialised).
    void close(std::function<void()> then = {}) {
        if (!h_) return;
        auto box = std::make_unique<Box>(Box{std::move(h_), std::move(then)});
        T* raw = box->h.get();
        auto* uh = reinterpret_cast<uv_handle_t*>(raw);
        if (raw->loop == nullptr) {  // never initialised
            if (box->then) box->then();
            return;
        }
        raw->data = box.release();
        uv_close(uh, [](uv_handle_t* p) {
            std::unique_ptr<Box> b(static_cast<Box*>(p->data));
            if (b->then) b->then();
        });
    }

  private:
    struct Box {
        std::unique_ptr<T> h;
        std::function<void()> then;
    };
    std::unique_ptr<T> h_;
};

}  // namespace kasi
