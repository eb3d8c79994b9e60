// backend::TensorTable, the name -> tensor slot table of the cpu and cuda executables; and the
// cpu backend's wording of its errors, end to end through load.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/registry.h"
#include "backends/tensor_table.h"
#include "cpu_test_graphs.h"

namespace mlprt::backend {
namespace {

constexpr TensorTableRules kRules = {.backend = "test backend",
                                     .unknown_input_code = StatusCode::kNotFound,
                                     .unknown_input = "is unknown",
                                     .duplicate_output = "is produced twice",
                                     .bad_output_code = StatusCode::kUnsupported,
                                     .bad_output = "is refused",
                                     .output_may_be_input = true};

ir::Node make_node(const std::string& name, const std::string& op) {
  ir::Node node;
  node.name = name;
  node.op = op;
  return node;
}

// Graph with input "x", float32 constant "c" and float16 constant "h"; the table's callers
// drive the nodes themselves.
ir::Graph make_graph() {
  ir::Graph graph;
  graph.constants["c"] = ir::Constant::from_floats({2}, {1.0f, 2.0f});
  graph.constants["h"] = ir::Constant::from_floats({2}, {1.0f, 2.0f});
  graph.constants["h"].dtype = DataType::kFloat16;
  return graph;
}

// Records the loads and refuses non-float32 constants.
struct Loads {
  std::vector<std::string> names;
  std::vector<std::string> users;
  std::vector<size_t> ids;
  TensorTable::LoadConstant callback() {
    return [this](const ir::Node& user, const std::string& name, const ir::Constant& constant,
                  size_t id) -> Status {
      if (constant.dtype != DataType::kFloat32) {
        return Status(StatusCode::kUnsupported, "not float32: " + name);
      }
      names.push_back(name);
      users.push_back(user.op);
      ids.push_back(id);
      return Status::ok();
    };
  }
};

TEST(TensorTable, InputsOutputsAndAConstantUsedTwice) {
  const ir::Graph graph = make_graph();
  Loads loads;
  const TensorTable::LoadConstant load = loads.callback();
  TensorTable table(kRules);
  EXPECT_EQ(table.add_input("x"), 0u);
  const ir::Node first = make_node("first", "Add");
  const ir::Node second = make_node("second", "Add");
  EXPECT_EQ(*table.resolve(graph, first, "x", load), 0u);
  EXPECT_EQ(*table.resolve(graph, first, "c", load), 1u);
  EXPECT_EQ(*table.add_output(first, "a", false), 2u);
  EXPECT_EQ(*table.resolve(graph, second, "a", load), 2u);
  EXPECT_EQ(*table.resolve(graph, second, "c", load), 1u);
  EXPECT_EQ(*table.add_output(second, "v", true), 3u);
  ASSERT_TRUE(table.add_graph_output(graph, "v", load).is_ok());
  ASSERT_TRUE(table.add_graph_output(graph, "a", load).is_ok());

  // One slot and one load for the constant read twice.
  EXPECT_EQ(loads.names, std::vector<std::string>{"c"});
  EXPECT_EQ(loads.ids, std::vector<size_t>{1});
  const std::vector<TensorSlot>& slots = table.slots();
  ASSERT_EQ(slots.size(), 4u);
  EXPECT_EQ(slots[0].role, TensorRole::kInput);
  EXPECT_EQ(slots[1].role, TensorRole::kConstant);
  EXPECT_EQ(slots[1].name, "c");
  EXPECT_EQ(slots[2].role, TensorRole::kComputed);
  EXPECT_FALSE(slots[2].is_view);
  EXPECT_TRUE(slots[3].is_view);
  EXPECT_EQ(slots[0].output_index, -1);
  EXPECT_EQ(slots[1].output_index, -1);
  EXPECT_EQ(slots[2].output_index, 1);
  EXPECT_EQ(slots[3].output_index, 0);
  EXPECT_EQ(table.input_ids(), std::vector<size_t>{0});
  EXPECT_EQ(table.output_ids(), (std::vector<size_t>{3, 2}));
}

TEST(TensorTable, RefusesADuplicateOutput) {
  TensorTable table(kRules);
  table.add_input("x");
  const ir::Node node = make_node("n", "Relu");
  ASSERT_TRUE(table.add_output(node, "y", false).is_ok());
  for (const std::string& name : std::vector<std::string>{"y", "x"}) {
    const Result<size_t> again = table.add_output(node, name, false);
    ASSERT_FALSE(again.is_ok());
    EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(again.status().message(),
              "test backend: node 'n' (Relu): output '" + name + "' is produced twice");
  }
  EXPECT_EQ(table.slots().size(), 2u);
}

TEST(TensorTable, RefusesUnknownNamesAndPassesOnLoadErrors) {
  const ir::Graph graph = make_graph();
  Loads loads;
  const TensorTable::LoadConstant load = loads.callback();
  TensorTable table(kRules);
  table.add_input("x");
  const Result<size_t> unknown = table.resolve(graph, make_node("n", "Add"), "nope", load);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "test backend: node 'n' (Add): input 'nope' is unknown");

