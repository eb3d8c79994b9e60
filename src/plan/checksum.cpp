#include "plan/checksum.h"

#include <array>
#include <cstring>

#include <immintrin.h>

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

// The register after `n` bytes at `p`, from register `reg` (no initial or final inversion).
uint64_t table_crc(uint64_t reg, const uint8_t* p, size_t n) noexcept {
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
  return reg;
}

// Carry-less multiplication folding (PCLMULQDQ). A 128-bit remainder is carried d bits forward
// by multiplying its first half (higher degree in this bit-reflected CRC) by x^(d+63) mod P and
// its second by x^(d-1) mod P (both bit-reflected) and xoring the products. Four remainders
// advance 64 bytes a step (independent multiplications, so the multiplier's latency is hidden),
// are folded into one, which takes the remaining 16-byte blocks; the last remainder goes through
// the tables: its CRC is the prefix's. Checked against the tables alone in
// tests/plan/test_checksum.cpp.
__attribute__((target("pclmul,sse4.1"))) inline __m128i fold(__m128i x, __m128i k) noexcept {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

__attribute__((target("pclmul,sse4.1"))) __m128i constants(uint64_t first, uint64_t second) {
  return _mm_set_epi64x(static_cast<long long>(second), static_cast<long long>(first));
}

__attribute__((target("pclmul,sse4.1"))) uint64_t folded_crc(uint64_t reg, const uint8_t*& p,
                                                              size_t& n) noexcept {
  const auto load = [&p](size_t at) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
  };
  const __m128i k128 = constants(0xe05dd497ca393ae4ull, 0xdabe95afc7875f40ull);
  const __m128i k256 = constants(0x60095b008a9efa44ull, 0x3be653a30fe1af51ull);
  const __m128i k384 = constants(0xb5ea1af9c013aca4ull, 0x69a35d91c3730254ull);
  const __m128i k512 = constants(0x6ae3efbb9dd441f3ull, 0x081f6054a7842df4ull);
  __m128i x0 = _mm_xor_si128(load(0), _mm_set_epi64x(0, static_cast<long long>(reg)));
  __m128i x1 = load(16);
  __m128i x2 = load(32);
  __m128i x3 = load(48);
  p += 64;
  n -= 64;
  while (n >= 64) {
    x0 = _mm_xor_si128(fold(x0, k512), load(0));
    x1 = _mm_xor_si128(fold(x1, k512), load(16));
    x2 = _mm_xor_si128(fold(x2, k512), load(32));
    x3 = _mm_xor_si128(fold(x3, k512), load(48));
    p += 64;
    n -= 64;
  }
  __m128i x = _mm_xor_si128(_mm_xor_si128(fold(x0, k384), fold(x1, k256)),
                            _mm_xor_si128(fold(x2, k128), x3));
  while (n >= 16) {
    x = _mm_xor_si128(fold(x, k128), load(0));
    p += 16;
    n -= 16;
  }
  alignas(16) uint8_t rest[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(rest), x);
  return table_crc(0, rest, sizeof(rest));
}

bool has_pclmul() noexcept {
  static const bool kHas = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  return kHas;
}

}  // namespace

uint64_t crc64_extend(uint64_t crc, std::span<const uint8_t> data) noexcept {
  uint64_t reg = ~crc;
  const uint8_t* p = data.data();
  size_t n = data.size();
  if (n >= 64 && has_pclmul()) reg = folded_crc(reg, p, n);
  return ~table_crc(reg, p, n);
}

uint64_t crc64_table_only(uint64_t crc, std::span<const uint8_t> data) noexcept {
  return ~table_crc(~crc, data.data(), data.size());
}

uint64_t crc64(std::span<const uint8_t> data) noexcept { return crc64_extend(0, data); }

}  // namespace mlprt::plan
