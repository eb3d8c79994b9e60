#pragma once
// Shared by the plan tests: a plan that uses every feature of the format, a field-by-field
// comparison, and a re-assembler written from docs/plan-format.md (not from plan.cpp) to craft
// hostile files whose checksum is valid.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "plan/checksum.h"
#include "plan/plan.h"

namespace mlprt::plan::test_util {

template <typename T>
ir::Constant make_constant(DataType dtype, Dims dims, const std::vector<T>& values) {
  ir::Constant c;
  c.dtype = dtype;
  c.dims = std::move(dims);
  c.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(c.data.data(), values.data(), c.data.size());
  return c;
}

inline OptimizationProfile make_profile(int64_t lo, int64_t opt, int64_t hi) {
  OptimizationProfile p;
  EXPECT_TRUE(p.set_dimensions("input", {{lo, 4}, {opt, 4}, {hi, 4}}).is_ok());
  EXPECT_TRUE(p.set_dimensions("mask", {{lo, 3}, {opt, 3}, {hi, 3}}).is_ok());
  return p;
}

/// Several profiles, symbolic and anonymous dims, every attribute kind (nested constants too),
/// constants of every dtype including zero-size and scalar ones, a backend blob.
inline Plan make_rich_plan() {
  Plan plan;
  plan.producer_version = "0.1.0";
  plan.backend = "cpu";
  plan.hardware = "x86_64 avx2 fma";
  plan.precision = "fp32";
  plan.build_config_json = R"({"profiles":2,"timing_cache":"t.cache","note":"quote \" ok"})";
  plan.profiles = {make_profile(1, 32, 64), make_profile(65, 128, 256)};

  ir::Graph& g = plan.graph;
  g.name = "tutorial_mlp";
  g.source = "models/mlp dynamic.onnx";
  g.opset = 17;
  g.ir_version = 8;
  g.producer = "pytorch 1.13.1";
  g.inputs = {{"input", DataType::kFloat32, {ir::Dim{-1, "batch"}, ir::Dim{4, {}}}},
              {"mask", DataType::kFloat32, {ir::Dim{-1, {}}, ir::Dim{3, "classes"}}}};
  g.outputs = {{"output", DataType::kFloat32, {ir::Dim{-1, "batch"}, ir::Dim{3, {}}}},
               {"hidden", DataType::kFloat32, {ir::Dim{-1, "batch"}, ir::Dim{3, {}}}}};

  g.constants["fc0.weight"] = make_constant<float>(
      DataType::kFloat32, {3, 4},
      {0.5f, -1.25f, 3.0f, 1e-30f, -0.0f, 7.0f, 8.5f, -9.0f, 10.0f, 11.0f, 12.0f, 1e30f});
  g.constants["fc0.bias"] = make_constant<float>(DataType::kFloat32, {3}, {0.1f, 0.2f, 0.3f});
  g.constants["half"] = make_constant<uint16_t>(DataType::kFloat16, {5}, {1, 2, 3, 0x3c00, 0xffff});
  g.constants["bhalf"] = make_constant<uint16_t>(DataType::kBFloat16, {1, 3}, {0x3f80, 7, 9});
  g.constants["scalar"] = make_constant<double>(DataType::kFloat64, {}, {3.141592653589793});
  g.constants["shape"] = make_constant<int64_t>(DataType::kInt64, {2}, {-1, 3});
  g.constants["i32"] = make_constant<int32_t>(DataType::kInt32, {2}, {-7, 1 << 30});
  g.constants["i8"] = make_constant<int8_t>(DataType::kInt8, {7}, {-128, -1, 0, 1, 2, 3, 127});
  g.constants["u8"] = make_constant<uint8_t>(DataType::kUInt8, {2, 1}, {0, 255});
  g.constants["flags"] = make_constant<uint8_t>(DataType::kBool, {3}, {1, 0, 1});
  g.constants["empty"] = make_constant<float>(DataType::kFloat32, {0, 4}, {});

  ir::Node dense;
  dense.name = "fc0";
  dense.op = "Dense";
  dense.inputs = {"input", "fc0.weight", "fc0.bias"};
  dense.outputs = {"hidden"};
  dense.attributes["trans_b"] = int64_t{1};
  dense.attributes["big"] = std::numeric_limits<int64_t>::min();
  dense.attributes["alpha"] = 1.0000000000000002;
  dense.attributes["negative_zero"] = -0.0;
  dense.attributes["tiny"] = 4.9e-324;
  dense.attributes["clip_max"] = std::numeric_limits<double>::infinity();
  dense.attributes["clip_min"] = -std::numeric_limits<double>::infinity();
  dense.attributes["undefined"] = std::numeric_limits<double>::quiet_NaN();
  dense.attributes["activation"] = std::string("relu");
  dense.attributes["perm"] = std::vector<int64_t>{1, 0, -1, std::numeric_limits<int64_t>::max()};
  dense.attributes["scales"] =
      std::vector<double>{0.1, -2.5, 1e300, std::numeric_limits<double>::infinity()};
  dense.attributes["names"] = std::vector<std::string>{"a", "", "\xc3\xbc \"q\" \\ \n"};
  dense.attributes["no_ints"] = std::vector<int64_t>{};
  dense.attributes["no_floats"] = std::vector<double>{};
  dense.attributes["no_strings"] = std::vector<std::string>{};
  dense.attributes["value"] = make_constant<int64_t>(DataType::kInt64, {2}, {5, -6});
  dense.attributes["value_empty"] = make_constant<float>(DataType::kFloat32, {0}, {});

  ir::Node add;
  add.name = "";  // anonymous nodes are allowed
  add.op = "Add";
  add.inputs = {"hidden", "", "mask"};  // "" is an omitted optional input
  add.outputs = {"output"};
  g.nodes = {dense, add};

  plan.backend_blob.resize(300);
  for (size_t i = 0; i < plan.backend_blob.size(); ++i) {
    plan.backend_blob[i] = static_cast<uint8_t>(i * 7 + 3);
  }
  return plan;
}

