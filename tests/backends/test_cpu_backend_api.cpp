// The cpu backend's interface: registry, supports(), hardware ids, the compile blob, errors,
// and contexts used from several threads.

#include <nlohmann/json.hpp>

#include <thread>

#include "cpu_test_graphs.h"

namespace mlprt::testing {
namespace {

const backend::Backend& cpu() {
  auto found = backend::find_backend("cpu");
  EXPECT_TRUE(found.is_ok());
  return **found;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(BackendRegistry, ListsFindsAndSelectsCpu) {
  const std::vector<std::string> names = backend::backend_names();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "cpu");

  auto found = backend::find_backend("cpu");
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ((*found)->name(), "cpu");

  auto missing = backend::find_backend("tpu");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(contains(missing.status().message(), "'tpu'"));
  EXPECT_TRUE(contains(missing.status().message(), "cpu"));

  auto selected = backend::select_backend("auto");
  ASSERT_TRUE(selected.is_ok()) << selected.status().message();
  // "auto" takes the first compiled-in backend usable here (cuda falls back to cpu without a GPU).
  std::string first_available;
  for (const std::string& name : names) {
    if ((*backend::find_backend(name))->check_available().is_ok()) {
      first_available = name;
      break;
    }
  }
  EXPECT_EQ((*selected)->name(), first_available);
  auto named = backend::select_backend("cpu");
  ASSERT_TRUE(named.is_ok());
  EXPECT_EQ((*named)->name(), "cpu");
  EXPECT_FALSE(backend::select_backend("nope").is_ok());
}

TEST(CpuBackendApi, SupportsLayerOpsAndRefusesOthers) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 4});
  const auto y = g.relu(g.dense(x, 4, 3));
  g.output(y);
  for (const ir::Node& node : g.graph().nodes) {
    const Status status = cpu().supports(g.graph(), node);
    EXPECT_TRUE(status.is_ok()) << status.message();
  }
  ir::Node conv;
  conv.name = "conv1";
  conv.op = "Conv";
  conv.inputs = {x};
  conv.outputs = {"z"};
  const Status refused = cpu().supports(g.graph(), conv);
  EXPECT_EQ(refused.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(refused.message(), "conv1"));
  EXPECT_TRUE(contains(refused.message(), "Conv"));
  EXPECT_TRUE(contains(refused.message(), "Dense"));
}

TEST(CpuBackendApi, TakesFloat16IoButRefusesIntegerIoAndFloat16Weights) {
  GraphMaker f;
  const auto fx = f.input("x_half", {-1, 4}, DataType::kFloat16);
  f.output(f.relu(fx));
  EXPECT_TRUE(cpu().supports(f.graph(), f.graph().nodes[0]).is_ok());

  GraphMaker g;
  const auto x = g.input("x_int", {-1, 4}, DataType::kInt32);
  g.output(g.relu(x));
  const Status input_refused = cpu().supports(g.graph(), g.graph().nodes[0]);
  EXPECT_EQ(input_refused.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(input_refused.message(), "x_int"));
  EXPECT_TRUE(contains(input_refused.message(), "int32"));
  EXPECT_TRUE(contains(input_refused.message(), "float16"));

  GraphMaker h;
  const auto hx = h.input("x", {-1, 4});
  h.output(h.dense(hx, 4, 2));
  ir::Constant& w = h.graph().constants.at(h.graph().nodes[0].inputs[1]);
  w.dtype = DataType::kFloat16;
  w.data.resize(w.data.size() / 2);
  const Status weight_refused = cpu().supports(h.graph(), h.graph().nodes[0]);
  EXPECT_EQ(weight_refused.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(weight_refused.message(), "float16"));
  // load refuses it too, rather than misreading the bytes.
  EXPECT_FALSE(cpu().load(h.graph(), {}).is_ok());
}

TEST(CpuBackendApi, RefusesUnknownActivation) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 4});
  g.output(g.dense(x, 4, 2));
  g.graph().nodes[0].attributes["activation"] = std::string("gelu");
  const Status status = cpu().supports(g.graph(), g.graph().nodes[0]);
  EXPECT_EQ(status.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(status.message(), "gelu"));
}

