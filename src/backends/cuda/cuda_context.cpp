// The cuda backend's per-caller state. prepare() sizes buffers and cuBLASLt descriptors;
// execute() launches a CUDA graph of the whole network (captured on first use for the prepared
// shapes and bound device addresses) and, for host addresses, the copies around it.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backends/broadcast_strides.h"
#include "backends/cuda/cuda_chunks.h"
#include "backends/cuda/cuda_data_kernels.h"
#include "backends/cuda/cuda_executable.h"
#include "backends/cuda/cuda_matmul.h"
#include "backends/row_extent.h"
#include "common/check.h"
#include "common/log.h"

namespace mlprt::backend::cuda {
namespace {

BroadcastShape plan_broadcast(const Dims& a, const Dims& b, const Dims& out) {
  BroadcastShape shape;
  shape.rank = static_cast<int>(out.size());
  const std::vector<int64_t> stride_a = broadcast_strides(a, out);
  const std::vector<int64_t> stride_b = broadcast_strides(b, out);
  for (size_t i = 0; i < out.size(); ++i) {
    shape.dims[i] = out[i];
    shape.stride_a[i] = stride_a[i];
    shape.stride_b[i] = stride_b[i];
  }
  return shape;
}

Result<RowShape> row_shape(const Layer& layer, const Dims& x) {
  const bool whole_tail =
      layer.kind == LayerKind::kLayerNorm || (layer.kind == LayerKind::kSoftmax && layer.coerce_2d);
  const std::string what = "cuda backend: layer '" + layer.name + "' (" + layer.op + ")";
  MLPRT_ASSIGN_OR_RETURN(const RowExtent extent, row_extent(x, layer.axis, whole_tail, what));
  const RowShape rows{extent.outer, extent.n, extent.inner};
  if (layer.kind == LayerKind::kScaleShift && layer.scale_count != rows.n) {
    return make_error(StatusCode::kInvalidArgument, "cuda backend: layer '", layer.name,
                      "' (ScaleShift): input of shape ", to_string(x), " has ", rows.n,
                      " channels at axis ", layer.axis, "; the layer has ", layer.scale_count);
  }
  if (layer.kind == LayerKind::kLayerNorm) {
    for (int64_t count : {layer.scale_count, layer.shift_count}) {
      if (count != 0 && rows.n % count != 0) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: layer '", layer.name,
                          "' (LayerNorm): ", count, " scale/bias values do not tile the ", rows.n,
                          " normalized elements of shape ", to_string(x));
      }
    }
  }
  return rows;
}

// Largest input or output read or written straight in mapped pinned host memory, by the fused
// kernel or by a copy kernel around the layers, instead of by copy nodes.
constexpr size_t kZeroCopyBytes = size_t{64} << 10;

size_t elem_bytes(ElemType type) { return type == ElemType::kF32 ? 4 : 2; }

// cuBLASLt plans and algorithms of every Dense layer for one row count.
struct DensePlans {
  explicit DensePlans(size_t layers) : plans(layers), algos(layers) {}
  std::vector<MatmulPlan> plans;
  std::vector<cublasLtMatmulAlgo_t> algos;
};

// The rows [first, first + count) of every tensor, or (whole) the prepared tensors as they are.
struct RowSpan {
  bool whole = true;
  int64_t first = 0;
  int64_t count = 0;
};

// One instantiated graph of the context's launches and the addresses and form it was captured
// with (see CudaContext::launch_graph).
struct GraphSlot {
  cudaGraphExec_t exec = nullptr;
  std::vector<const void*> key;
  std::vector<uintptr_t> form;
  uint64_t last_use = 0;  // 0: empty
};
constexpr size_t kGraphSlots = 4;
// Split batch: one graph per chunk of rows up to this many chunks per call; past it the chunks
// launch their kernels directly (capturing a graph per chunk on every call would cost more).
constexpr size_t kMaxGraphSlots = 64;

class CudaContext final : public BackendContext {
 public:
  explicit CudaContext(const CudaExecutable& exe)
      : m_exe(exe),
        m_buffers(exe.tensors().size()),
        m_elements(exe.tensors().size(), 0),
        m_ptrs(exe.tensors().size(), nullptr),
        m_whole(exe.layers().size()),
        m_chunk(exe.layers().size()),
        m_tail(exe.layers().size()),
        m_row_elems(exe.tensors().size(), 0),
        m_add(exe.layers().size()),
        m_rows(exe.layers().size()),
        m_gathers(exe.layers().size()),
        m_reduces(exe.layers().size()),
        m_matmuls(exe.layers().size()),
        m_dev_in(exe.input_ids().size(), nullptr),
        m_dev_out(exe.output_ids().size(), nullptr),
        m_caller_in(exe.input_ids().size(), nullptr),
        m_caller_out(exe.output_ids().size(), nullptr),
        m_in_pinned(exe.input_ids().size(), false),
        m_out_pinned(exe.output_ids().size(), false),
        m_in_view(exe.input_ids().size(), nullptr),
        m_out_view(exe.output_ids().size(), nullptr),
        m_io_in(exe.input_ids().size()),
        m_io_out(exe.output_ids().size()),
        m_pinned_in(exe.input_ids().size()),
        m_pinned_out(exe.output_ids().size()) {
    // The fused whole-network kernel runs every layer in one launch: one profiler entry.
    for (const Layer& layer : exe.layers()) {
      m_fused_name += (m_fused_name.empty() ? "" : " + ") + layer.name;
    }
  }

  ~CudaContext() override {
    if (use_device(m_exe.device()).is_ok()) {
      if (m_stream) cudaStreamSynchronize(m_stream);
      drop_graphs();
      if (m_capture_stream) cudaStreamDestroy(m_capture_stream);
      if (m_copy_in_stream) cudaStreamDestroy(m_copy_in_stream);
      if (m_copy_out_stream) cudaStreamDestroy(m_copy_out_stream);
      for (cudaEvent_t event : m_events) cudaEventDestroy(event);
      for (cudaEvent_t event : m_layer_events) cudaEventDestroy(event);
      if (m_stream) cudaStreamDestroy(m_stream);
    }
  }

  Status init() {
    // cudaSetDevice, not use_device: it also makes the primary context current on a thread that
    // has not used CUDA yet, which cuBLASLt expects (compute-sanitizer flagged it).
    MLPRT_CUDA_TRY(cudaSetDevice(m_exe.device()), "cudaSetDevice");
    MLPRT_CUDA_TRY(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaStream_t* s : {&m_capture_stream, &m_copy_in_stream, &m_copy_out_stream}) {
      MLPRT_CUDA_TRY(cudaStreamCreateWithFlags(s, cudaStreamNonBlocking), "cudaStreamCreate");
    }
    return m_workspace.reserve(std::max<size_t>(m_exe.blob().workspace_bytes, 256),
                               "cuBLASLt workspace");
  }

