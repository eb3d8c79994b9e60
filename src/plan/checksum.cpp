#include "plan/checksum.h"

#include <array>
#include <cstring>

namespace mlprt::plan {
namespace {

constexpr uint64_t kReflectedPolynomial = 0xC96C5795D7870F42ull;

// Slicing-by-16: kTables[k][b] is the CRC contribution of byte b followed by k zero bytes, so
// sixteen bytes are folded in with independent table lookups instead of a serial chain.
using Tables = std::array<std::array<uint64_t, 256>, 16>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint64_t b = 0; b < 256; ++b) {
    uint64_t crc = b;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 1) ? (crc >> 1) ^ kReflectedPolynomial : crc >> 1;
    t[0][b] = crc;
  }
  for (size_t k = 1; k < 16; ++k) {
    for (size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr Tables kTables = make_tables();

uint64_t load_le64(const uint8_t* p) noexcept {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

uint64_t crc64_extend(uint64_t crc, std::span<const uint8_t> data) noexcept {
  uint64_t reg = ~crc;
  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n >= 16) {
    const uint64_t lo = reg ^ load_le64(p);
    const uint64_t hi = load_le64(p + 8);
    reg = kTables[15][lo & 0xff] ^ kTables[14][(lo >> 8) & 0xff] ^ kTables[13][(lo >> 16) & 0xff] ^
          kTables[12][(lo >> 24) & 0xff] ^ kTables[11][(lo >> 32) & 0xff] ^
          kTables[10][(lo >> 40) & 0xff] ^ kTables[9][(lo >> 48) & 0xff] ^ kTables[8][lo >> 56] ^
          kTables[7][hi & 0xff] ^ kTables[6][(hi >> 8) & 0xff] ^ kTables[5][(hi >> 16) & 0xff] ^
          kTables[4][(hi >> 24) & 0xff] ^ kTables[3][(hi >> 32) & 0xff] ^
          kTables[2][(hi >> 40) & 0xff] ^ kTables[1][(hi >> 48) & 0xff] ^ kTables[0][hi >> 56];
    p += 16;
    n -= 16;
  }
  for (; n > 0; --n, ++p) reg = (reg >> 8) ^ kTables[0][(reg ^ *p) & 0xff];
  return ~reg;
}

uint64_t crc64(std::span<const uint8_t> data) noexcept { return crc64_extend(0, data); }

}  // namespace mlprt::plan
