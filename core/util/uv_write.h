// Writes on libuv streams that own their bytes. uv_write() needs the buffer to live until
// its callback; these helpers keep a std::string in the request and free both there, so a
// caller never manages a write request by hand.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <string_view>

namespace kasi {

using WriteDone = std::function<void(int status)>;  // 0, or a libuv error

// Queues `data` on `stream`. `done` runs on the loop when libuv is done with it, or at once
// with the error if the write could not be queued. Returns that error (0: queued).
int write_owned(uv_stream_t* stream, std::string data, WriteDone done = {});

// Writes what the stream takes at once (uv_try_write), and queues a copy of the rest with
// write_owned (`queued_done` is its callback; it is not called when all went at once).
// Returns a libuv error when the stream has failed (not for EAGAIN), else 0.
int write_now_or_queue(uv_stream_t* stream, std::string_view data, WriteDone queued_done = {});

}  // namespace kasi
