#include "backends/cpu/cpu_dense.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <tuple>

#include <immintrin.h>
#include <omp.h>

#include "backends/cpu/cpu_isa.h"
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

Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node, bool with_data) {
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
      (with_data && w->data.size() != static_cast<size_t>(spec.k * spec.n) * sizeof(float))) {
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
        (!with_data || b->data.size() == static_cast<size_t>(spec.n) * sizeof(float));
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

memory::desc dense_dst_desc(const DenseSpec& spec, int64_t m, bool bf16) {
  return memory::desc({m, spec.n}, bf16 ? memory::data_type::bf16 : memory::data_type::f32,
                      memory::dims{spec.n, 1});
}

bool tactics_allow_handoff(const DenseSpec& spec, const std::vector<DenseTactic>& tactics) {
  if (tactics.empty()) return false;
  for (const DenseTactic& t : tactics) {
    if (t.precision != DensePrecision::kBf16) return false;
    if (!t.fused && spec.activation.kind != ir::ActivationKind::kNone) return false;
  }
  return true;
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

const char* precision_name(DensePrecision precision) {
  switch (precision) {
    case DensePrecision::kBf16: return "bf16";
    case DensePrecision::kFp16: return "fp16";
    default: return "fp32";
  }
}

const char* layout_name(WeightLayout layout) {
  return layout == WeightLayout::kPlain ? "plain" : "packed";
}

const char* kernel_name(DenseKernel kernel) {
  return kernel == DenseKernel::kMlprt ? "mlprt" : "onednn";
}

std::string describe(const DenseTactic& tactic) {
  std::string out = precision_name(tactic.precision);
  if (tactic.m < 0) {
    out += " runtime-M";
    if (tactic.kernel == DenseKernel::kMlprt) out += " mlprt-panels";
  } else {
    out += " fixed-M ";
    out += tactic.kernel == DenseKernel::kMlprt ? "mlprt-panels" : layout_name(tactic.layout);
    if (tactic.row_split) {
      out += " row-split x" + std::to_string(tactic.threads);
    } else if (tactic.threads == 1) {
      out += " 1-thread";
    }
  }
  return tactic.fused ? out : out + " unfused";
}

std::vector<RowRange> split_rows(int64_t rows, int threads) {
  const int64_t blocks =
      std::max<int64_t>(1, std::min<int64_t>(std::min(threads, kMaxRowBlocks), rows));
  std::vector<RowRange> out;
  for (int64_t t = 0; t < blocks; ++t) out.push_back({t * rows / blocks, (t + 1) * rows / blocks});
  return out;
}

Result<dnnl::matmul::primitive_desc> make_dense_pd(const dnnl::engine& engine,
                                                   const ir::Node& node, const DenseSpec& spec,
                                                   const DenseTactic& tactic, bool dst_bf16) {
  const int64_t m = tactic.m < 0 ? DNNL_RUNTIME_DIM_VAL : tactic.m;
  const bool bf16 = tactic.precision == DensePrecision::kBf16;
  const memory::data_type low = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  try {
    dnnl::primitive_attr attr;
    // A user scratchpad keeps execution free of oneDNN's own allocations and lets each
    // context (thread) own its scratch memory.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (tactic.fused && spec.activation.kind != ir::ActivationKind::kNone) {
      dnnl::post_ops ops;
      const auto [algorithm, alpha, beta] = eltwise_of(spec.activation);
      ops.append_eltwise(1.0f, algorithm, alpha, beta);
      attr.set_post_ops(ops);
    }
    // Fixed M may keep the weights plain ([K, N] row-major, the layout gemm reads) or let
    // oneDNN pick its blocked layout; runtime M always asks oneDNN.
    const bool plain = tactic.m >= 0 && tactic.layout == WeightLayout::kPlain;
    const memory::desc weights =
        plain ? memory::desc({spec.k, spec.n}, low, memory::format_tag::ab)
              : memory::desc({spec.k, spec.n}, low, memory::format_tag::any);
    const memory::desc bias = spec.has_bias ? memory::desc({1, spec.n}, memory::data_type::f32,
                                                           memory::format_tag::ab)
                                            : memory::desc();
    // bf16 src is the converted copy, always plain [M, K].
    const memory::desc src = bf16 ? memory::desc({m, spec.k}, low, memory::dims{spec.k, 1})
                                  : dense_src_desc(spec, m);
    const dnnl::matmul::desc desc(src, weights, bias, dense_dst_desc(spec, m, dst_bf16));
    return dnnl::matmul::primitive_desc(desc, attr, engine);
  } catch (const dnnl::error& e) {
    const std::string doing = "create a " + describe(tactic) + " matmul primitive descriptor";
    return dnnl_failure(node, doing.c_str(), e);
  }
}

namespace {

uint16_t to_bf16(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void convert_avx512_bf16(
    const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh low_high = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, reinterpret_cast<const __m512i&>(low_high));
  }
  for (; i < n; ++i) out[i] = to_bf16(x[i]);
}

}  // namespace

