#include "core/spool/spool_reader.h"

#include <unordered_map>

#include <fmt/format.h>

#include "core/spool/record.h"
#include "core/spool/segment_files.h"

namespace kasi {

bool read_spool(const std::string& dir, SpoolSnapshot& out, std::string& err, bool keep_done,
                bool lean) {
    out = SpoolSnapshot{};
    std::vector<SegmentFile> msgs, metas;
    if (!list_segments(dir, SegmentKind::msg, msgs, err)) return false;
    if (!list_segments(dir, SegmentKind::meta, metas, err)) return false;
    std::deque<SpooledMessage> all;
    std::unordered_map<std::string, size_t> by_id;
    for (const auto& seg : msgs) {
        out.max_msg_seq = std::max(out.max_msg_seq, seg.seq);
        MappedFile mf;
        if (!mf.open(seg.path, err)) return false;
        auto res = scan_records(mf.data(), [&](const RecordView& rv) {
            std::string_view env_text, body;
            Envelope env;
            std::string perr;
            if (rv.type != RecordType::message ||
                !split_message_payload(rv.payload, env_text, body) ||
                !Envelope::parse(env_text, env, perr)) {
                out.problems.push_back(
                    fmt::format("{}@{}: unreadable message record: {}", seg.path, rv.offset, perr));
                return;
            }
            SpooledMessage m;
            if (lean) {  // recovery keeps what delivery needs, not what kasictl shows
                env.client_ip.clear();
                env.helo.clear();
                env.auth_user.clear();
                env.extra.clear();
                std::erase_if(env.notes, [](const auto& kv) {
                    return kv.first.rfind("kasi.", 0) != 0 && kv.first.rfind("queue.", 0) != 0;
                });
            }
            m.state.rcpts.resize(env.rcpts.size());
            m.env = std::move(env);
            m.segment = seg.seq;
            m.offset = rv.offset;
            m.body_size = body.size();
            m.body_offset = rv.offset + record_header_size + 4 + env_text.size();
            by_id[m.env.id] = all.size();
            all.push_back(std::move(m));
        });
        if (res.torn)
            out.torn.push_back(TornTail{seg.path, res.valid_end, mf.data().size(), res.problem});
    }
    for (const auto& seg : metas) {
        out.max_meta_seq = std::max(out.max_meta_seq, seg.seq);
        MappedFile mf;
        if (!mf.open(seg.path, err)) return false;
        auto res = scan_records(mf.data(), [&](const RecordView& rv) {
            StateUpdate u;
            std::string perr;
            if (rv.type != RecordType::state || !StateUpdate::parse(rv.payload, u, perr)) {
                out.problems.push_back(
                    fmt::format("{}@{}: unreadable state record: {}", seg.path, rv.offset, perr));
                return;
            }
            auto it = by_id.find(u.id);
            if (it == by_id.end()) return;  // its segment is gone: finished long ago
            auto& m = all[it->second];
            u.apply(m.state);
            if (u.done) m.done = true;
        });
        if (res.torn)
            out.torn.push_back(TornTail{seg.path, res.valid_end, mf.data().size(), res.problem});
    }
    by_id.clear();
    for (auto& m : all) {
        if (m.done)
            ++out.done_count;
        else
            out.live_per_segment[m.segment]++;
    }
    if (!keep_done) std::erase_if(all, [](const SpooledMessage& m) { return m.done; });
    out.messages = std::move(all);  // moved whole: never two copies of a large queue
    return true;
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
