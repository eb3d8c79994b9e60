// builder.h, builder_config.h, optimization_profile.h: TensorRT's Builder, IBuilderConfig,
// IOptimizationProfile, ITimingCache and IHostMemory over BuilderConfig and
// build_serialized_engine.
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "bind_logger.h"
#include "engine.h"
#include "host_memory.h"
#include "mlprt/builder.h"
#include "mlprt/builder_config.h"
#include "mlprt/optimization_profile.h"
#include "network.h"

namespace mlprt::python {

std::unique_ptr<HostMemory> make_host_memory(std::vector<uint8_t> bytes) {
  auto memory = std::make_unique<HostMemory>();
  memory->bytes = std::move(bytes);
  return memory;
}

namespace {

enum class BuilderFlag {
  kFP16,
  kBF16,
  kTF32,
  kINT8,
  kFP8,
  kREFIT,
  kOBEY_PRECISION_CONSTRAINTS,
  kPREFER_PRECISION_CONSTRAINTS,
  kSTRICT_TYPES,
  kSPARSE_WEIGHTS,
};
enum class MemoryPoolType {
  kWORKSPACE,
  kDLA_MANAGED_SRAM,
  kDLA_LOCAL_DRAM,
  kDLA_GLOBAL_DRAM,
  kTACTIC_DRAM
};

int host_memory_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  HostMemory* memory = nb::inst_ptr<HostMemory>(self);
  if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE) {
    PyErr_SetString(PyExc_BufferError, "mlprt.IHostMemory is read-only");
    view->obj = nullptr;
    return -1;
  }
  memory->shape = static_cast<Py_ssize_t>(memory->bytes.size());
  view->obj = self;
  Py_INCREF(self);
  view->buf = memory->bytes.data();
  view->len = memory->shape;
  view->readonly = 1;
  view->itemsize = 1;
  view->format = (flags & PyBUF_FORMAT) ? const_cast<char*>("B") : nullptr;
  view->ndim = 1;
  view->shape = (flags & PyBUF_ND) ? &memory->shape : nullptr;
  view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &memory->strides : nullptr;
  view->suboffsets = nullptr;
  view->internal = nullptr;
  return 0;
}

PyType_Slot host_memory_slots[] = {
    {Py_bf_getbuffer, reinterpret_cast<void*>(host_memory_getbuffer)}, {0, nullptr}};

struct TimingCache {
  std::string json;  ///< the timing cache file's contents; empty: no entries yet
};

struct ProfileDefinition {
  OptimizationProfile profile;
};

struct ConfigDefinition {
  BuilderConfig config;
  std::map<MemoryPoolType, size_t> pool_limits;
  nb::object timing_cache = nb::none();
  bool obey = false;
  bool prefer = false;
};

struct Builder {
  int max_batch_size = 1;
};

void set_flag(ConfigDefinition& c, BuilderFlag flag, bool on) {
  switch (flag) {
    case BuilderFlag::kFP16:
      c.config.allow_fp16 = on;
      return;
    case BuilderFlag::kBF16:
      c.config.allow_bf16 = on;
      return;
    case BuilderFlag::kTF32:
      c.config.allow_tf32 = on;
      return;
    case BuilderFlag::kOBEY_PRECISION_CONSTRAINTS:
    case BuilderFlag::kSTRICT_TYPES:
      c.obey = on;
      break;
    case BuilderFlag::kPREFER_PRECISION_CONSTRAINTS:
      c.prefer = on;
      break;
    case BuilderFlag::kINT8:
      if (on)
        throw_error(StatusCode::kUnsupported,
                    "BuilderFlag.INT8: mlprt has no INT8 kernels or calibration; use FP16, BF16 "
                    "or TF32");
      return;
    case BuilderFlag::kFP8:
      if (on) throw_error(StatusCode::kUnsupported, "BuilderFlag.FP8: mlprt has no FP8 kernels");
      return;
    case BuilderFlag::kREFIT:
      return;  // every mlprt plan is refittable (it carries a refit record)
    case BuilderFlag::kSPARSE_WEIGHTS:
      return;  // a permission: mlprt has no sparse kernels
  }
  c.config.precision_constraints = c.obey ? "obey" : (c.prefer ? "prefer" : "none");
}

