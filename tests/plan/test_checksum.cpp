// CRC-64/XZ against its published check value, a bit-by-bit reference, and a speed floor.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "plan/checksum.h"

namespace mlprt::plan {
namespace {

// The textbook definition, one bit at a time: what the sliced version must equal.
uint64_t crc64_bitwise(std::span<const uint8_t> data) {
  uint64_t crc = ~uint64_t{0};
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ 0xC96C5795D7870F42ull : crc >> 1;
    }
  }
  return ~crc;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(gen());
  return out;
}

TEST(Checksum, PublishedCheckValue) {
  // CRC-64/XZ catalogue entry: check = 0x995dc9bbdf1939fa for the ASCII "123456789".
  const std::string text = "123456789";
  EXPECT_EQ(crc64({reinterpret_cast<const uint8_t*>(text.data()), text.size()}),
            0x995dc9bbdf1939faull);
  EXPECT_EQ(crc64({}), 0u);
}

TEST(Checksum, EqualsBitwiseReferenceAtEveryLengthAndAlignment) {
  const std::vector<uint8_t> data = random_bytes(300, 7);
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; start + n <= data.size(); n += (n < 40 ? 1 : 13)) {
      const auto s = std::span(data).subspan(start, n);
      ASSERT_EQ(crc64(s), crc64_bitwise(s)) << "start " << start << " length " << n;
    }
  }
}

TEST(Checksum, ExtendEqualsWhole) {
  const std::vector<uint8_t> data = random_bytes(1000, 11);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{16}, size_t{333}, size_t{1000}}) {
    const auto s = std::span(data);
    EXPECT_EQ(crc64_extend(crc64(s.first(cut)), s.subspan(cut)), crc64(s)) << cut;
  }
}

TEST(Checksum, DetectsEverySingleByteChange) {
  std::vector<uint8_t> data = random_bytes(4096 + 5, 3);
  const uint64_t good = crc64(data);
  for (size_t i = 0; i < data.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x10}, uint8_t{0x80}, uint8_t{0xff}}) {
      data[i] ^= mask;
      ASSERT_NE(crc64(data), good) << "byte " << i << " mask " << int{mask};
      data[i] ^= mask;
    }
  }
}

TEST(Checksum, ThroughputOn100MB) {
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
  const size_t n = 100 * 1000 * 1000;
#else
  const size_t n = 10 * 1000 * 1000;  // sanitized and debug builds run ~40x slower
#endif
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  double best = 1e9;
  uint64_t sum = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    sum ^= crc64(data);
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double mb_per_s = n / 1e6 / best;
  std::printf("crc64 over %zu MB: %.1f ms, %.0f MB/s (checksum %016llx)\n", n / 1000000, best * 1e3,
              mb_per_s, static_cast<unsigned long long>(sum));
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
  EXPECT_GT(mb_per_s, 200.0);
#endif
}

}  // namespace
}  // namespace mlprt::plan

namespace mlprt::plan {
namespace {

// crc64_extend folds with PCLMULQDQ where the CPU has it (64 bytes and up): it must agree with
// the byte tables at every length around the fold's steps, at every start alignment, and when
// a message is extended in pieces.
TEST(Checksum, FoldedPathAgreesWithTheTables) {
  std::vector<uint8_t> data(4096 + 80);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (uint8_t& b : data) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<uint8_t>(state >> 56);
  }
  const std::span<const uint8_t> all(data);
  for (size_t offset : {size_t{0}, size_t{1}, size_t{7}, size_t{15}}) {
    for (size_t n = 0; n + offset <= all.size(); n += (n < 300 ? 1 : 61)) {
      const auto part = all.subspan(offset, n);
      ASSERT_EQ(crc64(part), crc64_table_only(0, part)) << "offset " << offset << " length " << n;
    }
  }
  const uint64_t head = crc64(all.first(1000));
  EXPECT_EQ(crc64_extend(head, all.subspan(1000)), crc64(all));
  EXPECT_EQ(crc64_extend(head, all.subspan(1000)), crc64_table_only(0, all));
}

}  // namespace
}  // namespace mlprt::plan
