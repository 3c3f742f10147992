#include "core/util/uv_write.h"

#include <memory>

namespace kasi {

namespace {

struct OwnedWrite {
    uv_write_t req{};
    std::string data;
    WriteDone done;
};

}  // namespace

int write_owned(uv_stream_t* stream, std::string data, WriteDone done) {
    auto w = std::make_unique<OwnedWrite>();
    w->data = std::move(data);
    w->done = std::move(done);
    w->req.data = w.get();
    uv_buf_t b = uv_buf_init(w->data.data(), unsigned(w->data.size()));
    int rc = uv_write(&w->req, stream, &b, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<OwnedWrite> own(static_cast<OwnedWrite*>(req->data));
        if (own->done) own->done(status);
    });
    if (rc != 0) {
        if (w->done) w->done(rc);
        return rc;
    }
    w.release();  // freed by the callback
    return 0;
}

int write_now_or_queue(uv_stream_t* stream, std::string_view data, WriteDone queued_done) {
    if (data.empty()) return 0;
    uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), unsigned(data.size()));
    int n = uv_try_write(stream, &b, 1);
    if (n == int(data.size())) return 0;
    if (n < 0 && n != UV_EAGAIN) return n;
    write_owned(stream, std::string(data.substr(n > 0 ? size_t(n) : 0)), std::move(queued_done));
    return 0;
}

}  // namespace kasi