bool get_flag(const ConfigDefinition& c, BuilderFlag flag) {
  switch (flag) {
    case BuilderFlag::kFP16:
      return c.config.allow_fp16;
    case BuilderFlag::kBF16:
      return c.config.allow_bf16;
    case BuilderFlag::kTF32:
      return c.config.allow_tf32;
    case BuilderFlag::kOBEY_PRECISION_CONSTRAINTS:
    case BuilderFlag::kSTRICT_TYPES:
      return c.obey;
    case BuilderFlag::kPREFER_PRECISION_CONSTRAINTS:
      return c.prefer;
    default:
      return false;
  }
}

/// A temporary file for the timing cache's bytes around one build (the C++ builder reads and
/// writes a cache file). Its name is fixed, its folder unique: the plan records the name only.
std::filesystem::path temporary_cache_path() {
  static std::atomic<int> counter{0};
  const std::filesystem::path folder =
      std::filesystem::temp_directory_path() /
      ("mlprt-timing-cache-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(folder);
  return folder / "ITimingCache.json";
}

std::unique_ptr<HostMemory> build(const NetworkDefinition& network, ConfigDefinition& c) {
  const Network& net = network.get("build_serialized_network");
  BuilderConfig config = c.config;
  TimingCache* cache = c.timing_cache.is_none() ? nullptr : nb::cast<TimingCache*>(c.timing_cache);
  std::filesystem::path cache_path;
  if (cache) {
    cache_path = temporary_cache_path();
    if (!cache->json.empty())
      throw_if_error(write_file_atomic(
          cache_path, {reinterpret_cast<const uint8_t*>(cache->json.data()), cache->json.size()}));
    config.timing_cache_path = cache_path.string();
  }
  Result<SerializedEngine> built = [&] {
    nb::gil_scoped_release release;
    return build_serialized_engine(net, config);
  }();
  if (cache) {
    std::ifstream in(cache_path, std::ios::binary);
    if (in) cache->json.assign(std::istreambuf_iterator<char>(in), {});
    std::error_code ignored;
    std::filesystem::remove_all(cache_path.parent_path(), ignored);
  }
  auto memory = std::make_unique<HostMemory>();
  memory->bytes = value_or_throw(std::move(built)).bytes;
  return memory;
}

}  // namespace

