#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "mlprt/builder.h"
#include "mlprt/network.h"
#include "model_builder.h"
#include "onnx/onnx_importer.h"

namespace mlprt {
namespace {

using onnx_import::import_onnx_bytes;
using test::ModelBuilder;

Result<ir::Graph> import(const ModelBuilder& b, const std::string& source = "m.onnx") {
  const std::vector<uint8_t> bytes = b.bytes();
  return import_onnx_bytes(bytes, source);
}

// x[batch,4] -> Gemm(W[3,4], transB) -> Relu -> y
ModelBuilder small_mlp() {
  ModelBuilder b;
  b.input("x", {-1, 4});
  b.random_initializer("W", {3, 4}, 1);
  b.random_initializer("B", {3}, 2);
  auto& gemm = b.node("Gemm", {"x", "W", "B"}, {"h"}, "fc1");
  ModelBuilder::attr_int(gemm, "transB", 1);
  b.node("Relu", {"h"}, {"y"}, "act");
  b.output("y", {-1, 3});
  return b;
}

void expect_error(const Result<ir::Graph>& r, StatusCode code,
                  const std::vector<std::string>& parts) {
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  for (const std::string& p : parts) {
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "message '" << r.status().message() << "' lacks '" << p << "'";
  }
}

TEST(OnnxImporter, ImportsGraphStructure) {
  ModelBuilder b = small_mlp();
  // Older exporters list initializers as inputs too.
  b.input("W", {3, 4});
  auto r = import(b);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Graph& g = *r;
  EXPECT_EQ(g.name, "test_graph");
  EXPECT_EQ(g.source, "m.onnx");
  EXPECT_EQ(g.opset, 13);
  EXPECT_EQ(g.ir_version, 8);
  EXPECT_EQ(g.producer, "mlprt-test 1.0");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].name, "x");
  ASSERT_EQ(g.inputs[0].shape.size(), 2u);
  EXPECT_EQ(g.inputs[0].shape[0], (ir::Dim{-1, "batch"}));
  EXPECT_EQ(g.inputs[0].shape[1], (ir::Dim{4, ""}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].name, "y");
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].name, "fc1");
  EXPECT_EQ(g.nodes[0].op, "Gemm");
  EXPECT_EQ(g.nodes[0].get_int("transB", 0), 1);
  EXPECT_EQ(g.nodes[1].op, "Relu");
  ASSERT_TRUE(g.is_constant("W"));
  EXPECT_EQ(g.find_constant("W")->dims, (Dims{3, 4}));
  EXPECT_EQ(g.find_constant("B")->dims, (Dims{3}));
}

TEST(OnnxImporter, TypedFieldsAndRawDataGiveSameValues) {
  ModelBuilder b;
  b.input("x", {2, 3});
  const std::vector<float> v = test::random_values(6, 7);
  b.initializer("raw", {2, 3}, v, true);
  b.initializer("typed", {2, 3}, v, false);
  auto& d = *b.graph().add_initializer();
  d.set_name("dbl");
  d.set_data_type(onnx::TensorProto_DataType_DOUBLE);
  d.add_dims(2);
  d.add_double_data(1.5);
  d.add_double_data(-2.25);
  auto& h = *b.graph().add_initializer();
  h.set_name("half");
  h.set_data_type(onnx::TensorProto_DataType_FLOAT16);
  h.add_dims(1);
  h.add_int32_data(0x3C00);  // 1.0 in IEEE half
  auto& i32 = *b.graph().add_initializer();
  i32.set_name("i32");
  i32.set_data_type(onnx::TensorProto_DataType_INT32);
  i32.add_dims(2);
  i32.add_int32_data(-7);
  i32.add_int32_data(9);
  b.node("Add", {"x", "raw"}, {"s"});
  b.node("Add", {"s", "typed"}, {"y"});
  b.output("y", {2, 3});
  auto r = import(b);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const auto raw = r->find_constant("raw")->to_doubles();
  const auto typed = r->find_constant("typed")->to_doubles();
  ASSERT_EQ(raw.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(raw[i], static_cast<double>(v[i]));
    EXPECT_EQ(typed[i], static_cast<double>(v[i]));
  }
  EXPECT_EQ(r->find_constant("dbl")->dtype, DataType::kFloat64);
  EXPECT_EQ(r->find_constant("dbl")->to_doubles(), (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(r->find_constant("half")->dtype, DataType::kFloat16);
  EXPECT_EQ(r->find_constant("half")->to_doubles(), (std::vector<double>{1.0}));
  EXPECT_EQ(r->find_constant("i32")->to_int64s(), (std::vector<int64_t>{-7, 9}));
  // Generated names for unnamed nodes: "<op>_<index>", unique.
  EXPECT_EQ(r->nodes[0].name, "Add_0");
  EXPECT_EQ(r->nodes[1].name, "Add_1");
}

TEST(OnnxImporter, SortsNodesTopologically) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.node("Relu", {"b"}, {"y"}, "second");
  b.node("Identity", {"a"}, {"b"}, "first_b");
  b.node("Relu", {"x"}, {"a"}, "first");
  b.output("y", {2, 3});
  auto r = import(b);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->nodes.size(), 3u);
  EXPECT_EQ(r->nodes[0].name, "first");
  EXPECT_EQ(r->nodes[1].name, "first_b");
  EXPECT_EQ(r->nodes[2].name, "second");
}

