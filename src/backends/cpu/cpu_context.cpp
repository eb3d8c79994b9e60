// The cpu backend's per-caller state: buffers sized in prepare(), no allocation in execute().

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "backends/broadcast_strides.h"
#include "backends/cpu/cpu_chain.h"
#include "backends/cpu/cpu_data_layers.h"
#include "backends/cpu/cpu_dense_run.h"
#include "backends/cpu/cpu_executable.h"
#include "backends/cpu/cpu_simd.h"
#include "backends/row_extent.h"
#include "common/check.h"
#include "mlprt/float16.h"

namespace mlprt::backend::cpu {
namespace {

constexpr size_t kAlignment = 64;

// A 64-byte aligned float buffer that only grows.
class AlignedBuffer {
 public:
  [[nodiscard]] bool reserve(size_t bytes) {
    if (bytes <= m_capacity) return true;
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p == nullptr) return false;
    // Touch every page now (prepare), not in the first execute: its page faults made the first
    // call of a context several times a warm one.
    std::memset(p, 0, rounded);
    m_data.reset(p);
    m_capacity = rounded;
    return true;
  }
  [[nodiscard]] float* data() const noexcept { return static_cast<float*>(m_data.get()); }

 private:
  struct Free {
    void operator()(void* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<void, Free> m_data;
  size_t m_capacity = 0;
};

// Y = A + B with numpy broadcasting, as loops over collapsed dims: an outer odometer over all
// but the last dim and an inner loop whose strides (0 = broadcast, 1 = contiguous, other) pick
// a vectorizable kernel.
struct BroadcastPlan {
  std::vector<int64_t> dims;      // collapsed output dims, outermost first
  std::vector<int64_t> stride_a;  // element strides, 0 on broadcast dims
  std::vector<int64_t> stride_b;
  std::vector<int64_t> counter;   // odometer, sized here so execute does not allocate
  int64_t total = 0;
};

BroadcastPlan plan_broadcast(const Dims& a, const Dims& b, const Dims& out) {
  const size_t rank = out.size();
  const std::vector<int64_t> sa = broadcast_strides(a, out);
  const std::vector<int64_t> sb = broadcast_strides(b, out);
  BroadcastPlan plan;
  plan.total = 1;
  for (int64_t d : out) plan.total *= d;
  for (size_t i = 0; i < rank; ++i) {
    if (out[i] == 1) continue;
    // Merge into the previous (outer) dim when both operands walk through the two as one.
    if (!plan.dims.empty() && plan.stride_a.back() == sa[i] * out[i] &&
        plan.stride_b.back() == sb[i] * out[i]) {
      plan.dims.back() *= out[i];
      plan.stride_a.back() = sa[i];
      plan.stride_b.back() = sb[i];
      continue;
    }
    plan.dims.push_back(out[i]);
    plan.stride_a.push_back(sa[i]);
    plan.stride_b.push_back(sb[i]);
  }
  if (plan.dims.empty()) {
    plan.dims = {1};
    plan.stride_a = {0};
    plan.stride_b = {0};
  }
  plan.counter.assign(plan.dims.size(), 0);
  return plan;
}

void run_add(BinaryKind kind, BroadcastPlan& plan, const float* a, const float* b, float* y) {
  if (plan.total == 0) return;
  const size_t inner_axis = plan.dims.size() - 1;
  const int64_t inner = plan.dims[inner_axis];
  const int64_t rows = plan.total / inner;
  const auto threads = static_cast<int>(std::min<int64_t>(loop_threads(plan.total), rows));
  if (threads <= 1 && rows > 1) {
    // One thread: the odometer over the outer dims (no division per row).
    std::fill(plan.counter.begin(), plan.counter.end(), 0);
    int64_t offset_a = 0;
    int64_t offset_b = 0;
    for (int64_t done = 0; done < plan.total; done += inner) {
      run_binary_row(kind, a + offset_a, plan.stride_a[inner_axis], b + offset_b,
                     plan.stride_b[inner_axis], y + done, inner);
      for (size_t axis = inner_axis; axis-- > 0;) {
        offset_a += plan.stride_a[axis];
        offset_b += plan.stride_b[axis];
        if (++plan.counter[axis] < plan.dims[axis]) break;
        offset_a -= plan.stride_a[axis] * plan.dims[axis];
        offset_b -= plan.stride_b[axis] * plan.dims[axis];
        plan.counter[axis] = 0;
      }
    }
    return;
  }
  if (rows == 1) {  // one (collapsed) row: cut it into chunks of whole cache lines
    const int64_t sa = plan.stride_a[0], sb = plan.stride_b[0];
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
      const int64_t lines = (inner + 15) / 16;
      const int64_t begin = std::min(inner, lines * t / count * 16);
      const int64_t end = std::min(inner, lines * (t + 1) / count * 16);
      run_binary_row(kind, a + begin * sa, sa, b + begin * sb, sb, y + begin, end - begin);
    }
    return;
  }
  // Rows split over the threads; each row's offsets from its index (outer dims, innermost last).
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset_a = 0;
    int64_t offset_b = 0;
    int64_t rest = r;
    for (size_t axis = inner_axis; axis-- > 0;) {
      const int64_t index = rest % plan.dims[axis];
      rest /= plan.dims[axis];
      offset_a += index * plan.stride_a[axis];
      offset_b += index * plan.stride_b[axis];
    }
    run_binary_row(kind, a + offset_a, plan.stride_a[inner_axis], b + offset_b,
                   plan.stride_b[inner_axis], y + r * inner, inner);
  }
}

void run_relu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// Sizes of a softmax / layer norm / scale-shift at input shape `x`.
Result<RowLoop> row_loop(const Layer& layer, const Dims& x) {
  const LayerParams& p = layer.params;
  const bool whole_tail = layer.kind == LayerKind::kLayerNorm ||
                          (layer.kind == LayerKind::kSoftmax && p.coerce_2d);
  const std::string what = "cpu backend: layer '" + layer.name + "' (" + layer.op + ")";
  MLPRT_ASSIGN_OR_RETURN(const RowExtent extent, row_extent(x, p.axis, whole_tail, what));
  const RowLoop loop{extent.outer, extent.n, extent.inner};
  if (layer.kind == LayerKind::kScaleShift &&
      static_cast<int64_t>(p.scale.size()) != loop.n) {
    return make_error(StatusCode::kInvalidArgument, "cpu backend: layer '", layer.name,
                      "' (ScaleShift): input of shape ", to_string(x), " has ", loop.n,
                      " channels at axis ", p.axis, "; the layer has ", p.scale.size());
  }
  if (layer.kind == LayerKind::kLayerNorm) {
    for (const std::vector<float>* v : {&p.scale, &p.shift}) {
      if (!v->empty() && loop.n % static_cast<int64_t>(v->size()) != 0) {
        return make_error(StatusCode::kInvalidArgument, "cpu backend: layer '", layer.name,
                          "' (LayerNorm): ", v->size(), " scale/bias values do not tile the ",
                          loop.n, " normalized elements of shape ", to_string(x));
      }
    }
  }
  return loop;
}

class CpuContext final : public BackendContext {
 public:
  CpuContext(const CpuExecutable& exe, dnnl::stream stream)
      : m_exe(exe),
        m_stream(std::move(stream)),
        m_buffers(exe.tensors().size()),
        m_elements(exe.tensors().size(), 0),
        m_ptrs(exe.tensors().size(), nullptr),
        m_caller_outputs(exe.output_ids().size(), nullptr),
        m_dense(exe.layers().size()),
        m_add(exe.layers().size()),
        m_loops(exe.layers().size()),
        m_copies(exe.layers().size()),
        m_reduces(exe.layers().size()),
        m_matmuls(exe.layers().size()),
        m_layer_ms(exe.layers().size(), 0.0f),
        m_threads(exe.threads()) {
    for (size_t t = 0; t < exe.tensors().size(); ++t) {
      if (exe.tensors()[t].role == TensorRole::kConstant) {
        // Never written: constants are only read by Add and copied to graph outputs.
        m_ptrs[t] = const_cast<float*>(exe.constant(t));
      }
    }
  }