TEST(CpuBackendApi, HardwareIdAndCheck) {
  const std::string id = cpu().hardware_id();
  ASSERT_EQ(id.rfind("x86_64 ", 0), 0u) << id;
  EXPECT_TRUE(cpu().check_hardware(id).is_ok());
  // Every x86_64 machine oneDNN runs on has sse41.
  EXPECT_TRUE(cpu().check_hardware("x86_64 sse41").is_ok());

  const Status garbled = cpu().check_hardware("banana");
  EXPECT_EQ(garbled.code(), StatusCode::kHardwareMismatch);
  EXPECT_TRUE(contains(garbled.message(), "banana"));
  EXPECT_TRUE(contains(garbled.message(), "avx2"));
  EXPECT_FALSE(cpu().check_hardware("x86_64 avx9000").is_ok());
  EXPECT_FALSE(cpu().check_hardware("aarch64 sse41").is_ok());

  if (id == "x86_64 avx512_core_amx") GTEST_SKIP() << "no wider ISA than this machine's";
  const Status refused = cpu().check_hardware("x86_64 avx512_core_amx");
  EXPECT_EQ(refused.code(), StatusCode::kHardwareMismatch);
  EXPECT_EQ(refused.message(), "plan built for x86_64 avx512_core_amx, this machine is " + id);
}

TEST(CpuBackendApi, BlobRecordsImplementationsAndLayerPrecisions) {
  GraphMaker g;
  const auto x = g.input("input", {-1, 784});
  const auto d1 = g.dense(x, 784, 32, true, true);
  g.output(g.reshape(g.dense(d1, 32, 10), {-1, 10}));
  OptimizationProfile p0, p1;
  ASSERT_TRUE(p0.set_dimensions("input", {{1, 784}, {32, 784}, {64, 784}}).is_ok());
  ASSERT_TRUE(p1.set_dimensions("input", {{65, 784}, {128, 784}, {256, 784}}).is_ok());
  auto blob = cpu().compile(g.graph(), {p0, p1}, BuilderConfig{});
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  const auto json = nlohmann::json::parse(blob->begin(), blob->end());
  EXPECT_EQ(json.at("hardware"), cpu().hardware_id());
  ASSERT_EQ(json.at("layers").size(), 2u);
  const auto& first = json.at("layers")[0];
  EXPECT_EQ(first.at("node"), g.graph().nodes[0].name);
  ASSERT_EQ(first.at("opt").size(), 2u);
  EXPECT_EQ(first.at("opt")[0].at("m"), 32);
  EXPECT_EQ(first.at("opt")[1].at("m"), 128);
  EXPECT_EQ(first.at("runtime").at("kind"), "runtime");
  // Without --bf16 every tactic is fp32; which kind wins is up to the timing.
  for (const auto& opt : first.at("opt")) {
    EXPECT_EQ(opt.at("precision"), "fp32");
    EXPECT_TRUE(opt.at("kind") == "runtime" || opt.at("kind") == "fixed") << opt.dump();
  }

  auto exe = cpu().load(g.graph(), *blob);
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  const std::vector<std::string> precisions = (*exe)->layer_precisions();
  ASSERT_EQ(precisions.size(), 3u);
  EXPECT_EQ(precisions[0].rfind("fp32 (", 0), 0u) << precisions[0];
  EXPECT_TRUE(contains(precisions[0], "any M: fp32 runtime-M")) << precisions[0];
  // A fixed-M primitive exists exactly where the timing chose one.
  EXPECT_EQ(contains(precisions[0], "M=32: "), first.at("opt")[0].at("kind") == "fixed")
      << precisions[0];
  EXPECT_EQ(contains(precisions[0], "M=128: "), first.at("opt")[1].at("kind") == "fixed")
      << precisions[0];
  EXPECT_EQ(precisions[2], "fp32 (view)");

  // An empty blob is accepted too (runtime-M primitives only).
  EXPECT_TRUE(cpu().load(g.graph(), {}).is_ok());
}

