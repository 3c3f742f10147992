// A suppression: "never send to this address (in this scope)". The vocabulary shared by the
// store (suppression_store.h), its journal and the CSV helpers.
//
// An entry is identified by (scope, address):
//   - address: the whole address, trimmed and lower-cased, local part included. RFC 5321
//     lets a receiving host treat local parts case-sensitively, but no mailbox provider
//     does, and a list that misses "John@example.com" after "john@example.com" hard-bounced
//     sends to an address known to be bad. So local parts compare case-insensitively (ASCII
//     letters only: UTF-8 bytes are kept as they are).
//   - scope: a namespace, compared byte for byte. "" is global (every sender); by
//     convention "tenant:NAME" and "domain:SENDINGDOMAIN". The store gives the prefix no
//     meaning: a lookup names the scopes it wants checked.
// Times are unix seconds. They are stored in 32 bits (the memory budget,
// suppression_table.h), so they must lie in [0, 2^32); expires 0 means never.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kasi {

// Why an address is suppressed. The numbers are the on-disk values: never reuse one.
enum class SuppressionReason : uint8_t {
    hard_bounce = 1,
    complaint = 2,
    unsubscribe = 3,
    manual = 4,
    import = 5,
    soft_bounce = 6,
};

constexpr std::array<SuppressionReason, 6> all_suppression_reasons = {
    SuppressionReason::hard_bounce, SuppressionReason::complaint, SuppressionReason::unsubscribe,
    SuppressionReason::manual,      SuppressionReason::import,    SuppressionReason::soft_bounce};

std::string_view reason_name(SuppressionReason r);  // "hard_bounce", ...
std::optional<SuppressionReason> parse_reason(std::string_view name);
// Position in all_suppression_reasons (for arrays of counters).
inline size_t reason_index(SuppressionReason r) {
    return size_t(r) - 1;
}

struct SuppressionEntry {
    std::string address;  // normalized (normalize_address)
    std::string scope;    // "" = global
    SuppressionReason reason = SuppressionReason::manual;
    std::string event;    // id of the event that caused it; may be empty
    int64_t created = 0;  // unix seconds; 0 in add() means "now"
    int64_t expires = 0;  // unix seconds; 0 = never

    bool expired(int64_t now) const { return expires != 0 && expires <= now; }
    bool operator==(const SuppressionEntry&) const = default;
};

// Limits, checked by validate_entry (and by the journal reader).
constexpr size_t suppression_max_address = 512;
constexpr size_t suppression_max_scope = 255;
constexpr size_t suppression_max_event = 64;
constexpr int64_t suppression_max_time = int64_t(UINT32_MAX);

// Trimmed, ASCII lower-cased.
std::string normalize_address(std::string_view address);
// Normalizes e.address in place and checks every field; false with a reason in `err`.
bool validate_entry(SuppressionEntry& e, std::string& err);
// The same checks for an entry read back from storage, whose address must already be
// normalized (without the copy normalizing makes).
bool validate_stored_entry(const SuppressionEntry& e, std::string& err);
// The address part alone (already normalized): non-empty, local@domain, no control bytes.
bool valid_address(std::string_view address, std::string& err);
bool valid_scope(std::string_view scope, std::string& err);

}  // namespace kasi
