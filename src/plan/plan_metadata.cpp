#include "plan/plan_metadata.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <type_traits>

#include "common/check.h"
#include "plan/plan_layout.h"

namespace mlprt::plan::detail {
namespace {

using Json = nlohmann::json;

// Deeper JSON than this is never written by us; refusing it up front bounds the parser's work.
constexpr int kMaxJsonDepth = 32;

constexpr DataType kAllDataTypes[] = {
    DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16,
    DataType::kFloat64, DataType::kInt64,   DataType::kInt32,
    DataType::kInt8,    DataType::kUInt8,   DataType::kBool,
};

std::string known_dtype_names() {
  std::string out;
  for (DataType t : kAllDataTypes) {
    if (!out.empty()) out += ", ";
    out += to_string(t);
  }
  return out;
}

uint64_t align_up(uint64_t value) {
  return (value + layout::kSectionAlignment - 1) / layout::kSectionAlignment *
         layout::kSectionAlignment;
}

// ---------------------------------------------------------------------------------- writing

Json encode_dim(const ir::Dim& dim) {
  if (dim.symbol.empty()) return dim.value >= 0 ? Json(dim.value) : Json(nullptr);
  if (dim.value < 0) return Json(dim.symbol);
  return Json{{"value", dim.value}, {"symbol", dim.symbol}};
}

Json encode_shape(const ir::Shape& shape) {
  Json out = Json::array();
  for (const ir::Dim& d : shape) out.push_back(encode_dim(d));
  return out;
}

// JSON has no NaN or infinity; they are spelled as strings.
Json encode_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

Json encode_tensor_info(const ir::TensorInfo& info) {
  return Json{
      {"name", info.name}, {"dtype", to_string(info.dtype)}, {"shape", encode_shape(info.shape)}};
}

class Encoder {
 public:
  Json tensor_ref(const ir::Constant& c) {
    const uint64_t offset = align_up(m_out.weights_size);
    m_out.weights.push_back({&c.data, offset});
    m_out.weights_size = offset + c.data.size();
    return Json{{"dtype", to_string(c.dtype)},
                {"dims", c.dims},
                {"offset", offset},
                {"size", static_cast<uint64_t>(c.data.size())}};
  }

  Json attribute(const ir::AttributeValue& value) {
    return std::visit(
        [this](const auto& v) -> Json {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            return Json{{"type", "int"}, {"value", v}};
          } else if constexpr (std::is_same_v<T, double>) {
            return Json{{"type", "float"}, {"value", encode_double(v)}};
          } else if constexpr (std::is_same_v<T, std::string>) {
            return Json{{"type", "string"}, {"value", v}};
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            return Json{{"type", "ints"}, {"value", v}};
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            Json list = Json::array();
            for (double d : v) list.push_back(encode_double(d));
            return Json{{"type", "floats"}, {"value", list}};
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            return Json{{"type", "strings"}, {"value", v}};
          } else {
            Json ref = tensor_ref(v);
            ref["type"] = "tensor";
            return ref;
          }
        },
        value);
  }

  Json graph(const ir::Graph& g) {
    Json inputs = Json::array();
    for (const auto& t : g.inputs) inputs.push_back(encode_tensor_info(t));
    Json outputs = Json::array();
    for (const auto& t : g.outputs) outputs.push_back(encode_tensor_info(t));
    // Graph constants come first in the weights section, in name order.
    Json constants = Json::array();
    for (const auto& [name, c] : g.constants) {
      Json ref = tensor_ref(c);
      ref["name"] = name;
      constants.push_back(std::move(ref));
    }
    Json nodes = Json::array();
    for (const ir::Node& n : g.nodes) {
      Json attributes = Json::object();
      for (const auto& [key, value] : n.attributes) attributes[key] = attribute(value);
      nodes.push_back(Json{{"name", n.name},
                           {"op", n.op},
                           {"inputs", n.inputs},
                           {"outputs", n.outputs},
                           {"attributes", std::move(attributes)}});
    }
    return Json{{"name", g.name},         {"source", g.source},
                {"opset", g.opset},       {"ir_version", g.ir_version},
                {"producer", g.producer}, {"inputs", inputs},
                {"outputs", outputs},     {"constants", constants},
                {"nodes", nodes}};
  }

