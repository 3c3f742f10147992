// Identifiers: Haraka-style uppercase UUIDs for connections ("<uuid>"), transactions
// ("<uuid>.<n>") and the short banner tag. Random from a per-thread generator seeded from
// the OS, so loops never contend.
#pragma once

#include <string>

namespace kasi {

std::string new_uuid();  // 8-4-4-4-12 uppercase hex

}  // namespace kasi