inline void expect_shapes_equal(const ir::Shape& a, const ir::Shape& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].value, b[i].value) << what << " dim " << i;
    EXPECT_EQ(a[i].symbol, b[i].symbol) << what << " dim " << i;
  }
}

inline void expect_tensor_infos_equal(const std::vector<ir::TensorInfo>& a,
                                      const std::vector<ir::TensorInfo>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype) << a[i].name;
    expect_shapes_equal(a[i].shape, b[i].shape, a[i].name);
  }
}

inline void expect_constants_equal(const ir::Constant& a, const ir::Constant& b,
                                   const std::string& what) {
  EXPECT_EQ(a.dtype, b.dtype) << what;
  EXPECT_EQ(a.dims, b.dims) << what;
  EXPECT_TRUE(a.data == b.data) << what << ": " << a.data.size() << " vs " << b.data.size()
                                << " bytes";
}

// Bitwise for doubles: -0.0 must stay -0.0; NaN must stay NaN.
inline bool same_double(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;
}

inline void expect_attributes_equal(const ir::AttributeValue& a, const ir::AttributeValue& b,
                                    const std::string& what) {
  ASSERT_EQ(a.index(), b.index()) << what;
  if (const auto* d = std::get_if<double>(&a)) {
    EXPECT_TRUE(same_double(*d, std::get<double>(b)))
        << what << ": " << *d << " vs " << std::get<double>(b);
  } else if (const auto* ds = std::get_if<std::vector<double>>(&a)) {
    const auto& other = std::get<std::vector<double>>(b);
    ASSERT_EQ(ds->size(), other.size()) << what;
    for (size_t i = 0; i < ds->size(); ++i) {
      EXPECT_TRUE(same_double((*ds)[i], other[i])) << what << "[" << i << "]";
    }
  } else if (const auto* c = std::get_if<ir::Constant>(&a)) {
    expect_constants_equal(*c, std::get<ir::Constant>(b), what);
  } else if (const auto* i = std::get_if<int64_t>(&a)) {
    EXPECT_EQ(*i, std::get<int64_t>(b)) << what;
  } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a)) {
    EXPECT_EQ(*is, std::get<std::vector<int64_t>>(b)) << what;
  } else if (const auto* str = std::get_if<std::string>(&a)) {
    EXPECT_EQ(*str, std::get<std::string>(b)) << what;
  } else {
    EXPECT_EQ(std::get<std::vector<std::string>>(a), std::get<std::vector<std::string>>(b)) << what;
  }
}

