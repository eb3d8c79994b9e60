#include "refit/plan_refitter.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "common/check.h"
#include "common/log.h"
#include "ir/passes/passes.h"

namespace mlprt::refit {
namespace {

std::string dims_text(const Dims& dims) {
  std::string out(1, '[');
  out += to_string(dims);
  out += ']';
  return out;
}

ir::Constant transposed(const ir::Constant& c) {
  ir::Constant out{c.dtype, {c.dims[1], c.dims[0]}, std::vector<std::byte>(c.data.size())};
  const size_t es = element_size(c.dtype);
  const auto rows = static_cast<size_t>(c.dims[0]), cols = static_cast<size_t>(c.dims[1]);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < cols; ++k) {
      std::copy_n(&c.data[(r * cols + k) * es], es, &out.data[(k * rows + r) * es]);
    }
  }
  return out;
}

// Everything about the optimized graphs that the backend blob depends on, i.e. all but the
// constants' values.
std::vector<std::string> compare_optimized(const ir::Graph& plan, const ir::Graph& fresh) {
  std::vector<std::string> out;
  if (plan.nodes.size() != fresh.nodes.size()) {
    out.push_back("the new weights give " + std::to_string(fresh.nodes.size()) + " layers, the plan has " +
                  std::to_string(plan.nodes.size()));
  }
  for (size_t i = 0; i < std::min(plan.nodes.size(), fresh.nodes.size()); ++i) {
    const ir::Node& a = plan.nodes[i];
    const ir::Node& b = fresh.nodes[i];
    bool same = a.name == b.name && a.op == b.op && a.inputs == b.inputs && a.outputs == b.outputs &&
                a.attributes.size() == b.attributes.size();
    for (auto ia = a.attributes.begin(), ib = b.attributes.begin(); same && ia != a.attributes.end(); ++ia, ++ib) {
      same = ia->first == ib->first && same_attribute(ia->second, ib->second);
    }
    if (!same) out.push_back("layer " + std::to_string(i) + " '" + a.name + "' (" + a.op + ") becomes '" + b.name + "' (" + b.op + ") or changes its inputs or attributes");
  }
  for (const auto& [name, c] : plan.constants) {
    const ir::Constant* n = fresh.find_constant(name);
    if (!n || n->dtype != c.dtype || n->dims != c.dims) out.push_back("layer constant '" + name + "' changes or disappears");
  }
  for (const auto& [name, c] : fresh.constants) {
    if (!plan.is_constant(name)) out.push_back("layer constant '" + name + "' is new");
  }
  auto io = [&](const std::vector<ir::TensorInfo>& a, const std::vector<ir::TensorInfo>& b) {
    bool same = a.size() == b.size();
    for (size_t i = 0; same && i < a.size(); ++i) same = a[i].name == b[i].name && a[i].shape == b[i].shape;
    if (!same) out.push_back("the graph's inputs or outputs change");
  };
  io(plan.inputs, fresh.inputs);
  io(plan.outputs, fresh.outputs);
  return out;
}

}  // namespace

Result<PlanRefitter> PlanRefitter::create(plan::Plan plan, std::string plan_source) {
  if (plan.refit_json.empty()) {
    return make_error(StatusCode::kUnsupported, "plan '", plan_source,
                      "' has no refit record (it was built by an mlprt without refit, version ",
                      plan.producer_version, "): rebuild it with this mlprt (", kVersionString,
                      ") to make it refittable");
  }
  MLPRT_ASSIGN_OR_RETURN(RefitRecord record, decode_refit_record(plan.refit_json, plan_source));
  return PlanRefitter(std::move(plan), std::move(plan_source), std::move(record));
}

std::vector<std::string> PlanRefitter::all_weights() const {
  return {m_record.weights.begin(), m_record.weights.end()};
}

std::vector<std::string> PlanRefitter::missing_weights() const {
  std::vector<std::string> out;
  for (const std::string& w : m_record.weights) {
    if (!m_values.count(w)) out.push_back(w);
  }
  return out;
}

std::string PlanRefitter::describe(const std::string& initializer) const {
  std::string out = "'" + initializer + "'";
  for (const auto& [name, alias] : m_record.aliases) {
    if (alias.initializer == initializer) {
      out += " (torch: '" + name + "'" + (alias.transpose ? ", transposed" : "") + ")";
    }
  }
  const ir::Constant& c = m_record.skeleton.constants.at(initializer);
  return out + " " + std::string(to_string(c.dtype)) + " " + dims_text(c.dims);
}

