#include "core/suppression/suppression_table.h"

#include <cstring>
#include <random>

namespace kasi {

namespace {

__extension__ typedef unsigned __int128 u128;

// 64x64 -> 128-bit multiply, folded: the mixing step of wyhash.
uint64_t mum(uint64_t a, uint64_t b) {
    u128 r = u128(a) * b;
    return uint64_t(r) ^ uint64_t(r >> 64);
}

constexpr uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull,
                   k2 = 0x8ebc6af09c88c6e3ull, k3 = 0x589965cc75374cc3ull;

void lower_expiry(int64_t& next, int64_t expires) {
    if (expires != 0 && (next == 0 || expires < next)) next = expires;
}

}  // namespace

SuppressionTable::SuppressionTable() {
    std::random_device rd;
    seed_ = uint64_t(rd()) << 32 | rd();
}

uint64_t SuppressionTable::hash(uint32_t scope, std::string_view s) const {
    uint64_t h = mum(seed_ ^ scope ^ k0, s.size() ^ k1);
    const char* p = s.data();
    size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        h = mum(v ^ seed_ ^ k1, h ^ k2);
    }
    uint64_t v = 0;
    if (n) std::memcpy(&v, p, n);
    return mum(v ^ seed_ ^ k3, h ^ k0);
}

void SuppressionTable::set_text(Rec& r, uint64_t off) {
    r.text_lo = uint32_t(off);
    r.text_hi = uint16_t(off >> 32);
}

std::string_view SuppressionTable::address_of(const Rec& r) const {
    return decode_address(text_.at(text_of(r))).address;
}

std::optional<uint32_t> SuppressionTable::scope_id(std::string_view scope) const {
    auto it = scope_ids_.find(scope);
    if (it == scope_ids_.end()) return std::nullopt;
    return it->second;
}

uint32_t SuppressionTable::intern(std::string_view scope) {
    if (auto id = scope_id(scope)) return *id;
    uint32_t id = uint32_t(scope_names_.size());
    scope_names_.emplace_back(scope);
    scope_ids_.emplace(scope_names_.back(), id);
    return id;
}

std::optional<size_t> SuppressionTable::find_slot(uint32_t scope, std::string_view address,
                                                  uint64_t h) const {
    if (slots_.tag.empty()) return std::nullopt;
    size_t mask = slots_.tag.size() - 1;
    uint8_t tag = tag_of(h);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint8_t t = slots_.tag[i];
        if (t == 0) return std::nullopt;
        if (t != tag) continue;
        const Rec& r = record(slots_.rec[i]);
        if (r.scope == scope && address_of(r) == address) return i;
    }
}

std::optional<uint32_t> SuppressionTable::find(uint32_t scope, std::string_view address) const {
    auto slot = find_slot(scope, address, hash(scope, address));
    if (!slot) return std::nullopt;
    return slots_.rec[*slot];
}

SuppressionEntry SuppressionTable::entry(uint32_t rec) const {
    const Rec& r = record(rec);
    const uint8_t* p = text_.at(text_of(r));
    SuppressionEntry e;
    e.address = decode_address(p).address;
    e.event = decode_event(p);
    e.scope = scope_names_[r.scope];
    e.reason = SuppressionReason(r.reason);
    e.created = r.created;
    e.expires = r.expires;
    return e;
}

bool SuppressionTable::expired(uint32_t rec, int64_t now) const {
    const Rec& r = record(rec);
    return r.expires != 0 && r.expires <= now;
}

uint32_t SuppressionTable::new_record() {
    if (!free_records_.empty()) {
        uint32_t i = free_records_.back();
        free_records_.pop_back();
        return i;
    }
    if ((records_ >> rec_chunk_bits) == rec_chunks_.size())
        rec_chunks_.push_back(std::make_unique<Rec[]>(size_t(1) << rec_chunk_bits));
    return records_++;
}

void SuppressionTable::store_text(Rec& r, std::string_view address, std::string_view event) {
    scratch_.clear();
    encode_text(scratch_, address, event);
    uint64_t off = text_.alloc(scratch_.size());
    std::memcpy(text_.at(off), scratch_.data(), scratch_.size());
    set_text(r, off);
}

void SuppressionTable::place(Slots& s, uint32_t rec, uint64_t h) const {
    size_t mask = s.tag.size() - 1;
    size_t i = h & mask;
    while (s.tag[i] != 0) i = (i + 1) & mask;
    s.tag[i] = tag_of(h);
    s.rec[i] = rec;
}