TEST(CpuBackendApi, LoadRefusesForeignOrBrokenBlobs) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 4});
  g.output(g.dense(x, 4, 2));
  const std::string garbage = "{not json";
  auto broken = cpu().load(g.graph(), std::vector<uint8_t>(garbage.begin(), garbage.end()));
  ASSERT_FALSE(broken.is_ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kCorruptData);

  const std::string foreign = R"({"format":"mlprt.cuda","version":1,"layers":[]})";
  auto other = cpu().load(g.graph(), std::vector<uint8_t>(foreign.begin(), foreign.end()));
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.status().code(), StatusCode::kCorruptData);

  const std::string stale =
      R"({"format":"mlprt.cpu","version":3,"layers":[{"node":"gone","opt":[]}]})";
  auto missing = cpu().load(g.graph(), std::vector<uint8_t>(stale.begin(), stale.end()));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_TRUE(contains(missing.status().message(), "gone"));

  const std::string old = R"({"format":"mlprt.cpu","version":1,"layers":[]})";
  auto stale_version = cpu().load(g.graph(), std::vector<uint8_t>(old.begin(), old.end()));
  ASSERT_FALSE(stale_version.is_ok());
  EXPECT_EQ(stale_version.status().code(), StatusCode::kVersionMismatch);

  const std::string bad_tactic =
      R"({"format":"mlprt.cpu","version":3,"layers":[{"node":")" + g.graph().nodes[0].name +
      R"(","runtime":{"precision":"fp8","kind":"runtime","layout":"packed"},"opt":[]}]})";
  auto bad = cpu().load(g.graph(), std::vector<uint8_t>(bad_tactic.begin(), bad_tactic.end()));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruptData);
  EXPECT_TRUE(contains(bad.status().message(), "fp8")) << bad.status().message();
}

TEST(CpuBackendApi, ExecuteErrors) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 4});
  g.output(g.dense(x, 4, 2));
  auto exe = load_cpu(g.graph());
  ASSERT_TRUE(exe);
  auto context = exe->create_context();
  ASSERT_TRUE(context.is_ok());
  const Status early = (*context)->execute({}, nullptr);
  EXPECT_FALSE(early.is_ok());
  EXPECT_TRUE(contains(early.message(), "prepare"));

  auto shapes = ir::infer_shapes(g.graph(), {{"x", {3, 4}}});
  ASSERT_TRUE(shapes.is_ok());
  ASSERT_TRUE((*context)->prepare(*shapes).is_ok());
  std::vector<float> y(6);
  backend::IoBindings io;
  io.outputs[g.graph().outputs[0].name] = y.data();
  const Status no_input = (*context)->execute(io, nullptr);
  EXPECT_EQ(no_input.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(no_input.message(), "'x'"));
}

TEST(CpuBackendApi, TwoContextsOnTwoThreads) {
  GraphMaker g;
  const auto x = g.input("input", {-1, 784});
  g.output(g.dense(g.dense(x, 784, 32, true, true), 32, 10));
  OptimizationProfile profile;
  ASSERT_TRUE(profile.set_dimensions("input", {{1, 784}, {32, 784}, {64, 784}}).is_ok());
  auto exe = load_cpu(g.graph(), {profile});
  ASSERT_TRUE(exe);
  const std::vector<int64_t> batches_a = {32, 7, 64, 1};
  const std::vector<int64_t> batches_b = {5, 32, 200, 32};
  std::vector<double> worst(2, 0.0);
  std::vector<std::string> errors(2);
  auto worker = [&](size_t which, const std::vector<int64_t>& batches) {
    auto context = exe->create_context();
    if (!context.is_ok()) {
      errors[which] = context.status().message();
      return;
    }
    for (int round = 0; round < 10; ++round) {
      for (int64_t m : batches) {
        const TensorMap inputs = {
            {"input", random_tensor({m, 784}, static_cast<unsigned>(which * 1000 + m))}};
        TensorMap outputs;
        const Status status = run_context(**context, g.graph(), inputs, outputs);
        if (!status.is_ok()) {
          errors[which] = status.message();
          return;
        }
        const auto ref = reference(g.graph(), inputs);
        for (const auto& [name, values] : ref) {
          worst[which] = std::max(worst[which], rel_l2(outputs.at(name).data, values));
        }
      }
    }
  };
  std::thread a(worker, 0, batches_a);
  std::thread b(worker, 1, batches_b);
  a.join();
  b.join();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(errors[i].empty()) << errors[i];
    EXPECT_LE(worst[i], 1e-5) << "thread " << i;
  }
}

}  // namespace
}  // namespace mlprt::testing
