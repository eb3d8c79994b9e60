// The weight-file readers: good files read exactly; truncated, garbage and hostile files refused
// with a message, never a crash or an out-of-bounds read (run under ASan by the sanitizer preset).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "weights/safetensors_file.h"
#include "weights/torch_state_dict.h"
#include "weights/weight_file.h"
#include "weights/zip_archive.h"

namespace mlprt::weights {
namespace {

std::vector<uint8_t> read_fixture(const std::string& name) {
  std::ifstream in(std::string(MLPRT_REFIT_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename T>
std::vector<T> values(const ir::Constant& c) {
  std::vector<T> out(c.data.size() / sizeof(T));
  std::memcpy(out.data(), c.data.data(), c.data.size());
  return out;
}

TEST(TorchStateDict, ReadsEveryTensorOfATorchSaveFile) {
  const auto bytes = read_fixture("state_dict.pth");
  auto sd = read_torch_state_dict(bytes, "state_dict.pth");
  ASSERT_TRUE(sd.is_ok()) << sd.status().message();
  ASSERT_EQ(sd->size(), 5u);
  const ir::Constant& w = sd->at("fc.weight");
  EXPECT_EQ(w.dtype, DataType::kFloat32);
  EXPECT_EQ(w.dims, (Dims{2, 3}));
  EXPECT_EQ(values<float>(w), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(values<float>(sd->at("fc.bias")), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(sd->at("half").dtype, DataType::kFloat16);
  EXPECT_EQ(values<uint16_t>(sd->at("half")), (std::vector<uint16_t>{0x3c00, 0x4000}));
  EXPECT_EQ(sd->at("steps").dtype, DataType::kInt64);
  EXPECT_TRUE(sd->at("steps").dims.empty());
  EXPECT_EQ(values<int64_t>(sd->at("steps")), (std::vector<int64_t>{7}));
  // A view into a larger storage (offset 4 elements): only its own elements.
  EXPECT_EQ(sd->at("view").dims, (Dims{4}));
  EXPECT_EQ(values<double>(sd->at("view")), (std::vector<double>{4, 5, 6, 7}));
}

TEST(TorchStateDict, RefusesNonContiguousTensors) {
  const auto bytes = read_fixture("transposed.pth");
  auto sd = read_torch_state_dict(bytes, "t.pth");
  ASSERT_FALSE(sd.is_ok());
  EXPECT_NE(sd.status().message().find("not contiguous"), std::string::npos) << sd.status().message();
}

TEST(TorchStateDict, RefusesLegacyAndGarbage) {
  const std::vector<uint8_t> legacy = {0x80, 0x02, 0x8a, 0x0a};
  auto a = read_torch_state_dict(legacy, "old.pth");
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("legacy"), std::string::npos);
  const std::vector<uint8_t> garbage = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_FALSE(read_torch_state_dict(garbage, "g.pth").is_ok());
  EXPECT_FALSE(read_torch_state_dict({}, "empty.pth").is_ok());
}

// Every prefix of a valid file is refused cleanly (a zip's directory is at its end).
TEST(TorchStateDict, EveryTruncationIsRefused) {
  const auto bytes = read_fixture("state_dict.pth");
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto sd = read_torch_state_dict(std::span(bytes.data(), n), "cut.pth");
    EXPECT_FALSE(sd.is_ok()) << "accepted a file cut at " << n << " bytes";
  }
}

// Every single byte changed to three values: read or refused, never a crash (ASan checks reads).
TEST(TorchStateDict, ByteFlipsNeverCrash) {
  const auto good = read_fixture("state_dict.pth");
  size_t refused = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0xff}, static_cast<uint8_t>(good[i] ^ 0x41)}) {
      std::vector<uint8_t> bad = good;
      bad[i] = v;
      auto sd = read_torch_state_dict(bad, "flip.pth");
      if (!sd.is_ok()) {
        ++refused;
        EXPECT_FALSE(sd.status().message().empty());
      }
    }
  }
  EXPECT_GT(refused, good.size() / 4);
}

std::vector<uint8_t> safetensors(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  for (char ch : header) out.push_back(static_cast<uint8_t>(ch));
  for (uint8_t b : data) out.push_back(b);
  return out;
}

TEST(Safetensors, ReadsTensors) {
  std::vector<uint8_t> data(12 + 2);
  const float f[3] = {1.f, -2.f, 3.5f};
  std::memcpy(data.data(), f, 12);
  data[12] = 0x00;
  data[13] = 0x3c;  // float16 1.0
  const auto bytes = safetensors(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
      R"("h":{"dtype":"F16","shape":[1,1],"data_offsets":[12,14]}})",
      data);
  auto t = read_safetensors(bytes, "x.safetensors");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(values<float>(t->at("a")), (std::vector<float>{1.f, -2.f, 3.5f}));
  EXPECT_EQ(t->at("h").dims, (Dims{1, 1}));
  EXPECT_EQ(values<uint16_t>(t->at("h")), (std::vector<uint16_t>{0x3c00}));
}

TEST(Safetensors, RefusesBadHeadersAndBounds) {
  const std::vector<uint8_t> data(8, 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", "data_offsets"},   // past the end
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "data_offsets"},    // wrong size
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", "data_offsets"},    // reversed
      {R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", "dtype Q7"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "shape"},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", "shape"},
      {R"({"a":{"dtype":"F32"}})", "needs dtype"},
      {R"([1,2])", "not a JSON object"},
      {R"({"a":)", "not JSON"},
      {std::string(100, '[') + std::string(100, ']'), "nested"},
  };
  for (const auto& [header, words] : cases) {
    auto t = read_safetensors(safetensors(header, data), "bad.safetensors");
    ASSERT_FALSE(t.is_ok()) << header;
    EXPECT_NE(t.status().message().find(words), std::string::npos) << header << " -> " << t.status().message();
  }
  std::vector<uint8_t> huge = safetensors("{}", {});
  huge[7] = 0x7f;  // header length far past the file
  EXPECT_FALSE(read_safetensors(huge, "h.safetensors").is_ok());
  EXPECT_FALSE(read_safetensors(std::vector<uint8_t>(5, 0), "short.safetensors").is_ok());
}

TEST(Zip, RefusesCompressedEntries) {
  auto bytes = read_fixture("state_dict.pth");
  auto zip = read_zip(bytes, "z");
  ASSERT_TRUE(zip.is_ok()) << zip.status().message();
  // Mark the first central directory entry as deflated (method 8).
  const uint8_t sig[4] = {0x50, 0x4b, 0x01, 0x02};
  auto it = std::search(bytes.begin(), bytes.end(), std::begin(sig), std::end(sig));
  ASSERT_NE(it, bytes.end());
  *(it + 10) = 8;
  auto bad = read_zip(bytes, "z.pth");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("compressed"), std::string::npos) << bad.status().message();
}

TEST(WeightFile, FormatFromExtension) {
  EXPECT_EQ(*format_of("a.pth"), WeightFormat::kTorch);
  EXPECT_EQ(*format_of("a.safetensors"), WeightFormat::kSafetensors);
  EXPECT_EQ(*format_of("a.onnx"), WeightFormat::kOnnx);
  auto bad = format_of("a.npz");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find(".safetensors"), std::string::npos);
  EXPECT_FALSE(read_weight_file("/nonexistent/x.pth").is_ok());
}

}  // namespace
}  // namespace mlprt::weights
