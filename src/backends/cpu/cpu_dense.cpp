#include "backends/cpu/cpu_dense.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <tuple>

#include "common/check.h"

namespace mlprt::backend::cpu {

using dnnl::memory;

std::string describe(const ir::Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

Status dnnl_failure(const ir::Node& node, const char* doing, const dnnl::error& e) {
  const StatusCode code =
      e.status == dnnl_unimplemented ? StatusCode::kUnsupported : StatusCode::kInternal;
  return make_error(code, "cpu backend: ", describe(node), ": oneDNN failed to ", doing, ": ",
                    e.what(), " (dnnl status ", static_cast<int>(e.status), ")");
}

Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node) {
  if (node.inputs.size() < 2 || node.outputs.size() != 1) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": needs inputs {X, W, [B]} and one output, has ", node.inputs.size(),
                      " inputs and ", node.outputs.size(), " outputs");
  }
  const ir::Constant* w = graph.find_constant(node.inputs[1]);
  if (w == nullptr) {
    return make_error(StatusCode::kUnsupported, describe(node), ": weight '", node.inputs[1],
                      "' is not a constant of the graph; the cpu backend needs constant weights");
  }
  if (w->dtype != DataType::kFloat32 || w->dims.size() != 2) {
    return make_error(StatusCode::kUnsupported, describe(node), ": weight '", node.inputs[1],
                      "' is ", to_string(w->dtype), " of shape ", to_string(w->dims),
                      "; allowed: float32 [K, N]");
  }
  DenseSpec spec;
  spec.k = w->dims[0];
  spec.n = w->dims[1];
  if (spec.k <= 0 || spec.n <= 0 ||
      w->data.size() != static_cast<size_t>(spec.k * spec.n) * sizeof(float)) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": weight '", node.inputs[1],
                      "' of shape ", to_string(w->dims), " holds ", w->data.size(),
                      " bytes; expected a non-empty float32 [K, N] with K*N*4 bytes");
  }
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    const ir::Constant* b = graph.find_constant(node.inputs[2]);
    if (b == nullptr) {
      return make_error(StatusCode::kUnsupported, describe(node), ": bias '", node.inputs[2],
                        "' is not a constant of the graph");
    }
    const bool shape_ok =
        ((b->dims.size() == 1 && b->dims[0] == spec.n) ||
         (b->dims.size() == 2 && b->dims[0] == 1 && b->dims[1] == spec.n)) &&
        b->data.size() == static_cast<size_t>(spec.n) * sizeof(float);
    if (b->dtype != DataType::kFloat32 || !shape_ok) {
      return make_error(StatusCode::kUnsupported, describe(node), ": bias '", node.inputs[2],
                        "' is ", to_string(b->dtype), " of shape ", to_string(b->dims),
                        "; allowed: float32 [", spec.n, "]");
    }
    spec.has_bias = true;
  }
  const std::string activation = node.get_string("activation", "none");
  const auto kind = ir::parse_activation(activation);
  if (!kind || !ir::dense_fusable(*kind)) {
    return make_error(StatusCode::kUnsupported, describe(node), ": activation '", activation,
                      "'; allowed: none, relu, leaky_relu, sigmoid, tanh, elu, gelu_erf, "
                      "gelu_tanh, clip, hard_swish");
  }
  spec.activation = {*kind, node.get_float("alpha", 0.0), node.get_float("beta", 0.0)};
  const int64_t transpose_x = node.get_int("transpose_x", 0);
  if (transpose_x != 0 && transpose_x != 1) {
    return make_error(StatusCode::kUnsupported, describe(node), ": transpose_x = ", transpose_x,
                      "; allowed: 0, 1");
  }
  spec.transpose_x = transpose_x == 1;
  return spec;
}

memory::desc dense_src_desc(const DenseSpec& spec, int64_t m) {
  // transpose_x: X is stored [K, M] row-major, i.e. X' = [M, K] with strides {1, M}.
  const memory::dims strides =
      spec.transpose_x ? memory::dims{1, m} : memory::dims{spec.k, 1};
  return memory::desc({m, spec.k}, memory::data_type::f32, strides);
}

memory::desc dense_dst_desc(const DenseSpec& spec, int64_t m) {
  return memory::desc({m, spec.n}, memory::data_type::f32, memory::dims{spec.n, 1});
}