  const Status output = table.add_graph_output(graph, "nope", load);
  EXPECT_EQ(output.code(), StatusCode::kNotFound);
  EXPECT_EQ(output.message(), "test backend: node 'nope' (graph output): input 'nope' is unknown");

  const Result<size_t> half = table.resolve(graph, make_node("n", "Add"), "h", load);
  ASSERT_FALSE(half.is_ok());
  EXPECT_EQ(half.status().message(), "not float32: h");
  EXPECT_TRUE(loads.names.empty());
  EXPECT_EQ(table.slots().size(), 1u);
  EXPECT_TRUE(table.output_ids().empty());
}

TEST(TensorTable, GraphOutputThatIsAConstantOrAnInput) {
  const ir::Graph graph = make_graph();
  Loads loads;
  const TensorTable::LoadConstant load = loads.callback();

  TensorTable allowed(kRules);
  allowed.add_input("x");
  ASSERT_TRUE(allowed.add_graph_output(graph, "x", load).is_ok());
  ASSERT_TRUE(allowed.add_graph_output(graph, "c", load).is_ok());
  EXPECT_EQ(allowed.slots()[0].output_index, 0);
  EXPECT_EQ(allowed.slots()[1].output_index, 1);
  EXPECT_EQ(allowed.slots()[1].role, TensorRole::kConstant);
  EXPECT_EQ(loads.users, std::vector<std::string>{"graph output"});
  const Status twice = allowed.add_graph_output(graph, "x", load);
  EXPECT_EQ(twice.code(), StatusCode::kUnsupported);
  EXPECT_EQ(twice.message(), "test backend: graph output 'x' is refused");

  TensorTableRules rules = kRules;
  rules.output_may_be_input = false;
  TensorTable refused(rules);
  refused.add_input("x");
  const Status input = refused.add_graph_output(graph, "x", load);
  EXPECT_EQ(input.code(), StatusCode::kUnsupported);
  EXPECT_EQ(input.message(), "test backend: graph output 'x' is refused");
  EXPECT_TRUE(refused.output_ids().empty());
}

// The cpu backend's own wording, through load.
std::string cpu_load_error(const ir::Graph& graph) {
  auto cpu = find_backend("cpu");
  EXPECT_TRUE(cpu.is_ok());
  auto exe = (*cpu)->load(graph, {});
  return exe.is_ok() ? "" : exe.status().message();
}

TEST(TensorTable, CpuBackendWording) {
  testing::GraphMaker dup;
  const std::string x = dup.input("x", {-1, 4});
  const std::string y = dup.relu(x);
  dup.relu(x);
  dup.graph().nodes[1].outputs[0] = y;
  dup.output(y);
  EXPECT_EQ(cpu_load_error(dup.graph()),
            "cpu backend: node 'Relu_1' (Relu): output 'Relu_0_out' is already produced by "
            "another node or input");

  testing::GraphMaker unknown;
  unknown.input("x", {-1, 4});
  unknown.output(unknown.relu("nope"));
  EXPECT_EQ(cpu_load_error(unknown.graph()),
            "cpu backend: node 'Relu_0' (Relu): input 'nope' is produced by no earlier node, "
            "graph input or constant");

  testing::GraphMaker passthrough;
  const std::string px = passthrough.input("x", {-1, 4});
  passthrough.output(passthrough.relu(px));
  passthrough.output(px);
  EXPECT_EQ(cpu_load_error(passthrough.graph()), "");
  passthrough.output(px);
  EXPECT_EQ(cpu_load_error(passthrough.graph()), "cpu backend: graph output 'x' is listed twice");
}

}  // namespace
}  // namespace mlprt::backend