  EncodedMetadata finish(Json root) {
    // Invalid UTF-8 in a name makes dump() throw; the caller turns that into a Status.
    m_out.json = root.dump();
    return std::move(m_out);
  }

 private:
  EncodedMetadata m_out;
};

Json encode_profiles(const std::vector<OptimizationProfile>& profiles) {
  Json out = Json::array();
  for (const OptimizationProfile& p : profiles) {
    Json ranges = Json::object();
    for (const auto& [name, r] : p.ranges()) {
      ranges[name] = Json{{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    }
    out.push_back(std::move(ranges));
  }
  return out;
}

// ---------------------------------------------------------------------------------- reading

// Each accessor names the JSON path of what it reads, so an error points at the faulty field.
class Decoder {
 public:
  /// `copy_weights` false: constants get dtype and dims only, checked against a weights section
  /// of `weights_size` bytes that is not read (`weights` is then empty).
  Decoder(const std::string& source_name, std::span<const uint8_t> weights, uint64_t weights_size,
          bool copy_weights, const WeightsCopied* copied)
      : m_source(source_name),
        m_weights(weights),
        m_weights_size(weights_size),
        m_copy_weights(copy_weights),
        m_copied(copied) {}

  Status malformed(const std::string& path, const std::string& what) const {
    return Status(StatusCode::kCorruptData,
                  malformed_message(m_source, "metadata field '" + path + "' " + what));
  }

  Status wrong_type(const std::string& path, const char* expected, const Json& found) const {
    return malformed(path, std::string("should be ") + expected + ", found " + found.type_name());
  }

  Result<const Json*> member(const Json& object, const std::string& path, const char* key) const {
    if (!object.is_object()) return wrong_type(path, "an object", object);
    auto it = object.find(key);
    if (it == object.end()) return malformed(join(path, key), "is missing");
    return &*it;
  }

  Result<const Json*> array(const Json& object, const std::string& path, const char* key) const {
    MLPRT_ASSIGN_OR_RETURN(const Json* v, member(object, path, key));
    if (!v->is_array()) return wrong_type(join(path, key), "an array", *v);
    return v;
  }

  Result<std::string> string(const Json& v, const std::string& path) const {
    if (!v.is_string()) return wrong_type(path, "a string", v);
    return v.get<std::string>();
  }
  Result<std::string> string(const Json& object, const std::string& path, const char* key) const {
    MLPRT_ASSIGN_OR_RETURN(const Json* v, member(object, path, key));
    return string(*v, join(path, key));
  }

  Result<int64_t> int64(const Json& v, const std::string& path) const {
    if (!v.is_number_integer()) return wrong_type(path, "an integer", v);
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return malformed(path, "is " + v.dump() + ", larger than a 64-bit signed integer");
    }
    return v.get<int64_t>();
  }
  Result<int64_t> int64(const Json& object, const std::string& path, const char* key) const {
    MLPRT_ASSIGN_OR_RETURN(const Json* v, member(object, path, key));
    return int64(*v, join(path, key));
  }

  Result<uint64_t> uint64(const Json& object, const std::string& path, const char* key) const {
    MLPRT_ASSIGN_OR_RETURN(const Json* v, member(object, path, key));
    if (!v->is_number_unsigned()) {
      return wrong_type(join(path, key), "a non-negative integer", *v);
    }
    return v->get<uint64_t>();
  }

  Result<double> float64(const Json& v, const std::string& path) const {
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
      if (s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    return wrong_type(path, "a number or \"nan\", \"inf\", \"-inf\"", v);
  }

  template <typename T, typename Fn>
  Result<std::vector<T>> list(const Json& v, const std::string& path, Fn&& element) const {
    if (!v.is_array()) return wrong_type(path, "an array", v);
    std::vector<T> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      MLPRT_ASSIGN_OR_RETURN(T item, element(v[i], index(path, i)));
      out.push_back(std::move(item));
    }
    return out;
  }

  Result<std::vector<std::string>> strings(const Json& v, const std::string& path) const {
    return list<std::string>(v, path,
                             [this](const Json& e, const std::string& p) { return string(e, p); });
  }
  Result<std::vector<int64_t>> int64s(const Json& v, const std::string& path) const {
    return list<int64_t>(v, path,
                         [this](const Json& e, const std::string& p) { return int64(e, p); });
  }

  Result<DataType> dtype(const Json& object, const std::string& path) const {
    MLPRT_ASSIGN_OR_RETURN(std::string name, string(object, path, "dtype"));
    for (DataType t : kAllDataTypes) {
      if (to_string(t) == name) return t;
    }
    return malformed(join(path, "dtype"),
                     "is '" + name + "', not a known data type (" + known_dtype_names() + ")");
  }

  Result<ir::Dim> dim(const Json& v, const std::string& path) const {
    if (v.is_null()) return ir::Dim{};
    if (v.is_string()) return ir::Dim{-1, v.get<std::string>()};
    if (v.is_object()) {
      ir::Dim d;
      MLPRT_ASSIGN_OR_RETURN(d.value, int64(v, path, "value"));
      MLPRT_ASSIGN_OR_RETURN(d.symbol, string(v, path, "symbol"));
      if (d.value < 0) return malformed(join(path, "value"), "is negative");
      return d;
    }
    MLPRT_ASSIGN_OR_RETURN(int64_t value, int64(v, path));
    if (value < 0) {
      return malformed(path, "is " + std::to_string(value) +
                                 "; a dimension is >= 0, a string (symbolic) or null (unknown)");
    }
    return ir::Dim{value, {}};
  }

  Result<ir::TensorInfo> tensor_info(const Json& v, const std::string& path) const {
    ir::TensorInfo info;
    MLPRT_ASSIGN_OR_RETURN(info.name, string(v, path, "name"));
    MLPRT_ASSIGN_OR_RETURN(info.dtype, dtype(v, path));
    MLPRT_ASSIGN_OR_RETURN(const Json* shape, array(v, path, "shape"));
    MLPRT_ASSIGN_OR_RETURN(info.shape, list<ir::Dim>(*shape, join(path, "shape"),
                                                     [this](const Json& e, const std::string& p) {
                                                       return dim(e, p);
                                                     }));
    return info;
  }

  // Checks the constant's dims, size and place in the weights section before allocating.
  Result<ir::Constant> constant(const Json& v, const std::string& path) const {
    ir::Constant c;
    MLPRT_ASSIGN_OR_RETURN(c.dtype, dtype(v, path));
    MLPRT_ASSIGN_OR_RETURN(const Json* dims, array(v, path, "dims"));
    MLPRT_ASSIGN_OR_RETURN(c.dims, int64s(*dims, join(path, "dims")));
    MLPRT_ASSIGN_OR_RETURN(uint64_t offset, uint64(v, path, "offset"));
    MLPRT_ASSIGN_OR_RETURN(uint64_t size, uint64(v, path, "size"));
    const uint64_t limit = m_weights_size;
    uint64_t expected = element_size(c.dtype);
    for (int64_t d : c.dims) {
      if (d < 0)
        return malformed(join(path, "dims"), "has negative dimension " + std::to_string(d));
      const auto ud = static_cast<uint64_t>(d);
      // Any size past the weights section is an error anyway; saturating keeps the product exact
      // where it matters and free of overflow.
      expected = (ud != 0 && expected > limit / ud) ? limit + 1 : expected * ud;
    }
    if (size != expected) {
      return malformed(
          join(path, "size"),
          "is " + std::to_string(size) + " bytes, but dims " + to_string(c.dims) + " of " +
              std::string(to_string(c.dtype)) + " need " +
              (expected > limit ? "more than the weights section's " + std::to_string(limit)
                                : std::to_string(expected)));
    }
    if (offset > limit || size > limit - offset) {
      return malformed(join(path, "offset"), "places " + std::to_string(size) +
                                                 " bytes at offset " + std::to_string(offset) +
                                                 ", past the end of the " + std::to_string(limit) +
                                                 "-byte weights section");
    }
    if (offset % layout::kSectionAlignment != 0) {
      return malformed(join(path, "offset"), "is " + std::to_string(offset) +
                                                 ", not a multiple of " +
                                                 std::to_string(layout::kSectionAlignment));
    }
    if (!m_copy_weights) return c;
    c.data.resize(size);
    // In 4 MiB steps, each reported as copied once done (a mapped plan releases those pages):
    // a 64 MiB weight copied whole was resident twice, the load's peak.
    constexpr uint64_t kStep = uint64_t{4} << 20;
    const bool report = m_copied != nullptr && *m_copied;
    for (uint64_t done = 0; done < size;) {
      const uint64_t n = std::min<uint64_t>(kStep, size - done);
      std::memcpy(c.data.data() + done, m_weights.data() + offset + done, n);
      if (report) (*m_copied)(offset + done, n);
      done += n;
    }
    // The whole range too: pages that straddle two steps are wholly inside it.
    if (report) (*m_copied)(offset, size);
    return c;
  }

  Result<ir::AttributeValue> attribute(const Json& v, const std::string& path) const {
    MLPRT_ASSIGN_OR_RETURN(std::string type, string(v, path, "type"));
    if (type == "tensor") {
      MLPRT_ASSIGN_OR_RETURN(ir::Constant c, constant(v, path));
      return ir::AttributeValue(std::move(c));
    }
    MLPRT_ASSIGN_OR_RETURN(const Json* value, member(v, path, "value"));
    const std::string value_path = join(path, "value");
    if (type == "int") {
      MLPRT_ASSIGN_OR_RETURN(int64_t i, int64(*value, value_path));
      return ir::AttributeValue(i);
    }
    if (type == "float") {
      MLPRT_ASSIGN_OR_RETURN(double d, float64(*value, value_path));
      return ir::AttributeValue(d);
    }
    if (type == "string") {
      MLPRT_ASSIGN_OR_RETURN(std::string s, string(*value, value_path));
      return ir::AttributeValue(std::move(s));
    }
    if (type == "ints") {
      MLPRT_ASSIGN_OR_RETURN(std::vector<int64_t> is, int64s(*value, value_path));
      return ir::AttributeValue(std::move(is));
    }
    if (type == "floats") {
      MLPRT_ASSIGN_OR_RETURN(
          std::vector<double> ds,
          list<double>(*value, value_path,
                       [this](const Json& e, const std::string& p) { return float64(e, p); }));
      return ir::AttributeValue(std::move(ds));
    }
    if (type == "strings") {
      MLPRT_ASSIGN_OR_RETURN(std::vector<std::string> ss, strings(*value, value_path));
      return ir::AttributeValue(std::move(ss));
    }
    return malformed(join(path, "type"), "is '" + type +
                                             "', not an attribute type (int, float, string, "
                                             "ints, floats, strings, tensor)");
  }

  Result<ir::Node> node(const Json& v, const std::string& path) const {
    ir::Node n;
    MLPRT_ASSIGN_OR_RETURN(n.name, string(v, path, "name"));
    MLPRT_ASSIGN_OR_RETURN(n.op, string(v, path, "op"));
    MLPRT_ASSIGN_OR_RETURN(const Json* inputs, array(v, path, "inputs"));
    MLPRT_ASSIGN_OR_RETURN(n.inputs, strings(*inputs, join(path, "inputs")));
    MLPRT_ASSIGN_OR_RETURN(const Json* outputs, array(v, path, "outputs"));
    MLPRT_ASSIGN_OR_RETURN(n.outputs, strings(*outputs, join(path, "outputs")));
    MLPRT_ASSIGN_OR_RETURN(const Json* attributes, member(v, path, "attributes"));
    const std::string attributes_path = join(path, "attributes");
    if (!attributes->is_object()) return wrong_type(attributes_path, "an object", *attributes);
    for (const auto& [key, value] : attributes->items()) {
      MLPRT_ASSIGN_OR_RETURN(n.attributes[key], attribute(value, join(attributes_path, key)));
    }
    return n;
  }

  Status graph(const Json& v, const std::string& path, ir::Graph& g) const {
    MLPRT_ASSIGN_OR_RETURN(g.name, string(v, path, "name"));
    MLPRT_ASSIGN_OR_RETURN(g.source, string(v, path, "source"));
    MLPRT_ASSIGN_OR_RETURN(g.opset, int64(v, path, "opset"));
    MLPRT_ASSIGN_OR_RETURN(g.ir_version, int64(v, path, "ir_version"));
    MLPRT_ASSIGN_OR_RETURN(g.producer, string(v, path, "producer"));
    auto info = [this](const Json& e, const std::string& p) { return tensor_info(e, p); };
    MLPRT_ASSIGN_OR_RETURN(const Json* inputs, array(v, path, "inputs"));
    MLPRT_ASSIGN_OR_RETURN(g.inputs, list<ir::TensorInfo>(*inputs, join(path, "inputs"), info));
    MLPRT_ASSIGN_OR_RETURN(const Json* outputs, array(v, path, "outputs"));
    MLPRT_ASSIGN_OR_RETURN(g.outputs, list<ir::TensorInfo>(*outputs, join(path, "outputs"), info));
    MLPRT_ASSIGN_OR_RETURN(const Json* constants, array(v, path, "constants"));
    for (size_t i = 0; i < constants->size(); ++i) {
      const std::string p = index(join(path, "constants"), i);
      MLPRT_ASSIGN_OR_RETURN(std::string name, string((*constants)[i], p, "name"));
      if (g.constants.count(name) != 0) {
        return malformed(join(p, "name"), "repeats constant '" + name + "'");
      }
      MLPRT_ASSIGN_OR_RETURN(g.constants[name], constant((*constants)[i], p));
    }
    MLPRT_ASSIGN_OR_RETURN(const Json* nodes, array(v, path, "nodes"));
    MLPRT_ASSIGN_OR_RETURN(g.nodes, list<ir::Node>(*nodes, join(path, "nodes"),
                                                   [this](const Json& e, const std::string& p) {
                                                     return node(e, p);
                                                   }));
    return Status::ok();
  }

  Result<ShapeRange> range(const Json& v, const std::string& path) const {
    ShapeRange r;
    MLPRT_ASSIGN_OR_RETURN(const Json* min, array(v, path, "min"));
    MLPRT_ASSIGN_OR_RETURN(r.min, int64s(*min, join(path, "min")));
    MLPRT_ASSIGN_OR_RETURN(const Json* opt, array(v, path, "opt"));
    MLPRT_ASSIGN_OR_RETURN(r.opt, int64s(*opt, join(path, "opt")));
    MLPRT_ASSIGN_OR_RETURN(const Json* max, array(v, path, "max"));
    MLPRT_ASSIGN_OR_RETURN(r.max, int64s(*max, join(path, "max")));
    return r;
  }

  Status profiles(const Json& v, const std::string& path,
                  std::vector<OptimizationProfile>& out) const {
    if (!v.is_array()) return wrong_type(path, "an array", v);
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string p = index(path, i);
      if (!v[i].is_object()) return wrong_type(p, "an object", v[i]);
      OptimizationProfile profile;
      for (const auto& [name, value] : v[i].items()) {
        MLPRT_ASSIGN_OR_RETURN(ShapeRange r, range(value, join(p, name)));
        Status s = profile.set_dimensions(name, r);
        if (!s.is_ok()) return malformed(join(p, name), "is invalid: " + s.message());
      }
      out.push_back(std::move(profile));
    }
    return Status::ok();
  }

  Result<ir::RowIndependence> row_independence(const Json& v) const {
    const std::string path = "row_independence";
    ir::RowIndependence rows;
    MLPRT_ASSIGN_OR_RETURN(const Json* independent, member(v, path, "independent"));
    if (!independent->is_boolean()) {
      return wrong_type(join(path, "independent"), "a boolean", *independent);
    }
    rows.independent = independent->get<bool>();
    MLPRT_ASSIGN_OR_RETURN(rows.layer, string(v, path, "layer"));
    MLPRT_ASSIGN_OR_RETURN(rows.reason, string(v, path, "reason"));
    return rows;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

 private:
  const std::string& m_source;
  std::span<const uint8_t> m_weights;
  uint64_t m_weights_size = 0;
  bool m_copy_weights = true;
  const WeightsCopied* m_copied = nullptr;
};


}  // namespace

int json_depth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string malformed_message(const std::string& source_name, const std::string& detail) {
  return "plan '" + source_name + "' is malformed: " + detail +
         ". Its checksum is valid, so it was written wrongly or edited: rebuild it with `mlprt "
         "build`";
}

Result<EncodedMetadata> encode_metadata(const Plan& plan) {
  Encoder encoder;
  Json root = Json::object();
  root["backend"] = plan.backend;
  root["hardware"] = plan.hardware;
  root["precision"] = plan.precision;
  root["build_config_json"] = plan.build_config_json;
  if (!plan.accuracy_json.empty()) {
    root["accuracy"] = Json::parse(plan.accuracy_json, nullptr, false);
    if (!root["accuracy"].is_object()) {
      return Status(StatusCode::kInternal, "plan metadata: the accuracy record is not a JSON object");
    }
  }
  root["profiles"] = encode_profiles(plan.profiles);
  root["graph"] = encoder.graph(plan.graph);
  if (!plan.refit_json.empty()) {
    try {
      root["refit"] = Json::parse(plan.refit_json);
    } catch (const Json::exception& e) {
      return make_error(StatusCode::kInvalidArgument, "the plan's refit record is not JSON (",
                        e.what(), ")");
    }
  }
  if (plan.row_independence) {
    const ir::RowIndependence& rows = *plan.row_independence;
    root["row_independence"] =
        Json{{"independent", rows.independent}, {"layer", rows.layer}, {"reason", rows.reason}};
  }
  return encoder.finish(std::move(root));
}

namespace {

Status decode(std::string_view json_text, std::span<const uint8_t> weights, uint64_t weights_size,
              bool copy_weights, const WeightsCopied* copied, const std::string& source_name,
              Plan& plan) {
  if (const int depth = json_depth(json_text); depth > kMaxJsonDepth) {
    return Status(
        StatusCode::kCorruptData,
        malformed_message(source_name, "metadata JSON is nested " + std::to_string(depth) +
                                           " levels deep; plans use at most " +
                                           std::to_string(kMaxJsonDepth)));
  }
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    return Status(StatusCode::kCorruptData,
                  malformed_message(source_name,
                                    std::string("metadata is not valid JSON (") + e.what() + ")"));
  }
  Decoder d(source_name, weights, weights_size, copy_weights, copied);
  MLPRT_ASSIGN_OR_RETURN(plan.backend, d.string(root, "", "backend"));
  MLPRT_ASSIGN_OR_RETURN(plan.hardware, d.string(root, "", "hardware"));
  MLPRT_ASSIGN_OR_RETURN(plan.precision, d.string(root, "", "precision"));
  MLPRT_ASSIGN_OR_RETURN(plan.build_config_json, d.string(root, "", "build_config_json"));
  if (root.is_object() && root.contains("accuracy")) {  // optional: accuracy-budget builds
    if (!root["accuracy"].is_object()) {
      return Status(StatusCode::kCorruptData,
                    malformed_message(source_name, "metadata key 'accuracy' is not an object"));
    }
    plan.accuracy_json = root["accuracy"].dump();
  }
  MLPRT_ASSIGN_OR_RETURN(const Json* profiles, d.member(root, "", "profiles"));
  MLPRT_RETURN_IF_ERROR(d.profiles(*profiles, "profiles", plan.profiles));
  MLPRT_ASSIGN_OR_RETURN(const Json* graph, d.member(root, "", "graph"));
  MLPRT_RETURN_IF_ERROR(d.graph(*graph, "graph", plan.graph));
  // Optional (plans built before refit existed lack it); its content is checked by the refitter.
  if (auto it = root.find("refit"); it != root.end()) {
    if (!it->is_object()) return d.wrong_type("refit", "an object", *it);
    plan.refit_json = it->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  if (root.contains("row_independence")) {  // optional: older plans lack it
    MLPRT_ASSIGN_OR_RETURN(plan.row_independence, d.row_independence(root.at("row_independence")));
  }
  return Status::ok();
}

}  // namespace

Status decode_metadata(std::string_view json_text, std::span<const uint8_t> weights,
                       const std::string& source_name, Plan& plan, const WeightsCopied* copied) {
  return decode(json_text, weights, weights.size(), true, copied, source_name, plan);
}

Status decode_metadata_without_weights(std::string_view json_text, uint64_t weights_size,
                                       const std::string& source_name, Plan& plan) {
  return decode(json_text, {}, weights_size, false, nullptr, source_name, plan);
}

}  // namespace mlprt::plan::detail
