#pragma once
/// @file profiler.h
/// Per-layer timing, as TensorRT's IProfiler: set one on an ExecutionContext and every enqueue
/// reports each layer's time to it.
///
/// @code
///   struct Table final : mlprt::Profiler {
///     std::map<std::string, float> ms;
///     void report_layer_time(std::string_view layer, float t) override { ms[std::string(layer)] += t; }
///   };
///   Table table;
///   (void)context->set_profiler(&table);
///   (void)context->enqueue();        // returns after report_layer_time of every layer
///   (void)context->set_profiler(nullptr);
/// @endcode
///
/// What is reported, per enqueue, in the order the layers run:
///  * one call per layer, named as `mlprt inspect` lists it under "Layers after fusion"
///    (views such as Reshape report about 0 ms);
///  * cpu: wall time of the layer on a steady clock. A plan whose layers run as one OpenMP
///    region (the whole-chain row split) runs layer by layer while a profiler is set, so that
///    each layer has its own time: the sum may then exceed an unprofiled call's time.
///  * cuda: GPU time between CUDA events recorded on the stream around each layer. While a
///    profiler is set the kernels launch directly (no CUDA graph, no pipelined host copies),
///    and enqueue synchronizes the stream before it reports. The fused whole-network kernel,
///    when the plan chose it for the shape, runs all layers in one launch: it is reported as ONE
///    entry named after the layers it covers, joined by " + " ("fc1 + relu1 + fc2").
///    Host <-> device copies and input / output type casts belong to no layer.
///  * split batch: each layer's times summed over the chunks, reported once per enqueue.
/// The sum of the layer times is therefore the compute time, not the enqueue latency.

#include <string_view>

namespace mlprt {

/// Receives layer times. Owned by the caller; it must outlive its use by the context (until
/// set_profiler(nullptr) or the context's end). Called on the thread that calls enqueue.
class Profiler {
 public:
  virtual ~Profiler() = default;
  /// `layer_name` is valid only during the call (copy it to keep it); `ms` is in milliseconds.
  virtual void report_layer_time(std::string_view layer_name, float ms) = 0;
};

}  // namespace mlprt
