#pragma once
// The interface every backend implements. The core (builder, runtime) talks to backends only
// through this header and backends/registry.h; it never includes a backend's own headers.
//
// Lifecycle: Backend::compile at build time (choose kernels; result stored in the plan as an
// opaque blob) -> Backend::load at engine load (pack weights once) -> Executable::create_context
// per ExecutionContext -> BackendContext::prepare per input shape (may allocate) ->
// BackendContext::execute per call (never allocates).

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/shape_inference.h"
#include "mlprt/builder_config.h"
#include "mlprt/profiler.h"
#include "mlprt/status.h"

namespace mlprt::backend {

/// Concrete addresses of the graph's inputs and outputs for one call (host memory on cpu,
/// device memory on cuda).
struct IoBindings {
  std::map<std::string, const void*> inputs;
  std::map<std::string, void*> outputs;
  /// True when the addresses are device memory (set with BackendContext::set_device_io).
  bool device_addresses = false;
};

class BackendContext {
 public:
  virtual ~BackendContext() = default;
  /// Called when input shapes change: `shapes` holds every tensor's concrete shape (from
  /// ir::infer_shapes on the plan's graph). Sizes intermediate buffers and kernels.
  virtual Status prepare(const ir::ShapeMap& shapes) = 0;
  /// Whether the I/O addresses of later calls are device memory (false: host memory). The
  /// runtime calls prepare again after a change. Host-only backends refuse `true`.
  virtual Status set_device_io(bool device) {
    if (!device) return Status::ok();
    return Status(StatusCode::kUnsupported,
                  "this backend reads and writes host memory only; device addresses need the "
                  "cuda backend");
  }
  /// Host threads the backend may use for this context's calls (0: its default). Backends
  /// without host-side parallelism refuse it.
  virtual Status set_num_threads(int threads) {
    (void)threads;
    return Status(StatusCode::kUnsupported, "this backend has no thread count setting");
  }
  /// Whether execute replays a captured graph of the launches (true, the default where the
  /// backend has graphs) or launches them one by one. Backends without graphs refuse it.
  virtual Status set_use_graph(bool use) {
    (void)use;
    return Status(StatusCode::kUnsupported, "this backend runs on the host: it has no CUDA graphs");
  }
  /// How many execute calls, each with other I/O addresses, every enqueue makes for the
  /// prepared shapes (split batch: one per chunk of rows; 0 or 1: one). A backend that caches
  /// work by address (the cuda context's CUDA graphs) keeps that many entries, so that chunks
  /// replay instead of evicting each other; others ignore it. May allocate.
  virtual Status set_calls_per_enqueue(size_t calls) {
    (void)calls;
    return Status::ok();
  }
  /// Per-layer timing: while `profiler` is non-null, each execute reports one time per layer, in
  /// graph node order, named as the layer (a whole-network fused kernel: one entry named after
  /// its layers), and returns after the reports (see include/mlprt/profiler.h). nullptr: off.
  /// Every backend must implement it: the default refuses, so that none skips it silently.
  virtual Status set_profiler(Profiler* profiler) {
    if (profiler == nullptr) return Status::ok();
    return Status(StatusCode::kUnsupported, "this backend cannot time its layers");
  }
  /// Runs the graph. `stream` is backend-specific (nullptr: default). Must not allocate.
  virtual Status execute(const IoBindings& io, void* stream) = 0;
};

/// A loaded engine's backend part: immutable after load, shared by contexts on many threads.
class Executable {
 public:
  virtual ~Executable() = default;
  virtual Result<std::unique_ptr<BackendContext>> create_context() const = 0;
  /// Per layer (in graph node order): precision it runs in and the kernel chosen, for inspect.
  virtual std::vector<std::string> layer_precisions() const = 0;
  /// Lines for inspect about whole-network tactics (e.g. the cuda fused MLP's choice); none by
  /// default.
  virtual std::vector<std::string> tactic_notes() const { return {}; }
  /// The GPU the engine's memory lives on; -1 for backends that run on the host.
  [[nodiscard]] virtual int device() const noexcept { return -1; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  /// OK if this machine can run the backend; else why not ("no CUDA device found").
  virtual Status check_available() const = 0;
  /// What plans built here are tied to, e.g. "x86_64 avx512_core_bf16" or "NVIDIA H100 sm_90".
  virtual std::string hardware_id() const = 0;
  /// OK if a plan built for `plan_hardware` runs here; else a message saying what differs.
  virtual Status check_hardware(const std::string& plan_hardware) const = 0;
  /// Whether the backend implements `node` (a layer op) with its dtypes; else why not.
  virtual Status supports(const ir::Graph& graph, const ir::Node& node) const = 0;
  /// Build-time work (tactic choice, ...) on the optimized graph; the result goes into the plan.
  /// `profiles` are the validated profiles with every input's min/opt/max.
  virtual Result<std::vector<uint8_t>> compile(const ir::Graph& graph,
                                               const std::vector<OptimizationProfile>& profiles,
                                               const BuilderConfig& config) const = 0;
  /// Per layer (graph node order), the precision(s) a blob of this backend runs it in ("fp32",
  /// "bf16", "fp32+bf16"), read without loading it (the blob may be for other hardware); an
  /// empty entry or vector where it cannot tell. Used to say which layers a re-tune degraded.
  virtual std::vector<std::string> blob_layer_precisions(const ir::Graph& graph,
                                                         std::span<const uint8_t> blob) const {
    (void)graph;
    (void)blob;
    return {};
  }
  /// What inspect says of a blob's layers, read without loading it: no device, no weights (the
  /// graph may come from a plan's metadata only, its constants holding dtype and dims but no
  /// data), no packing. The same lines as the loaded Executable's layer_precisions() and
  /// tactic_notes(). The blob must be one this backend's load() accepts on this machine.
  struct BlobDescription {
    std::vector<std::string> layer_precisions;
    std::vector<std::string> tactic_notes;
  };
  virtual Result<BlobDescription> describe_blob(const ir::Graph& graph,
                                                std::span<const uint8_t> blob) const = 0;
  /// Engine-load-time work: pack weights, create kernels. `graph` holds the weights, and must
  /// outlive the executable: a backend may read weights in place from its constants rather
  /// than hold a second copy (the cpu backend does, for weights its kernels read as stored).
  virtual Result<std::unique_ptr<Executable>> load(const ir::Graph& graph,
                                                   std::span<const uint8_t> blob) const = 0;
};

}  // namespace mlprt::backend