void convert_src_to_bf16(const DenseSpec& spec, int64_t m, const float* x, uint16_t* out) {
  const int64_t k = spec.k;
  if (!spec.transpose_x) {
    const int64_t n = m * k;
    static const bool kVector = cpu_has_bf16();
    if (kVector) {
      convert_avx512_bf16(x, out, n);
      return;
    }
    for (int64_t i = 0; i < n; ++i) out[i] = to_bf16(x[i]);
    return;
  }
  // X is stored [K, M]: element (row i, feature j) sits at j * M + i.
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t i = 0; i < m; ++i) out[i * k + j] = to_bf16(x[j * m + i]);
  }
}

size_t DenseLayer::variant_for(int64_t m) const {
  for (size_t i = 1; i < variants.size(); ++i) {
    if (!variants[i].block && variants[i].fixed_m == m) return i;
  }
  return 0;
}

size_t DenseLayer::block_variant_for(int64_t m) const {
  for (size_t i = 0; i < variants.size(); ++i) {
    if (variants[i].fixed_m == m && variants[i].tactic.threads == 1) return i;
  }
  return 0;
}

const DenseTactic* DenseLayer::split_for(int64_t m) const {
  for (const DenseTactic& tactic : splits) {
    if (tactic.m == m) return &tactic;
  }
  return nullptr;
}

namespace {

// Copies `src` (plain row-major [rows, cols] float32) into memory laid out as `packed`.
// (Also converts to the packed desc's data type, e.g. bf16.)
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

Result<dnnl::memory> LazyPackedWeights::get() const {
  const std::lock_guard<std::mutex> lock(m_mutex);
  if (m_packed) return m_packed;
  try {
    dnnl::stream stream(m_engine);
    const memory::desc plain({m_k, m_n}, memory::data_type::f32, memory::format_tag::ab);
    // oneDNN's memory API takes a non-const handle; the reorder only reads from it.
    memory user(plain, m_engine, const_cast<float*>(m_plain));
    memory out(m_layout, m_engine);
    dnnl::reorder(user, out).execute(stream, user, out);
    stream.wait();
    m_packed = out;
    return m_packed;
  } catch (const dnnl::error& e) {
    return make_error(StatusCode::kInternal, "cpu backend: oneDNN failed to pack weights [", m_k,
                      ", ", m_n, "]: ", e.what());
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: out of memory while packing weights [",
                      m_k, ", ", m_n, "]");
  }
}

bool LazyPackedWeights::packed() const noexcept {
  const std::lock_guard<std::mutex> lock(m_mutex);
  return static_cast<bool>(m_packed);
}

static Result<DenseVariant> make_dense_variant_impl(const dnnl::engine& engine,
                                                    dnnl::stream& stream, const ir::Graph& graph,
                                                    const ir::Node& node, const DenseSpec& spec,
                                                    const DenseTactic& tactic,
                                                    const std::vector<DenseVariant>* shared,
                                                    bool describe_only, bool dst_bf16);

static const std::vector<DenseVariant>& variants_or_none(const std::vector<DenseVariant>* list) {
  static const std::vector<DenseVariant> kNone;
  return list != nullptr ? *list : kNone;
}

// fp16: weights packed into our kernel's panels; no oneDNN primitive, no scratchpad.
static Result<DenseVariant> make_fp16_variant(const ir::Graph& graph, const ir::Node& node,
                                              const DenseSpec& spec, const DenseTactic& tactic,
                                              const std::vector<DenseVariant>* shared,
                                              bool describe_only) {
  if (!fp16_gemm_available()) {
    return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                      ": fp16 needs AVX-512 FP16, which this CPU does not have");
  }
  if (spec.transpose_x) {
    return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                      ": the fp16 kernel reads X row-major only, this layer's X is transposed");
  }
  try {
    const ir::Constant& w = *graph.find_constant(node.inputs[1]);
    DenseVariant variant;
    variant.fixed_m = tactic.m;
    variant.tactic = tactic;
    // Every fp16 variant of a layer reads the same panels: packed once.
    for (const DenseVariant& other : variants_or_none(shared)) {
      if (other.fp16_weights) variant.fp16_weights = other.fp16_weights;
    }
    if (!variant.fp16_weights && !describe_only) {
      variant.fp16_weights = std::make_shared<const Fp16Weights>(
          reinterpret_cast<const float*>(w.data.data()), spec.k, spec.n);
    }
    variant.impl = "mlprt:avx512_fp16";
    variant.scratchpad_desc = memory::desc();
    return variant;
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory while packing fp16 weights [", spec.k, ", ", spec.n, "]");
  }
}

