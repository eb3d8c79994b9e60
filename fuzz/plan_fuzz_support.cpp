#include "plan_fuzz_support.h"

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "ir/graph.h"
#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "mlprt/network.h"
#include "plan_framing.h"

namespace mlprt::fuzz {
namespace {

using Json = nlohmann::json;

constexpr int64_t kMaxElements = 1 << 16;  // per I/O tensor of a fuzzed run

ir::Constant ramp(Dims dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> values(static_cast<size_t>(n));
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.125f * static_cast<float>(i % 9) - 0.5f;
  return ir::Constant::from_floats(std::move(dims), values);
}

ir::TensorInfo batched(const std::string& name, int64_t features) {
  return {name, DataType::kFloat32, {ir::Dim{-1, "batch"}, ir::Dim{features, ""}}};
}

ir::Graph mlp_graph() {
  ir::Graph g;
  g.name = "fuzz_mlp";
  g.source = "fuzz_mlp.onnx";
  g.opset = 13;
  g.inputs = {batched("input", 6)};
  g.outputs = {batched("output", 4)};
  g.constants["w1"] = ramp({5, 6});
  g.constants["b1"] = ramp({5});
  g.constants["w2"] = ramp({4, 5});
  g.constants["b2"] = ramp({4});
  ir::Node fc1{"fc1", "Gemm", {"input", "w1", "b1"}, {"h"}, {{"transB", int64_t{1}}}};
  ir::Node relu{"relu1", "Relu", {"h"}, {"r"}, {}};
  ir::Node fc2{"fc2", "Gemm", {"r", "w2", "b2"}, {"output"}, {{"transB", int64_t{1}}}};
  g.nodes = {fc1, relu, fc2};
  return g;
}

// Two inputs: MatMul + Add(mask) -> LayerNorm -> Reshape [0, 2, 4] -> Flatten -> Softmax.
ir::Graph mixed_graph() {
  ir::Graph g;
  g.name = "fuzz_mixed";
  g.source = "fuzz_mixed.onnx";
  g.opset = 17;
  g.inputs = {batched("x", 6), batched("mask", 8)};
  g.outputs = {batched("y", 8)};
  g.constants["w"] = ramp({6, 8});
  g.constants["scale"] = ramp({8});
  g.constants["bias"] = ramp({8});
  g.constants["shape"] = ir::Constant::from_int64s({3}, {0, 2, 4});
  g.nodes = {
      {"mm", "MatMul", {"x", "w"}, {"m"}, {}},
      {"add", "Add", {"m", "mask"}, {"a"}, {}},
      {"ln", "LayerNormalization", {"a", "scale", "bias"}, {"n"}, {{"axis", int64_t{-1}}}},
      {"view", "Reshape", {"n", "shape"}, {"v"}, {}},
      {"flat", "Flatten", {"v"}, {"f"}, {{"axis", int64_t{1}}}},
      {"sm", "Softmax", {"f"}, {"y"}, {{"axis", int64_t{-1}}}},
  };
  return g;
}

Result<std::vector<uint8_t>> build(ir::Graph graph,
                                   const std::vector<std::map<std::string, ShapeRange>>& profiles) {
  Network network(std::make_unique<ir::Graph>(std::move(graph)));
  BuilderConfig config;
  config.backend = "cpu";
  config.optimization_level = 0;
  for (const auto& ranges : profiles) {
    OptimizationProfile profile;
    for (const auto& [name, range] : ranges)
      MLPRT_RETURN_IF_ERROR(profile.set_dimensions(name, range));
    config.profiles.push_back(profile);
  }
  MLPRT_ASSIGN_OR_RETURN(auto plan, build_serialized_engine(network, config));
  return plan.bytes;
}

ShapeRange rows(int64_t lo, int64_t opt, int64_t hi, int64_t features) {
  return {{lo, features}, {opt, features}, {hi, features}};
}

// A variant of `base` with its metadata JSON edited (and the checksum recomputed).
std::vector<uint8_t> edit_json(const std::vector<uint8_t>& base,
                               const std::function<void(Json&)>& edit) {
  PlanSections s = *split_plan(base);
  Json meta = Json::parse(s.metadata);
  edit(meta);
  s.metadata = meta.dump();
  return frame_plan(s);
}

std::vector<uint8_t> edit_sections(const std::vector<uint8_t>& base,
                                   const std::function<void(PlanSections&)>& edit) {
  PlanSections s = *split_plan(base);
  edit(s);
  return frame_plan(s);
}

// A header field set to `value` after framing, the checksum recomputed.
std::vector<uint8_t> edit_header(const std::vector<uint8_t>& base, size_t field, uint64_t value) {
  std::vector<uint8_t> out = base;
  plan::layout::write_u64(out, field, value);
  reseal(out);
  return out;
}

Json& constant(Json& meta, size_t i) { return meta["graph"]["constants"][i]; }
Json& node(Json& meta, size_t i) { return meta["graph"]["nodes"][i]; }

std::string deep_json(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

Result<std::vector<PlanSeed>> make_plan_seeds() {
  std::vector<PlanSeed> seeds;
  const std::map<std::string, ShapeRange> small{{"input", rows(1, 4, 8, 6)}};
  MLPRT_ASSIGN_OR_RETURN(auto mlp, build(mlp_graph(), {small}));
  MLPRT_ASSIGN_OR_RETURN(auto two, build(mlp_graph(), {small, {{"input", rows(9, 16, 32, 6)}}}));
  MLPRT_ASSIGN_OR_RETURN(
      auto mixed, build(mixed_graph(), {{{"x", rows(1, 2, 4, 6)}, {"mask", rows(1, 2, 4, 8)}}}));
  seeds.push_back({"valid_mlp.plan", mlp, true});
  seeds.push_back({"valid_two_profiles.plan", two, true});
  seeds.push_back({"valid_two_inputs_layernorm_softmax.plan", mixed, true});
  // An empty backend section is valid for cpu: the default kernels (docs/plan-format.md).
  seeds.push_back({"valid_empty_backend_section.plan",
                   edit_sections(mlp, [](PlanSections& s) { s.blob.clear(); }), true});

  using namespace plan::layout;
  const auto bad = [&](std::string name, std::vector<uint8_t> bytes) {
    seeds.push_back({"bad_" + std::move(name) + ".plan", std::move(bytes), false});
  };
  const PlanSections sections = *split_plan(mlp);
  // Sizes and offsets in the header (checksum valid).
  bad("file_size_field", edit_header(mlp, kOffsetFileSize, mlp.size() + 64));
  bad("metadata_size_past_end", edit_header(mlp, kOffsetMetadata + 8, 1ull << 40));
  bad("weights_size_larger", edit_header(mlp, kOffsetWeights + 8, sections.weights.size() + 64));
  bad("weights_offset_unaligned",
      edit_header(mlp, kOffsetWeights, read_u64(mlp, kOffsetWeights) + 1));
  bad("blob_offset_overlaps_weights",
      edit_header(mlp, kOffsetBackendBlob, read_u64(mlp, kOffsetWeights)));
  bad("metadata_offset_zero", edit_header(mlp, kOffsetMetadata, 0));
  bad("flags_set", [&] {
    std::vector<uint8_t> out = mlp;
    write_u32(out, kOffsetFlags, 1);
    reseal(out);
    return out;
  }());
  // Constants: offsets, sizes, dims, dtypes.
  bad("constant_offset_past_end",
      edit_json(mlp, [](Json& m) { constant(m, 0)["offset"] = 1 << 20; }));
  bad("constant_offset_unaligned", edit_json(mlp, [](Json& m) { constant(m, 0)["offset"] = 4; }));
  bad("constant_size_not_dims", edit_json(mlp, [](Json& m) { constant(m, 0)["size"] = 12; }));
  bad("constant_dims_negative", edit_json(mlp, [](Json& m) { constant(m, 0)["dims"] = {-5, 6}; }));
  bad("constant_dims_overflow", edit_json(mlp, [](Json& m) {
        constant(m, 0)["dims"] = {int64_t{1} << 40, int64_t{1} << 40};
      }));
  bad("constant_dtype_unknown",
      edit_json(mlp, [](Json& m) { constant(m, 0)["dtype"] = "float128"; }));
  bad("constant_dtype_int8_weight", edit_json(mlp, [](Json& m) {
        Json& c = constant(m, 0);
        c["dtype"] = "int8";
        c["size"] = c["size"].get<int64_t>() / 4;
      }));
  // Graph inputs, outputs and profiles.
  bad("input_dim_negative",
      edit_json(mlp, [](Json& m) { m["graph"]["inputs"][0]["shape"][1] = -3; }));
  bad("input_dtype_int64",
      edit_json(mlp, [](Json& m) { m["graph"]["inputs"][0]["dtype"] = "int64"; }));
  bad("input_features_mismatch",
      edit_json(mlp, [](Json& m) { m["graph"]["inputs"][0]["shape"][1] = 7; }));
  bad("profile_min_above_max", edit_json(mlp, [](Json& m) {
        m["profiles"][0]["input"]["min"] = {9, 6};
      }));
  bad("profile_unknown_input",
      edit_json(mlp, [](Json& m) { m["profiles"][0]["ghost"] = m["profiles"][0]["input"]; }));
  bad("profile_rank_mismatch",
      edit_json(mlp, [](Json& m) { m["profiles"][0]["input"]["max"] = {8}; }));
  // Valid, if odd: a profile may allow any batch (runs past the fuzzer's cap are skipped).
  seeds.push_back({"valid_profile_huge_batch.plan",
                   edit_json(mlp,
                             [](Json& m) {
                               m["profiles"][0]["input"]["max"] = {int64_t{1} << 62, 6};
                               m["profiles"][0]["input"]["min"] = {int64_t{1} << 61, 6};
                               m["profiles"][0]["input"]["opt"] = {int64_t{1} << 61, 6};
                             }),
                   true});
  bad("output_never_produced",
      edit_json(mlp, [](Json& m) { m["graph"]["outputs"][0]["name"] = "nowhere"; }));
  // Structure: cycles, undefined and repeated tensors, unknown ops, bad attributes.
  bad("cycle_self", edit_json(mlp, [](Json& m) {
        Json& n = node(m, 0);
        n["inputs"][0] = n["outputs"][0];
      }));
  bad("cycle_two_nodes", edit_json(mlp, [](Json& m) {
        const Json out1 = node(m, 1)["outputs"][0];
        node(m, 0)["inputs"][0] = out1;
      }));
  bad("input_undefined", edit_json(mlp, [](Json& m) { node(m, 1)["inputs"][0] = "undefined"; }));
  bad("tensor_defined_twice",
      edit_json(mlp, [](Json& m) { node(m, 1)["outputs"][0] = node(m, 0)["outputs"][0]; }));
  bad("unknown_op", edit_json(mlp, [](Json& m) { node(m, 0)["op"] = "Conv"; }));
  bad("dense_without_weight", edit_json(mlp, [](Json& m) { node(m, 0)["inputs"] = {"input"}; }));
  bad("dense_weight_is_input", edit_json(mlp, [](Json& m) { node(m, 0)["inputs"][1] = "input"; }));
  bad("attribute_wrong_type", edit_json(mlp, [](Json& m) {
        node(m, 0)["attributes"]["activation"] = {{"type", "int"}, {"value", 3}};
      }));
  bad("activation_unknown", edit_json(mlp, [](Json& m) {
        node(m, 0)["attributes"]["activation"] = {{"type", "string"}, {"value", "swish9"}};
      }));
  bad("row_independence_wrong_type", edit_json(mlp, [](Json& m) { m["row_independence"] = 1; }));
  // The backend section.
  bad("backend_garbage", edit_sections(mlp, [](PlanSections& s) {
        for (size_t i = 0; i < s.blob.size(); ++i) s.blob[i] = static_cast<uint8_t>(i * 131 + 7);
      }));
  bad("backend_other_version", edit_sections(mlp, [](PlanSections& s) {
        Json blob = Json::parse(s.blob.begin(), s.blob.end());
        blob["version"] = 99;
        const std::string text = blob.dump();
        s.blob.assign(text.begin(), text.end());
      }));
  // Found by the fuzzer: get<int>() of a float is undefined past int's range.
  bad("backend_version_float", edit_sections(mlp, [](PlanSections& s) {
        Json blob = Json::parse(s.blob.begin(), s.blob.end());
        blob["version"] = 1e308;
        blob["threads"] = -1e300;
        const std::string text = blob.dump();
        s.blob.assign(text.begin(), text.end());
      }));
  bad("backend_tactic_m_float", edit_sections(mlp, [](PlanSections& s) {
        Json blob = Json::parse(s.blob.begin(), s.blob.end());
        for (Json& layer : blob["layers"]) layer["runtime"]["threads"] = 3.5e200;
        const std::string text = blob.dump();
        s.blob.assign(text.begin(), text.end());
      }));
  bad("backend_layer_unknown", edit_sections(mlp, [](PlanSections& s) {
        Json blob = Json::parse(s.blob.begin(), s.blob.end());
        if (blob.contains("layers") && !blob["layers"].empty()) blob["layers"][0]["node"] = "ghost";
        const std::string text = blob.dump();
        s.blob.assign(text.begin(), text.end());
      }));
  bad("backend_deep_json", edit_sections(mlp, [](PlanSections& s) {
        const std::string text = deep_json(200000);
        s.blob.assign(text.begin(), text.end());
      }));
  bad("metadata_deep_json",
      edit_sections(mlp, [](PlanSections& s) { s.metadata = deep_json(200000); }));
  bad("metadata_not_json",
      edit_sections(mlp, [](PlanSections& s) { s.metadata = "{\"backend\": cpu"; }));
  bad("metadata_not_utf8", edit_sections(mlp, [](PlanSections& s) { s.metadata[20] = '\xff'; }));
  return seeds;
}

Status load_and_run(std::span<const uint8_t> bytes) {
  auto loaded = Engine::load(bytes, "fuzz.plan");
  if (!loaded) return loaded.status();
  const Engine& engine = **loaded;
  auto made = engine.create_execution_context();
  if (!made || engine.num_profiles() == 0) return Status::ok();
  ExecutionContext& context = **made;
  std::map<std::string, std::vector<std::byte>> buffers;
  const auto run = [&](bool split) {
    for (const TensorDesc& t : engine.io_tensors()) {
      if (t.mode != TensorIOMode::kInput) continue;
      auto range = engine.profile_range(0, t.name);
      if (!range) return;
      Dims dims = range->min;
      if (split && !dims.empty()) {
        if (range->max[0] > kMaxElements) return;  // + 3 below must not overflow
        dims[0] = range->max[0] + 3;
      }
      int64_t n = 1;
      for (int64_t d : dims) {
        if (d < 0 || d > kMaxElements || (n *= std::max<int64_t>(d, 1)) > kMaxElements) return;
      }
      if (!context.set_input_shape(t.name, dims)) return;
      auto& buffer = buffers[t.name];
      buffer.assign(static_cast<size_t>(n) * element_size(t.dtype) + 64, std::byte{0});
      if (!context.set_tensor_address(t.name, buffer.data())) return;
    }
    for (const TensorDesc& t : engine.io_tensors()) {
      if (t.mode != TensorIOMode::kOutput) continue;
      auto dims = context.tensor_shape(t.name);
      if (!dims) return;
      int64_t n = 1;
      for (int64_t d : *dims) {
        if (d < 0 || d > kMaxElements || (n *= std::max<int64_t>(d, 1)) > kMaxElements) return;
      }
    }
    (void)context.enqueue();
  };
  run(false);
  if (context.set_split_batch(true)) run(true);
  return Status::ok();
}

}  // namespace mlprt::fuzz