  // Rows the AMX chain kernel runs at `shapes` (0: not there): a row count the plan chose it
  // for, with the views keeping the rows (input and output hold rows x k / rows x n values).
  int64_t amx_rows_at(const ir::ShapeMap& shapes) const {
    const AmxMlp* amx = m_exe.amx();
    if (amx == nullptr) return 0;
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    const size_t in = m_exe.input_ids()[0];
    const size_t out = m_exe.output_ids()[0];
    const Dims& first = shapes.at(tensors[in].name);
    const int64_t rows = first.empty() ? 0 : first[0];
    const std::vector<int64_t>& wanted = m_exe.amx_rows();
    if (rows < 1 || std::find(wanted.begin(), wanted.end(), rows) == wanted.end()) return 0;
    if (m_elements[in] != rows * amx->input_features() ||
        m_elements[out] != rows * amx->output_features()) {
      return 0;
    }
    return rows;
  }

  Status init_scratchpad() {
    if (!m_scratchpad.reserve(std::max<size_t>(m_exe.scratchpad_bytes(), kAlignment))) {
      return make_error(StatusCode::kInternal, "cpu backend: out of memory for a ",
                        m_exe.scratchpad_bytes(), "-byte oneDNN scratchpad");
    }
    return Status::ok();
  }

  Status set_num_threads(int threads) override {
    if (threads < 0) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: thread count ", threads,
                        " is negative; allowed: 0 (oneDNN's default) or more");
    }
    const int before = m_threads;
    m_threads = threads > 0 ? threads : m_exe.threads();
    // Row splits are planned for the thread count: plan them again.
    if (m_prepared && m_threads != before) return prepare(m_shapes);
    return Status::ok();
  }

  Status set_profiler(Profiler* profiler) override {
    m_profiler = profiler;
    // Profiled calls run layer by layer, even at rows the AMX chain kernel runs unprofiled.
    if (m_prepared && profiler != nullptr && !m_layers_prepared) return prepare(m_shapes);
    return Status::ok();
  }

  Status prepare(const ir::ShapeMap& shapes) override {
    m_prepared = false;
    try {
      return prepare_impl(shapes);
    } catch (const std::bad_alloc&) {
      return Status(StatusCode::kInternal, "cpu backend: out of memory in prepare");
    }
  }

  Status prepare_impl(const ir::ShapeMap& shapes) {
    m_shapes = shapes;
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    for (size_t t = 0; t < tensors.size(); ++t) {
      auto it = shapes.find(tensors[t].name);
      if (it == shapes.end()) {
        return make_error(StatusCode::kInvalidArgument, "cpu backend: prepare: no shape for tensor '",
                          tensors[t].name, "'");
      }
      Result<int64_t> elements = volume(it->second);
      if (!elements.is_ok()) return elements.status().with_context("tensor '" + tensors[t].name + "'");
      m_elements[t] = *elements;
      // Graph outputs are written straight into the caller's float32 memory; other types go
      // through a float32 buffer, as do inputs of other types.
      const bool narrow_output =
          tensors[t].output_index >= 0 &&
          m_exe.output_dtypes()[static_cast<size_t>(tensors[t].output_index)] != DataType::kFloat32;
      const bool needs_buffer =
          (tensors[t].role == TensorRole::kComputed && !tensors[t].is_view &&
           (tensors[t].output_index < 0 || narrow_output)) ||
          (tensors[t].role == TensorRole::kInput && narrow_input(t));
      if (needs_buffer &&
          !m_buffers[t].reserve(static_cast<size_t>(m_elements[t]) * sizeof(float))) {
        return make_error(StatusCode::kInternal, "cpu backend: out of memory for tensor '",
                          tensors[t].name, "' of shape ", to_string(it->second));
      }
    }
    // Where the AMX chain kernel runs every layer, the layers' own tactics (their packed
    // weights, oneDNN primitives) are prepared only once a profiler asks for them.
    m_amx_rows = amx_rows_at(shapes);
    m_layers_prepared = m_amx_rows == 0 || m_profiler != nullptr;
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const Layer& layer = m_exe.layers()[l];
      const Dims& in = shapes.at(tensors[layer.inputs[0]].name);
      const Dims& out = shapes.at(tensors[layer.output].name);
      if (layer.residual && shapes.at(tensors[layer.inputs.back()].name) != out) {
        return make_error(StatusCode::kInvalidArgument, "cpu backend: layer '", layer.name, "' (",
                          layer.op, "): residual '", tensors[layer.inputs.back()].name,
                          "' of shape ", to_string(shapes.at(tensors[layer.inputs.back()].name)),
                          " is not the output's shape ", to_string(out));
      }
      if (layer.kind == LayerKind::kDense) {
        if (m_layers_prepared) MLPRT_RETURN_IF_ERROR(prepare_dense(layer, m_dense[l], in));
      } else if (layer.kind == LayerKind::kAdd) {
        m_add[l] = plan_broadcast(in, shapes.at(tensors[layer.inputs[1]].name), out);
      } else if (layer.kind == LayerKind::kSoftmax || layer.kind == LayerKind::kLayerNorm ||
                 layer.kind == LayerKind::kScaleShift) {
        MLPRT_ASSIGN_OR_RETURN(m_loops[l], row_loop(layer, in));
      } else if (layer.kind == LayerKind::kCopy) {
        CopyRun& run = m_copies[l];
        MLPRT_ASSIGN_OR_RETURN(run.copy, ir::strided_copy_of(layer.node, in));
        run.counter.assign(run.copy.out.size(), 0);
        run.total = m_elements[layer.output];
      } else if (layer.kind == LayerKind::kReduceMean) {
        MLPRT_ASSIGN_OR_RETURN(m_reduces[l], ir::reduce_loops(layer.node, in));
      } else if (layer.kind == LayerKind::kMatMul) {
        MLPRT_ASSIGN_OR_RETURN(
            m_matmuls[l],
            ir::matmul_layer_shape(layer.node, in, shapes.at(tensors[layer.inputs[1]].name)));
        if (!layer.params.shift.empty() &&
            static_cast<int64_t>(layer.params.shift.size()) != m_matmuls[l].n) {
          return make_error(StatusCode::kInvalidArgument, "cpu backend: layer '", layer.name,
                            "' (MatMul): bias has ", layer.params.shift.size(),
                            " values; the product has ", m_matmuls[l].n, " columns");
        }
      } else {
        MLPRT_CHECK(m_elements[layer.inputs[0]] == m_elements[layer.output],
                    "layer '" << layer.name << "' changes the element count");
      }
    }
    m_chain_active = false;
    if (m_layers_prepared) {
      MLPRT_ASSIGN_OR_RETURN(bool chain,
                             m_chain.prepare(m_exe, shapes, split_threads(), m_loops, m_pool));
      m_chain_active = chain && m_amx_rows == 0;
    }
    if (m_amx_rows > 0) {
      m_amx_threads = m_threads > 0 ? m_threads : omp_get_max_threads();
      const size_t bytes = static_cast<size_t>(m_amx_threads) * m_exe.amx()->scratch_bytes();
      if (!m_amx_scratch.reserve(bytes)) {
        return make_error(StatusCode::kInternal, "cpu backend: out of memory for the AMX chain "
                          "kernel's ", bytes, "-byte scratch");
      }
    }
    m_prepared = true;
    return Status::ok();
  }

  Status execute(const IoBindings& io, void* /*stream: the cpu runs synchronously*/) override {
    if (!m_prepared) {
      return Status(StatusCode::kInvalidArgument,
                    "cpu backend: execute called before a successful prepare");
    }
    // OpenMP's thread count is per calling thread: set it for this call and put it back (not
    // when it already is the context's: the usual case, two library calls fewer per call).
    const int caller_threads = m_threads > 0 ? omp_get_max_threads() : 0;
    const bool set = m_threads > 0 && caller_threads != m_threads;
    if (set) omp_set_num_threads(m_threads);
    Status status = execute_impl(io);
    if (set) omp_set_num_threads(caller_threads);
    return status;
  }

  Status execute_impl(const IoBindings& io) {
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    for (size_t id : m_exe.input_ids()) {
      auto it = io.inputs.find(tensors[id].name);
      if (it == io.inputs.end() || (it->second == nullptr && m_elements[id] > 0)) {
        return make_error(StatusCode::kInvalidArgument, "cpu backend: no address for input '",
                          tensors[id].name, "'");
      }
      if (narrow_input(id)) {
        convert_floats(it->second, input_dtype(id), m_buffers[id].data(), DataType::kFloat32,
                       static_cast<size_t>(m_elements[id]));
        m_ptrs[id] = m_buffers[id].data();
        continue;
      }
      // Inputs are only read; the pointer table is shared with written tensors.
      m_ptrs[id] = const_cast<float*>(static_cast<const float*>(it->second));
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const size_t id = m_exe.output_ids()[i];
      const std::string& name = tensors[id].name;
      auto it = io.outputs.find(name);
      if (it == io.outputs.end() || (it->second == nullptr && m_elements[id] > 0)) {
        return make_error(StatusCode::kInvalidArgument, "cpu backend: no address for output '",
                          name, "'");
      }
      m_caller_outputs[i] = it->second;
    }
    // Profiling runs layer by layer even where the plan chains them in one OpenMP region, so
    // that each layer has its own time.
    const bool chained = m_chain_active && m_profiler == nullptr;
    const bool amx = m_amx_rows > 0 && m_profiler == nullptr;
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const auto start = m_profiler ? std::chrono::steady_clock::now()
                                    : std::chrono::steady_clock::time_point{};
      const Layer& layer = m_exe.layers()[l];
      const TensorSlot& out = tensors[layer.output];
      if (layer.kind == LayerKind::kView) {
        m_ptrs[layer.output] = m_ptrs[layer.inputs[0]];
        m_layer_ms[l] = 0.0f;
        continue;
      }
      // A graph output is written straight into the caller's buffer.
      const bool direct =
          out.output_index >= 0 &&
          m_exe.output_dtypes()[static_cast<size_t>(out.output_index)] == DataType::kFloat32;
      float* y = direct ? static_cast<float*>(m_caller_outputs[static_cast<size_t>(out.output_index)])
                        : m_buffers[layer.output].data();
      m_ptrs[layer.output] = y;
      if (chained || amx) continue;  // run below, all layers in one pass
      const float* x = m_ptrs[layer.inputs[0]];
      switch (layer.kind) {
        case LayerKind::kDense:
          MLPRT_RETURN_IF_ERROR(
              m_dense[l].run(x, y, layer.residual ? m_ptrs[layer.inputs.back()] : nullptr));
          break;
        case LayerKind::kAdd:
          run_add(layer.params.binary, m_add[l], x, m_ptrs[layer.inputs[1]], y);
          break;
        case LayerKind::kRelu: run_relu(x, y, m_elements[layer.output]); break;
        case LayerKind::kActivation:
          run_activation(layer.params.activation, x, y, m_elements[layer.output]);
          break;
        case LayerKind::kSoftmax: run_softmax(m_loops[l], layer.params.log, x, y); break;
        case LayerKind::kLayerNorm: run_layer_norm(m_loops[l], layer.params, x, y); break;
        case LayerKind::kScaleShift: run_scale_shift(m_loops[l], layer.params, x, y); break;
        case LayerKind::kCopy: run_strided_copy(m_copies[l], x, y); break;
        case LayerKind::kReduceMean: run_reduce_mean(m_reduces[l], x, y); break;
        case LayerKind::kMatMul:
          run_matmul(m_matmuls[l], layer.params, x, m_ptrs[layer.inputs[1]],
                     layer.residual ? m_ptrs[layer.inputs.back()] : nullptr, y,
                     split_threads());
          break;
        case LayerKind::kView: break;
      }
      if (m_profiler) {
        m_layer_ms[l] = std::chrono::duration<float, std::milli>(
                            std::chrono::steady_clock::now() - start).count();
      }
    }
    if (chained) MLPRT_RETURN_IF_ERROR(m_chain.run(m_ptrs));
    if (amx) {
      m_exe.amx()->run(m_ptrs[m_exe.input_ids()[0]], m_ptrs[m_exe.output_ids()[0]], m_amx_rows,
                       m_amx_threads, reinterpret_cast<std::byte*>(m_amx_scratch.data()));
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const size_t id = m_exe.output_ids()[i];
      if (m_ptrs[id] != m_caller_outputs[i] && m_elements[id] > 0) {
        convert_floats(m_ptrs[id], DataType::kFloat32, m_caller_outputs[i],
                       m_exe.output_dtypes()[i], static_cast<size_t>(m_elements[id]));
      }
    }
    // Reported after the run, so that the profiler's own work is in no layer's time.
    if (m_profiler) {
      for (size_t l = 0; l < m_exe.layers().size(); ++l) {
        m_profiler->report_layer_time(m_exe.layers()[l].name, m_layer_ms[l]);
      }
    }
    return Status::ok();
  }

 private:
  DataType input_dtype(size_t id) const {
    const auto& ids = m_exe.input_ids();
    const auto at = static_cast<size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin());
    return at < ids.size() ? m_exe.input_dtypes()[at] : DataType::kFloat32;
  }
  bool narrow_input(size_t id) const { return input_dtype(id) != DataType::kFloat32; }

  int split_threads() const { return m_threads > 0 ? m_threads : omp_get_max_threads(); }

  Status prepare_dense(const Layer& layer, DenseRun& run, const Dims& x) {
    const DenseSpec& spec = layer.dense.spec;
    const int64_t k = spec.transpose_x ? (x.size() == 2 ? x[0] : -1) : (x.empty() ? -1 : x.back());
    if (k != spec.k) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: layer '", layer.name,
                        "' (Dense): input of shape ", to_string(x), " does not have ", spec.k,
                        " features", spec.transpose_x ? " in dimension 0" : " in its last dimension");
    }
    const int64_t m = spec.transpose_x ? x[1] : m_elements[layer.inputs[0]] / spec.k;
    if (layer.dense.split_for(m) != nullptr) {
      const std::vector<RowRange> blocks = split_rows(m, split_threads());
      MLPRT_RETURN_IF_ERROR(m_pool.reserve(m_exe.engine(), static_cast<int>(blocks.size()),
                                           m_exe.scratchpad_bytes()));
      return run.prepare_blocks(m_exe.engine(), layer.name, layer.dense, blocks, m_pool);
    }
    return run.prepare_whole(m_exe.engine(), layer.name, layer.dense, m, m_stream,
                             m_scratchpad.data());
  }

  const CpuExecutable& m_exe;
  dnnl::stream m_stream;
  std::vector<AlignedBuffer> m_buffers;  // per tensor id; only non-view intermediates use one
  std::vector<int64_t> m_elements;       // per tensor id, at the prepared shapes
  std::vector<float*> m_ptrs;            // per tensor id, for the current call
  std::vector<void*> m_caller_outputs;   // per graph output, for the current call
  std::vector<DenseRun> m_dense;         // per layer
  std::vector<BroadcastPlan> m_add;      // per layer
  std::vector<RowLoop> m_loops;          // per layer: softmax, layer norm, scale-shift sizes
  std::vector<CopyRun> m_copies;         // per layer: Transpose / Slice
  std::vector<ir::ReduceLoops> m_reduces;  // per layer: ReduceMean
  std::vector<ir::MatMulShape> m_matmuls;  // per layer: MatMul
  AlignedBuffer m_scratchpad;
  ThreadPoolResources m_pool;            // row splits' per-thread streams and scratchpads
  ChainRun m_chain;
  bool m_chain_active = false;
  int64_t m_amx_rows = 0;  ///< rows of the AMX chain kernel's run at the prepared shapes, or 0
  bool m_layers_prepared = false;  ///< the layers' own tactics too (no AMX run, or profiling)
  int m_amx_threads = 1;   ///< its threads, each with its share of m_amx_scratch
  AlignedBuffer m_amx_scratch;
  Profiler* m_profiler = nullptr;        // per-layer timing; nullptr: off
  std::vector<float> m_layer_ms;         // per layer, this call's time while profiling
  ir::ShapeMap m_shapes;                 // of the last prepare
  int m_threads = 0;  // 0: leave OpenMP's setting alone; default: the plan's
  bool m_prepared = false;
};

}  // namespace

namespace {

// OpenMP starts its worker threads in the first parallel region of the calling thread (about
// 100 us each, more on a busy machine): open one now, at context creation, so that the first
// inference does not pay for it. Later regions reuse the pool.
void start_thread_pool(int threads) {
  const int count = threads > 0 ? threads : omp_get_max_threads();
  if (count < 2 || omp_in_parallel()) return;
  volatile int sink = 0;
#pragma omp parallel num_threads(count)
  { sink = omp_get_thread_num(); }
  (void)sink;
}

}  // namespace

Result<std::unique_ptr<BackendContext>> make_cpu_context(const CpuExecutable& executable) {
  try {
    auto context = std::make_unique<CpuContext>(executable, dnnl::stream(executable.engine()));
    MLPRT_RETURN_IF_ERROR(context->init_scratchpad());
    start_thread_pool(executable.threads());
    return std::unique_ptr<BackendContext>(std::move(context));
  } catch (const dnnl::error& e) {
    return make_error(StatusCode::kInternal, "cpu backend: cannot create a oneDNN stream: ",
                      e.what());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kInternal, "cpu backend: out of memory creating a context");
  }
}

}  // namespace mlprt::backend::cpu