inline void expect_plans_equal(const Plan& a, const Plan& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.producer_version, b.producer_version);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.hardware, b.hardware);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.build_config_json, b.build_config_json);
  ASSERT_EQ(a.profiles.size(), b.profiles.size());
  for (size_t p = 0; p < a.profiles.size(); ++p) {
    const auto& ra = a.profiles[p].ranges();
    const auto& rb = b.profiles[p].ranges();
    ASSERT_EQ(ra.size(), rb.size()) << "profile " << p;
    for (const auto& [name, range] : ra) {
      auto it = rb.find(name);
      ASSERT_NE(it, rb.end()) << "profile " << p << " input " << name;
      EXPECT_EQ(range.min, it->second.min) << name;
      EXPECT_EQ(range.opt, it->second.opt) << name;
      EXPECT_EQ(range.max, it->second.max) << name;
    }
  }
  const ir::Graph& ga = a.graph;
  const ir::Graph& gb = b.graph;
  EXPECT_EQ(ga.name, gb.name);
  EXPECT_EQ(ga.source, gb.source);
  EXPECT_EQ(ga.opset, gb.opset);
  EXPECT_EQ(ga.ir_version, gb.ir_version);
  EXPECT_EQ(ga.producer, gb.producer);
  expect_tensor_infos_equal(ga.inputs, gb.inputs);
  expect_tensor_infos_equal(ga.outputs, gb.outputs);
  ASSERT_EQ(ga.constants.size(), gb.constants.size());
  for (const auto& [name, c] : ga.constants) {
    auto it = gb.constants.find(name);
    ASSERT_NE(it, gb.constants.end()) << name;
    expect_constants_equal(c, it->second, name);
  }
  ASSERT_EQ(ga.nodes.size(), gb.nodes.size());
  for (size_t i = 0; i < ga.nodes.size(); ++i) {
    const ir::Node& na = ga.nodes[i];
    const ir::Node& nb = gb.nodes[i];
    EXPECT_EQ(na.name, nb.name);
    EXPECT_EQ(na.op, nb.op);
    EXPECT_EQ(na.inputs, nb.inputs);
    EXPECT_EQ(na.outputs, nb.outputs);
    ASSERT_EQ(na.attributes.size(), nb.attributes.size()) << "node " << i;
    for (const auto& [key, value] : na.attributes) {
      auto it = nb.attributes.find(key);
      ASSERT_NE(it, nb.attributes.end()) << "node " << i << " attribute " << key;
      expect_attributes_equal(value, it->second, "node " + std::to_string(i) + " " + key);
    }
  }
  EXPECT_TRUE(a.backend_blob == b.backend_blob);
}

// ------------------------------------------------------------------ the documented layout

inline uint64_t get_le(const std::vector<uint8_t>& b, size_t offset, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= static_cast<uint64_t>(b[offset + i]) << (8 * i);
  return v;
}

inline void put_le(std::vector<uint8_t>& b, size_t offset, size_t width, uint64_t v) {
  for (size_t i = 0; i < width; ++i) b[offset + i] = static_cast<uint8_t>(v >> (8 * i));
}

/// Rewrites the trailer with the checksum of everything before it (docs: CRC-64/XZ).
inline void reseal(std::vector<uint8_t>& b) {
  const size_t body = b.size() - 8;
  put_le(b, body, 8, crc64(std::span<const uint8_t>(b.data(), body)));
}

/// A plan's sections, split as docs/plan-format.md describes, to be edited and re-assembled.
struct RawPlan {
  std::vector<uint8_t> header;  // the 128 header bytes
  std::string metadata;
  std::vector<uint8_t> weights;
  std::vector<uint8_t> blob;

  static RawPlan split(const std::vector<uint8_t>& b) {
    RawPlan r;
    r.header.assign(b.begin(), b.begin() + 128);
    auto section = [&](size_t field) {
      const uint64_t offset = get_le(b, field, 8);
      const uint64_t size = get_le(b, field + 8, 8);
      return std::vector<uint8_t>(b.begin() + static_cast<ptrdiff_t>(offset),
                                  b.begin() + static_cast<ptrdiff_t>(offset + size));
    };
    const auto meta = section(24);
    r.metadata.assign(meta.begin(), meta.end());
    r.weights = section(40);
    r.blob = section(56);
    return r;
  }

  std::vector<uint8_t> assemble() const {
    auto align = [](size_t v) { return (v + 63) / 64 * 64; };
    std::vector<uint8_t> b(header);
    b.resize(128);
    const size_t meta_offset = 128;
    const size_t weights_offset = align(meta_offset + metadata.size());
    const size_t blob_offset = align(weights_offset + weights.size());
    const size_t file_size = blob_offset + blob.size() + 8;
    b.resize(file_size, 0);
    std::memcpy(b.data() + meta_offset, metadata.data(), metadata.size());
    if (!weights.empty()) std::memcpy(b.data() + weights_offset, weights.data(), weights.size());
    if (!blob.empty()) std::memcpy(b.data() + blob_offset, blob.data(), blob.size());
    put_le(b, 16, 8, file_size);
    put_le(b, 24, 8, meta_offset);
    put_le(b, 32, 8, metadata.size());
    put_le(b, 40, 8, weights_offset);
    put_le(b, 48, 8, weights.size());
    put_le(b, 56, 8, blob_offset);
    put_le(b, 64, 8, blob.size());
    reseal(b);
    return b;
  }
};

}  // namespace mlprt::plan::test_util