// fp32 on our own kernel: weights packed into its 16-column panels; no oneDNN primitive, no
// scratchpad.
static Result<DenseVariant> make_f32_variant(const ir::Graph& graph, const ir::Node& node,
                                             const DenseSpec& spec, const DenseTactic& tactic,
                                             const std::vector<DenseVariant>* shared,
                                             bool describe_only) {
  if (!f32_gemm_available()) {
    return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                      ": the mlprt fp32 kernel needs AVX-512 (F, BW, VL, DQ), which this CPU "
                      "(or ONEDNN_MAX_CPU_ISA) does not have");
  }
  if (spec.transpose_x || tactic.precision != DensePrecision::kFp32) {
    return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                      ": the mlprt fp32 kernel runs fp32 tactics of a row-major X only, not ",
                      describe(tactic), spec.transpose_x ? " of a transposed X" : "");
  }
  try {
    DenseVariant variant;
    variant.fixed_m = tactic.m;
    variant.tactic = tactic;
    // Every mlprt fp32 variant of a layer reads the same panels: packed once.
    for (const DenseVariant& other : variants_or_none(shared)) {
      if (other.f32_weights) variant.f32_weights = other.f32_weights;
    }
    if (!variant.f32_weights && !describe_only) {
      const ir::Constant& w = *graph.find_constant(node.inputs[1]);
      variant.f32_weights = std::make_shared<const F32Weights>(
          reinterpret_cast<const float*>(w.data.data()), spec.k, spec.n);
    }
    variant.impl = "mlprt:avx512_f32";
    variant.scratchpad_desc = memory::desc();
    return variant;
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory while packing fp32 weights [", spec.k, ", ", spec.n, "]");
  }
}

Result<DenseVariant> make_dense_variant(const dnnl::engine& engine, dnnl::stream& stream,
                                        const ir::Graph& graph, const ir::Node& node,
                                        const DenseSpec& spec, const DenseTactic& tactic,
                                        const std::vector<DenseVariant>* shared,
                                        bool describe_only, bool dst_bf16) {
  // oneDNN (OpenMP build) plans a fixed-shape primitive's parallel work for the creating
  // thread's OpenMP count, and its primitive cache keys on that count: descriptor and
  // primitive are both made under the tactic's count, or the cache may hand back a primitive
  // planned for another count (with a bigger scratchpad than the descriptor says).
  const int threads = tactic.m >= 0 ? tactic.threads : 0;
  const int caller_threads = omp_get_max_threads();
  if (threads > 0) omp_set_num_threads(threads);
  Result<DenseVariant> variant = make_dense_variant_impl(engine, stream, graph, node, spec, tactic,
                                                         shared, describe_only, dst_bf16);
  if (threads > 0) omp_set_num_threads(caller_threads);
  return variant;
}

static Result<DenseVariant> make_dense_variant_impl(
    const dnnl::engine& engine, dnnl::stream& /*stream: packing is lazy*/, const ir::Graph& graph,
    const ir::Node& node, const DenseSpec& spec, const DenseTactic& tactic,
    const std::vector<DenseVariant>* shared, bool describe_only, bool dst_bf16) {
  if (tactic.precision == DensePrecision::kFp16) {
    return make_fp16_variant(graph, node, spec, tactic, shared, describe_only);
  }
  if (tactic.kernel == DenseKernel::kMlprt) {
    return make_f32_variant(graph, node, spec, tactic, shared, describe_only);
  }
  MLPRT_ASSIGN_OR_RETURN(dnnl::matmul::primitive_desc pd,
                         make_dense_pd(engine, node, spec, tactic, dst_bf16));
  if (describe_only) {
    DenseVariant variant;
    variant.fixed_m = tactic.m;
    variant.tactic = tactic;
    variant.impl = pd.impl_info_str();
    return variant;
  }
  try {
    const ir::Constant& w = *graph.find_constant(node.inputs[1]);
    DenseVariant variant;
    variant.fixed_m = tactic.m;
    variant.tactic = tactic;
    variant.primitive = dnnl::matmul(pd);
    // Scratchpad and weight layout as the primitive actually created wants them.
    const_dnnl_primitive_desc_t actual = variant.primitive.get_primitive_desc();
    const dnnl_memory_desc_t* scratchpad =
        dnnl_primitive_desc_query_md(actual, dnnl_query_scratchpad_md, 0);
    const dnnl_memory_desc_t* weights =
        dnnl_primitive_desc_query_md(actual, dnnl_query_weights_md, 0);
    if (scratchpad == nullptr || weights == nullptr) {
      return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                        ": oneDNN gave no scratchpad or weights layout for ", describe(tactic));
    }
    variant.impl = pd.impl_info_str();
    variant.scratchpad_desc = memory::desc(*scratchpad);
    // Variants whose primitives want the same weight layout share one packed copy (memory
    // objects are reference-counted handles): each weight is held once per layout.
    const memory::desc layout(*weights);
    for (const DenseVariant& other : variants_or_none(shared)) {
      if (other.weights && other.weights.get_desc() == layout) variant.weights = other.weights;
      if (other.packed && other.packed->layout() == layout) variant.packed = other.packed;
    }
    // A primitive that reads the weights as they are stored (f32 [K, N] row-major: gemm:jit's
    // runtime-M, the plain fixed-M tactics) reads the plan graph's own copy, which the engine
    // keeps for as long as it lives: no second copy of those weights.
    const memory::desc as_stored({spec.k, spec.n}, memory::data_type::f32, memory::format_tag::ab);
    if (!variant.weights && layout == as_stored) {
      variant.weights = memory(layout, engine, const_cast<std::byte*>(w.data.data()));
    }
    if (!variant.weights && !variant.packed) {
      variant.packed = std::make_shared<const LazyPackedWeights>(
          engine, reinterpret_cast<const float*>(w.data.data()), spec.k, spec.n, layout);
    }
    return variant;
  } catch (const dnnl::error& e) {
    return dnnl_failure(node, "create the matmul primitive and pack the weights", e);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory while packing weights [", spec.k, ", ", spec.n, "]");
  }
}