TEST(OnnxImporter, ConstantNodesBecomeConstants) {
  ModelBuilder b(13);
  b.input("x", {2, 6});
  auto& c1 = b.node("Constant", {}, {"shape"}, "shape_const");
  ModelBuilder::attr_ints(c1, "value_ints", {3, 4});
  auto& c2 = b.node("Constant", {}, {"one"}, "one_const");
  ModelBuilder::attr_float(c2, "value_float", 1.0f);
  b.node("Reshape", {"x", "shape"}, {"r"}, "reshape");
  b.node("Add", {"r", "one"}, {"y"}, "add");
  b.output("y", {3, 4});
  auto r = import(b);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->nodes.size(), 2u);
  ASSERT_TRUE(r->is_constant("shape"));
  EXPECT_EQ(r->find_constant("shape")->dtype, DataType::kInt64);
  EXPECT_EQ(r->find_constant("shape")->to_int64s(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(r->find_constant("one")->dims, Dims{});
  EXPECT_EQ(r->find_constant("one")->to_doubles(), (std::vector<double>{1.0}));
}

TEST(OnnxImporter, MissingOutputShapeIsInferred) {
  ModelBuilder b = small_mlp();
  b.graph().mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  auto r = import(b);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(ir::to_dims(r->outputs[0].shape), (Dims{-1, 3}));
}

TEST(OnnxImporter, UnsupportedOpMessage) {
  ModelBuilder b(17);
  b.input("x", {2, 3});
  b.node("Conv", {"x"}, {"y"}, "act7");
  b.output("y", {2, 3});
  auto r = import(b, "net.onnx");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(r.status().message(),
            "net.onnx: node 'act7' (op 'Conv', opset 17): unsupported op; supported ops: " +
                onnx_import::supported_ops_list());
  EXPECT_EQ(onnx_import::supported_ops_list().substr(0, 60),
            "Abs, Add, BatchNormalization, Cast, Clip, Concat, Constant, ");
}

TEST(OnnxImporter, UnsupportedDomain) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.node("FusedGemm", {"x"}, {"y"}, "f").set_domain("com.microsoft");
  b.output("y", {2, 3});
  expect_error(import(b), StatusCode::kUnsupported, {"'f'", "FusedGemm", "com.microsoft", "Gemm"});
}

TEST(OnnxImporter, MissingNodeInput) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.node("Add", {"x", "ghost"}, {"y"}, "adder");
  b.output("y", {2, 3});
  expect_error(import(b), StatusCode::kInvalidArgument, {"m.onnx", "'adder'", "'ghost'"});
}

TEST(OnnxImporter, RefusesNamesThatAreNotUtf8) {
  // Names go into the plan's JSON; a non-UTF-8 one used to make the build throw (fuzzer:
  // fuzz/crashes/crash-b05f900f...).
  const std::vector<std::pair<std::string, bool>> names = {
      {"caf\xc3\xa9", true},       // U+00E9
      {"\xe2\x82\xac", true},      // U+20AC
      {"\xf0\x9f\x98\x80", true},  // U+1F600
      {"\x99in", false},           // lone continuation byte
      {"\xc3", false},             // truncated
      {"\xc0\xaf", false},         // overlong '/'
      {"\xed\xa0\x80", false},     // UTF-16 surrogate
      {"\xf4\x90\x80\x80", false}, // past U+10FFFF
  };
  for (const auto& [name, valid] : names) {
    ModelBuilder b;
    b.input(name, {2, 3});
    b.node("Relu", {name}, {"y"}, "r");
    b.output("y", {2, 3});
    const Result<ir::Graph> r = import(b);
    if (valid) {
      EXPECT_TRUE(r.is_ok()) << r.status().message();
    } else {
      expect_error(r, StatusCode::kCorruptData, {"m.onnx", "not valid UTF-8"});
    }
  }
}

