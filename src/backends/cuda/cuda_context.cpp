// The cuda backend's per-caller state. prepare() sizes buffers and cuBLASLt descriptors;
// execute() launches a CUDA graph of the whole network (captured on first use for the prepared
// shapes and bound device addresses) and, for host addresses, the copies around it.

#include <algorithm>
#include <cstring>

#include "backends/broadcast_strides.h"
#include "backends/cuda/cuda_executable.h"
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

// Largest input the fused kernel reads straight from mapped pinned host memory.
constexpr size_t kZeroCopyBytes = size_t{64} << 10;

class CudaContext final : public BackendContext {
 public:
  explicit CudaContext(const CudaExecutable& exe)
      : m_exe(exe),
        m_buffers(exe.tensors().size()),
        m_elements(exe.tensors().size(), 0),
        m_ptrs(exe.tensors().size(), nullptr),
        m_plans(exe.layers().size()),
        m_algos(exe.layers().size()),
        m_add(exe.layers().size()),
        m_rows(exe.layers().size()),
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
        m_pinned_out(exe.output_ids().size()) {}

  ~CudaContext() override {
    if (use_device(m_exe.device()).is_ok()) {
      if (m_stream) cudaStreamSynchronize(m_stream);
      if (m_graph_exec) cudaGraphExecDestroy(m_graph_exec);
      if (m_capture_stream) cudaStreamDestroy(m_capture_stream);
      if (m_stream) cudaStreamDestroy(m_stream);
      if (m_handle) cublasLtDestroy(m_handle);
    }
  }

  Status init() {
    // cudaSetDevice, not use_device: it also makes the primary context current on a thread that
    // has not used CUDA yet, which cublasLtCreate expects (compute-sanitizer flagged it).
    MLPRT_CUDA_TRY(cudaSetDevice(m_exe.device()), "cudaSetDevice");
    MLPRT_CUBLAS_TRY(cublasLtCreate(&m_handle), "cublasLtCreate");
    MLPRT_CUDA_TRY(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking), "cudaStreamCreate");
    MLPRT_CUDA_TRY(cudaStreamCreateWithFlags(&m_capture_stream, cudaStreamNonBlocking),
                   "cudaStreamCreate");
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