bool SuppressionTable::upsert(const SuppressionEntry& e, int64_t at) {
    if (e.expired(at)) return erase(e.scope, e.address);  // already over: same as absent
    uint32_t sid = intern(e.scope);
    uint64_t h = hash(sid, e.address);
    if (auto slot = find_slot(sid, e.address, h)) {
        Rec& r = record(slots_.rec[*slot]);
        bool in_force = r.expires == 0 || r.expires > at;
        if (in_force && int64_t(r.created) > e.created) return false;  // ours is newer
        --counts_[r.reason - 1];
        uint64_t old = text_of(r);
        size_t old_size = decode_address(text_.at(old)).size;
        scratch_.clear();
        encode_text(scratch_, e.address, e.event);
        if (scratch_.size() == old_size) {
            std::memcpy(text_.at(old), scratch_.data(), old_size);
        } else {
            text_.release(old, old_size);
            store_text(r, e.address, e.event);
        }
        r.reason = uint8_t(e.reason);
        r.created = uint32_t(e.created);
        r.expires = uint32_t(e.expires);
        ++counts_[reason_index(e.reason)];
        lower_expiry(next_expiry_, e.expires);
        return true;
    }
    if (needs_growth(1)) install(grown(1));
    uint32_t idx = new_record();
    Rec& r = record(idx);
    r = Rec{};
    r.reason = uint8_t(e.reason);
    r.live = 1;
    r.scope = sid;
    r.created = uint32_t(e.created);
    r.expires = uint32_t(e.expires);
    store_text(r, e.address, e.event);
    place(slots_, idx, h);
    ++size_;
    ++counts_[reason_index(e.reason)];
    lower_expiry(next_expiry_, e.expires);
    return true;
}

// Backward-shift deletion: entries after the hole that may live there move up, so every
// probe sequence stays unbroken without tombstones.
void SuppressionTable::erase_slot(size_t i) {
    size_t mask = slots_.tag.size() - 1;
    for (size_t j = (i + 1) & mask; slots_.tag[j] != 0; j = (j + 1) & mask) {
        const Rec& r = record(slots_.rec[j]);
        size_t home = hash(r.scope, address_of(r)) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {  // home is not in (i, j]
            slots_.tag[i] = slots_.tag[j];
            slots_.rec[i] = slots_.rec[j];
            i = j;
        }
    }
    slots_.tag[i] = 0;
    slots_.rec[i] = 0;
}

void SuppressionTable::erase_record(uint32_t rec) {
    Rec& r = record(rec);
    text_.release(text_of(r), decode_address(text_.at(text_of(r))).size);
    --counts_[r.reason - 1];
    --size_;
    r.live = 0;
    free_records_.push_back(rec);
}

bool SuppressionTable::erase(std::string_view scope, std::string_view address) {
    auto sid = scope_id(scope);
    if (!sid) return false;
    auto slot = find_slot(*sid, address, hash(*sid, address));
    if (!slot) return false;
    uint32_t rec = slots_.rec[*slot];
    erase_slot(*slot);
    erase_record(rec);
    return true;
}

size_t SuppressionTable::drop_expired(uint32_t from, uint32_t to, int64_t horizon, int64_t& next) {
    size_t dropped = 0;
    for (uint32_t i = from; i < to && i < records_; ++i) {
        const Rec& r = record(i);
        if (!r.live || r.expires == 0) continue;
        if (r.expires > horizon) {
            lower_expiry(next, r.expires);
            continue;
        }
        std::string_view a = address_of(r);
        if (auto slot = find_slot(r.scope, a, hash(r.scope, a))) erase_slot(*slot);
        erase_record(i);
        ++dropped;
    }
    return dropped;
}

bool SuppressionTable::needs_growth(size_t extra) const {
    return (size_ + extra) * 5 > slots_.tag.size() * 4;
}

SuppressionTable::Slots SuppressionTable::grown(size_t extra) const {
    size_t need = size_ + extra, cap = 1024;
    while (cap < need * 2) cap *= 2;
    Slots s;
    s.rec.assign(cap, 0);
    s.tag.assign(cap, 0);
    for (uint32_t i = 0; i < records_; ++i) {
        const Rec& r = record(i);
        if (r.live) place(s, i, hash(r.scope, address_of(r)));
    }
    return s;
}

size_t SuppressionTable::memory_bytes() const {
    size_t n = rec_chunks_.size() * (sizeof(Rec) << rec_chunk_bits);
    n += text_.reserved_bytes();
    n += slots_.tag.capacity() * (sizeof(uint32_t) + sizeof(uint8_t));
    n += free_records_.capacity() * sizeof(uint32_t);
    for (const auto& s : scope_names_) n += sizeof(s) + s.capacity() + 48;  // + map node
    return n;
}

}  // namespace kasi