TEST(OnnxImporter, FuzzerCrashReproducersBuildOrFailCleanly) {
  // Every committed reproducer must now import and build, or fail with a Status.
  const std::filesystem::path dir = std::filesystem::path(MLPRT_SOURCE_DIR) / "fuzz" / "crashes";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("crash-", 0) != 0) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    auto network = Network::from_onnx_bytes(bytes, entry.path().string());
    if (network.is_ok()) {
      BuilderConfig config;
      config.backend = "cpu";
      config.optimization_level = 0;
      (void)build_serialized_engine(**network, config);
    }
    ++checked;
  }
  EXPECT_GE(checked, 1) << "no reproducers found in " << dir;
}

TEST(OnnxImporter, DuplicateProducers) {
  {
    ModelBuilder b;
    b.input("x", {2, 3});
    b.node("Relu", {"x"}, {"y"}, "r1");
    b.node("Relu", {"x"}, {"y"}, "r2");
    b.output("y", {2, 3});
    expect_error(import(b), StatusCode::kInvalidArgument, {"'y'", "'r1'", "'r2'", "twice"});
  }
  {
    ModelBuilder b;
    b.input("x", {2, 3});
    b.random_initializer("w", {2, 3}, 3);
    b.node("Relu", {"x"}, {"w"}, "r1");
    b.output("w", {2, 3});
    expect_error(import(b), StatusCode::kInvalidArgument, {"'w'", "initializer", "'r1'"});
  }
}

TEST(OnnxImporter, Cycle) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.node("Add", {"x", "b"}, {"a"}, "n1");
  b.node("Relu", {"a"}, {"b"}, "n2");
  b.node("Relu", {"a"}, {"y"}, "n3");
  b.output("y", {2, 3});
  expect_error(import(b), StatusCode::kInvalidArgument, {"cycle", "'n1'", "'n2'"});
}

TEST(OnnxImporter, GraphOutputWithoutProducer) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.node("Relu", {"x"}, {"y"}, "r");
  b.output("z", {2, 3});
  expect_error(import(b), StatusCode::kInvalidArgument, {"graph output 'z'", "produced by no"});
}

TEST(OnnxImporter, NotProtobuf) {
  const std::string junk = "\xff\xff\xff\xff garbage that is not a model";
  std::vector<uint8_t> bytes(junk.begin(), junk.end());
  auto r = import_onnx_bytes(bytes, "junk.onnx");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "junk.onnx: not a valid ONNX model (protobuf parse failed)");
}

TEST(OnnxImporter, FileErrors) {
  auto missing = onnx_import::import_onnx_file("/nonexistent/dir/model.onnx");
  expect_error(missing, StatusCode::kNotFound, {"/nonexistent/dir/model.onnx", "no such file"});
  auto dir = onnx_import::import_onnx_file(std::filesystem::temp_directory_path());
  expect_error(dir, StatusCode::kInvalidArgument, {"directory"});
}

TEST(OnnxImporter, ImportsFromFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("mlprt_importer_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".onnx");
  {
    std::ofstream f(path, std::ios::binary);
    const auto bytes = small_mlp().bytes();
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  auto net = Network::from_onnx_file(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(net.is_ok()) << net.status().message();
  EXPECT_EQ((*net)->name(), "test_graph");
  EXPECT_EQ((*net)->graph().source, path.string());
  const auto inputs = (*net)->inputs();
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_EQ(inputs[0].name, "x");
  EXPECT_EQ(inputs[0].mode, TensorIOMode::kInput);
  EXPECT_EQ(inputs[0].dims, (Dims{-1, 4}));
  const auto outputs = (*net)->outputs();
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].mode, TensorIOMode::kOutput);
  EXPECT_EQ(outputs[0].dims, (Dims{-1, 3}));
}

TEST(OnnxImporter, WrongInputCount) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.node("Relu", {"x", "x"}, {"y"}, "r");
  b.output("y", {2, 3});
  expect_error(import(b), StatusCode::kInvalidArgument, {"'r'", "Relu", "2 inputs"});
}

