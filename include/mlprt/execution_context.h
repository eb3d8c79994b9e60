#pragma once
/// @file execution_context.h
/// One caller's state for running an engine: the selected profile, the input shapes, and the
/// buffers sized for them. Not thread-safe: use one context per thread.
///
/// Order of calls: set_optimization_profile -> [set_tensor_location] -> set_input_shape (may
/// allocate) -> set_tensor_address -> enqueue (never allocates) -> read outputs.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "mlprt/profiler.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt {

namespace detail {
struct EngineState;
class ContextState;
}  // namespace detail

/// Where the memory given to set_tensor_address lives.
///  * kHost (default): host memory. On a cuda engine the context copies inputs to the GPU and
///    outputs back itself. From pinned memory (cudaMallocHost) the copies are asynchronous on
///    the enqueue stream; pageable memory goes through the context's own pinned buffers and
///    enqueue returns only when the outputs are in place.
///  * kDevice: device memory on the engine's GPU, used as is (cuda engines only).
enum class TensorLocation : uint8_t { kHost, kDevice };

/// A non-owning view of a tensor with its real shape.
struct TensorView {
  DataType dtype = DataType::kFloat32;
  Dims dims;
  const void* data = nullptr;
  template <typename T>
  [[nodiscard]] std::span<const T> as() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return {static_cast<const T*>(data), static_cast<size_t>(n)};
  }
};

class ExecutionContext {
 public:
  explicit ExecutionContext(std::unique_ptr<detail::ContextState> state);
  ~ExecutionContext();
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  /// Selects the profile whose ranges the next input shapes must fall in. Default: 0.
  Status set_optimization_profile(int index);
  [[nodiscard]] int optimization_profile() const;

  /// Where every I/O address lives from now on (see TensorLocation). Error on a backend that
  /// only reads host memory. The context re-sizes its buffers for the current shapes.
  Status set_tensor_location(TensorLocation location);
  [[nodiscard]] TensorLocation tensor_location() const;

  /// Sets the concrete shape of an input; must be within the selected profile's range. An input
  /// without dynamic dimensions has its shape from the start (as in TensorRT).
  /// Buffers are (re)sized here, only when a shape grows.
  Status set_input_shape(const std::string& name, const Dims& dims);
  /// Concrete shape of any I/O tensor; outputs resolve once every input shape is set.
  [[nodiscard]] Result<Dims> tensor_shape(const std::string& name) const;

  /// Binds caller-owned memory (see set_tensor_location) to an I/O tensor. With host memory an
  /// unbound output is written to a buffer the context owns, readable with output(); with device
  /// memory every output must be bound.
  Status set_tensor_address(const std::string& name, void* address);

  /// Runs the engine on `stream`, a cudaStream_t for cuda engines: the work is queued there and
  /// the call returns without waiting (except for pageable host memory, see TensorLocation).
  /// nullptr: the context's own stream, and the call returns when the outputs are ready. The cpu
  /// backend runs on the calling thread and returns when done. Never allocates; a cuda context
  /// captures a CUDA graph the first time it runs a shape with given addresses and replays it.
  Status enqueue(void* stream = nullptr);

  /// Host threads this context's enqueue calls may use. Default, and 0: the count the plan was
  /// built for (BuilderConfig::num_threads; a plan built with 0 uses OpenMP's setting, i.e.
  /// OMP_NUM_THREADS or every core). The cpu backend applies it to the calling thread for the
  /// duration of each enqueue. Its fixed-shape kernels were created for the plan's count and
  /// keep that split, so for another count rebuild the plan with it. Backends without host
  /// threads return kUnsupported.
  Status set_num_threads(int threads);
  /// Whether enqueue replays a CUDA graph (default: true) or launches the kernels one by one.
  /// A graph is captured once per input shape and set of addresses: for shapes that change on
  /// almost every call, direct launches avoid the capture. kUnsupported on host-only backends.
  Status set_use_cuda_graph(bool use);

  /// Split batch (default: off). When on, an input shape whose axis 0 (the batch) is past the
  /// max of every optimization profile is accepted, and enqueue runs the rows in chunks of the
  /// best profile, reading and writing the caller's buffers at each chunk's offset, the outputs
  /// concatenated along axis 0 as one call would give them. The best profile is the one with
  /// the largest max batch that holds the other dims; a chunk is that max (a profile whose opt
  /// equals its max has kernels tuned for the chunks). A remainder runs as one shorter chunk in
  /// a profile that holds it (a second backend context, made at set_input_shape), or else as a
  /// full chunk ending at the last row (its overlap with the previous chunk is computed twice).
  /// The selected profile does not matter for such shapes. Allowed only where the builder
  /// proved every layer maps row i of its inputs to row i of its outputs (the plan's
  /// "row_independence"): turning it on for another plan fails, naming the layer that mixes
  /// rows, or asking to rebuild a plan from before this was recorded. Changing it clears the
  /// input shapes. enqueue still never allocates.
  Status set_split_batch(bool split);
  [[nodiscard]] bool split_batch() const;

  /// Per-layer timing (see profiler.h for what each backend reports). While `profiler` is set,
  /// every enqueue reports one time per layer to it and returns only after the reports; on cuda
  /// it launches without a CUDA graph and synchronizes the stream, so calls are slower.
  /// nullptr (the default) turns it off. The context does not own `profiler`. kUnsupported
  /// where the backend cannot time layers.
  Status set_profiler(Profiler* profiler);
  [[nodiscard]] Profiler* profiler() const;

  /// The output with its real shape, valid until the next set_input_shape or enqueue.
  [[nodiscard]] Result<TensorView> output(const std::string& name) const;

 private:
  std::unique_ptr<detail::ContextState> m_state;
};

}  // namespace mlprt
