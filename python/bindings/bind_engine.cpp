// engine.h: Runtime, ICudaEngine (also mlprt.Engine). Engines are immutable and may be shared
// by threads; each thread makes its own context.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "bind_logger.h"
#include "engine.h"
#include "host_memory.h"
#include "io_mode.h"
#include "mlprt/device.h"
#include "mlprt/engine_inspector.h"

namespace mlprt::python {
namespace {

struct Runtime {
  EngineLoadOptions options;  ///< hardware_mismatch_policy
};
enum class Location { kDevice, kHost };

int num_io(const PyEngine& e) { return static_cast<int>(e.engine->io_tensors().size()); }
// TensorRT 8.6 takes a binding's index or its tensor's name.
const TensorDesc& binding(const PyEngine& e, nb::handle key) {
  if (nb::isinstance<nb::str>(key)) return e.io(nb::cast<std::string>(key));
  return e.binding(nb::cast<int>(key));
}

nb::list profile_shapes(const PyEngine& e, const std::string& name, int profile) {
  ShapeRange range = value_or_throw(e.engine->profile_range(profile, name));
  nb::list out;
  out.append(to_tuple(range.min));
  out.append(to_tuple(range.opt));
  out.append(to_tuple(range.max));
  return out;
}

}  // namespace

const TensorDesc& PyEngine::io(const std::string& name) const {
  const TensorDesc* desc = engine->find_io_tensor(name);
  if (!desc) {
    std::string names;
    for (const TensorDesc& t : engine->io_tensors())
      names += (names.empty() ? "'" : ", '") + t.name + "'";
    throw_error(StatusCode::kNotFound,
                "no I/O tensor named '" + name + "'; the engine has " + names);
  }
  return *desc;
}

int PyEngine::index_of(const std::string& name) const {
  const auto& io = engine->io_tensors();
  for (size_t i = 0; i < io.size(); ++i)
    if (io[i].name == name) return static_cast<int>(i);
  return -1;
}

int PyEngine::num_bindings() const { return num_io(*this) * engine->num_profiles(); }

const TensorDesc& PyEngine::binding(int index) const {
  const int io = num_io(*this);
  if (index < 0 || index >= num_bindings())
    throw_error(StatusCode::kNotFound,
                "binding index " + std::to_string(index) + " out of range: the engine has " +
                    std::to_string(num_bindings()) + " bindings (" + std::to_string(io) +
                    " I/O tensors x " + std::to_string(engine->num_profiles()) + " profiles)");
  return engine->io_tensors()[static_cast<size_t>(index % io)];
}

int PyEngine::num_inputs() const {
  int n = 0;
  for (const TensorDesc& t : engine->io_tensors()) n += t.mode == TensorIOMode::kInput;
  return n;
}

std::vector<uint8_t> buffer_bytes(nb::handle buffer, const char* what) {
  Py_buffer view;
  if (PyObject_GetBuffer(buffer.ptr(), &view, PyBUF_SIMPLE) != 0) {
    PyErr_Clear();
    throw_error(StatusCode::kInvalidArgument,
                std::string(what) +
                    ": expected bytes or another object with the buffer protocol "
                    "(IHostMemory, bytearray, memoryview), got " +
                    nb::type_name(buffer.type()).c_str());
  }
  const auto* begin = static_cast<const uint8_t*>(view.buf);
  std::vector<uint8_t> bytes(begin, begin + view.len);
  PyBuffer_Release(&view);
  return bytes;
}

std::unique_ptr<PyEngine> load_engine(std::vector<uint8_t> plan, const std::string& source,
                                      const EngineLoadOptions& options) {
  auto engine = std::make_unique<PyEngine>();
  engine->plan = std::move(plan);
  {
    nb::gil_scoped_release release;
    Result<std::unique_ptr<Engine>> loaded = Engine::load(engine->plan, source, options);
    if (!loaded) {
      nb::gil_scoped_acquire gil;
      throw_if_error(loaded.status(), ErrorSource::kPlan);
    }
    engine->engine = std::move(loaded).value();
    if (!engine->engine->retuned_plan().empty()) engine->plan = engine->engine->retuned_plan();
  }
  for (const TensorDesc& t : engine->engine->io_tensors()) {
    engine->names.push_back(nb::str(t.name.c_str(), t.name.size()));
    engine->labels.push_back((t.mode == TensorIOMode::kInput ? "input '" : "output '") + t.name +
                             "'");
  }
  return engine;
}

void bind_engine(nb::module_& m) {
  m.def(
      "inspect_plan_file",
      [](const std::filesystem::path& path) {
        return value_or_throw(inspect_plan_file(path)).to_json();
      },
      nb::arg("path"), nb::call_guard<nb::gil_scoped_release>(),
      "What `mlprt inspect --json` prints of a plan file (the JSON text, as ICudaEngine.to_json), "
      "read from its metadata without loading it (mlprt::inspect_plan_file).");
  nb::enum_<Location>(m, "TensorLocation", nb::is_arithmetic(), "Where a tensor's memory lives.")
      .value("DEVICE", Location::kDevice)
      .value("HOST", Location::kHost);

  nb::class_<PyEngine>(m, "ICudaEngine",
                       "A loaded plan (also mlprt.Engine): immutable, shareable by threads. "
                       "Make one execution context per thread; infer() is the short way.")
      .def_static(
          "load_file",
          [](const std::filesystem::path& path) {
            std::ifstream in(path, std::ios::binary);
            if (!in)
              throw_error(StatusCode::kIoError, "cannot open plan file '" + path.string() + "'");
            std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
            return load_engine(std::move(bytes), path.string());
          },
          nb::arg("path"),
          "Loads a plan file. Raises PlanError saying what mismatched (format version, "
          "truncation, corruption, hardware), IoError if it cannot be read.")
      .def_static(
          "load",
          [](nb::handle plan) {
            return load_engine(buffer_bytes(plan, "Engine.load"), "<buffer>");
          },
          nb::arg("plan"), "Loads a plan from bytes / IHostMemory / any buffer.")
      .def_prop_ro(
          "num_io_tensors", [](const PyEngine& e) { return num_io(e); },
          "Inputs and outputs together; get_tensor_name(i) names them.")
      .def(
          "get_tensor_name",
          [](const PyEngine& e, int i) {
            if (i < 0 || i >= num_io(e))
              throw_error(StatusCode::kNotFound, "I/O tensor index " + std::to_string(i) +
                                                     " out of range: the engine has " +
                                                     std::to_string(num_io(e)));
            return e.engine->io_tensors()[static_cast<size_t>(i)].name;
          },
          nb::arg("index"), "Inputs first, then outputs, in the model's order.")
      .def(
          "get_tensor_mode",
          [](const PyEngine& e, const std::string& name) {
            const TensorDesc* d = e.engine->find_io_tensor(name);
            return d ? to_io_mode(d->mode) : IOMode::kNone;
          },
          nb::arg("name"), "TensorIOMode.INPUT or OUTPUT; NONE for a name that is neither.")
      .def(
          "get_tensor_shape",
          [](const PyEngine& e, const std::string& n) { return to_tuple(e.io(n).dims); },
          nb::arg("name"), "The shape as built; -1 marks a dynamic dimension.")
      .def(
          "get_tensor_dtype", [](const PyEngine& e, const std::string& n) { return e.io(n).dtype; },
          nb::arg("name"),
          "The tensor's DataType at the engine's boundary (mlprt.nptype() gives numpy's). "
          "NotFoundError for an unknown name.")
      .def("get_tensor_profile_shape", &profile_shapes, nb::arg("name"), nb::arg("profile_index"),
           "[min, opt, max] of an input in a profile.")
      .def_prop_ro(
          "num_optimization_profiles", [](const PyEngine& e) { return e.engine->num_profiles(); },
          "Profiles the engine was built with (1 for a static engine).")
      .def_prop_ro("name", [](const PyEngine& e) { return e.engine->info().model_name; })
      .def_prop_ro(
          "backend", [](const PyEngine& e) { return e.engine->info().backend; }, "'cpu' or 'cuda'.")
      .def_prop_ro(
          "device", [](const PyEngine& e) { return e.engine->info().device; },
          "The GPU the engine lives on; -1 for a host (cpu) engine.")
      .def_prop_ro(
          "precision", [](const PyEngine& e) { return e.engine->info().precision; },
          "The precisions the build permitted, e.g. 'fp32+tf32'; to_json() has each layer's.")
      .def_prop_ro(
          "hardware", [](const PyEngine& e) { return e.engine->info().hardware; },
          "What the plan was built for, e.g. 'x86_64 avx512_core' or the GPU's name.")
      .def_prop_ro(
          "weight_bytes", [](const PyEngine& e) { return e.engine->info().weight_bytes; },
          "Bytes of the plan's weights (fp32), as `mlprt bench` reports them.")
      .def(
          "to_json", [](const PyEngine& e) { return e.engine->to_json(); },
          "Everything `mlprt inspect --json` prints: versions, I/O, profiles, layers.")
      .def(
          "serialize", [](const PyEngine& e) { return make_host_memory(e.plan); },
          "The plan, as IHostMemory (buffer protocol).")
      .def_prop_ro(
          "num_layers", [](const PyEngine& e) { return e.engine->info().layers.size(); },
          "Layers after fusion (to_json() lists them).")
      .def(
          "get_tensor_location",
          [](const PyEngine& e, const std::string& name) {
            (void)e.io(name);
            return e.engine->info().device >= 0 ? Location::kDevice : Location::kHost;
          },
          nb::arg("name"),
          "Where set_tensor_address expects the tensor: DEVICE on a cuda engine, HOST on cpu.")
      .def(
          "create_execution_context", [](nb::handle self) { return create_context(self); },
          "A new context (profile 0). Not thread-safe: one per thread. It keeps the engine alive.")
      .def(
          "infer",
          [](nb::handle self, nb::handle feed, nb::handle stream, nb::handle outputs) {
            PyEngine& e = nb::cast<PyEngine&>(self);
            std::unique_lock lock(e.default_context_mutex, std::defer_lock);
            {
              nb::gil_scoped_release release;
              lock.lock();
            }
            if (!e.default_context) {
              e.default_context = create_context(self);
              e.default_context->engine_ref = nb::object();  // the engine owns it: no cycle
            }
            return infer(*e.default_context, feed, stream, outputs);
          },
          nb::arg("feed"), nb::arg("stream").none() = nb::none(),
          nb::arg("outputs").none() = nb::none(),
          "One-off inference on the engine's own context (callers are serialized); see "
          "IExecutionContext.infer.")
      // TensorRT 8's binding API.
      .def_prop_ro("num_bindings", [](const PyEngine& e) { return e.num_bindings(); })
      .def(
          "get_binding_name",
          [](const PyEngine& e, int i) {
            const TensorDesc& d = e.binding(i);
            const int profile = i / num_io(e);
            return profile == 0 ? d.name : d.name + " [profile " + std::to_string(profile) + "]";
          },
          nb::arg("index"))
      .def(
          "get_binding_index",
          [](const PyEngine& e, const std::string& name) { return e.index_of(name); },
          nb::arg("name"))
      .def(
          "binding_is_input",
          [](const PyEngine& e, nb::handle key) {
            return binding(e, key).mode == TensorIOMode::kInput;
          },
          nb::arg("index"))
      .def(
          "get_binding_shape",
          [](const PyEngine& e, nb::handle key) { return to_tuple(binding(e, key).dims); },
          nb::arg("index"))
      .def(
          "get_binding_dtype",
          [](const PyEngine& e, nb::handle key) { return binding(e, key).dtype; }, nb::arg("index"))
      .def("__len__", [](const PyEngine& e) { return e.num_bindings(); })
      .def(
          "__getitem__",
          [](const PyEngine& e, nb::handle key) -> nb::object {
            if (nb::isinstance<nb::str>(key)) {
              const std::string name = nb::cast<std::string>(key);
              (void)e.io(name);  // NotFoundError naming the engine's tensors
              return nb::int_(e.index_of(name));
            }
            const int index = nb::cast<int>(key);
            if (index >= e.num_bindings()) throw nb::index_error();
            return nb::str(e.binding(index).name.c_str());
          },
          "TensorRT 8: engine[i] is binding i's name, engine[name] its index.")
      .def(
          "get_profile_shape",
          [](const PyEngine& e, int profile, nb::handle key) {
            std::string name = nb::isinstance<nb::str>(key) ? nb::cast<std::string>(key)
                                                            : e.binding(nb::cast<int>(key)).name;
            return profile_shapes(e, name, profile);
          },
          nb::arg("profile_index"), nb::arg("binding"))
      .def_prop_ro(
          "max_batch_size", [](const PyEngine&) { return 1; }, "1: networks are explicit-batch.")
      .def_prop_ro("has_implicit_batch_dimension", [](const PyEngine&) { return false; })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });

  m.def(
      "set_device", [](int index) { throw_if_error(set_device(index)); }, nb::arg("index"),
      "Makes GPU `index` current on the calling thread: engines loaded afterwards live there "
      "(as cudaSetDevice). Index 0 is accepted without a cuda backend.");
  m.def(
      "device_memory_usage",
      [] {
        const DeviceMemoryUsage usage = device_memory_usage();
        nb::dict out;
        out["current_bytes"] = usage.current_bytes;
        out["peak_bytes"] = usage.peak_bytes;
        return out;
      },
      "Device memory mlprt holds in this process (weights, activations and workspaces of every "
      "live engine and context): {'current_bytes', 'peak_bytes'}; zeros without a cuda backend.");

  nb::enum_<HardwareMismatchPolicy>(
      m, "HardwareMismatchPolicy",
      "What loading a plan built for other hardware does (Runtime.hardware_mismatch_policy).")
      .value("RETUNE", HardwareMismatchPolicy::kRetune,
             "Default: re-tune it here from its graph and build settings, with a warning.")
      .value("REFUSE", HardwareMismatchPolicy::kRefuse,
             "Refuse any plan not built for exactly this machine's hardware (PlanError).")
      .value("FALLBACK", HardwareMismatchPolicy::kFallback,
             "As RETUNE; a plan whose backend cannot run here runs on another backend.");

  nb::class_<Runtime>(m, "Runtime", "Deserializes plans into engines.")
      .def(
          "__init__",
          [](Runtime* self, nb::handle logger) {
            install_logger(logger);
            new (self) Runtime();
          },
          nb::arg("logger").none() = nb::none())
      .def(
          "deserialize_cuda_engine",
          [](const Runtime& self, nb::handle plan) {
            return load_engine(buffer_bytes(plan, "deserialize_cuda_engine"), "<buffer>",
                               self.options);
          },
          nb::arg("serialized_engine"),
          "Loads a plan (bytes, IHostMemory, any buffer) for whichever backend built it. A plan "
          "built for other hardware is handled as hardware_mismatch_policy says (re-tuned by "
          "default; the engine's serialize() then gives the re-tuned plan). Raises PlanError "
          "(not a plan, truncated, corrupt, other format version, or refused hardware).")
      .def_prop_rw(
          "hardware_mismatch_policy",
          [](const Runtime& self) { return self.options.hardware_mismatch; },
          [](Runtime& self, HardwareMismatchPolicy policy) {
            self.options.hardware_mismatch = policy;
          },
          "HardwareMismatchPolicy for later deserialize_cuda_engine calls: RETUNE (default), "
          "REFUSE or FALLBACK.")
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });
}

}  // namespace mlprt::python
