#include "refit/refit_record.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/check.h"

namespace mlprt::refit {
namespace {

using Json = nlohmann::json;

constexpr int kRecordVersion = 1;

bool is_float(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16 ||
         t == DataType::kFloat64;
}

// ------------------------------------------------------------------------------ aliases

// The torch module a node belongs to. torch 1.x names nodes by scope ("/body/body.0/MatMul":
// module "body.0"); dynamo exports do not, but a Linear's bias keeps its name ("body.0.bias"), so
// the Add that reads the product names the module.
std::string module_of(const ir::Graph& graph, const ir::Node& node) {
  if (!node.name.empty() && node.name[0] == '/') {
    std::vector<std::string> parts;
    size_t start = 1;
    while (start <= node.name.size()) {
      const size_t slash = std::min(node.name.find('/', start), node.name.size());
      parts.push_back(node.name.substr(start, slash - start));
      start = slash + 1;
    }
    if (parts.size() >= 2 && !parts[parts.size() - 2].empty()) return parts[parts.size() - 2];
  }
  if (node.outputs.size() != 1) return {};
  for (const ir::Node& reader : graph.nodes) {
    if (reader.op != "Add" || reader.inputs.size() != 2) continue;
    const int self = reader.inputs[0] == node.outputs[0] ? 0 : reader.inputs[1] == node.outputs[0] ? 1 : -1;
    if (self < 0) continue;
    const std::string& other = reader.inputs[static_cast<size_t>(1 - self)];
    constexpr std::string_view kBias = ".bias";
    if (graph.is_constant(other) && other.size() > kBias.size() && other.ends_with(kBias)) {
      return other.substr(0, other.size() - kBias.size());
    }
  }
  return {};
}

std::map<std::string, Alias> find_aliases(const ir::Graph& graph, const std::set<std::string>& weights) {
  std::map<std::string, Alias> found;
  std::set<std::string> ambiguous;
  auto offer = [&](const std::string& name, Alias alias) {
    if (name == alias.initializer || graph.is_constant(name)) return;
    auto [it, inserted] = found.emplace(name, alias);
    if (!inserted && !(it->second == alias)) ambiguous.insert(name);
  };
  for (const ir::Node& node : graph.nodes) {
    if ((node.op != "MatMul" && node.op != "Gemm") || node.inputs.size() < 2) continue;
    const std::string& w = node.inputs[1];
    const ir::Constant* c = graph.find_constant(w);
    if (!weights.count(w) || c->dims.size() != 2) continue;
    const std::string module = module_of(graph, node);
    if (module.empty()) continue;
    // torch's Linear keeps its weight as [out, in]; MatMul and Gemm without transB read [in, out].
    const bool transposed = node.op == "MatMul" || node.get_int("transB", 0) == 0;
    offer(module + ".weight", Alias{w, transposed});
    if (node.op == "Gemm" && node.inputs.size() > 2 && weights.count(node.inputs[2])) {
      offer(module + ".bias", Alias{node.inputs[2], false});
    }
  }
  for (const std::string& name : ambiguous) found.erase(name);
  return found;
}

// ------------------------------------------------------------------------------ writing

std::string to_hex(const std::vector<std::byte>& data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (std::byte b : data) {
    const auto v = static_cast<unsigned>(b);
    out += kDigits[v >> 4];
    out += kDigits[v & 15];
  }
  return out;
}

Json encode_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

Json encode_constant(const ir::Constant& c, bool with_data) {
  Json out = {{"dtype", std::string(to_string(c.dtype))}, {"dims", c.dims}};
  if (with_data) out["hex"] = to_hex(c.data);
  return out;
}

Json encode_attribute(const ir::AttributeValue& value) {
  return std::visit(
      [](const auto& v) -> Json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) return {{"type", "int"}, {"value", v}};
        if constexpr (std::is_same_v<T, double>) return {{"type", "float"}, {"value", encode_double(v)}};
        if constexpr (std::is_same_v<T, std::string>) return {{"type", "string"}, {"value", v}};
        if constexpr (std::is_same_v<T, std::vector<int64_t>>) return {{"type", "ints"}, {"value", v}};
        if constexpr (std::is_same_v<T, std::vector<double>>) {
          Json list = Json::array();
          for (double d : v) list.push_back(encode_double(d));
          return {{"type", "floats"}, {"value", list}};
        }
        if constexpr (std::is_same_v<T, std::vector<std::string>>) return {{"type", "strings"}, {"value", v}};
        if constexpr (std::is_same_v<T, ir::Constant>) {
          Json out = encode_constant(v, true);
          out["type"] = "tensor";
          return out;
        }
      },
      value);
}

