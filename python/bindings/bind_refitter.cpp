// refitter.h: TensorRT's Refitter. mlprt.Refitter(engine, logger): set_named_weights(name,
// array), set_weights_from_file(path), get_missing_weights(), get_all_weights(),
// refit_cuda_engine() -> True. Errors raise mlprt.Error subclasses with the C++ message.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.h"
#include "bind_logger.h"
#include "bindings.h"
#include "engine.h"
#include "mlprt/refitter.h"

namespace mlprt::python {
namespace {

struct PyRefitter {
  nb::object engine_ref;  ///< keeps the Python engine alive
  PyEngine* engine = nullptr;
  std::unique_ptr<Refitter> refitter;
};

std::unique_ptr<PyRefitter> make_refitter(nb::handle engine, nb::handle logger) {
  install_logger(logger);
  auto out = std::make_unique<PyRefitter>();
  out->engine = &nb::cast<PyEngine&>(engine);
  out->engine_ref = nb::borrow(engine);
  out->refitter = value_or_throw(Refitter::create(*out->engine->engine), ErrorSource::kPlan);
  return out;
}

bool set_named_weights(PyRefitter& r, const std::string& name, nb::handle array) {
  ArrayRef a = import_array(array, "set_named_weights('" + name + "')");
  if (a.on_device) {
    throw_error(StatusCode::kInvalidArgument, "set_named_weights('" + name +
                                                  "'): the array is in GPU memory; pass a host array (.cpu())");
  }
  if (!a.contiguous) a = contiguous_copy(a, "set_named_weights('" + name + "')");
  if (!a.dtype_known) {
    throw_error(StatusCode::kInvalidArgument,
                "set_named_weights('" + name + "'): dtype " + a.dtype_name + " is not an mlprt DataType");
  }
  int64_t count = 1;
  for (int64_t d : a.dims) count *= d;
  Weights w{a.dtype, a.data, count, a.dims};
  throw_if_error(r.refitter->set_named_weights(name, w));
  return true;
}

bool refit_cuda_engine(PyRefitter& r) {
  {
    nb::gil_scoped_release release;
    throw_if_error(r.refitter->refit_cuda_engine());
  }
  // serialize() and engine.infer now see the refitted engine.
  r.engine->plan = value_or_throw(r.engine->engine->serialize());
  std::lock_guard lock(r.engine->default_context_mutex);
  r.engine->default_context.reset();
  return true;
}

}  // namespace

void bind_refitter(nb::module_& m) {
  nb::class_<PyRefitter>(m, "Refitter",
                         "Replaces an engine's weights without rebuilding it; the tactics are kept "
                         "(TensorRT's Refitter). Weights by ONNX initializer name or torch parameter "
                         "name; every weight must be given (get_missing_weights()).")
      .def("__init__",
           [](PyRefitter* self, nb::handle engine, nb::handle logger) {
             new (self) PyRefitter(std::move(*make_refitter(engine, logger)));
           },
           nb::arg("engine"), nb::arg("logger").none() = nb::none(),
           "A refitter for `engine`. PlanError... UnsupportedError if its plan has no refit record "
           "(rebuild it with this mlprt).")
      .def("set_named_weights", &set_named_weights, nb::arg("name"), nb::arg("weights"),
           "Sets one weight (numpy / torch CPU / DLPack array, copied) by ONNX or torch name; torch "
           "names take torch's layout ([out, in] for a Linear). Returns True; InvalidArgumentError "
           "for an unknown name or another dtype / shape.")
      .def(
          "set_weights_from_file",
          [](PyRefitter& r, const std::filesystem::path& path) {
            nb::gil_scoped_release release;
            throw_if_error(r.refitter->set_weights_from_file(path));
            return true;
          },
          nb::arg("path"),
          "Sets every weight from an .onnx (same graph), .pth (torch.save of a state_dict) or "
          ".safetensors file; the error lists every missing, unknown or mismatched name.")
      .def("get_missing_weights", [](const PyRefitter& r) { return r.refitter->get_missing_weights(); },
           "ONNX names of the weights not set yet.")
      .def("get_all_weights", [](const PyRefitter& r) { return r.refitter->get_all_weights(); },
           "ONNX names of every refittable weight.")
      .def("get_weight_aliases", [](const PyRefitter& r) { return r.refitter->get_weight_aliases(); },
           "[(torch name, ONNX name)] for weights the exporter renamed.")
      .def("refit_cuda_engine", &refit_cuda_engine,
           "Loads the new weights into the engine and returns True (raises on any problem, the "
           "engine unchanged). Contexts created afterwards, engine.infer and engine.serialize() use "
           "them; contexts that already exist keep the old weights: create new ones. Do not call "
           "while a context of the engine runs.");
}

}  // namespace mlprt::python