  Status prepare(const ir::ShapeMap& shapes) override {
    m_prepared = false;
    drop_graph();
    MLPRT_RETURN_IF_ERROR(use_device(m_exe.device()));
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    const Precision prec = m_exe.blob().precision;
    const ElemType act = storage_type(prec);
    for (size_t t = 0; t < tensors.size(); ++t) {
      auto it = shapes.find(tensors[t].name);
      if (it == shapes.end()) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: prepare: no shape for '",
                          tensors[t].name, "'");
      }
      MLPRT_ASSIGN_OR_RETURN(m_elements[t], volume(it->second));
      const bool computed = tensors[t].role == TensorRole::kComputed && !tensors[t].is_view;
      const bool cast_input = tensors[t].role == TensorRole::kInput && input_type(t) != act;
      // A graph output in the activations' type is written straight into the caller's buffer.
      const bool direct_output =
          tensors[t].output_index >= 0 &&
          m_exe.output_types()[static_cast<size_t>(tensors[t].output_index)] == act;
      const bool needs = cast_input || (computed && !direct_output);
      if (needs) {
        MLPRT_RETURN_IF_ERROR(m_buffers[t].reserve(
            std::max<size_t>(static_cast<size_t>(m_elements[t]) * storage_size(prec), 16),
            "tensor '" + tensors[t].name + "' of shape " + to_string(it->second)));
      }
    }
    m_fused = false;
    const int64_t in_elements = m_elements[m_exe.input_ids().front()];
    if (m_exe.fusable()) {
      const int64_t rows = in_elements / m_exe.fused().layers[0].k;
      m_fused = rows <= m_exe.blob().fused_max_rows;
      m_fused_rows = rows;
    }
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const Layer& layer = m_exe.layers()[l];
      const Dims& in = shapes.at(tensors[layer.inputs[0]].name);
      if (layer.kind == LayerKind::kDense && !m_fused) {
        MLPRT_RETURN_IF_ERROR(prepare_dense(layer, l, in));
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
      }
    }
    for (size_t i = 0; i < m_exe.input_ids().size(); ++i) {
      const size_t bytes = std::max<size_t>(io_bytes(m_exe.input_ids()[i], m_exe.input_types()[i]), 16);
      if (!m_device_io) {
        MLPRT_RETURN_IF_ERROR(m_io_in[i].reserve(bytes, "device copy of an input"));
        MLPRT_RETURN_IF_ERROR(m_pinned_in[i].reserve(bytes, "pinned staging of an input"));
      }
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const size_t bytes = std::max<size_t>(io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]), 16);
      if (!m_device_io) {
        MLPRT_RETURN_IF_ERROR(m_io_out[i].reserve(bytes, "device copy of an output"));
        MLPRT_RETURN_IF_ERROR(m_pinned_out[i].reserve(bytes, "pinned staging of an output"));
      }
    }
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
    // From pinned host memory the copies are part of the graph: one launch per call. A small
    // batch on the fused kernel reads its input from and writes its output to mapped pinned
    // memory itself: no copy nodes, whose fixed cost is most of such a call.
    m_copies_in_graph = !m_device_io && all_pinned;
    if (m_copies_in_graph && m_fused && m_in_view[0] != nullptr && m_out_view[0] != nullptr &&
        io_bytes(m_exe.input_ids()[0], m_exe.input_types()[0]) <= kZeroCopyBytes) {
      m_copies_in_graph = false;
      m_dev_in[0] = m_in_view[0];
      m_dev_out[0] = m_out_view[0];
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
        MLPRT_CUDA_TRY(cudaMemcpyAsync(m_io_in[i].get(), src, bytes, cudaMemcpyHostToDevice, stream),
                       "copy of input '" + tensors[m_exe.input_ids()[i]].name + "' to the device");
      }
    }
    MLPRT_RETURN_IF_ERROR(launch_graph(stream));
    if (separate_copies) {
      for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
        const size_t bytes = io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]);
        void* dst = m_out_pinned[i] ? m_caller_out[i] : m_pinned_out[i].get();
        staged = staged || !m_out_pinned[i];
        MLPRT_CUDA_TRY(cudaMemcpyAsync(dst, m_io_out[i].get(), bytes, cudaMemcpyDeviceToHost, stream),
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

  ElemType input_type(size_t tensor_id) const {
    const auto& ids = m_exe.input_ids();
    const auto at = static_cast<size_t>(std::find(ids.begin(), ids.end(), tensor_id) - ids.begin());
    return at < ids.size() ? m_exe.input_types()[at] : ElemType::kF32;
  }

  size_t io_bytes(size_t tensor_id, ElemType type) const {
    return static_cast<size_t>(m_elements[tensor_id]) * (type == ElemType::kF32 ? 4 : 2);
  }

  void drop_graph() {
    if (m_graph_exec) cudaGraphExecDestroy(m_graph_exec);
    m_graph_exec = nullptr;
    m_graph_key.clear();
  }

  Status prepare_dense(const Layer& layer, size_t index, const Dims& x) {
    const DenseSpec& spec = layer.spec;
    const int64_t k = spec.transpose_x ? (x.size() == 2 ? x[0] : -1) : (x.empty() ? -1 : x.back());
    if (k != spec.k) {
      return make_error(StatusCode::kInvalidArgument, "cuda backend: layer '", layer.name,
                        "' (Dense): input of shape ", to_string(x), " does not have ", spec.k,
                        " features");
    }
    const int64_t m = spec.transpose_x ? x[1] : m_elements[layer.inputs[0]] / spec.k;
    if (m_plans[index].m() == m && m > 0) return Status::ok();
    if (m == 0) {
      m_plans[index] = MatmulPlan();
      return Status::ok();
    }
    MLPRT_ASSIGN_OR_RETURN(m_plans[index],
                           MatmulPlan::create(spec, m_exe.blob().precision, m, layer.bias.get()));
    const size_t ws = m_workspace.bytes();
    auto tuned = std::find_if(layer.tuned.begin(), layer.tuned.end(),
                              [&](const TunedAlgo& t) { return t.m == m; });
    if (tuned != layer.tuned.end()) {
      MLPRT_RETURN_IF_ERROR(m_plans[index].check(m_handle, tuned->algo, ws).with_context(
          "layer '" + layer.name + "': the plan's tactic for M=" + std::to_string(m) +
          " does not run here; rebuild the plan"));
      m_algos[index] = tuned->algo;
      return Status::ok();
    }
    MLPRT_ASSIGN_OR_RETURN(auto candidates, m_plans[index].candidates(m_handle, ws, 1));
    m_algos[index] = candidates.front();
    detail::log(Severity::kVerbose, "cuda backend: layer '", layer.name, "' M=", m,
                " was not tuned at build time; cuBLASLt heuristic: ", describe_algo(candidates.front()));
    return Status::ok();
  }

  // Resolves every tensor's device address for the bound I/O and launches the layers.
  Status run_layers(cudaStream_t stream) {
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    const Precision prec = m_exe.blob().precision;
    const ElemType act = storage_type(prec);
    if (m_fused) return run_fused(stream);
    for (size_t t = 0; t < tensors.size(); ++t) {
      if (tensors[t].role == TensorRole::kConstant) m_ptrs[t] = m_exe.constant(t);
    }
    for (size_t i = 0; i < m_exe.input_ids().size(); ++i) {
      const size_t id = m_exe.input_ids()[i];
      if (m_exe.input_types()[i] == act) {
        m_ptrs[id] = const_cast<void*>(m_dev_in[i]);
      } else {
        m_ptrs[id] = m_buffers[id].get();
        MLPRT_CUDA_TRY(launch_cast(m_dev_in[i], m_exe.input_types()[i], m_ptrs[id], act,
                                   m_elements[id], stream),
                       "cast of input '" + tensors[id].name + "'");
      }
    }
    for (size_t l = 0; l < m_exe.layers().size(); ++l) {
      const Layer& layer = m_exe.layers()[l];
      const TensorSlot& out = tensors[layer.output];
      if (layer.kind == LayerKind::kView) {
        m_ptrs[layer.output] = m_ptrs[layer.inputs[0]];
        continue;
      }
      const bool direct =
          out.output_index >= 0 &&
          m_exe.output_types()[static_cast<size_t>(out.output_index)] == act;
      void* y = direct ? m_dev_out[static_cast<size_t>(out.output_index)]
                       : m_buffers[layer.output].get();
      m_ptrs[layer.output] = y;
      const void* x = m_ptrs[layer.inputs[0]];
      const int64_t n = m_elements[layer.output];
      switch (layer.kind) {
        case LayerKind::kDense:
          if (m_plans[l].m() > 0) {
            MLPRT_CUBLAS_TRY(m_plans[l].run(m_handle, m_algos[l], x, layer.weights.get(), y,
                                            m_workspace.get(), m_workspace.bytes(), stream),
                             "cublasLtMatmul of layer '" + layer.name + "'");
            if (!layer.spec.lt_activation) {
              MLPRT_CUDA_TRY(launch_activation(y, y, act, layer.spec.act, n, stream),
                             "epilogue kernel of layer '" + layer.name + "'");
            }
          }
          break;
        case LayerKind::kBinary:
          MLPRT_CUDA_TRY(launch_binary(x, m_ptrs[layer.inputs[1]], y, act, layer.binary, m_add[l],
                                       n, stream),
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
          MLPRT_CUDA_TRY(launch_layer_norm(x, y, act, m_rows[l], layer.epsilon,
                                           static_cast<const float*>(layer.scale.get()),
                                           layer.scale_count,
                                           static_cast<const float*>(layer.shift.get()),
                                           layer.shift_count, stream),
                         "layer norm kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kScaleShift:
          MLPRT_CUDA_TRY(launch_scale_shift(x, y, act, m_rows[l],
                                            static_cast<const float*>(layer.scale.get()),
                                            static_cast<const float*>(layer.shift.get()), stream),
                         "scale-shift kernel of layer '" + layer.name + "'");
          break;
        case LayerKind::kView: break;
      }
    }
    for (size_t i = 0; i < m_exe.output_ids().size(); ++i) {
      const size_t id = m_exe.output_ids()[i];
      if (m_ptrs[id] == m_dev_out[i] || m_elements[id] == 0) continue;
      MLPRT_CUDA_TRY(launch_cast(m_ptrs[id], act, m_dev_out[i], m_exe.output_types()[i],
                                 m_elements[id], stream),
                     "copy of output '" + tensors[id].name + "'");
    }
    return Status::ok();
  }

  // The fused kernel reads and writes the I/O types itself.
  Status run_fused(cudaStream_t stream) {
    MLPRT_CUDA_TRY(launch_fused_mlp(m_exe.fused(), m_dev_in[0], m_exe.input_types()[0],
                                    m_dev_out[0], m_exe.output_types()[0], m_fused_rows, stream),
                   "fused MLP kernel");
    return Status::ok();
  }

  // The host <-> device copies (pinned host memory only) around the layers, for the graph.
  Status run_all(cudaStream_t stream) {
    const std::vector<TensorSlot>& tensors = m_exe.tensors();
    for (size_t i = 0; m_copies_in_graph && i < m_exe.input_ids().size(); ++i) {
      MLPRT_CUDA_TRY(cudaMemcpyAsync(m_io_in[i].get(), m_caller_in[i],
                                     io_bytes(m_exe.input_ids()[i], m_exe.input_types()[i]),
                                     cudaMemcpyHostToDevice, stream),
                     "copy of input '" + tensors[m_exe.input_ids()[i]].name + "' to the device");
    }
    MLPRT_RETURN_IF_ERROR(run_layers(stream));
    for (size_t i = 0; m_copies_in_graph && i < m_exe.output_ids().size(); ++i) {
      MLPRT_CUDA_TRY(cudaMemcpyAsync(m_caller_out[i], m_io_out[i].get(),
                                     io_bytes(m_exe.output_ids()[i], m_exe.output_types()[i]),
                                     cudaMemcpyDeviceToHost, stream),
                     "copy of output '" + tensors[m_exe.output_ids()[i]].name + "' to the host");
    }
    return Status::ok();
  }

  // One graph per prepared shape set; re-captured (and updated in place) when the bound
  // device addresses change.
  Status launch_graph(cudaStream_t stream) {
    if (!m_use_graph) return run_all(stream);
    m_key_scratch.assign(m_dev_in.begin(), m_dev_in.end());
    m_key_scratch.insert(m_key_scratch.end(), m_dev_out.begin(), m_dev_out.end());
    m_key_scratch.push_back(m_copies_in_graph ? &m_copies_in_graph : nullptr);
    if (m_copies_in_graph) {
      m_key_scratch.insert(m_key_scratch.end(), m_caller_in.begin(), m_caller_in.end());
      m_key_scratch.insert(m_key_scratch.end(), m_caller_out.begin(), m_caller_out.end());
    }
    // With or without the copies the graph has other nodes: no in-place update across that.
    if (m_graph_exec != nullptr && m_graph_has_copies != m_copies_in_graph) drop_graph();
    if (m_graph_exec == nullptr || m_key_scratch != m_graph_key) {
      MLPRT_CUDA_TRY(cudaStreamBeginCapture(m_capture_stream, cudaStreamCaptureModeThreadLocal),
                     "cudaStreamBeginCapture");
      const Status run = run_all(m_capture_stream);
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(m_capture_stream, &graph);
      if (!run.is_ok()) {
        if (graph) cudaGraphDestroy(graph);
        return run;
      }
      MLPRT_CUDA_TRY(end, "cudaStreamEndCapture");
      cudaError_t err = cudaErrorUnknown;
      if (m_graph_exec != nullptr) {
        cudaGraphExecUpdateResultInfo info{};
        err = cudaGraphExecUpdate(m_graph_exec, graph, &info);
        if (err != cudaSuccess) {
          cudaGetLastError();
          drop_graph();
        }
      }
      if (m_graph_exec == nullptr) err = cudaGraphInstantiate(&m_graph_exec, graph, 0);
      cudaGraphDestroy(graph);
      MLPRT_CUDA_TRY(err, "cudaGraphInstantiate");
      m_graph_key = m_key_scratch;
      m_graph_has_copies = m_copies_in_graph;
    }
    MLPRT_CUDA_TRY(cudaGraphLaunch(m_graph_exec, stream), "cudaGraphLaunch");
    return Status::ok();
  }

  const CudaExecutable& m_exe;
  cublasLtHandle_t m_handle = nullptr;
  cudaStream_t m_stream = nullptr;          // for callers that pass no stream
  cudaStream_t m_capture_stream = nullptr;  // graphs are captured here, launched on the caller's
  DeviceBuffer m_workspace;
  std::vector<DeviceBuffer> m_buffers;  // per tensor id, in the plan's precision
  std::vector<int64_t> m_elements;
  std::vector<void*> m_ptrs;
  std::vector<MatmulPlan> m_plans;  // per layer
  std::vector<cublasLtMatmulAlgo_t> m_algos;
  std::vector<BroadcastShape> m_add;  // per kBinary layer
  std::vector<RowShape> m_rows;       // per kSoftmax / kLayerNorm / kScaleShift layer
  std::vector<const void*> m_dev_in;
  std::vector<void*> m_dev_out;
  std::vector<const void*> m_caller_in;  // this call's addresses, as bound
  std::vector<void*> m_caller_out;
  std::vector<bool> m_in_pinned;  // host I/O: whether the caller's memory is pinned
  std::vector<bool> m_out_pinned;
  std::vector<const void*> m_in_view;  // device addresses of mapped pinned memory, or nullptr
  std::vector<void*> m_out_view;
  bool m_copies_in_graph = false;
  bool m_use_graph = true;
  bool m_graph_has_copies = false;
  std::vector<DeviceBuffer> m_io_in;  // host I/O: device copies, in the I/O types
  std::vector<DeviceBuffer> m_io_out;
  std::vector<PinnedBuffer> m_pinned_in;  // host I/O from pageable memory: staging
  std::vector<PinnedBuffer> m_pinned_out;
  cudaGraphExec_t m_graph_exec = nullptr;
  std::vector<const void*> m_graph_key;
  std::vector<const void*> m_key_scratch;
  bool m_device_io = false;
  bool m_prepared = false;
  bool m_fused = false;
  int64_t m_fused_rows = 0;
};

}  // namespace

Result<std::unique_ptr<BackendContext>> make_cuda_context(const CudaExecutable& executable) {
  auto context = std::make_unique<CudaContext>(executable);
  MLPRT_RETURN_IF_ERROR(context->init());
  return std::unique_ptr<BackendContext>(std::move(context));
}

}  // namespace mlprt::backend::cuda