TEST(OnnxImporter, GemmWithNon2DConstant) {
  ModelBuilder b;
  b.input("x", {2, 3});
  b.random_initializer("W", {3, 4, 1}, 4);
  b.node("Gemm", {"x", "W"}, {"y"}, "fc");
  b.output("y", {2, 4});
  expect_error(import(b), StatusCode::kInvalidArgument, {"'fc'", "'W'", "rank 3", "3x4x1"});
}

TEST(OnnxImporter, FlattenAxisOutOfRange) {
  ModelBuilder b;
  b.input("x", {2, 3});
  auto& f = b.node("Flatten", {"x"}, {"y"}, "flat");
  ModelBuilder::attr_int(f, "axis", 3);
  b.output("y", {2, 3});
  expect_error(import(b), StatusCode::kInvalidArgument, {"'flat'", "axis 3", "rank 2"});
}

TEST(OnnxImporter, ExternalData) {
  ModelBuilder b = small_mlp();
  auto* w = b.graph().mutable_initializer(0);
  w->clear_raw_data();
  w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  expect_error(import(b), StatusCode::kUnsupported, {"initializer 'W'", "external"});
}

TEST(OnnxImporter, DataSizeMismatch) {
  ModelBuilder b = small_mlp();
  b.graph().mutable_initializer(1)->set_raw_data(std::string(8, '\0'));
  expect_error(import(b), StatusCode::kCorruptData, {"initializer 'B'", "12 bytes", "8 bytes"});
  ModelBuilder t;
  t.input("x", {2});
  t.initializer("c", {3}, {1.0f, 2.0f}, false);
  t.node("Add", {"x", "c"}, {"y"});
  t.output("y", {3});
  expect_error(import(t), StatusCode::kCorruptData, {"initializer 'c'", "3 values", "holds 2"});
}

TEST(OnnxImporter, InputWithoutShape) {
  ModelBuilder b = small_mlp();
  b.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  expect_error(import(b), StatusCode::kInvalidArgument, {"graph input 'x'", "no shape"});
}

TEST(OnnxImporter, AnonymousDim) {
  ModelBuilder b;
  b.input("x", {-2, 3});
  b.node("Relu", {"x"}, {"y"});
  b.output("y", {-2, 3});
  auto r = import(b);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->inputs[0].shape[0], (ir::Dim{-1, ""}));
}

TEST(OnnxImporter, NonFloatInput) {
  ModelBuilder b;
  b.input("ids", {2, 3}, onnx::TensorProto_DataType_INT64);
  b.node("Relu", {"ids"}, {"y"});
  b.output("y", {2, 3});
  expect_error(import(b), StatusCode::kUnsupported, {"graph input 'ids'", "INT64", "FLOAT"});
}

TEST(OnnxImporter, MissingOpset) {
  ModelBuilder b = small_mlp();
  b.model().clear_opset_import();
  auto* other = b.model().add_opset_import();
  other->set_domain("com.example");
  other->set_version(1);
  expect_error(import(b), StatusCode::kCorruptData, {"m.onnx", "opset"});
}

TEST(OnnxImporter, DropoutTrainingMode) {
  auto build = [](bool constant_false, bool as_input) {
    ModelBuilder b(13);
    b.input("x", {2, 3});
    if (as_input) {
      b.input("mode", {}, onnx::TensorProto_DataType_BOOL);
    } else {
      auto& m = *b.graph().add_initializer();
      m.set_name("mode");
      m.set_data_type(onnx::TensorProto_DataType_BOOL);
      m.add_int32_data(constant_false ? 0 : 1);
    }
    b.node("Dropout", {"x", "", "mode"}, {"y"}, "drop");
    b.output("y", {2, 3});
    return b;
  };
  EXPECT_TRUE(import(build(true, false)).is_ok());
  expect_error(import(build(false, false)), StatusCode::kUnsupported,
               {"'drop'", "training_mode", "inference"});
  // A bool graph input is refused earlier, naming the input.
  expect_error(import(build(false, true)), StatusCode::kUnsupported, {"'mode'", "BOOL"});
}

TEST(OnnxImporter, DropoutMaskUsed) {
  ModelBuilder b(13);
  b.input("x", {2, 3});
  b.node("Dropout", {"x"}, {"y", "mask"}, "drop");
  b.node("Identity", {"mask"}, {"m2"});
  b.output("y", {2, 3});
  b.output("m2", {2, 3});
  expect_error(import(b), StatusCode::kUnsupported, {"'drop'", "mask"});
}

}  // namespace
}  // namespace mlprt