Result<DenseLayer> make_dense_layer(const dnnl::engine& engine, const ir::Graph& graph,
                                    const ir::Node& node, const std::vector<DenseTactic>& tactics,
                                    bool require_runtime, bool describe_only,
                                    const std::vector<DenseVariant>* shared,
                                    DenseHandoff handoff) {
  MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node, !describe_only));
  if ((handoff.src_bf16 || handoff.dst_bf16) &&
      (!tactics_allow_handoff(spec, tactics) || (handoff.src_bf16 && spec.transpose_x))) {
    return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node),
                      ": a bf16 handoff needs bf16 tactics with fused activations and a "
                      "row-major X");
  }
  if (tactics.empty() || (require_runtime && tactics.front().m >= 0)) {
    return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node),
                      ": the first tactic must be the runtime-M one");
  }
  DenseLayer layer;
  layer.spec = spec;
  layer.handoff = handoff;
  try {
    dnnl::stream stream(engine);
    // What a new variant may share weights with: `shared`, then this layer's variants.
    std::vector<DenseVariant> known = shared != nullptr ? *shared : std::vector<DenseVariant>();
    std::vector<int64_t> seen;
    for (const DenseTactic& tactic : tactics) {
      const bool repeated =
          tactic.m >= 0 && (tactic.m == 0 || std::find(seen.begin(), seen.end(), tactic.m) != seen.end());
      if (repeated) continue;
      if (tactic.m >= 0) seen.push_back(tactic.m);
      if (!tactic.row_split) {
        MLPRT_ASSIGN_OR_RETURN(DenseVariant variant,
                               make_dense_variant(engine, stream, graph, node, spec, tactic,
                                                  &known, describe_only, handoff.dst_bf16));
        known.push_back(variant);
        layer.variants.push_back(std::move(variant));
        continue;
      }
      if (spec.transpose_x || tactic.threads < 1) {
        return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node),
                          ": row split over ", tactic.threads, " threads",
                          spec.transpose_x ? " of a transposed X" : "", " is not possible");
      }
      layer.splits.push_back(tactic);
      // One 1-thread primitive per distinct block size (at most two).
      std::vector<int64_t> sizes;
      for (const RowRange& r : split_rows(tactic.m, tactic.threads)) {
        const int64_t size = r.end - r.begin;
        if (std::find(sizes.begin(), sizes.end(), size) != sizes.end()) continue;
        sizes.push_back(size);
        DenseTactic block = tactic;
        block.m = size;
        block.threads = 1;
        block.row_split = false;
        MLPRT_ASSIGN_OR_RETURN(DenseVariant variant,
                               make_dense_variant(engine, stream, graph, node, spec, block,
                                                  &known, describe_only, handoff.dst_bf16));
        variant.block = true;
        known.push_back(variant);
        layer.variants.push_back(std::move(variant));
      }
    }
    if (spec.has_bias && !describe_only) {
      const ir::Constant& b = *graph.find_constant(node.inputs[2]);
      layer.bias = pack(engine, stream, b, {1, spec.n},
                        memory::desc({1, spec.n}, memory::data_type::f32, memory::format_tag::ab));
    }
  } catch (const dnnl::error& e) {
    return dnnl_failure(node, "pack the bias", e);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory while packing the bias");
  }
  return layer;
}

}  // namespace mlprt::backend::cpu
