#pragma once
// A candidate engine timed whole, as users run it: the builder's last word between the fused
// kernels and the layers, whose separate timings leave out how the calls run together in a graph.

#include <string>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_executable.h"
#include "ir/graph.h"
#include "ir/shape_inference.h"
#include "mlprt/status.h"

namespace mlprt::backend::cuda {

/// The engine `blob` describes, at `shapes` (every tensor's), device-resident I/O: one call per
/// CUDA graph launch, event-timed, median (time_call_us).
Result<double> time_engine_us(const ir::Graph& graph, const BlobInfo& blob,
                              const ir::ShapeMap& shapes, cudaStream_t stream);

/// The timing-cache name of that time: a hash of the graph's structure (ops, tensor names,
/// attributes, constant shapes: not weight values), the candidate blob's text and the shapes.
std::string engine_timing_key(const ir::Graph& graph, const std::string& blob_text,
                              const ir::ShapeMap& shapes);

}  // namespace mlprt::backend::cuda
