#include "core/spool/spool_reader.h"

#include <unordered_map>

#include <fmt/format.h>

#include "core/spool/record.h"
#include "core/spool/segment_files.h"

namespace kasi {

bool stream_spool(const std::string& dir, SpoolSnapshot& info, std::string& err, bool lean,
                  const std::function<void(SpooledMessage&)>& on_message,
                  const std::function<void(uint64_t seq)>& on_segment_end, uint64_t max_msg_seq,
                  uint64_t max_meta_seq) {
    info = SpoolSnapshot{};
    std::vector<SegmentFile> msgs, metas;
    if (!list_segments(dir, SegmentKind::msg, msgs, err)) return false;
    if (!list_segments(dir, SegmentKind::meta, metas, err)) return false;
    std::erase_if(msgs, [&](const SegmentFile& f) { return f.seq > max_msg_seq; });
    std::erase_if(metas, [&](const SegmentFile& f) { return f.seq > max_meta_seq; });
    // Pass 1: the journal, folded into one state per message id.
    struct Journal {
        MessageState state;
        bool done = false;
    };
    std::unordered_map<std::string, Journal> journal;
    for (const auto& seg : metas) {
        info.max_meta_seq = std::max(info.max_meta_seq, seg.seq);
        MappedFile mf;
        if (!mf.open(seg.path, err)) return false;
        auto res = scan_records(mf.data(), [&](const RecordView& rv) {
            StateUpdate u;
            std::string perr;
            if (rv.type != RecordType::state || !StateUpdate::parse(rv.payload, u, perr)) {
                info.problems.push_back(
                    fmt::format("{}@{}: unreadable state record: {}", seg.path, rv.offset, perr));
                return;
            }
            auto& j = journal[u.id];
            u.apply(j.state);
            if (u.done) j.done = true;
        });
        if (res.torn)
            info.torn.push_back(TornTail{seg.path, res.valid_end, mf.data().size(), res.problem});
    }
    // Pass 2: every message record in order, with its state; a journal entry is dropped
    // as soon as its message has been handed on (ids without a message are finished ones
    // whose segment is gone).
    for (const auto& seg : msgs) {
        info.max_msg_seq = std::max(info.max_msg_seq, seg.seq);
        MappedFile mf;
        if (!mf.open(seg.path, err)) return false;
        auto res = scan_records(mf.data(), [&](const RecordView& rv) {
            std::string_view env_text, body;
            Envelope env;
            std::string perr;
            if (rv.type != RecordType::message ||
                !split_message_payload(rv.payload, env_text, body) ||
                !Envelope::parse(env_text, env, perr)) {
                info.problems.push_back(
                    fmt::format("{}@{}: unreadable message record: {}", seg.path, rv.offset, perr));
                return;
            }
            SpooledMessage m;
            if (lean) {  // recovery keeps what delivery needs, not what kasictl shows
                env.client_ip.clear();
                env.helo.clear();
                env.auth_user.clear();
                env.extra.clear();
                // transaction notes stay: plugins read them at get_mx, bounce, ...
            }
            if (auto it = journal.find(env.id); it != journal.end()) {
                m.state = std::move(it->second.state);
                m.done = it->second.done;
                journal.erase(it);
            }
            m.state.rcpts.resize(env.rcpts.size());
            m.env = std::move(env);
            m.segment = seg.seq;
            m.offset = rv.offset;
            m.body_size = body.size();
            m.body_offset = rv.offset + record_header_size + 4 + env_text.size();
            if (m.done)
                ++info.done_count;
            else
                info.live_per_segment[m.segment]++;
            on_message(m);
        });
        if (res.torn)
            info.torn.push_back(TornTail{seg.path, res.valid_end, mf.data().size(), res.problem});
        if (on_segment_end) on_segment_end(seg.seq);
    }
    return true;
}

bool read_spool(const std::string& dir, SpoolSnapshot& out, std::string& err, bool keep_done,
                bool lean) {
    std::deque<SpooledMessage> all;
    bool ok = stream_spool(dir, out, err, lean, [&](SpooledMessage& m) {
        if (!m.done || keep_done) all.push_back(std::move(m));
    });
    out.messages = std::move(all);
    return ok;
}

bool read_message_body(const std::string& dir, const SpooledMessage& m, std::string& body,
                       std::string& err) {
    MappedFile mf;
    if (!mf.open(dir + "/" + segment_name(SegmentKind::msg, m.segment), err)) return false;
    bool found = false;
    scan_records(mf.data().substr(m.offset), [&](const RecordView& rv) {
        if (found) return;
        std::string_view env, b;
        if (split_message_payload(rv.payload, env, b)) {
            body.assign(b);
            found = true;
        }
    });
    if (!found) err = "message record not found";
    return found;
}

}  // namespace kasi