void bind_builder(nb::module_& m) {
  nb::enum_<BuilderFlag>(m, "BuilderFlag", nb::is_arithmetic(),
                         "What the builder may or must do (TensorRT's names).")
      .value("FP16", BuilderFlag::kFP16, "permit fp16 layers where faster")
      .value("BF16", BuilderFlag::kBF16, "permit bf16 layers where faster")
      .value("TF32", BuilderFlag::kTF32, "permit tf32 matrix products (GPU)")
      .value("INT8", BuilderFlag::kINT8, "not supported: raises UnsupportedError")
      .value("FP8", BuilderFlag::kFP8, "not supported: raises UnsupportedError")
      .value("REFIT", BuilderFlag::kREFIT, "accepted: every mlprt plan is refittable (mlprt.Refitter)")
      .value("OBEY_PRECISION_CONSTRAINTS", BuilderFlag::kOBEY_PRECISION_CONSTRAINTS)
      .value("PREFER_PRECISION_CONSTRAINTS", BuilderFlag::kPREFER_PRECISION_CONSTRAINTS)
      .value("STRICT_TYPES", BuilderFlag::kSTRICT_TYPES, "TensorRT 8's name for OBEY")
      .value("SPARSE_WEIGHTS", BuilderFlag::kSPARSE_WEIGHTS, "accepted; no effect");
  nb::enum_<MemoryPoolType>(m, "MemoryPoolType", nb::is_arithmetic(),
                            "Memory pools of set_memory_pool_limit. Accepted and recorded; mlprt "
                            "sizes its own workspace from the profiles' max shapes.")
      .value("WORKSPACE", MemoryPoolType::kWORKSPACE)
      .value("DLA_MANAGED_SRAM", MemoryPoolType::kDLA_MANAGED_SRAM)
      .value("DLA_LOCAL_DRAM", MemoryPoolType::kDLA_LOCAL_DRAM)
      .value("DLA_GLOBAL_DRAM", MemoryPoolType::kDLA_GLOBAL_DRAM)
      .value("TACTIC_DRAM", MemoryPoolType::kTACTIC_DRAM);

  nb::class_<HostMemory>(m, "IHostMemory", nb::type_slots(host_memory_slots),
                         "A serialized engine (plan) or cache: read-only bytes with the buffer "
                         "protocol (f.write(plan), bytes(plan), memoryview(plan)).")
      .def_prop_ro("nbytes", [](const HostMemory& h) { return h.bytes.size(); })
      .def_prop_ro("dtype", [](const HostMemory&) { return DataType::kUInt8; })
      .def("__len__", [](const HostMemory& h) { return h.bytes.size(); })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });

  nb::class_<TimingCache>(m, "ITimingCache",
                          "Tactic timings the builder reuses (skips timing, makes builds "
                          "reproducible). Keyed by hardware, so one cache serves several machines.")
      .def(
          "serialize",
          [](const TimingCache& t) {
            return make_host_memory(std::vector<uint8_t>(t.json.begin(), t.json.end()));
          },
          "The cache as IHostMemory (bytes(...) gives its JSON), for create_timing_cache later.")
      .def("reset", [](TimingCache& t) { t.json.clear(); })
      .def(
          "combine",
          [](TimingCache& t, const TimingCache& other, bool) {
            if (t.json.empty()) t.json = other.json;
            return t.json == other.json || other.json.empty();
          },
          nb::arg("input_cache"), nb::arg("ignore_mismatch") = false,
          "Adopts `input_cache` when this one is empty; True when the result holds both.")
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });

  nb::class_<ProfileDefinition>(
      m, "IOptimizationProfile",
      "The shape range (min, opt, max) an engine serves per dynamic input.")
      .def(nb::init<>())
      .def(
          "set_shape",
          [](ProfileDefinition& p, const std::string& input, nb::handle min, nb::handle opt,
             nb::handle max) {
            ShapeRange range{to_dims(min, "min"), to_dims(opt, "opt"), to_dims(max, "max")};
            throw_if_error(p.profile.set_dimensions(input, range)
                               .with_context("IOptimizationProfile.set_shape('" + input + "')"));
          },
          nb::arg("input"), nb::arg("min"), nb::arg("opt"), nb::arg("max"),
          "Range of one input: tuples, lists or torch.Size of equal rank with min <= opt <= max "
          "per dimension. The builder checks names and static dims against the network.")
      .def(
          "get_shape",
          [](const ProfileDefinition& p, const std::string& input) {
            nb::list out;
            if (auto range = p.profile.get_dimensions(input)) {
              out.append(to_tuple(range->min));
              out.append(to_tuple(range->opt));
              out.append(to_tuple(range->max));
            }
            return out;
          },
          nb::arg("input"), "[min, opt, max], or [] if the input has no range here.")
      .def("set_shape_input",
           [](ProfileDefinition&, nb::args) {
             throw_error(StatusCode::kUnsupported, "set_shape_input: mlprt has no shape tensors");
           })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });

  nb::class_<ConfigDefinition>(m, "IBuilderConfig", "How to build: flags, profiles, timing cache.")
      .def(nb::init<>())
      .def(
          "set_flag", [](ConfigDefinition& c, BuilderFlag f) { set_flag(c, f, true); },
          nb::arg("flag"))
      .def(
          "clear_flag", [](ConfigDefinition& c, BuilderFlag f) { set_flag(c, f, false); },
          nb::arg("flag"))
      .def("get_flag", &get_flag, nb::arg("flag"))
      .def(
          "set_memory_pool_limit",
          [](ConfigDefinition& c, MemoryPoolType pool, size_t size) { c.pool_limits[pool] = size; },
          nb::arg("pool"), nb::arg("pool_size"),
          "Accepted and recorded (bytes); mlprt sizes its workspace itself.")
      .def(
          "get_memory_pool_limit",
          [](const ConfigDefinition& c, MemoryPoolType pool) {
            auto it = c.pool_limits.find(pool);
            return it == c.pool_limits.end() ? size_t{0} : it->second;
          },
          nb::arg("pool"))
      .def_prop_rw(
          "max_workspace_size",
          [](const ConfigDefinition& c) {
            auto it = c.pool_limits.find(MemoryPoolType::kWORKSPACE);
            return it == c.pool_limits.end() ? size_t{0} : it->second;
          },
          [](ConfigDefinition& c, size_t size) {
            c.pool_limits[MemoryPoolType::kWORKSPACE] = size;
          },
          "TensorRT 8's name for the WORKSPACE pool limit (accepted, recorded).")
      .def(
          "add_optimization_profile",
          [](ConfigDefinition& c, const ProfileDefinition& p) {
            c.config.profiles.push_back(p.profile);
            return static_cast<int>(c.config.profiles.size()) - 1;
          },
          nb::arg("profile"), "Appends a profile; returns its index.")
      .def_prop_ro(
          "num_optimization_profiles",
          [](const ConfigDefinition& c) { return static_cast<int>(c.config.profiles.size()); })
      .def(
          "create_timing_cache",
          [](const ConfigDefinition&, nb::handle serialized) {
            auto cache = std::make_unique<TimingCache>();
            std::vector<uint8_t> bytes = buffer_bytes(serialized, "create_timing_cache");
            cache->json.assign(bytes.begin(), bytes.end());
            return cache;
          },
          nb::arg("serialized_timing_cache"),
          "A cache from serialize()'s bytes (b'' for a new one).")
      .def(
          "set_timing_cache",
          [](ConfigDefinition& c, nb::handle cache, bool) {
            if (!cache.is_none() && !nb::isinstance<TimingCache>(cache))
              throw_error(StatusCode::kInvalidArgument,
                          "set_timing_cache: expected an ITimingCache");
            c.timing_cache = nb::borrow(cache);
            return true;
          },
          nb::arg("cache"), nb::arg("ignore_mismatch") = false,
          "Uses `cache` for this config's builds; it is updated by each build. Entries are keyed "
          "by hardware, so a cache from another machine never mismatches.")
      .def("get_timing_cache", [](const ConfigDefinition& c) { return c.timing_cache; })
      .def_prop_rw(
          "builder_optimization_level",
          [](const ConfigDefinition& c) { return c.config.optimization_level; },
          [](ConfigDefinition& c, int level) {
            if (level < 0 || level > 5)
              throw_error(StatusCode::kInvalidArgument,
                          "builder_optimization_level " + std::to_string(level) + ": allowed 0..5");
            c.config.optimization_level = level;
          },
          "0 times no tactic (fastest build); 1..5 time every candidate (default 3).")
      .def_prop_rw(
          "backend", [](const ConfigDefinition& c) { return c.config.backend; },
          [](ConfigDefinition& c, const std::string& b) { c.config.backend = b; },
          "mlprt's own: 'auto' (default: cuda where a GPU is usable, else cpu), 'cpu' or 'cuda'.")
      .def_prop_rw(
          "num_threads", [](const ConfigDefinition& c) { return c.config.num_threads; },
          [](ConfigDefinition& c, int n) { c.config.num_threads = n; },
          "mlprt's own: host threads the engine is built and run for (0: OpenMP's default).")
      .def_prop_rw(
          "accuracy_budget",
          [](const ConfigDefinition& c) -> nb::object {
            if (!c.config.accuracy_budget) return nb::none();
            return nb::float_(*c.config.accuracy_budget);
          },
          [](ConfigDefinition& c, nb::handle budget) {
            if (budget.is_none()) {
              c.config.accuracy_budget.reset();
              return;
            }
            const double value = nb::cast<double>(budget);
            if (!std::isfinite(value) || value <= 0.0)
              throw_error(StatusCode::kInvalidArgument,
                          "accuracy_budget " + std::to_string(value) +
                              ": must be a finite relative L2 error > 0 (e.g. 1e-3), or None");
            c.config.accuracy_budget = value;
          },
          nb::arg("budget").none(),
          "mlprt's own (`mlprt build --accuracyBudget`): None (default) or the largest relative "
          "L2 error of the outputs against float64 on the calibration inputs. Set, the builder "
          "chooses each layer's precision among fp32 and the permitted FP16 / BF16 / TF32: the "
          "fastest mix within the budget. The plan records each layer's precision and error.")
      .def(
          "set_calibration_inputs",
          [](ConfigDefinition& c, nb::dict inputs) {
            nb::module_ np = nb::module_::import_("numpy");
            std::map<std::string, CalibrationTensor> out;
            for (auto [key, value] : inputs) {
              const std::string name = nb::cast<std::string>(key);
              nb::object array = np.attr("asarray")(value);
              const std::string kind = nb::cast<std::string>(array.attr("dtype").attr("kind"));
              if (kind != "f")
                throw_error(StatusCode::kInvalidArgument,
                            "set_calibration_inputs: input '" + name + "' is " +
                                nb::cast<std::string>(array.attr("dtype").attr("name")) +
                                "; give floating-point arrays (float32, float64 or float16)");
              array = np.attr("ascontiguousarray")(array, "float32");
              CalibrationTensor tensor;
              for (nb::handle d : nb::tuple(array.attr("shape")))
                tensor.dims.push_back(nb::cast<int64_t>(d));
              nb::bytes bytes = nb::bytes(array.attr("tobytes")());
              tensor.values.resize(bytes.size() / sizeof(float));
              if (!tensor.values.empty())
                std::memcpy(tensor.values.data(), bytes.c_str(), bytes.size());
              out[name] = std::move(tensor);
            }
            c.config.calibration_inputs = std::move(out);
            c.config.calibration_source = c.config.calibration_inputs.empty() ? "" : "arrays";
          },
          nb::arg("inputs"),
          "mlprt's own: calibration data for accuracy_budget, {input name: array} (every input "
          "of the network, floating point). Not set (or {}): random data in profile 0's opt "
          "shape.")
      .def_prop_rw(
          "int8_calibrator", [](const ConfigDefinition&) { return nb::none(); },
          [](ConfigDefinition&, nb::handle calibrator) {
            if (calibrator.is_none()) return;
            throw_error(StatusCode::kUnsupported,
                        "int8_calibrator: mlprt has no INT8 kernels or calibration");
          })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });

  nb::class_<Builder>(m, "Builder", "Builds serialized engines (plans) from networks.")
      .def(
          "__init__",
          [](Builder* self, nb::handle logger) {
            install_logger(logger);
            new (self) Builder();
          },
          nb::arg("logger").none() = nb::none())
      .def(
          "create_network",
          [](const Builder&, uint32_t flags) {
            auto network = std::make_unique<NetworkDefinition>();
            network->flags = flags;
            return network;
          },
          nb::arg("flags") = 0,
          "An empty network for OnnxParser. Every network is explicit-batch; the flags are "
          "accepted (1 << EXPLICIT_BATCH, 1 << STRONGLY_TYPED).")
      .def(
          "create_builder_config",
          [](const Builder&) {
            auto config = std::make_unique<ConfigDefinition>();
            config->config.allow_tf32 = true;  // TensorRT's default; clear_flag(TF32) for fp32
            return config;
          },
          "A new config. As in TensorRT, TF32 is permitted by default (GPU matrix products; "
          "rel. error ~1e-3): config.clear_flag(BuilderFlag.TF32) keeps them in fp32.")
      .def("create_optimization_profile",
           [](const Builder&) { return std::make_unique<ProfileDefinition>(); })
      .def(
          "build_serialized_network",
          [](const Builder&, const NetworkDefinition& network, ConfigDefinition& config) {
            return build(network, config);
          },
          nb::arg("network"), nb::arg("config"),
          "Builds the plan: passes, profile validation, tactic timing. Returns IHostMemory. "
          "Raises ShapeError / InvalidArgumentError for bad profiles, UnsupportedError for "
          "what the backend lacks. The GIL is released while building.")
      .def(
          "build_engine",
          [](const Builder&, const NetworkDefinition& network, ConfigDefinition& config) {
            std::unique_ptr<HostMemory> plan = build(network, config);
            return load_engine(std::move(plan->bytes), "<build_engine>");
          },
          nb::arg("network"), nb::arg("config"),
          "TensorRT 8's build + deserialize in one call; returns an ICudaEngine.")
      .def_prop_rw(
          "max_batch_size", [](const Builder& b) { return b.max_batch_size; },
          [](Builder& b, int size) {
            b.max_batch_size = size;
            if (PyErr_WarnEx(
                    PyExc_UserWarning,
                    "Builder.max_batch_size is ignored: mlprt networks are explicit-batch; "
                    "give the batch range with optimization profiles",
                    1) != 0)
              throw nb::python_error();
          },
          "Accepted and ignored with a warning (explicit batch only), as TensorRT 8 did.")
      .def_prop_ro(
          "platform_has_fast_fp16", [](const Builder&) { return true; },
          "True: BuilderFlag.FP16 only permits fp16 where a backend has faster "
          "kernels (the cpu backend says so and stays fp32).")
      .def_prop_ro(
          "platform_has_tf32", [](const Builder&) { return true; },
          "True: BuilderFlag.TF32 only permits tf32 (GPU matrix products).")
      .def_prop_ro("platform_has_fast_int8", [](const Builder&) { return false; })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });
}

}  // namespace mlprt::python