namespace {

std::tuple<dnnl::algorithm, float, float> eltwise_of(const ir::ActivationSpec& spec) {
  using A = dnnl::algorithm;
  using K = ir::ActivationKind;
  const auto alpha = static_cast<float>(spec.alpha);
  const auto beta = static_cast<float>(spec.beta);
  switch (spec.kind) {
    case K::kRelu: return {A::eltwise_relu, 0.0f, 0.0f};
    case K::kLeakyRelu: return {A::eltwise_relu, alpha, 0.0f};  // alpha: negative slope
    case K::kSigmoid: return {A::eltwise_logistic, 0.0f, 0.0f};
    case K::kTanh: return {A::eltwise_tanh, 0.0f, 0.0f};
    case K::kElu: return {A::eltwise_elu, alpha, 0.0f};
    case K::kGeluErf: return {A::eltwise_gelu_erf, 0.0f, 0.0f};
    case K::kGeluTanh: return {A::eltwise_gelu_tanh, 0.0f, 0.0f};
    case K::kClip: return {A::eltwise_clip, alpha, beta};
    case K::kHardSwish: return {A::eltwise_hardswish, 0.0f, 0.0f};
    default: return {A::eltwise_linear, 1.0f, 0.0f};  // dense_spec admits no other kind
  }
}

}  // namespace

Result<dnnl::matmul::primitive_desc> make_dense_pd(const dnnl::engine& engine,
                                                   const ir::Node& node, const DenseSpec& spec,
                                                   int64_t m) {
  try {
    dnnl::primitive_attr attr;
    // A user scratchpad keeps execution free of oneDNN's own allocations and lets each
    // context (thread) own its scratch memory.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (spec.activation.kind != ir::ActivationKind::kNone) {
      dnnl::post_ops ops;
      const auto [algorithm, alpha, beta] = eltwise_of(spec.activation);
      ops.append_eltwise(1.0f, algorithm, alpha, beta);
      attr.set_post_ops(ops);
    }
    const memory::desc weights({spec.k, spec.n}, memory::data_type::f32,
                               memory::format_tag::any);
    const memory::desc bias = spec.has_bias ? memory::desc({1, spec.n}, memory::data_type::f32,
                                                           memory::format_tag::ab)
                                            : memory::desc();
    const dnnl::matmul::desc desc(dense_src_desc(spec, m), weights, bias,
                                  dense_dst_desc(spec, m));
    return dnnl::matmul::primitive_desc(desc, attr, engine);
  } catch (const dnnl::error& e) {
    return dnnl_failure(node, "create a matmul primitive descriptor", e);
  }
}

size_t DenseLayer::variant_for(int64_t m) const {
  for (size_t i = 1; i < variants.size(); ++i) {
    if (variants[i].fixed_m == m) return i;
  }
  return 0;
}

namespace {

// Copies `src` (plain row-major [rows, cols] float32) into memory laid out as `packed`.
memory pack(const dnnl::engine& engine, dnnl::stream& stream, const ir::Constant& src,
            const memory::dims& dims, const memory::desc& packed) {
  const memory::desc plain(dims, memory::data_type::f32, memory::format_tag::ab);
  // oneDNN's memory API takes a non-const handle; the reorder only reads from it.
  memory user(plain, engine, const_cast<std::byte*>(src.data.data()));
  memory out(packed, engine);
  dnnl::reorder(user, out).execute(stream, user, out);
  stream.wait();
  return out;
}

}  // namespace

Result<DenseLayer> make_dense_layer(const dnnl::engine& engine, const ir::Graph& graph,
                                    const ir::Node& node, const std::vector<int64_t>& fixed_ms) {
  MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
  DenseLayer layer;
  layer.spec = spec;
  std::vector<int64_t> ms = {DNNL_RUNTIME_DIM_VAL};
  for (int64_t m : fixed_ms) {
    if (m > 0 && std::find(ms.begin(), ms.end(), m) == ms.end()) ms.push_back(m);
  }
  try {
    dnnl::stream stream(engine);
    const ir::Constant& w = *graph.find_constant(node.inputs[1]);
    for (int64_t m : ms) {
      MLPRT_ASSIGN_OR_RETURN(dnnl::matmul::primitive_desc pd,
                             make_dense_pd(engine, node, spec, m));
      DenseVariant variant;
      variant.fixed_m = m == DNNL_RUNTIME_DIM_VAL ? -1 : m;
      variant.impl = pd.impl_info_str();
      variant.scratchpad_desc = pd.scratchpad_desc();
      variant.weights = pack(engine, stream, w, {spec.k, spec.n}, pd.weights_desc());
      variant.primitive = dnnl::matmul(pd);
      layer.variants.push_back(std::move(variant));
    }
    if (spec.has_bias) {
      const ir::Constant& b = *graph.find_constant(node.inputs[2]);
      layer.bias = pack(engine, stream, b, {1, spec.n},
                        memory::desc({1, spec.n}, memory::data_type::f32, memory::format_tag::ab));
    }
  } catch (const dnnl::error& e) {
    return dnnl_failure(node, "create the matmul primitive and pack the weights", e);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory while packing weights [", spec.k, ", ", spec.n, "]");
  }
  return layer;
}

}  // namespace mlprt::backend::cpu