std::string PlanRefitter::set_named(const std::string& name, const ir::Constant& value) {
  std::string target = name;
  bool transpose = false;
  if (!m_record.weights.count(name)) {
    const auto alias = m_record.aliases.find(name);
    if (alias == m_record.aliases.end()) {
      if (m_record.skeleton.is_constant(name)) {
        return "'" + name + "' is not a weight: it is a constant of the graph's structure (integer or scalar)";
      }
      return "unknown weight '" + name + "': the engine has no weight of that name";
    }
    target = alias->second.initializer;
    transpose = alias->second.transpose;
  }
  const ir::Constant& expected = m_record.skeleton.constants.at(target);
  Dims want = expected.dims;
  if (transpose) std::reverse(want.begin(), want.end());
  std::string where = "'" + name + "'";
  if (target != name) where += " (initializer '" + target + "'" + (transpose ? ", transposed)" : ")");
  if (value.dtype != expected.dtype) {
    return "dtype of " + where + ": " + std::string(to_string(value.dtype)) + ", the engine's is " +
           std::string(to_string(expected.dtype));
  }
  if (value.dims != want) return "shape of " + where + ": " + dims_text(value.dims) + ", the engine's is " + dims_text(want);
  m_values[target] = transpose ? transposed(value) : value;
  return {};
}

Status PlanRefitter::problems(const std::string& from, const std::vector<std::string>& lines) const {
  if (lines.empty()) return Status::ok();
  std::string text = "cannot refit plan '" + m_source + "' from '" + from + "' (" + std::to_string(lines.size()) +
                     (lines.size() == 1 ? " problem" : " problems") + "; the plan is unchanged):";
  for (const std::string& line : lines) text += "\n  " + line;
  return Status(StatusCode::kInvalidArgument, text);
}

Status PlanRefitter::set_all(const weights::NamedTensors& tensors, const std::string& source) {
  const auto saved = m_values;
  m_values.clear();
  std::vector<std::string> lines;
  std::map<std::string, std::string> set_by;
  std::set<std::string> addressed;
  for (const auto& [name, value] : tensors) {
    // BatchNorm's step counter is in every state_dict and in no exported graph.
    if (name.ends_with(".num_batches_tracked") && !m_record.skeleton.is_constant(name)) continue;
    const size_t before = m_values.size();
    const auto alias = m_record.aliases.find(name);
    const std::string target = alias == m_record.aliases.end() ? name : alias->second.initializer;
    std::string problem = set_named(name, value);
    if (!problem.empty()) {
      lines.push_back(std::move(problem));
      if (m_record.weights.count(target)) addressed.insert(target);  // not also "missing"
      continue;
    }
    if (m_values.size() == before) {
      lines.push_back("'" + name + "' and '" + set_by[target] + "' both set weight '" + target + "'");
    }
    set_by[target] = name;
  }
  for (const std::string& w : missing_weights()) {
    if (addressed.count(w)) continue;
    const bool named = std::any_of(m_record.aliases.begin(), m_record.aliases.end(),
                                   [&](const auto& a) { return a.second.initializer == w; });
    lines.push_back("missing weight " + describe(w) +
                    (named || w.find("::") == std::string::npos ? "" : ": no torch name is known for it; refit from the ONNX export instead"));
  }
  if (!lines.empty()) {
    m_values = saved;
    return problems(source, lines);
  }
  return Status::ok();
}

Status PlanRefitter::set_all_from_onnx(const ir::Graph& imported) {
  std::vector<std::string> lines = compare_skeletons(m_record, make_refit_record(imported));
  if (!lines.empty()) return problems(imported.source, lines);
  for (const std::string& w : m_record.weights) m_values[w] = imported.constants.at(w);
  m_header = Header{imported.name, imported.source, imported.producer, imported.ir_version};
  return Status::ok();
}

Result<plan::Plan> PlanRefitter::refit() const {
  std::vector<std::string> lines;
  for (const std::string& w : missing_weights()) lines.push_back("missing weight " + describe(w));
  if (!lines.empty()) return problems("the weights set", lines);

  ir::Graph graph = m_record.skeleton;
  graph.source = m_header ? m_header->source : m_plan.graph.source;
  graph.name = m_plan.graph.name;
  for (const auto& [name, value] : m_values) graph.constants[name] = value;
  MLPRT_RETURN_IF_ERROR(ir::optimize(graph).with_context("refit of plan '" + m_source + "'"));
  lines = compare_optimized(m_plan.graph, graph);
  if (!lines.empty()) {
    std::string text = "cannot refit plan '" + m_source +
                       "': the new weights change the optimized graph, so the plan's tactics do not apply "
                       "(rebuild it with `mlprt build`):";
    for (const std::string& line : lines) text += "\n  " + line;
    return Status(StatusCode::kInvalidArgument, text);
  }
  plan::Plan out = m_plan;
  out.graph.constants = std::move(graph.constants);
  if (m_header) {
    out.graph.name = m_header->name;
    out.graph.source = m_header->source;
    out.graph.producer = m_header->producer;
    out.graph.ir_version = m_header->ir_version;
  }
  return out;
}

}  // namespace mlprt::refit