Json encode_shape(const ir::Shape& shape) {
  Json out = Json::array();
  for (const ir::Dim& d : shape) {
    if (d.symbol.empty()) {
      out.push_back(d.value >= 0 ? Json(d.value) : Json(nullptr));
    } else if (d.value < 0) {
      out.push_back(d.symbol);
    } else {
      out.push_back({{"value", d.value}, {"symbol", d.symbol}});
    }
  }
  return out;
}

Json encode_tensors(const std::vector<ir::TensorInfo>& tensors) {
  Json out = Json::array();
  for (const ir::TensorInfo& t : tensors) {
    out.push_back({{"name", t.name}, {"dtype", std::string(to_string(t.dtype))}, {"shape", encode_shape(t.shape)}});
  }
  return out;
}

// ------------------------------------------------------------------------------ reading

// Thrown inside the decoder only; decode_refit_record turns it into a Status.
struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const Json& at(const Json& object, const char* key, const std::string& path) {
  if (!object.is_object()) throw BadRecord(path + " should be an object");
  auto it = object.find(key);
  if (it == object.end()) throw BadRecord(path + "." + key + " is missing");
  return *it;
}

std::string get_string(const Json& v, const std::string& path) {
  if (!v.is_string()) throw BadRecord(path + " should be a string");
  return v.get<std::string>();
}

int64_t get_int(const Json& v, const std::string& path) {
  if (!v.is_number_integer()) throw BadRecord(path + " should be an integer");
  return v.get<int64_t>();
}

double get_double(const Json& v, const std::string& path) {
  if (v.is_number()) return v.get<double>();
  if (v == "nan") return std::nan("");
  if (v == "inf") return INFINITY;
  if (v == "-inf") return -INFINITY;
  throw BadRecord(path + " should be a number");
}

const Json& get_array(const Json& v, const std::string& path) {
  if (!v.is_array()) throw BadRecord(path + " should be an array");
  return v;
}

DataType get_dtype(const Json& v, const std::string& path) {
  const std::string name = get_string(v, path);
  for (DataType t : {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16, DataType::kFloat64,
                     DataType::kInt64, DataType::kInt32, DataType::kInt8, DataType::kUInt8, DataType::kBool}) {
    if (to_string(t) == name) return t;
  }
  throw BadRecord(path + " is '" + name + "', not a known data type");
}

ir::Constant decode_constant(const Json& v, const std::string& path, bool with_data) {
  ir::Constant c;
  c.dtype = get_dtype(at(v, "dtype", path), path + ".dtype");
  for (const Json& d : get_array(at(v, "dims", path), path + ".dims")) {
    const int64_t dim = get_int(d, path + ".dims");
    if (dim < 0) throw BadRecord(path + ".dims has a negative dim");
    c.dims.push_back(dim);
  }
  auto count = volume(c.dims);
  if (!count.is_ok() || *count > (int64_t{1} << 40)) throw BadRecord(path + ".dims is too large");
  if (!with_data) return c;
  const std::string hex = get_string(at(v, "hex", path), path + ".hex");
  const uint64_t bytes = static_cast<uint64_t>(*count) * element_size(c.dtype);
  if (hex.size() != bytes * 2) {
    throw BadRecord(path + ".hex has " + std::to_string(hex.size()) + " digits, its dims need " +
                    std::to_string(bytes * 2));
  }
  c.data.resize(bytes);
  auto digit = [&](char ch) -> unsigned {
    if (ch >= '0' && ch <= '9') return static_cast<unsigned>(ch - '0');
    if (ch >= 'a' && ch <= 'f') return static_cast<unsigned>(ch - 'a' + 10);
    throw BadRecord(path + ".hex has a character that is not a lowercase hex digit");
  };
  for (size_t i = 0; i < bytes; ++i) {
    c.data[i] = static_cast<std::byte>(digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]));
  }
  return c;
}