  Status set_device_io(bool device) override {
    if (device != m_device_io) {
      m_device_io = device;
      m_prepared = false;
    }
    return Status::ok();
  }

  Status set_use_graph(bool use) override {
    m_use_graph = use;
    return Status::ok();
  }

  // Timing events, one before the first layer and one after each, made here (not in execute).
  Status set_profiler(Profiler* profiler) override {
    if (profiler != nullptr) {
      MLPRT_RETURN_IF_ERROR(use_device(m_exe.device()));
      while (m_layer_events.size() < m_exe.layers().size() + 1) {
        cudaEvent_t event = nullptr;
        MLPRT_CUDA_TRY(cudaEventCreate(&event), "cudaEventCreate (profiler)");
        m_layer_events.push_back(event);
      }
    }
    m_profiler = profiler;
    return Status::ok();
  }

  Status set_calls_per_enqueue(size_t calls) override {
    m_direct_launches = calls > kMaxGraphSlots;
    const size_t slots = m_direct_launches ? kGraphSlots : std::max(kGraphSlots, calls);
    for (size_t i = slots; i < m_graphs.size(); ++i) drop_graph(m_graphs[i]);
    m_graphs.resize(slots);
    return Status::ok();
  }

  Status prepare(const ir::ShapeMap& shapes) override {
    m_prepared = false;
    drop_graphs();
    MLPRT_RETURN_IF_ERROR(use_device(m_exe.device()));
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    for (size_t t = 0; t < tensors.size(); ++t) {
      auto it = shapes.find(tensors[t].name);
      if (it == shapes.end()) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: prepare: no shape for '",
                          tensors[t].name, "'");
      }
      MLPRT_ASSIGN_OR_RETURN(m_elements[t], volume(it->second));
    }
    const auto within_zero_copy = [&](const std::vector<size_t>& ids,
                                      const std::vector<ElemType>& types) {
      for (size_t i = 0; i < ids.size(); ++i) {
        if (io_bytes(ids[i], types[i]) > kZeroCopyBytes) return false;
      }
      return true;
    };
    m_small_io = !m_device_io && within_zero_copy(m_exe.input_ids(), m_exe.input_types()) &&
                 within_zero_copy(m_exe.output_ids(), m_exe.output_types());
    for (size_t t = 0; t < tensors.size(); ++t) {
      const bool computed = tensors[t].role == TensorRole::kComputed && !tensors[t].is_view;
      const bool input = tensors[t].role == TensorRole::kInput;
      const bool output = tensors[t].output_index >= 0;
      // A graph output in its layer's type is written straight into the caller's buffer,
      // unless that is mapped pinned memory (small host I/O), which copy kernels write.
      const ElemType type = m_exe.tensor_type(t);
      const bool direct_output =
          output && m_exe.output_types()[static_cast<size_t>(tensors[t].output_index)] == type;
      const bool needs = (input && (input_type(t) != type || m_small_io)) ||
                         (computed && (!direct_output || m_small_io));
      if (needs) {
        MLPRT_RETURN_IF_ERROR(m_buffers[t].reserve(
            std::max<size_t>(static_cast<size_t>(m_elements[t]) * elem_bytes(type), 16),
            "tensor '" + tensors[t].name + "' of shape " + to_string(shapes.at(tensors[t].name))));
      }
    }
    const std::vector<CastSlot>& casts = m_exe.cast_slots();
    m_cast_buffers.resize(casts.size());
    for (size_t s = 0; s < casts.size(); ++s) {
      MLPRT_RETURN_IF_ERROR(m_cast_buffers[s].reserve(
          std::max<size_t>(static_cast<size_t>(m_elements[casts[s].tensor]) *
                               elem_bytes(casts[s].type),
                           16),
          "cast of tensor '" + tensors[casts[s].tensor].name + "'"));
    }
    m_fused = false;
    m_fused_tc = false;
    const int64_t in_elements = m_elements[m_exe.input_ids().front()];
    if (m_exe.fused_tc_ready()) {
      const int64_t rows = in_elements / m_exe.fused_tc().layers[0].k;
      m_fused_tc = m_exe.blob().fused_tc.runs_fused(rows);
      m_fused = m_fused_tc;
      m_fused_rows = rows;
    }
    if (m_exe.fusable() && !m_fused_tc) {
      const int64_t rows = in_elements / m_exe.fused().layers[0].k;
      m_fused = rows <= m_exe.blob().fused_max_rows;
      m_fused_rows = rows;
    }
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const Layer& layer = m_exe.layers()[l];
      const Dims& in = shapes.at(tensors[layer.inputs[0]].name);
      if (layer.residual && shapes.at(tensors[layer.inputs.back()].name) !=
                                shapes.at(tensors[layer.output].name)) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: layer '", layer.name, "' (",
                          layer.op, "): residual '", tensors[layer.inputs.back()].name,
                          "' of shape ", to_string(shapes.at(tensors[layer.inputs.back()].name)),
                          " is not the output's shape ",
                          to_string(shapes.at(tensors[layer.output].name)));
      }
      if (layer.kind == LayerKind::kDense && !m_fused) {
        MLPRT_RETURN_IF_ERROR(check_dense_input(layer, in));
        MLPRT_RETURN_IF_ERROR(plan_dense(layer, l, dense_rows(layer, RowSpan{}), m_whole));
      } else if (layer.kind == LayerKind::kBinary) {
        const Dims& b = shapes.at(tensors[layer.inputs[1]].name);
        const Dims& out = shapes.at(tensors[layer.output].name);
        if (out.size() > static_cast<size_t>(kMaxRank)) {
          return make_error(StatusCode::kUnsupported, "cuda backend: layer '", layer.name, "' (",
                            layer.op, "): rank ", out.size(), " > ", kMaxRank);
        }
        m_add[l] = plan_broadcast(in, b, out);
      } else if (layer.kind == LayerKind::kSoftmax || layer.kind == LayerKind::kLayerNorm ||
                 layer.kind == LayerKind::kScaleShift) {
        MLPRT_ASSIGN_OR_RETURN(m_rows[l], row_shape(layer, in));
      } else if (layer.kind == LayerKind::kCopy || layer.kind == LayerKind::kReduceMean ||
                 layer.kind == LayerKind::kMatMul) {
        MLPRT_RETURN_IF_ERROR(prepare_data_layer(layer, l, shapes));
      }
    }
    for (size_t i = 0; i < m_exe.input_ids().size(); ++i) {
      const size_t bytes =
          std::max<size_t>(io_bytes(m_exe.input_ids()[i], m_exe.input_types()[i]), 16);
      if (!m_device_io) {
        MLPRT_RETURN_IF_ERROR(m_io_in[i].reserve(bytes, "device copy of an input"));
        MLPRT_RETURN_IF_ERROR(m_pinned_in[i].reserve(bytes, "pinned staging of an input"));
      }
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const size_t bytes =
          std::max<size_t>(io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]), 16);
      if (!m_device_io) {
        MLPRT_RETURN_IF_ERROR(m_io_out[i].reserve(bytes, "device copy of an output"));
        MLPRT_RETURN_IF_ERROR(m_pinned_out[i].reserve(bytes, "pinned staging of an output"));
      }
    }
    MLPRT_RETURN_IF_ERROR(prepare_pipeline(shapes));
    m_prepared = true;
    return Status::ok();
  }

  Status execute(const IoBindings& io, void* stream_arg) override {
    if (!m_prepared) {
      return Status(StatusCode::kInvalidArgument,
                    "cuda backend: execute called before a successful prepare (or after the I/O "
                    "location changed)");
    }
    if (io.device_addresses != m_device_io) {
      return Status(StatusCode::kInternal, "cuda backend: I/O location differs from prepare's");
    }
    MLPRT_RETURN_IF_ERROR(use_device(m_exe.device()));
    const bool own_stream = stream_arg == nullptr;
    cudaStream_t stream = own_stream ? m_stream : static_cast<cudaStream_t>(stream_arg);
    if (m_profiler) {
      cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
      MLPRT_CUDA_TRY(cudaStreamIsCapturing(stream, &capturing), "cudaStreamIsCapturing");
      if (capturing != cudaStreamCaptureStatusNone) {
        return Status(StatusCode::kInvalidArgument,
                      "cuda backend: enqueue with a profiler set on a stream that is being "
                      "captured into a CUDA graph: layer times need the kernels to run now; "
                      "call set_profiler(nullptr) before capturing");
      }
    }
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    bool all_pinned = true;
    for (size_t i = 0; i < m_exe.input_ids().size(); ++i) {
      const std::string& name = tensors[m_exe.input_ids()[i]].name;
      auto it = io.inputs.find(name);
      if (it == io.inputs.end() || it->second == nullptr) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: no address for input '",
                          name, "'");
      }
      m_caller_in[i] = it->second;
      m_in_pinned[i] = !m_device_io && is_pinned(it->second, &m_in_view[i]);
      all_pinned = all_pinned && m_in_pinned[i];
      m_dev_in[i] = m_device_io ? it->second : m_io_in[i].get();
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const std::string& name = tensors[m_exe.output_ids()[i]].name;
      auto it = io.outputs.find(name);
      if (it == io.outputs.end() || it->second == nullptr) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: no address for output '",
                          name, "'");
      }
      m_caller_out[i] = it->second;
      const void* view = nullptr;
      m_out_pinned[i] = !m_device_io && is_pinned(it->second, &view);
      m_out_view[i] = const_cast<void*>(view);
      all_pinned = all_pinned && m_out_pinned[i];
      m_dev_out[i] = m_device_io ? it->second : m_io_out[i].get();
    }
    // From pinned host memory the copies are part of the graph: one launch per call. Small I/O
    // in mapped pinned memory is read and written there by the fused kernel or by copy kernels
    // around the layers: no copy nodes, whose fixed cost is most of such a call.
    m_copies_in_graph = !m_device_io && all_pinned;
    m_zero_copy = m_copies_in_graph && m_small_io &&
                  std::none_of(m_in_view.begin(), m_in_view.end(),
                               [](const void* p) { return p == nullptr; }) &&
                  std::none_of(m_out_view.begin(), m_out_view.end(),
                               [](const void* p) { return p == nullptr; });
    if (m_zero_copy) {
      m_copies_in_graph = false;
      std::copy(m_in_view.begin(), m_in_view.end(), m_dev_in.begin());
      std::copy(m_out_view.begin(), m_out_view.end(), m_dev_out.begin());
    }
    const bool separate_copies = !m_device_io && !all_pinned;  // pageable memory: staged
    bool staged = false;
    if (separate_copies) {
      for (size_t i = 0; i < m_exe.input_ids().size(); ++i) {
        const size_t bytes = io_bytes(m_exe.input_ids()[i], m_exe.input_types()[i]);
        const void* src = m_caller_in[i];
        if (!m_in_pinned[i]) {
          std::memcpy(m_pinned_in[i].get(), src, bytes);
          src = m_pinned_in[i].get();
          staged = true;
        }
        MLPRT_CUDA_TRY(
            cudaMemcpyAsync(m_io_in[i].get(), src, bytes, cudaMemcpyHostToDevice, stream),
            "copy of input '" + tensors[m_exe.input_ids()[i]].name + "' to the device");
      }
    }
    MLPRT_RETURN_IF_ERROR(launch_graph(stream));
    if (separate_copies) {
      for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
        const size_t bytes = io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]);
        void* dst = m_out_pinned[i] ? m_caller_out[i] : m_pinned_out[i].get();
        staged = staged || !m_out_pinned[i];
        MLPRT_CUDA_TRY(
            cudaMemcpyAsync(dst, m_io_out[i].get(), bytes, cudaMemcpyDeviceToHost, stream),
            "copy of output '" + tensors[m_exe.output_ids()[i]].name + "' to the host");
      }
    }
    // Pageable host memory goes through our pinned buffers, which the next call reuses: such a
    // call, like one on the default (nullptr) stream, returns only when it is done.
    if (staged || own_stream) {
      MLPRT_CUDA_TRY(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }
    for (size_t i = 0; separate_copies && i < m_exe.output_ids().size(); ++i) {
      if (!m_out_pinned[i]) {
        std::memcpy(m_caller_out[i], m_pinned_out[i].get(),
                    io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]));
      }
    }
    if (m_profiler) return report_layer_times(stream);
    return Status::ok();
  }

 private:
  // Whether `p` is pinned host memory; `device_view` gets the address kernels can read it at
  // (nullptr where it is not mapped into the device's address space).
  static bool is_pinned(const void* p, const void** device_view) {
    *device_view = nullptr;
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    if (attributes.type != cudaMemoryTypeHost) return false;
    *device_view = attributes.devicePointer;
    return true;
  }

  // Waits for the call and reports the time between consecutive events to the profiler.
  Status report_layer_times(cudaStream_t stream) {
    MLPRT_CUDA_TRY(cudaStreamSynchronize(stream), "cudaStreamSynchronize (profiler)");
    const auto elapsed = [&](size_t from, float* ms) {
      return cudaEventElapsedTime(ms, m_layer_events[from], m_layer_events[from + 1]);
    };
    float ms = 0.0f;
    if (m_fused) {
      MLPRT_CUDA_TRY(elapsed(0, &ms), "cudaEventElapsedTime (profiler)");
      m_profiler->report_layer_time(m_fused_name, ms);
      return Status::ok();
    }
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      MLPRT_CUDA_TRY(elapsed(l, &ms), "cudaEventElapsedTime (profiler)");
      m_profiler->report_layer_time(m_exe.layers()[l].name, ms);
    }
    return Status::ok();
  }

  // Profiling: marks the end of layer `index - 1` (index 0: the start of the first).
  Status mark_layer(size_t index, cudaStream_t stream) {
    if (m_profiler == nullptr) return Status::ok();
    MLPRT_CUDA_TRY(cudaEventRecord(m_layer_events[index], stream), "cudaEventRecord (profiler)");
    return Status::ok();
  }

  ElemType input_type(size_t tensor_id) const {
    const auto& ids = m_exe.input_ids();
    const auto at = static_cast<size_t>(std::find(ids.begin(), ids.end(), tensor_id) - ids.begin());
    return at < ids.size() ? m_exe.input_types()[at] : ElemType::kF32;
  }

  size_t io_bytes(size_t tensor_id, ElemType type) const {
    return static_cast<size_t>(m_elements[tensor_id]) * (type == ElemType::kF32 ? 4 : 2);
  }

  void drop_graph(GraphSlot& slot) {
    if (slot.exec) cudaGraphExecDestroy(slot.exec);
    slot.exec = nullptr;
    slot.key.clear();
    slot.last_use = 0;
  }
  void drop_graphs() {
    for (GraphSlot& slot : m_graphs) drop_graph(slot);
  }

  Status check_dense_input(const Layer& layer, const Dims& x) const {
    const DenseSpec& spec = layer.spec;
    const int64_t k = spec.transpose_x ? (x.size() == 2 ? x[0] : -1) : (x.empty() ? -1 : x.back());
    if (k != spec.k) {
      return make_error(StatusCode::kInvalidArgument, "cuda backend: layer '", layer.name,
                        "' (Dense): input of shape ", to_string(x), " does not have ", spec.k,
                        " features");
    }
    return Status::ok();
  }

  // The M of a Dense layer's matmul over `span`.
  int64_t dense_rows(const Layer& layer, const RowSpan& span) const {
    const size_t x = layer.inputs[0];
    if (layer.spec.transpose_x) return m_elements[x] / layer.spec.k;  // never chunked
    return count(x, span) / layer.spec.k;
  }

  Status plan_dense(const Layer& layer, size_t index, int64_t m, DensePlans& dense) {
    MatmulPlan& plan = dense.plans[index];
    if (plan.m() == m && m > 0) return Status::ok();
    if (m == 0 || layer.fused_tc) {  // the fused kernel needs no plan
      plan = MatmulPlan();
      return Status::ok();
    }
    MLPRT_ASSIGN_OR_RETURN(
        plan, MatmulPlan::create(layer.spec, layer.precision, m, layer.bias.get()));
    const size_t ws = m_workspace.bytes();
    auto tuned = std::find_if(layer.tuned.begin(), layer.tuned.end(),
                              [&](const TunedAlgo& t) { return t.m == m; });
    if (tuned != layer.tuned.end()) {
      MLPRT_RETURN_IF_ERROR(plan.check(m_exe.lt_handle(), tuned->algo, ws)
                                .with_context("layer '" + layer.name +
                                              "': the plan's tactic for M=" + std::to_string(m) +
                                              " does not run here; rebuild the plan"));
      dense.algos[index] = tuned->algo;
      return Status::ok();
    }
    MLPRT_ASSIGN_OR_RETURN(auto candidates, plan.candidates(m_exe.lt_handle(), ws, 1));
    dense.algos[index] = candidates.front();
    detail::log(
        Severity::kVerbose, "cuda backend: layer '", layer.name, "' M=", m,
        " was not tuned at build time; cuBLASLt heuristic: ", describe_algo(candidates.front()));
    return Status::ok();
  }

  // Whether every row of the input flows through the layers on its own (a chain of row-wise
  // Dense layers and activations), so that row chunks may run as separate calls.
  bool row_parallel(const ir::ShapeMap& shapes) const {
    if (m_exe.input_ids().size() != 1 || m_exe.output_ids().size() != 1) return false;
    if (shapes.at(m_exe.tensors()[m_exe.input_ids()[0]].name).size() < 2) return false;
    return std::all_of(m_exe.layers().begin(), m_exe.layers().end(), [](const Layer& layer) {
      return (layer.kind == LayerKind::kDense && !layer.spec.transpose_x) ||
             layer.kind == LayerKind::kActivation;
    });
  }

  // Sizes and cuBLASLt plans of the Transpose / Slice / ReduceMean / MatMul layers.
  Status prepare_data_layer(const Layer& layer, size_t l, const ir::ShapeMap& shapes) {
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    const Dims& in = shapes.at(tensors[layer.inputs[0]].name);
    const auto too_deep = [&](size_t rank) -> Status {
      if (rank <= static_cast<size_t>(kMaxRank)) return Status::ok();
      return make_error(StatusCode::kUnsupported, "cuda backend: layer '", layer.name, "' (",
                        layer.op, "): rank ", rank, " > ", kMaxRank);
    };
    if (layer.kind == LayerKind::kCopy) {
      MLPRT_ASSIGN_OR_RETURN(const ir::StridedCopy copy, ir::strided_copy_of(layer.node, in));
      MLPRT_RETURN_IF_ERROR(too_deep(copy.out.size()));
      GatherShape g;
      g.rank = static_cast<int>(copy.out.size());
      for (size_t d = 0; d < copy.out.size(); ++d) {
        g.dims[d] = copy.out[d];
        g.stride[d] = copy.stride[d];
      }
      g.offset = copy.offset;
      m_gathers[l] = g;
      return Status::ok();
    }
    if (layer.kind == LayerKind::kReduceMean) {
      MLPRT_ASSIGN_OR_RETURN(const ir::ReduceLoops loops, ir::reduce_loops(layer.node, in));
      ReduceShape r;
      if (loops.general) {
        MLPRT_RETURN_IF_ERROR(too_deep(std::max(loops.kept_dims.size(), loops.reduced_dims.size())));
        r.kept_rank = static_cast<int>(loops.kept_dims.size());
        for (size_t d = 0; d < loops.kept_dims.size(); ++d) {
          r.kept_dims[d] = loops.kept_dims[d];
          r.kept_stride[d] = loops.kept_strides[d];
        }
        r.reduced_rank = static_cast<int>(loops.reduced_dims.size());
        for (size_t d = 0; d < loops.reduced_dims.size(); ++d) {
          r.reduced_dims[d] = loops.reduced_dims[d];
          r.reduced_stride[d] = loops.reduced_strides[d];
        }
      } else {  // outer x n x inner: kept (outer, inner), reduced n of stride inner
        r.kept_rank = 2;
        r.kept_dims[0] = loops.outer;
        r.kept_stride[0] = loops.n * loops.inner;
        r.kept_dims[1] = loops.inner;
        r.kept_stride[1] = 1;
        r.reduced_rank = 1;
        r.reduced_dims[0] = loops.n;
        r.reduced_stride[0] = loops.inner;
      }
      r.count = loops.n;
      m_reduces[l] = r;
      return Status::ok();
    }
    MLPRT_ASSIGN_OR_RETURN(const ir::MatMulShape shape,
                           ir::matmul_layer_shape(layer.node, in,
                                                  shapes.at(tensors[layer.inputs[1]].name)));
    if (layer.shift_count > 0 && layer.shift_count != shape.n) {
      return make_error(StatusCode::kInvalidArgument, "cuda backend: layer '", layer.name,
                        "' (MatMul): bias has ", layer.shift_count, " values; the product has ",
                        shape.n, " columns");
    }
    if (m_matmul_shapes.size() != m_exe.layers().size()) m_matmul_shapes.resize(m_exe.layers().size());
    m_matmul_shapes[l] = shape;
    MLPRT_ASSIGN_OR_RETURN(m_matmuls[l],
                           BatchedMatmulPlan::create(shape, layer.precision, m_exe.lt_handle(),
                                                     m_workspace.bytes()));
    return Status::ok();
  }

  Status run_matmul(const Layer& layer, size_t l, const void* a, const void* b,
                    const void* residual, void* y, int64_t n, cudaStream_t stream) {
    if (m_matmuls[l].empty()) return Status::ok();
    MLPRT_CUBLAS_TRY(m_matmuls[l].run(m_exe.lt_handle(), a, b, y, m_workspace.get(),
                                      m_workspace.bytes(), stream, residual),
                     "cublasLtMatmul of layer '" + layer.name + "'");
    const ir::MatMulShape& s = m_matmul_shapes[l];
    if (layer.shift_count > 0 || layer.act.kind != ActKind::kNone) {
      const auto* bias =
          layer.shift_count > 0 ? static_cast<const float*>(layer.matmul_bias.get()) : nullptr;
      MLPRT_CUDA_TRY(launch_bias_activation(y, layer.out_type, bias, s.n, s.transpose_y ? s.m : 1,
                                            n, layer.act, stream),
                     "epilogue kernel of layer '" + layer.name + "'");
    }
    return Status::ok();
  }

  // Chunk sizes, their matmul plans and the events that order the copy streams against the
  // layers, for pinned host I/O (decided at execute; prepared here so execute does not allocate).
  Status prepare_pipeline(const ir::ShapeMap& shapes) {
    m_chunks = 0;
    if (m_device_io || m_fused || !row_parallel(shapes)) return Status::ok();
    const size_t in = m_exe.input_ids()[0];
    const int64_t rows = shapes.at(m_exe.tensors()[in].name)[0];
    const ChunkPlan plan = plan_chunks(rows, io_bytes(in, m_exe.input_types()[0]), layers_us());
    if (plan.chunks == 0) return Status::ok();
    m_chunks = plan.chunks;
    m_chunk_rows = plan.chunk_rows;
    for (size_t t = 0; t < m_exe.tensors().size(); ++t) {
      m_row_elems[t] = m_exe.tensors()[t].role == TensorRole::kConstant ? 0 : m_elements[t] / rows;
    }
    const RowSpan chunk{false, 0, m_chunk_rows};
    const RowSpan tail{false, 0, plan.last_rows};
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const Layer& layer = m_exe.layers()[l];
      if (layer.kind != LayerKind::kDense) continue;
      MLPRT_RETURN_IF_ERROR(plan_dense(layer, l, dense_rows(layer, chunk), m_chunk));
      MLPRT_RETURN_IF_ERROR(plan_dense(layer, l, dense_rows(layer, tail), m_tail));
    }
    const size_t events = 2 * static_cast<size_t>(m_chunks) + 3;
    while (m_events.size() < events) {
      cudaEvent_t event = nullptr;
      MLPRT_CUDA_TRY(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
      m_events.push_back(event);
    }
    detail::log(Severity::kVerbose, "cuda backend: pinned host I/O of ", rows, " rows runs in ",
                m_chunks, " chunks of up to ", m_chunk_rows,
                " rows, each chunk's copies overlapping the other chunks' layers");
    return Status::ok();
  }

  // The prepared shapes' matmul time, as the builder timed it.
  double layers_us() const {
    double total = 0.0;
    for (const Layer& layer : m_exe.layers()) {
      if (layer.kind != LayerKind::kDense) continue;
      total +=
          estimate_dense_us(layer.tuned, dense_rows(layer, RowSpan{}), layer.spec.k, layer.spec.n);
    }
    return total;
  }

  int64_t count(size_t tensor, const RowSpan& span) const {
    return span.whole ? m_elements[tensor] : span.count * m_row_elems[tensor];
  }

  // `base` advanced to the span's first row of `tensor`, whose elements are `size` bytes.
  template <typename T>
  T* at_span(T* base, size_t tensor, const RowSpan& span, size_t size) const {
    if (span.whole || base == nullptr) return base;
    using Byte = std::conditional_t<std::is_const_v<T>, const char, char>;
    return reinterpret_cast<T*>(reinterpret_cast<Byte*>(base) +
                                static_cast<size_t>(span.first * m_row_elems[tensor]) * size);
  }

  // Resolves every tensor's device address for the bound I/O and launches the layers over
  // `span` with the matmul plans made for its row count.
  Status run_layers(cudaStream_t stream, const DensePlans& dense, const RowSpan& span) {
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    if (m_fused) {
      MLPRT_RETURN_IF_ERROR(mark_layer(0, stream));
      MLPRT_RETURN_IF_ERROR(run_fused(stream));
      return mark_layer(1, stream);
    }
    for (size_t t = 0; t < tensors.size(); ++t) {
      if (tensors[t].role == TensorRole::kConstant) m_ptrs[t] = m_exe.constant(t);
    }
    for (size_t i = 0; i < m_exe.input_ids().size(); ++i) {
      const size_t id = m_exe.input_ids()[i];
      const void* x = at_span(m_dev_in[i], id, span, elem_bytes(m_exe.input_types()[i]));
      const ElemType type = m_exe.tensor_type(id);
      if (m_exe.input_types()[i] == type && !m_zero_copy) {
        m_ptrs[id] = const_cast<void*>(x);
      } else {
        m_ptrs[id] = at_span(m_buffers[id].get(), id, span, elem_bytes(type));
        MLPRT_CUDA_TRY(
            launch_cast(x, m_exe.input_types()[i], m_ptrs[id], type, count(id, span), stream),
            "cast of input '" + tensors[id].name + "'");
      }
    }
    // Profiling: the input casts above are before the first mark, in no layer.
    MLPRT_RETURN_IF_ERROR(mark_layer(0, stream));
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const Layer& layer = m_exe.layers()[l];
      const TensorSlot& out = tensors[layer.output];
      if (layer.kind == LayerKind::kView) {
        m_ptrs[layer.output] = m_ptrs[layer.inputs[0]];
        MLPRT_RETURN_IF_ERROR(mark_layer(l + 1, stream));
        continue;
      }
      const ElemType act = layer.out_type;
      const bool direct = out.output_index >= 0 && !m_zero_copy &&
                          m_exe.output_types()[static_cast<size_t>(out.output_index)] == act;
      void* y = at_span(
          direct ? m_dev_out[static_cast<size_t>(out.output_index)] : m_buffers[layer.output].get(),
          layer.output, span, elem_bytes(act));
      m_ptrs[layer.output] = y;
      // Mixed engines: inputs in another type go through a cast kernel into the layer's type.
      std::array<const void*, 3> xs = {nullptr, nullptr, nullptr};  // [2]: a MatMul's residual
      for (size_t i = 0; i < layer.inputs.size() && i < xs.size(); ++i) {
        xs[i] = m_ptrs[layer.inputs[i]];
        if (layer.casts[i] < 0) continue;
        const CastSlot& slot = m_exe.cast_slots()[static_cast<size_t>(layer.casts[i])];
        void* converted = at_span(m_cast_buffers[static_cast<size_t>(layer.casts[i])].get(),
                                  slot.tensor, span, elem_bytes(slot.type));
        MLPRT_CUDA_TRY(launch_cast(xs[i], m_exe.tensor_type(slot.tensor), converted, slot.type,
                                   count(slot.tensor, span), stream),
                       "cast of input '" + tensors[slot.tensor].name + "' of layer '" +
                           layer.name + "'");
        xs[i] = converted;
      }
      const void* x = xs[0];
      const void* residual = layer.residual ? xs[layer.inputs.size() - 1] : nullptr;
      const int64_t n = count(layer.output, span);
      switch (layer.kind) {
        case LayerKind::kDense:
          if (layer.fused_tc) {
            MLPRT_CUDA_TRY(launch_fused_tc(layer.fused_params, x, layer.in_type, y, act,
                                           count(layer.inputs[0], span) / layer.spec.k, stream),
                           "fused tensor-core kernel of layer '" + layer.name + "'");
          } else if (dense.plans[l].m() > 0) {
            MLPRT_CUBLAS_TRY(
                dense.plans[l].run(m_exe.lt_handle(), dense.algos[l], x, layer.weights.get(), y,
                                   m_workspace.get(), m_workspace.bytes(), stream, residual),
                "cublasLtMatmul of layer '" + layer.name + "'");
            if (!layer.spec.lt_activation) {
              MLPRT_CUDA_TRY(launch_activation(y, y, act, layer.spec.act, n, stream),
                             "epilogue kernel of layer '" + layer.name + "'");
            }
          }
          break;
        case LayerKind::kBinary:
          MLPRT_CUDA_TRY(
              launch_binary(x, xs[1], y, act, layer.binary, m_add[l], n, stream),
              "binary kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kActivation:
          MLPRT_CUDA_TRY(launch_activation(x, y, act, layer.act, n, stream),
                         "activation kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kSoftmax:
          MLPRT_CUDA_TRY(launch_softmax(x, y, act, m_rows[l], layer.log, stream),
                         "softmax kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kLayerNorm:
          MLPRT_CUDA_TRY(
              launch_layer_norm(x, y, act, m_rows[l], layer.epsilon,
                                static_cast<const float*>(layer.scale.get()), layer.scale_count,
                                static_cast<const float*>(layer.shift.get()), layer.shift_count,
                                stream),
              "layer norm kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kScaleShift:
          MLPRT_CUDA_TRY(
              launch_scale_shift(x, y, act, m_rows[l], static_cast<const float*>(layer.scale.get()),
                                 static_cast<const float*>(layer.shift.get()), stream),
              "scale-shift kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kCopy:
          MLPRT_CUDA_TRY(launch_strided_copy(x, y, act, m_gathers[l], n, stream),
                         "strided copy kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kReduceMean:
          MLPRT_CUDA_TRY(launch_reduce_mean(x, y, act, m_reduces[l], n, stream),
                         "reduce-mean kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kMatMul:
          MLPRT_RETURN_IF_ERROR(run_matmul(layer, l, x, xs[1], residual, y, n, stream));
          break;
        case LayerKind::kView:
          break;
      }
      MLPRT_RETURN_IF_ERROR(mark_layer(l + 1, stream));
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const size_t id = m_exe.output_ids()[i];
      void* y = at_span(m_dev_out[i], id, span, elem_bytes(m_exe.output_types()[i]));
      if (m_ptrs[id] == y || count(id, span) == 0) continue;
      MLPRT_CUDA_TRY(
          launch_cast(m_ptrs[id], m_exe.tensor_type(id), y, m_exe.output_types()[i],
                      count(id, span), stream),
          "copy of output '" + tensors[id].name + "'");
    }
    return Status::ok();
  }

  // The fused kernel reads and writes the I/O types itself.
  Status run_fused(cudaStream_t stream) {
    if (m_fused_tc) {
      MLPRT_CUDA_TRY(launch_fused_tc(m_exe.fused_tc(), m_dev_in[0], m_exe.input_types()[0],
                                     m_dev_out[0], m_exe.output_types()[0], m_fused_rows, stream),
                     "fused tensor-core MLP kernel");
      return Status::ok();
    }
    MLPRT_CUDA_TRY(launch_fused_mlp(m_exe.fused(), m_dev_in[0], m_exe.input_types()[0],
                                    m_dev_out[0], m_exe.output_types()[0], m_fused_rows, stream),
                   "fused MLP kernel");
    return Status::ok();
  }

  // The host <-> device copies (pinned host memory only) around the layers, for the graph.
  Status run_all(cudaStream_t stream) {
    // Profiling: one pass over the whole rows, so that each layer has one pair of events.
    if (m_copies_in_graph && m_chunks > 1 && m_profiler == nullptr) return run_pipelined(stream);
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    for (size_t i = 0; m_copies_in_graph && i < m_exe.input_ids().size(); ++i) {
      MLPRT_CUDA_TRY(cudaMemcpyAsync(m_io_in[i].get(), m_caller_in[i],
                                     io_bytes(m_exe.input_ids()[i], m_exe.input_types()[i]),
                                     cudaMemcpyHostToDevice, stream),
                     "copy of input '" + tensors[m_exe.input_ids()[i]].name + "' to the device");
    }
    MLPRT_RETURN_IF_ERROR(run_layers(stream, m_whole, RowSpan{}));
    for (size_t i = 0; m_copies_in_graph && i < m_exe.output_ids().size(); ++i) {
      MLPRT_CUDA_TRY(cudaMemcpyAsync(m_caller_out[i], m_io_out[i].get(),
                                     io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]),
                                     cudaMemcpyDeviceToHost, stream),
                     "copy of output '" + tensors[m_exe.output_ids()[i]].name + "' to the host");
    }
    return Status::ok();
  }

  // Chunk c's input copy (copy-in stream), layers (`stream`) and output copy (copy-out stream),
  // ordered by events: while chunk c computes, chunk c + 1 comes in and chunk c - 1 goes out.
  // The layers stay on one stream, in chunk order, because they share the cuBLASLt workspace.
  Status run_pipelined(cudaStream_t stream) {
    const size_t in = m_exe.input_ids()[0];
    const size_t out = m_exe.output_ids()[0];
    const size_t in_size = elem_bytes(m_exe.input_types()[0]);
    const size_t out_size = elem_bytes(m_exe.output_types()[0]);
    const int64_t rows = m_elements[in] / m_row_elems[in];
    const auto fork = [](cudaEvent_t event, cudaStream_t from, cudaStream_t to) {
      cudaError_t err = cudaEventRecord(event, from);
      return err == cudaSuccess ? cudaStreamWaitEvent(to, event, 0) : err;
    };
    MLPRT_CUDA_TRY(fork(m_events[0], stream, m_copy_in_stream), "pipeline fork");
    MLPRT_CUDA_TRY(cudaStreamWaitEvent(m_copy_out_stream, m_events[0], 0), "pipeline fork");
    for (int64_t c = 0; c < m_chunks; ++c) {
      const RowSpan span{false, c * m_chunk_rows, std::min(m_chunk_rows, rows - c * m_chunk_rows)};
      const auto e = static_cast<size_t>(2 * c);
      MLPRT_CUDA_TRY(cudaMemcpyAsync(at_span(m_io_in[0].get(), in, span, in_size),
                                     at_span(m_caller_in[0], in, span, in_size),
                                     static_cast<size_t>(count(in, span)) * in_size,
                                     cudaMemcpyHostToDevice, m_copy_in_stream),
                     "copy of a chunk of input '" + m_exe.tensors()[in].name + "' to the device");
      MLPRT_CUDA_TRY(fork(m_events[e + 1], m_copy_in_stream, stream), "pipeline chunk input");
      MLPRT_RETURN_IF_ERROR(run_layers(stream, c + 1 < m_chunks ? m_chunk : m_tail, span));
      MLPRT_CUDA_TRY(fork(m_events[e + 2], stream, m_copy_out_stream), "pipeline chunk output");
      MLPRT_CUDA_TRY(cudaMemcpyAsync(at_span(m_caller_out[0], out, span, out_size),
                                     at_span(m_io_out[0].get(), out, span, out_size),
                                     static_cast<size_t>(count(out, span)) * out_size,
                                     cudaMemcpyDeviceToHost, m_copy_out_stream),
                     "copy of a chunk of output '" + m_exe.tensors()[out].name + "' to the host");
    }
    const auto last = static_cast<size_t>(2 * m_chunks);
    MLPRT_CUDA_TRY(fork(m_events[last + 1], m_copy_out_stream, stream), "pipeline join");
    MLPRT_CUDA_TRY(fork(m_events[last + 2], m_copy_in_stream, stream), "pipeline join");
    return Status::ok();
  }

  // What decides the captured graph's nodes besides the addresses: copy nodes, zero-copy kernels
  // and the I/O addresses' alignment (our kernels and cuBLASLt pick vector widths by it). An
  // in-place update cannot change nodes: a change here instantiates anew instead of failing one.
  void graph_form(std::vector<uintptr_t>& form) const {
    form.assign({m_copies_in_graph, m_zero_copy});
    const auto alignment = [](const void* p) {
      const auto a = reinterpret_cast<uintptr_t>(p);
      return std::min<uintptr_t>(a & (~a + 1), 256);
    };
    for (const void* p : m_dev_in) form.push_back(alignment(p));
    for (const void* p : m_dev_out) form.push_back(alignment(p));
  }

  // Graphs per prepared shape set, one per set of bound addresses, the kGraphSlots (or, split
  // batch, one per chunk) most recently used kept: a caller that alternates output buffers (a framework's allocator) replays instead
  // of re-capturing. A miss re-captures into the least recently used slot (updated in place
  // when its form allows).
  Status launch_graph(cudaStream_t stream) {
    // Profiling launches directly: events between the layers, read after the call.
    if (!m_use_graph || m_direct_launches || m_profiler) return run_all(stream);
    // A graph launch cannot be captured: in the caller's own capture our kernels go in directly.
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    MLPRT_CUDA_TRY(cudaStreamIsCapturing(stream, &capturing), "cudaStreamIsCapturing");
    if (capturing != cudaStreamCaptureStatusNone) return run_all(stream);
    m_key_scratch.assign(m_dev_in.begin(), m_dev_in.end());
    m_key_scratch.insert(m_key_scratch.end(), m_dev_out.begin(), m_dev_out.end());
    if (m_copies_in_graph) {
      m_key_scratch.insert(m_key_scratch.end(), m_caller_in.begin(), m_caller_in.end());
      m_key_scratch.insert(m_key_scratch.end(), m_caller_out.begin(), m_caller_out.end());
    }
    graph_form(m_form_scratch);
    GraphSlot* slot = nullptr;
    for (GraphSlot& g : m_graphs) {
      if (g.exec != nullptr && g.key == m_key_scratch && g.form == m_form_scratch) slot = &g;
    }
    if (slot == nullptr) {
      slot = &m_graphs[0];
      for (GraphSlot& g : m_graphs) {
        if (g.last_use < slot->last_use) slot = &g;
      }
      if (slot->exec != nullptr && slot->form != m_form_scratch) drop_graph(*slot);
      MLPRT_CUDA_TRY(cudaStreamBeginCapture(m_capture_stream, cudaStreamCaptureModeThreadLocal),
                     "cudaStreamBeginCapture");
      const Status run = run_all(m_capture_stream);
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(m_capture_stream, &graph);
      if (end == cudaErrorStreamCaptureInvalidated) {
        // Another thread's synchronizing call (cudaFree, cudaFreeHost, ...) ended the capture;
        // nothing of it ran. This call runs uncaptured and the next one captures again.
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        detail::log(Severity::kVerbose,
                    "cuda backend: CUDA graph capture invalidated by a synchronizing call on "
                    "another thread; this call runs without the graph");
        return run_all(stream);
      }
      if (!run.is_ok()) {
        if (graph) cudaGraphDestroy(graph);
        return run;
      }
      MLPRT_CUDA_TRY(end, "cudaStreamEndCapture");
      cudaError_t err = cudaErrorUnknown;
      if (slot->exec != nullptr) {
        cudaGraphExecUpdateResultInfo info{};
        err = cudaGraphExecUpdate(slot->exec, graph, &info);
        if (err != cudaSuccess) {
          cudaGetLastError();
          drop_graph(*slot);
        }
      }
      if (slot->exec == nullptr) err = cudaGraphInstantiate(&slot->exec, graph, 0);
      cudaGraphDestroy(graph);
      MLPRT_CUDA_TRY(err, "cudaGraphInstantiate");
      slot->key = m_key_scratch;
      slot->form = m_form_scratch;
    }
    slot->last_use = ++m_graph_clock;
    MLPRT_CUDA_TRY(cudaGraphLaunch(slot->exec, stream), "cudaGraphLaunch");
    return Status::ok();
  }

  const CudaExecutable& m_exe;
  cudaStream_t m_stream = nullptr;          // for callers that pass no stream
  cudaStream_t m_capture_stream = nullptr;  // graphs are captured here, launched on the caller's
  DeviceBuffer m_workspace;
  std::vector<DeviceBuffer> m_buffers;  // per tensor id, in its type (Executable::tensor_type)
  std::vector<DeviceBuffer> m_cast_buffers;  // per Executable::cast_slots() entry
  std::vector<int64_t> m_elements;
  std::vector<void*> m_ptrs;
  DensePlans m_whole;    // the prepared shapes
  DensePlans m_chunk;    // pipelined pinned I/O: a chunk of m_chunk_rows rows
  DensePlans m_tail;     // and the last, shorter one
  int64_t m_chunks = 0;  // > 1: pinned host I/O runs pipelined (run_pipelined)
  int64_t m_chunk_rows = 0;
  std::vector<int64_t> m_row_elems;  // per tensor, elements per input row (pipelined only)
  cudaStream_t m_copy_in_stream = nullptr;
  cudaStream_t m_copy_out_stream = nullptr;
  std::vector<cudaEvent_t> m_events;
  std::vector<BroadcastShape> m_add;  // per kBinary layer
  std::vector<RowShape> m_rows;       // per kSoftmax / kLayerNorm / kScaleShift layer
  std::vector<GatherShape> m_gathers;  // per kCopy layer
  std::vector<ReduceShape> m_reduces;  // per kReduceMean layer
  std::vector<BatchedMatmulPlan> m_matmuls;  // per kMatMul layer
  std::vector<ir::MatMulShape> m_matmul_shapes;  // per kMatMul layer (bias epilogue sizes)
  std::vector<const void*> m_dev_in;
  std::vector<void*> m_dev_out;
  std::vector<const void*> m_caller_in;  // this call's addresses, as bound
  std::vector<void*> m_caller_out;
  std::vector<bool> m_in_pinned;  // host I/O: whether the caller's memory is pinned
  std::vector<bool> m_out_pinned;
  std::vector<const void*> m_in_view;  // device addresses of mapped pinned memory, or nullptr
  std::vector<void*> m_out_view;
  bool m_copies_in_graph = false;
  bool m_small_io = false;   // host I/O within kZeroCopyBytes (prepare)
  bool m_zero_copy = false;  // this call's I/O is small and in mapped pinned memory
  bool m_use_graph = true;
  std::vector<DeviceBuffer> m_io_in;  // host I/O: device copies, in the I/O types
  std::vector<DeviceBuffer> m_io_out;
  std::vector<PinnedBuffer> m_pinned_in;  // host I/O from pageable memory: staging
  std::vector<PinnedBuffer> m_pinned_out;
  std::vector<GraphSlot> m_graphs = std::vector<GraphSlot>(kGraphSlots);
  bool m_direct_launches = false;  // split batch with more chunks than kMaxGraphSlots
  uint64_t m_graph_clock = 0;  // last_use stamps
  std::vector<const void*> m_key_scratch;
  std::vector<uintptr_t> m_form_scratch;
  bool m_device_io = false;
  bool m_prepared = false;
  bool m_fused = false;
  bool m_fused_tc = false;  ///< m_fused with the tensor-core kernel
  int64_t m_fused_rows = 0;
  Profiler* m_profiler = nullptr;  // per-layer timing; nullptr: off
  std::vector<cudaEvent_t> m_layer_events;  // profiling: before the first layer, after each
  std::string m_fused_name;  // the fused kernel's profiler entry: every layer's name
};

}  // namespace

Result<std::unique_ptr<BackendContext>> make_cuda_context(const CudaExecutable& executable) {
  auto context = std::make_unique<CudaContext>(executable);
  MLPRT_RETURN_IF_ERROR(context->init());
  return std::unique_ptr<BackendContext>(std::move(context));
}

}  // namespace mlprt::backend::cuda
