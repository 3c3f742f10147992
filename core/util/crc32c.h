// CRC-32C (Castagnoli) over spool records: catches torn writes and bit rot on recovery.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kasi {

uint32_t crc32c(uint32_t crc, const void* data, size_t len);
// The portable implementation (tests compare both).
uint32_t crc32c_table(uint32_t crc, const void* data, size_t len);

}  // namespace kasi
