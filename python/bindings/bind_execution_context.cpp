// execution_context.h: IExecutionContext (also mlprt.ExecutionContext), with TensorRT 10's
// tensor-address calls, TensorRT 8's binding calls, and infer().
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include "engine.h"

namespace mlprt::python {
namespace {

nb::tuple shape_of(const PyContext& c, const std::string& name) {
  const TensorDesc& desc = c.engine->io(name);
  Result<Dims> dims = c.context->tensor_shape(name);
  return to_tuple(dims ? *dims : desc.dims);  // unresolved: the engine's shape with -1
}

// execute_async_v2 / execute_v2: one address per binding; with several profiles the list holds
// every profile's bindings and the active profile's are used.
void bind_all(PyContext& c, nb::handle bindings) {
  const auto& io = c.engine->engine->io_tensors();
  const size_t n = io.size();
  std::vector<nb::handle> list;
  for (nb::handle h : nb::iter(bindings)) list.push_back(h);
  const size_t profile = static_cast<size_t>(c.context->optimization_profile());
  const size_t offset = list.size() >= (profile + 1) * n ? profile * n : 0;
  if (list.size() < n)
    throw_error(StatusCode::kInvalidArgument, "bindings: expected one address per I/O tensor (" +
                                                  std::to_string(n) + "), got " +
                                                  std::to_string(list.size()));
  c.use_trt_location();
  for (size_t i = 0; i < n; ++i)
    c.set_address(io[i].name, to_pointer(list[offset + i], "bindings"));
}

}  // namespace

void bind_execution_context(nb::module_& m) {
  nb::class_<PyContext>(m, "IExecutionContext",
                        "One caller's state for running an engine (also mlprt.ExecutionContext): "
                        "profile, input shapes, buffers. Not thread-safe: one per thread.")
      .def_prop_ro(
          "engine", [](const PyContext& c) { return c.engine_ref; },
          "The engine this context runs (kept alive by the context).")
      .def(
          "infer",
          [](PyContext& c, nb::handle feed, nb::handle stream, nb::handle outputs) {
            return infer(c, feed, stream, outputs);
          },
          nb::arg("feed"), nb::arg("stream").none() = nb::none(),
          nb::arg("outputs").none() = nb::none(),
          "Runs the engine on `feed` ({input name: array}) and returns {output name: array}.\n\n"
          "Arrays: numpy, torch (CPU or the engine's GPU), cupy, or anything with __dlpack__ / "
          "__cuda_array_interface__; every input of the engine, all on the host or all on the "
          "engine's GPU, C-contiguous and of the engine's dtype (non-contiguous arrays are copied "
          "with a warning). Picks the first profile that holds the shapes, binds the arrays' own "
          "memory (no copy), and returns outputs of the first input's kind and device, already "
          "shaped. `outputs`: preallocated arrays to write into (returned as given). `stream`: a "
          "torch/cupy stream, an int handle or cudaStream_t; the call is then asynchronous on it "
          "(default: torch's / cupy's current stream for their GPU tensors; host arrays return "
          "when done).\n\nRaises ShapeError (outside every profile, wrong rank), "
          "InvalidArgumentError (dtype, device, layout), NotFoundError (unknown or missing name).")
      .def(
          "set_optimization_profile_async",
          [](PyContext& c, int index, nb::handle) {
            const ContextInUse guard(c);
            throw_if_error(c.context->set_optimization_profile(index));
            c.shapes_valid = false;
            return true;
          },
          nb::arg("profile_index"), nb::arg("stream_handle").none() = nb::none(),
          "Selects the profile the next input shapes must fall in.")
      .def_prop_rw(
          "active_optimization_profile",
          [](const PyContext& c) { return c.context->optimization_profile(); },
          [](PyContext& c, int index) {
            throw_if_error(c.context->set_optimization_profile(index));
            c.shapes_valid = false;
          },
          "The profile the input shapes must fall in (TensorRT 8's way to select it).")
      .def(
          "set_input_shape",
          [](PyContext& c, const std::string& name, nb::handle shape) {
            const ContextInUse guard(c);
            c.use_trt_location();
            c.set_input_shape(name, to_dims(shape, "set_input_shape"));
            return true;
          },
          nb::arg("name"), nb::arg("shape"),
          "Sets an input's shape (tuple, list, torch.Size) within the active profile; raises "
          "ShapeError outside it.")
      .def("get_tensor_shape", &shape_of, nb::arg("name"),
           "An I/O tensor's concrete shape; outputs resolve once every input shape is set.")
      .def(
          "set_tensor_address",
          [](PyContext& c, const std::string& name, nb::handle address) {
            const ContextInUse guard(c);
            c.use_trt_location();
            c.set_address(name, to_pointer(address, "set_tensor_address"));
            return true;
          },
          nb::arg("name"), nb::arg("memory"),
          "Binds memory (an int address): device memory on the engine's GPU for a cuda engine, "
          "host memory for a cpu engine.")
      .def(
          "get_tensor_address",
          [](const PyContext& c, const std::string& name) {
            const int index = c.engine->index_of(name);
            return reinterpret_cast<uintptr_t>(index < 0 ? nullptr
                                                         : c.bound[static_cast<size_t>(index)]);
          },
          nb::arg("name"),
          "The address bound to the tensor (by set_tensor_address or infer), 0 if none.")
      .def(
          "execute_async_v3",
          [](PyContext& c, nb::handle stream) {
            const ContextInUse guard(c);
            c.enqueue(to_stream(stream));
            return true;
          },
          nb::arg("stream_handle").none() = nb::none(),
          "Runs on `stream_handle` (int, cudaStream_t, torch/cupy stream) and returns without "
          "waiting on a cuda engine; a cpu engine runs on the calling thread. The GIL is released.")
      .def(
          "execute_async_v2",
          [](PyContext& c, nb::handle bindings, nb::handle stream) {
            const ContextInUse guard(c);
            bind_all(c, bindings);
            c.enqueue(to_stream(stream));
            return true;
          },
          nb::arg("bindings"), nb::arg("stream_handle").none() = nb::none(),
          "TensorRT 8: one address per binding, then execute_async_v3(stream_handle).")
      .def(
          "execute_v2",
          [](PyContext& c, nb::handle bindings) {
            const ContextInUse guard(c);
            bind_all(c, bindings);
            c.enqueue(nullptr);
            return true;
          },
          nb::arg("bindings"), "TensorRT 8: synchronous execute_async_v2.")
      .def(
          "set_binding_shape",
          [](PyContext& c, int index, nb::handle shape) {
            const ContextInUse guard(c);
            c.use_trt_location();
            c.set_input_shape(c.engine->binding(index).name, to_dims(shape, "set_binding_shape"));
            return true;
          },
          nb::arg("binding"), nb::arg("shape"))
      .def(
          "get_binding_shape",
          [](const PyContext& c, int i) { return shape_of(c, c.engine->binding(i).name); },
          nb::arg("binding"))
      .def_prop_ro("all_binding_shapes_specified",
                   [](const PyContext& c) {
                     for (const TensorDesc& t : c.engine->engine->io_tensors())
                       if (!c.context->tensor_shape(t.name)) return false;
                     return true;
                   })
      .def_prop_ro("all_shape_inputs_specified", [](const PyContext&) { return true; })
      .def(
          "infer_shapes",
          [](const PyContext& c) {
            nb::list unresolved;
            for (const TensorDesc& t : c.engine->engine->io_tensors())
              if (t.mode == TensorIOMode::kInput && !c.context->tensor_shape(t.name))
                unresolved.append(nb::str(t.name.c_str()));
            return unresolved;
          },
          "Names of inputs whose shape is still unknown ([] once every output shape resolves).")
      .def(
          "set_num_threads",
          [](PyContext& c, int n) { throw_if_error(c.context->set_num_threads(n)); },
          nb::arg("threads"), "Host threads for this context's calls (cpu engines).")
      .def(
          "set_use_cuda_graph",
          [](PyContext& c, bool use) { throw_if_error(c.context->set_use_cuda_graph(use)); },
          nb::arg("use"), "Replay a captured CUDA graph (default) or launch kernels one by one.")
      .def_prop_rw(
          "split_batch", [](const PyContext& c) { return c.context->split_batch(); },
          [](PyContext& c, bool split) {
            throw_if_error(c.context->set_split_batch(split));
            c.shapes_valid = false;  // the input shapes were cleared
          },
          "Split batch (default False): a batch past every profile's max runs in chunks of the "
          "best profile (the largest max batch), outputs concatenated. Only for plans whose rows "
          "the builder proved independent; setting it clears the input shapes.")
      .def_prop_rw(
          "profiler",
          [](const PyContext& c) -> nb::object {
            return c.profiler ? c.profiler->target() : nb::none();
          },
          [](PyContext& c, nb::handle profiler) {
            const ContextInUse guard(c);
            if (profiler.is_none()) {
              throw_if_error(c.context->set_profiler(nullptr));
              c.profiler.reset();
              return;
            }
            if (!nb::hasattr(profiler, "report_layer_time"))
              throw_error(StatusCode::kInvalidArgument,
                          std::string("profiler: expected an IProfiler with a "
                                      "report_layer_time(layer_name, ms) method, got ") +
                              nb::type_name(profiler.type()).c_str());
            auto adapter = std::make_unique<PyProfiler>(nb::borrow(profiler));
            throw_if_error(c.context->set_profiler(adapter.get()));
            c.profiler = std::move(adapter);
          },
          nb::arg("profiler").none(),
          "Per-layer timing (TensorRT's IExecutionContext.profiler): an IProfiler whose "
          "report_layer_time(layer_name, ms) each execution calls once per layer, named as "
          "inspect lists them, before it returns; None (default) turns it off. On a cuda engine "
          "the kernels then launch without a CUDA graph and each call waits for the GPU. An "
          "exception in report_layer_time is raised by the execution that caused it.")
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });
}

}  // namespace mlprt::python
