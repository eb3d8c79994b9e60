// IExecutionContext's state changes and infer(): arrays in, arrays of the same kind out.
#include <nanobind/stl/string.h>

#include "arrays.h"
#include "engine.h"

namespace mlprt::python {
namespace {

std::string input_names(const PyEngine& engine) {
  std::string names;
  for (const TensorDesc& t : engine.engine->io_tensors())
    if (t.mode == TensorIOMode::kInput) names += (names.empty() ? "'" : ", '") + t.name + "'";
  return names;
}

void check_feed_names(const PyEngine& engine, nb::dict feed) {
  for (auto [key, value] : feed) {
    if (!nb::isinstance<nb::str>(key))
      throw_error(StatusCode::kInvalidArgument,
                  std::string("infer: feed keys must be input names (str), got ") +
                      nb::type_name(key.type()).c_str());
    const TensorDesc* desc = engine.engine->find_io_tensor(nb::cast<std::string>(key));
    if (!desc || desc->mode != TensorIOMode::kInput)
      throw_error(StatusCode::kNotFound, "infer: '" + nb::cast<std::string>(key) +
                                             "' is not an input of the engine; its inputs are " +
                                             input_names(engine));
  }
  if (static_cast<int>(feed.size()) != engine.num_inputs()) {
    std::string missing;
    for (const TensorDesc& t : engine.engine->io_tensors())
      if (t.mode == TensorIOMode::kInput && !feed.contains(t.name.c_str()))
        missing += (missing.empty() ? "'" : ", '") + t.name + "'";
    throw_error(
        StatusCode::kInvalidArgument,
        "infer: missing input(s) " + missing + "; the engine's inputs are " + input_names(engine));
  }
}

void check_dtype(const ArrayRef& array, const TensorDesc& desc, const std::string& what) {
  if (array.dtype_known && array.dtype == desc.dtype) return;
  throw_error(StatusCode::kInvalidArgument,
              what + " is " +
                  (array.dtype_known ? std::string(to_string(array.dtype)) : array.dtype_name) +
                  " but the engine's '" + desc.name + "' is " + std::string(to_string(desc.dtype)) +
                  ": convert it first (numpy: x.astype(np." + std::string(to_string(desc.dtype)) +
                  "), torch: x.to(torch." + std::string(to_string(desc.dtype)) + "))");
}

void check_device(const PyEngine& engine, const ArrayRef& array, const std::string& what) {
  const int device = engine.engine->info().device;
  if (!array.on_device) return;
  if (device < 0)
    throw_error(StatusCode::kInvalidArgument,
                what +
                    " is in CUDA memory but the engine runs on the cpu backend, which reads "
                    "host memory: move it to the host (x.cpu()) or build a cuda engine");
  if (array.device_id >= 0 && array.device_id != device)
    throw_error(StatusCode::kInvalidArgument,
                what + " is on GPU " + std::to_string(array.device_id) +
                    " but the engine lives on GPU " + std::to_string(device) +
                    ": move it (x.to('cuda:" + std::to_string(device) +
                    "')) or load the engine there (mlprt.set_device)");
}

}  // namespace

ContextInUse::ContextInUse(PyContext& context) : m_context(context) {
  if (context.in_use.exchange(true, std::memory_order_acquire))
    throw_error(StatusCode::kInvalidArgument,
                "this execution context is in use by another thread: a context is not "
                "thread-safe; create one per thread (engine.create_execution_context())");
}

std::unique_ptr<PyContext> create_context(nb::handle engine_object) {
  PyEngine& engine = nb::cast<PyEngine&>(engine_object);
  auto context = std::make_unique<PyContext>();
  context->engine_ref = nb::borrow(engine_object);
  context->engine = &engine;
  Result<std::unique_ptr<ExecutionContext>> made = [&] {
    nb::gil_scoped_release release;
    return engine.engine->create_execution_context();
  }();
  context->context = value_or_throw(std::move(made));
  context->bound.assign(engine.engine->io_tensors().size(), nullptr);
  return context;
}

void PyContext::use_location(TensorLocation where) {
  if (where == location) return;
  throw_if_error(context->set_tensor_location(where));
  location = where;
  shapes_valid = false;
  bound.assign(bound.size(), nullptr);
}

void PyContext::use_trt_location() {
  use_location(engine->engine->info().device >= 0 ? TensorLocation::kDevice
                                                  : TensorLocation::kHost);
}

void PyContext::set_input_shape(const std::string& name, const Dims& dims) {
  throw_if_error(context->set_input_shape(name, dims));
  shapes_valid = false;
}

void PyContext::set_address(const std::string& name, void* address) {
  throw_if_error(context->set_tensor_address(name, address));  // refuses unknown names
  bound[static_cast<size_t>(engine->index_of(name))] = address;
}

void PyContext::bind(size_t index, void* address) {
  if (bound[index] == address) return;
  set_address(engine->engine->io_tensors()[index].name, address);
}

void PyContext::enqueue(void* stream) {
  Status status;
  {
    nb::gil_scoped_release release;
    status = context->enqueue(stream);
  }
  if (profiler) profiler->rethrow();
  throw_if_error(status);
}

nb::dict infer(PyContext& c, nb::handle feed_object, nb::handle stream, nb::handle outputs_object) {
  if (!nb::isinstance<nb::dict>(feed_object))
    throw_error(StatusCode::kInvalidArgument,
                std::string("infer: feed must be a dict {input name: array}, got ") +
                    nb::type_name(feed_object.type()).c_str());
  nb::dict feed = nb::borrow<nb::dict>(feed_object);
  const ContextInUse guard(c);
  const PyEngine& engine = *c.engine;
  const std::vector<TensorDesc>& io = engine.engine->io_tensors();
  const size_t num_inputs = static_cast<size_t>(engine.num_inputs());

  // Every name is checked by finding each engine input in the feed and counting; the detailed
  // message is made only when that fails.
  std::vector<PyObject*> values(num_inputs);
  bool names_ok = feed.size() == num_inputs;
  for (size_t i = 0; names_ok && i < num_inputs; ++i) {
    values[i] = PyDict_GetItem(feed.ptr(), engine.names[i].ptr());
    names_ok = values[i] != nullptr;
  }
  if (!names_ok) check_feed_names(engine, feed);

  // Copies of non-contiguous inputs outlive the call (a GPU may read them after it returns):
  // the context holds them until its next call, which its stream orders after this one.
  c.copies.clear();
  std::vector<ArrayRef> inputs(num_inputs);
  for (size_t i = 0; i < num_inputs; ++i) {
    const std::string& what = engine.labels[i];
    inputs[i] = import_array(values[i], what);
    check_dtype(inputs[i], io[i], what);
    check_device(engine, inputs[i], what);
    if (inputs[i].on_device != inputs[0].on_device)
      throw_error(
          StatusCode::kInvalidArgument,
          "infer: inputs are partly in host and partly in CUDA memory; put them all in one");
    if (!inputs[i].contiguous) {
      inputs[i] = contiguous_copy(inputs[i], what);
      c.copies.push_back(inputs[i].object);
    }
  }
  c.use_location(inputs[0].on_device ? TensorLocation::kDevice : TensorLocation::kHost);

  bool same_shapes = c.shapes_valid && c.shapes.size() == num_inputs;
  for (size_t i = 0; same_shapes && i < num_inputs; ++i)
    same_shapes = c.shapes[i] == inputs[i].dims;
  if (!same_shapes) {
    c.shapes_valid = false;  // until every step below has succeeded
    std::map<std::string, Dims> shapes;
    for (size_t i = 0; i < num_inputs; ++i) shapes[io[i].name] = inputs[i].dims;
    Result<int> found = engine.engine->find_profile(shapes);
    // Split batch: a batch past every profile is the context's to split, from any profile.
    if (found || !c.context->split_batch()) {
      const int profile = value_or_throw(std::move(found));
      if (profile != c.context->optimization_profile())
        throw_if_error(c.context->set_optimization_profile(profile));
    }
    for (size_t i = 0; i < num_inputs; ++i) c.set_input_shape(io[i].name, inputs[i].dims);
    c.shapes.resize(num_inputs);
    for (size_t i = 0; i < num_inputs; ++i) c.shapes[i] = inputs[i].dims;
    c.output_shapes.clear();
    c.output_dims.clear();
    for (size_t j = num_inputs; j < io.size(); ++j) {
      c.output_dims.push_back(value_or_throw(c.context->tensor_shape(io[j].name)));
      c.output_shapes.push_back(to_tuple(c.output_dims.back()));
    }
    c.shapes_valid = true;
  }
  for (size_t i = 0; i < num_inputs; ++i) c.bind(i, inputs[i].data);

  nb::dict given;
  if (!outputs_object.is_none()) {
    if (!nb::isinstance<nb::dict>(outputs_object))
      throw_error(StatusCode::kInvalidArgument,
                  "infer: outputs must be a dict {output name: array}");
    given = nb::borrow<nb::dict>(outputs_object);
    for (auto [key, value] : given) {
      const TensorDesc* d = engine.engine->find_io_tensor(nb::cast<std::string>(nb::str(key)));
      if (!d || d->mode != TensorIOMode::kOutput)
        throw_error(StatusCode::kNotFound, "infer: outputs: '" +
                                               nb::cast<std::string>(nb::str(key)) +
                                               "' is not an output of the engine");
    }
  }
  nb::dict result;
  for (size_t j = num_inputs; j < io.size(); ++j) {
    const std::string& what = engine.labels[j];
    nb::handle shape = c.output_shapes[j - num_inputs];
    ArrayRef out;
    if (given.contains(io[j].name.c_str())) {
      out = import_array(given[io[j].name.c_str()], what);
      check_dtype(out, io[j], what);
      check_device(engine, out, what);
      const Dims& dims = c.output_dims[j - num_inputs];
      if (out.dims != dims)
        throw_error(StatusCode::kInvalidArgument, what + " has shape " + to_string(out.dims) +
                                                      "; this call writes " + to_string(dims));
      if (!out.contiguous || out.on_device != inputs[0].on_device)
        throw_error(
            StatusCode::kInvalidArgument,
            what + " must be C-contiguous and in the same memory (host or GPU) as the inputs");
    } else {
      out = allocate_like(inputs[0], shape, io[j].dtype, what);
    }
    c.bind(j, out.data);
    PyDict_SetItem(result.ptr(), engine.names[j].ptr(), out.object.ptr());
  }
  c.enqueue(stream.is_none() ? current_stream_of(inputs[0]) : to_stream(stream));
  return result;
}

}  // namespace mlprt::python
