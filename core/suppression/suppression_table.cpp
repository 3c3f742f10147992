#include "core/suppression/suppression_table.h"

#include <cstring>

#include "core/suppression/suppression_hash.h"

namespace kasi {

namespace {

void lower_expiry(int64_t& next, int64_t expires) {
    if (expires != 0 && (next == 0 || expires < next)) next = expires;
}

// local@domain at the last '@'; false when there is none.
bool split(std::string_view address, std::string_view& local, std::string_view& domain) {
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) return false;
    local = address.substr(0, at);
    domain = address.substr(at + 1);
    return true;
}

}  // namespace

SuppressionTable::SuppressionTable()
    : seed_(suppression_hash::random_seed()), scopes_(seed_ ^ 1), domains_(seed_ ^ 2) {}

uint64_t SuppressionTable::hash(const TextKey& k) const {
    return suppression_hash::hash(seed_, k.local, uint64_t(k.scope) << 32 | k.domain);
}

void SuppressionTable::set_text(Rec& r, uint64_t off) {
    r.text_lo = uint32_t(off);
    r.text_hi = uint16_t(off >> 32);
}

std::optional<TextKey> SuppressionTable::key(std::string_view address) const {
    TextKey k;
    std::string_view domain;
    if (!split(address, k.local, domain)) return std::nullopt;
    auto d = domains_.find(domain);
    if (!d) return std::nullopt;  // no entry has this domain
    k.domain = *d;
    return k;
}

std::optional<size_t> SuppressionTable::find_slot(const TextKey& k, uint64_t h) const {
    if (slots_.tag.empty()) return std::nullopt;
    size_t mask = slots_.tag.size() - 1;
    uint8_t tag = tag_of(h);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint8_t t = slots_.tag[i];
        if (t == 0) return std::nullopt;
        if (t == tag && key_of(record(slots_.rec[i])) == k) return i;
    }
}

std::optional<uint32_t> SuppressionTable::find(const TextKey& k) const {
    auto slot = find_slot(k, hash(k));
    if (!slot) return std::nullopt;
    return slots_.rec[*slot];
}

std::optional<uint32_t> SuppressionTable::find(uint32_t scope, std::string_view address) const {
    auto k = key(address);
    if (!k) return std::nullopt;
    k->scope = scope;
    return find(*k);
}

SuppressionEntry SuppressionTable::entry(uint32_t rec) const {
    const Rec& r = record(rec);
    const uint8_t* p = text_.at(text_of(r));
    TextKey k = decode_text(p).key;
    SuppressionEntry e;
    std::string_view domain = domains_.name(k.domain);
    e.address.reserve(k.local.size() + 1 + domain.size());
    e.address.append(k.local).append(1, '@').append(domain);
    e.event = decode_event(p);
    e.scope = scopes_.name(k.scope);
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

void SuppressionTable::store_text(Rec& r, const TextKey& k, std::string_view event) {
    scratch_.clear();
    encode_text(scratch_, k, event);
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
    TextKey k;
    std::string_view domain;
    if (!split(e.address, k.local, domain)) return false;  // validated before: never
    k.scope = scopes_.intern(e.scope);
    k.domain = domains_.intern(domain);
    uint64_t h = hash(k);
    if (auto slot = find_slot(k, h)) {
        Rec& r = record(slots_.rec[*slot]);
        bool in_force = r.expires == 0 || r.expires > at;
        if (in_force && int64_t(r.created) > e.created) return false;  // ours is newer
        --counts_[r.reason - 1];
        uint64_t old = text_of(r);
        size_t old_size = decode_text(text_.at(old)).size;
        scratch_.clear();
        encode_text(scratch_, k, e.event);
        if (scratch_.size() == old_size) {
            std::memcpy(text_.at(old), scratch_.data(), old_size);
        } else {
            text_.release(old, old_size);
            store_text(r, k, e.event);
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
    r.created = uint32_t(e.created);
    r.expires = uint32_t(e.expires);
    store_text(r, k, e.event);
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
        size_t home = hash(key_of(record(slots_.rec[j]))) & mask;
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
    text_.release(text_of(r), decode_text(text_.at(text_of(r))).size);
    --counts_[r.reason - 1];
    --size_;
    r.live = 0;
    free_records_.push_back(rec);
}

bool SuppressionTable::erase(std::string_view scope, std::string_view address) {
    auto sid = scope_id(scope);
    auto k = key(address);
    if (!sid || !k) return false;
    k->scope = *sid;
    auto slot = find_slot(*k, hash(*k));
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
        TextKey k = key_of(r);
        if (auto slot = find_slot(k, hash(k))) erase_slot(*slot);
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
        if (r.live) place(s, i, hash(key_of(r)));
    }
    return s;
}

size_t SuppressionTable::memory_bytes() const {
    size_t n = rec_chunks_.size() * (sizeof(Rec) << rec_chunk_bits);
    n += text_.reserved_bytes();
    n += slots_.tag.capacity() * (sizeof(uint32_t) + sizeof(uint8_t));
    n += free_records_.capacity() * sizeof(uint32_t);
    return n + scopes_.memory_bytes() + domains_.memory_bytes();
}

}  // namespace kasi
