#pragma once
// The plan's checksum: CRC-64/XZ (ECMA-182 polynomial, reflected, init and final xor all ones).
// A CRC detects every error burst of up to 64 bits, so any single flipped byte, with a
// published check value ("123456789" -> 0x995DC9BBDF1939FA) to test against.

#include <cstdint>
#include <span>

namespace mlprt::plan {

/// CRC-64/XZ of `data`.
[[nodiscard]] uint64_t crc64(std::span<const uint8_t> data) noexcept;
/// Extends `crc` (the crc64 of a prefix, 0 for an empty one) by `data`:
/// crc64(a + b) == crc64_extend(crc64(a), b).
[[nodiscard]] uint64_t crc64_extend(uint64_t crc, std::span<const uint8_t> data) noexcept;
/// crc64_extend with the byte tables only (crc64_extend folds with PCLMULQDQ where the CPU has
/// it): the reference the folded path is tested against.
[[nodiscard]] uint64_t crc64_table_only(uint64_t crc, std::span<const uint8_t> data) noexcept;

}  // namespace mlprt::plan