ir::AttributeValue decode_attribute(const Json& v, const std::string& path) {
  const std::string type = get_string(at(v, "type", path), path + ".type");
  if (type == "tensor") return decode_constant(v, path, true);
  const Json& value = at(v, "value", path);
  if (type == "int") return get_int(value, path);
  if (type == "float") return get_double(value, path);
  if (type == "string") return get_string(value, path);
  if (type == "ints" || type == "floats" || type == "strings") {
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<std::string> strings;
    for (const Json& e : get_array(value, path)) {
      if (type == "ints") ints.push_back(get_int(e, path));
      if (type == "floats") floats.push_back(get_double(e, path));
      if (type == "strings") strings.push_back(get_string(e, path));
    }
    if (type == "ints") return ints;
    if (type == "floats") return floats;
    return strings;
  }
  throw BadRecord(path + ".type '" + type + "' is not an attribute type");
}

std::vector<ir::TensorInfo> decode_tensors(const Json& v, const std::string& path) {
  std::vector<ir::TensorInfo> out;
  for (const Json& t : get_array(v, path)) {
    ir::TensorInfo info;
    info.name = get_string(at(t, "name", path), path + ".name");
    info.dtype = get_dtype(at(t, "dtype", path), path + ".dtype");
    for (const Json& d : get_array(at(t, "shape", path), path + ".shape")) {
      if (d.is_null()) {
        info.shape.push_back({});
      } else if (d.is_string()) {
        info.shape.push_back({-1, d.get<std::string>()});
      } else if (d.is_object()) {
        info.shape.push_back({get_int(at(d, "value", path), path), get_string(at(d, "symbol", path), path)});
      } else {
        info.shape.push_back({get_int(d, path + ".shape"), ""});
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::string dims_text(const Dims& dims) {
  std::string out(1, '[');
  out += to_string(dims);
  out += ']';
  return out;
}

}  // namespace

bool is_weight(const ir::Constant& constant) {
  return is_float(constant.dtype) && !constant.dims.empty();
}

RefitRecord make_refit_record(const ir::Graph& imported) {
  RefitRecord record;
  record.skeleton.opset = imported.opset;
  record.skeleton.inputs = imported.inputs;
  record.skeleton.outputs = imported.outputs;
  record.skeleton.nodes = imported.nodes;
  for (const auto& [name, c] : imported.constants) {
    if (is_weight(c)) {
      record.weights.insert(name);
      record.skeleton.constants.emplace(name, ir::Constant{c.dtype, c.dims, {}});
    } else {
      record.skeleton.constants.emplace(name, c);
    }
  }
  record.aliases = find_aliases(imported, record.weights);
  return record;
}

std::string encode_refit_record(const RefitRecord& record) {
  const ir::Graph& g = record.skeleton;
  Json constants = Json::object();
  for (const auto& [name, c] : g.constants) constants[name] = encode_constant(c, !record.weights.count(name));
  Json nodes = Json::array();
  for (const ir::Node& node : g.nodes) {
    Json attributes = Json::object();
    for (const auto& [key, value] : node.attributes) attributes[key] = encode_attribute(value);
    nodes.push_back({{"name", node.name}, {"op", node.op}, {"inputs", node.inputs},
                     {"outputs", node.outputs}, {"attributes", attributes}});
  }
  Json aliases = Json::object();
  for (const auto& [name, alias] : record.aliases) {
    aliases[name] = {{"initializer", alias.initializer}, {"transpose", alias.transpose}};
  }
  const Json root = {{"version", kRecordVersion},
                     {"opset", g.opset},
                     {"inputs", encode_tensors(g.inputs)},
                     {"outputs", encode_tensors(g.outputs)},
                     {"constants", constants},
                     {"weights", record.weights},
                     {"nodes", nodes},
                     {"aliases", aliases}};
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<RefitRecord> decode_refit_record(const std::string& json, const std::string& plan_source) {
  try {
    const Json root = Json::parse(json);
    const int64_t version = get_int(at(root, "version", "refit"), "refit.version");
    if (version != kRecordVersion) {
      return make_error(StatusCode::kVersionMismatch, "plan '", plan_source, "' has refit record version ",
                        version, ", this mlprt reads version ", kRecordVersion,
                        ": rebuild the plan with this mlprt to make it refittable");
    }
    RefitRecord r;
    r.skeleton.opset = get_int(at(root, "opset", "refit"), "refit.opset");
    r.skeleton.inputs = decode_tensors(at(root, "inputs", "refit"), "refit.inputs");
    r.skeleton.outputs = decode_tensors(at(root, "outputs", "refit"), "refit.outputs");
    for (const Json& w : get_array(at(root, "weights", "refit"), "refit.weights")) {
      r.weights.insert(get_string(w, "refit.weights"));
    }
    const Json& constants = at(root, "constants", "refit");
    if (!constants.is_object()) throw BadRecord("refit.constants should be an object");
    for (const auto& [name, c] : constants.items()) {
      r.skeleton.constants.emplace(name, decode_constant(c, "refit.constants['" + name + "']", !r.weights.count(name)));
    }
    for (const std::string& w : r.weights) {
      if (!r.skeleton.constants.count(w)) throw BadRecord("refit.weights names '" + w + "', which is no constant");
    }
    for (const Json& n : get_array(at(root, "nodes", "refit"), "refit.nodes")) {
      ir::Node node;
      node.name = get_string(at(n, "name", "refit.nodes"), "refit.nodes.name");
      const std::string path = "refit.nodes['" + node.name + "']";
      node.op = get_string(at(n, "op", path), path + ".op");
      for (const Json& s : get_array(at(n, "inputs", path), path + ".inputs")) node.inputs.push_back(get_string(s, path));
      for (const Json& s : get_array(at(n, "outputs", path), path + ".outputs")) node.outputs.push_back(get_string(s, path));
      const Json& attributes = at(n, "attributes", path);
      if (!attributes.is_object()) throw BadRecord(path + ".attributes should be an object");
      for (const auto& [key, value] : attributes.items()) {
        node.attributes.emplace(key, decode_attribute(value, path + ".attributes." + key));
      }
      r.skeleton.nodes.push_back(std::move(node));
    }
    const Json& aliases = at(root, "aliases", "refit");
    if (!aliases.is_object()) throw BadRecord("refit.aliases should be an object");
    for (const auto& [name, a] : aliases.items()) {
      const std::string path = "refit.aliases['" + name + "']";
      Alias alias{get_string(at(a, "initializer", path), path), false};
      const Json& t = at(a, "transpose", path);
      if (!t.is_boolean()) throw BadRecord(path + ".transpose should be a boolean");
      alias.transpose = t.get<bool>();
      const auto it = r.skeleton.constants.find(alias.initializer);
      if (!r.weights.count(alias.initializer) || (alias.transpose && it->second.dims.size() != 2)) {
        throw BadRecord(path + " maps to '" + alias.initializer + "', which is no (2-D) weight");
      }
      r.aliases.emplace(name, alias);
    }
    return r;
  } catch (const std::exception& e) {
    return make_error(StatusCode::kCorruptData, "plan '", plan_source, "' has a malformed refit record (",
                      e.what(), "): rebuild it with this mlprt");
  }
}

bool same_attribute(const ir::AttributeValue& a, const ir::AttributeValue& b) {
  if (a.index() != b.index()) return false;
  auto same_double = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  if (const auto* x = std::get_if<double>(&a)) return same_double(*x, std::get<double>(b));
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    if (x->size() != y.size()) return false;
    for (size_t i = 0; i < x->size(); ++i) {
      if (!same_double((*x)[i], y[i])) return false;
    }
    return true;
  }
  if (const auto* x = std::get_if<ir::Constant>(&a)) {
    const auto& y = std::get<ir::Constant>(b);
    return x->dtype == y.dtype && x->dims == y.dims && x->data == y.data;
  }
  if (const auto* x = std::get_if<int64_t>(&a)) return *x == std::get<int64_t>(b);
  if (const auto* x = std::get_if<std::string>(&a)) return *x == std::get<std::string>(b);
  if (const auto* x = std::get_if<std::vector<int64_t>>(&a)) return *x == std::get<std::vector<int64_t>>(b);
  return std::get<std::vector<std::string>>(a) == std::get<std::vector<std::string>>(b);
}

std::vector<std::string> compare_skeletons(const RefitRecord& expected, const RefitRecord& other) {
  std::vector<std::string> out;
  const ir::Graph& e = expected.skeleton;
  const ir::Graph& o = other.skeleton;
  if (e.opset != o.opset) out.push_back("opset " + std::to_string(o.opset) + ", the plan's model has " + std::to_string(e.opset));
  auto compare_io = [&](const std::vector<ir::TensorInfo>& a, const std::vector<ir::TensorInfo>& b, const char* kind) {
    if (a.size() != b.size()) {
      out.push_back(std::to_string(b.size()) + " graph " + kind + "s, the plan's model has " + std::to_string(a.size()));
      return;
    }
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].name != b[i].name || a[i].dtype != b[i].dtype || a[i].shape != b[i].shape) {
        out.push_back(std::string("graph ") + kind + " " + std::to_string(i) + " is '" + b[i].name + "' " +
                      std::string(to_string(b[i].dtype)) + " " + ir::to_string(b[i].shape) + ", the plan's is '" +
                      a[i].name + "' " + std::string(to_string(a[i].dtype)) + " " + ir::to_string(a[i].shape));
      }
    }
  };
  compare_io(e.inputs, o.inputs, "input");
  compare_io(e.outputs, o.outputs, "output");
  for (const auto& [name, c] : e.constants) {
    const ir::Constant* n = o.find_constant(name);
    const bool weight = expected.weights.count(name) != 0;
    if (!n) {
      out.push_back(std::string(weight ? "missing weight '" : "missing constant '") + name + "'");
    } else if (n->dtype != c.dtype || n->dims != c.dims) {
      out.push_back("'" + name + "' is " + std::string(to_string(n->dtype)) + " " + dims_text(n->dims) +
                    ", the engine's is " + std::string(to_string(c.dtype)) + " " + dims_text(c.dims));
    } else if (!weight && n->data != c.data) {
      out.push_back("constant '" + name + "' (" + std::string(to_string(c.dtype)) + " " + dims_text(c.dims) +
                    ", not a weight: part of the graph's structure) has other values than the plan's");
    }
  }
  for (const auto& [name, c] : o.constants) {
    if (!e.is_constant(name)) out.push_back("unknown " + std::string(is_weight(c) ? "weight" : "constant") + " '" + name + "': the engine has none of that name");
  }
  const size_t n = std::min(e.nodes.size(), o.nodes.size());
  for (size_t i = 0; i < n; ++i) {
    const ir::Node& a = e.nodes[i];
    const ir::Node& b = o.nodes[i];
    bool same = a.name == b.name && a.op == b.op && a.inputs == b.inputs && a.outputs == b.outputs &&
                a.attributes.size() == b.attributes.size();
    for (auto ia = a.attributes.begin(), ib = b.attributes.begin(); same && ia != a.attributes.end(); ++ia, ++ib) {
      same = ia->first == ib->first && same_attribute(ia->second, ib->second);
    }
    if (!same) out.push_back("node " + std::to_string(i) + " '" + b.name + "' (" + b.op + ") differs from the plan's '" + a.name + "' (" + a.op + ")");
  }
  if (e.nodes.size() != o.nodes.size()) {
    out.push_back(std::to_string(o.nodes.size()) + " nodes, the plan's model has " + std::to_string(e.nodes.size()));
  }
  return out;
}

}  // namespace mlprt::refit
