// DLPack / buffer-protocol / CUDA-array-interface views and same-library output arrays.
#include "arrays.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>

#include <string_view>
#include <unordered_map>

namespace mlprt::python {
namespace {

// Whether `stride(i)` (in the unit of `unit`: bytes or elements) describes a C-contiguous
// layout of `dims`; dimensions of size 1 may have any stride.
template <typename Stride>
bool c_contiguous(const Dims& dims, Stride stride, int64_t unit) {
  int64_t expected = unit;
  for (size_t i = dims.size(); i-- > 0;) {
    if (dims[i] != 1 && static_cast<int64_t>(stride(i)) != expected) return false;
    expected *= dims[i];
  }
  return true;
}

ArrayKind kind_of(nb::handle object) {
  static std::unordered_map<PyTypeObject*, ArrayKind> cache;  // guarded by the GIL
  PyTypeObject* type = Py_TYPE(object.ptr());
  if (auto it = cache.find(type); it != cache.end()) return it->second;
  ArrayKind kind = ArrayKind::kOther;
  nb::object module =
      nb::getattr(nb::handle(reinterpret_cast<PyObject*>(type)), "__module__", nb::none());
  if (nb::isinstance<nb::str>(module)) {
    std::string_view name = nb::cast<std::string_view>(module);
    auto is = [&](std::string_view prefix) {
      return name.substr(0, prefix.size()) == prefix &&
             (name.size() == prefix.size() || name[prefix.size()] == '.');
    };
    if (is("numpy"))
      kind = ArrayKind::kNumpy;
    else if (is("torch"))
      kind = ArrayKind::kTorch;
    else if (is("cupy") || is("cupy._core.core"))
      kind = ArrayKind::kCupy;
  }
  // Only the libraries' own array types are cached (and kept alive, as they are anyway): a
  // user's class would keep its module, and everything in it, alive until exit.
  if (kind != ArrayKind::kOther) {
    Py_INCREF(type);
    cache.emplace(type, kind);
  }
  return kind;
}

bool to_data_type(nb::dlpack::dtype t, DataType& out) {
  using code = nb::dlpack::dtype_code;
  if (t.lanes != 1) return false;
  switch (static_cast<code>(t.code)) {
    case code::Float:
      if (t.bits == 32) return out = DataType::kFloat32, true;
      if (t.bits == 16) return out = DataType::kFloat16, true;
      if (t.bits == 64) return out = DataType::kFloat64, true;
      return false;
    case code::Bfloat:
      if (t.bits == 16) return out = DataType::kBFloat16, true;
      return false;
    case code::Int:
      if (t.bits == 64) return out = DataType::kInt64, true;
      if (t.bits == 32) return out = DataType::kInt32, true;
      if (t.bits == 8) return out = DataType::kInt8, true;
      return false;
    case code::UInt:
      if (t.bits == 8) return out = DataType::kUInt8, true;
      return false;
    case code::Bool:
      return out = DataType::kBool, true;
    default:
      return false;
  }
}

std::string describe(nb::dlpack::dtype t) {
  static const char* names[] = {"int", "uint", "float", "opaque", "bfloat", "complex", "bool"};
  const char* name = t.code < 7 ? names[t.code] : "unknown";
  return std::string(name) + std::to_string(t.bits);
}

// __cuda_array_interface__ (numba, older libraries): shape, typestr, data (ptr, readonly),
// strides (None: C-contiguous).
bool import_cuda_array_interface(nb::handle object, ArrayRef& out) {
  if (!nb::hasattr(object, "__cuda_array_interface__")) return false;
  nb::dict cai = nb::cast<nb::dict>(object.attr("__cuda_array_interface__"));
  out.dims = to_dims(cai["shape"], "__cuda_array_interface__ shape");
  std::string typestr = nb::cast<std::string>(cai["typestr"]);
  out.dtype_name = typestr;
  if (typestr == "<f4")
    out.dtype = DataType::kFloat32, out.dtype_known = true;
  else if (typestr == "<f2")
    out.dtype = DataType::kFloat16, out.dtype_known = true;
  else if (typestr == "<f8")
    out.dtype = DataType::kFloat64, out.dtype_known = true;
  out.data = to_pointer(nb::cast<nb::tuple>(cai["data"])[0], "__cuda_array_interface__ data");
  out.on_device = true;
  out.device_id = -1;  // the interface does not say: taken to be the engine's GPU
  nb::handle strides = cai.contains("strides") ? nb::handle(cai["strides"]) : nb::none();
  if (!strides.is_none() && out.dtype_known) {
    const Dims s = to_dims(strides, "__cuda_array_interface__ strides");
    out.contiguous =
        s.size() == out.dims.size() && c_contiguous(
                                           out.dims, [&](size_t i) { return s[i]; },
                                           static_cast<int64_t>(element_size(out.dtype)));
  }
  return true;
}

nb::handle torch_module() {
  static nb::handle torch = nb::module_::import_("torch").release();  // lives until exit
  return torch;
}

nb::object numpy_module() {
  static nb::handle module = nb::module_::import_("numpy").release();  // lives until exit
  return nb::borrow(module);
}

const char* numpy_dtype(DataType t, const std::string& what) {
  switch (t) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat16:
      return "float16";
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt64:
      return "int64";
    case DataType::kInt32:
      return "int32";
    case DataType::kInt8:
      return "int8";
    case DataType::kUInt8:
      return "uint8";
    case DataType::kBool:
      return "bool";
    case DataType::kBFloat16:
      break;
  }
  throw_error(StatusCode::kUnsupported,
              what +
                  " is bfloat16, which numpy has no type for: pass torch tensors, or build the "
                  "engine with fp32 outputs (--outputIOFormats=fp32)");
}

nb::object torch_dtype(DataType t) {
  nb::handle torch = torch_module();
  switch (t) {
    case DataType::kFloat16:
      return torch.attr("float16");
    case DataType::kBFloat16:
      return torch.attr("bfloat16");
    case DataType::kFloat64:
      return torch.attr("float64");
    case DataType::kInt64:
      return torch.attr("int64");
    case DataType::kInt32:
      return torch.attr("int32");
    case DataType::kInt8:
      return torch.attr("int8");
    case DataType::kUInt8:
      return torch.attr("uint8");
    case DataType::kBool:
      return torch.attr("bool");
    case DataType::kFloat32:
      break;
  }
  return torch.attr("float32");
}

bool importable(const char* module) {
  try {
    nb::module_::import_(module);
    return true;
  } catch (nb::python_error&) {
    return false;
  }
}

// numpy arrays through the buffer protocol: several times cheaper than a DLPack capsule, which
// matters for small batches on the CPU.
bool import_buffer(nb::handle object, ArrayRef& out) {
  Py_buffer view;
  if (PyObject_GetBuffer(object.ptr(), &view, PyBUF_RECORDS_RO) != 0) {
    PyErr_Clear();
    return false;
  }
  const char* format = view.format ? view.format : "B";
  if (*format == '<' || *format == '=' || *format == '@') ++format;
  const std::string_view f(format);
  out.dtype_known = true;
  if (f == "f")
    out.dtype = DataType::kFloat32;
  else if (f == "e")
    out.dtype = DataType::kFloat16;
  else if (f == "d")
    out.dtype = DataType::kFloat64;
  else
    out.dtype_known = false, out.dtype_name = "numpy format '" + std::string(f) + "'";
  out.data = view.buf;
  out.dims.assign(view.shape, view.shape + view.ndim);
  out.contiguous = c_contiguous(
      out.dims, [&](size_t i) { return view.strides[i]; }, view.itemsize);
  PyBuffer_Release(&view);  // the array itself stays referenced by out.object
  return true;
}

// torch tensors through their own attributes: several times cheaper than a DLPack capsule,
// which matters for small batches. False (nothing set) for tensors without plain storage.
bool import_torch(nb::handle object, ArrayRef& out) {
  static nb::handle f32 = nb::object(torch_module().attr("float32")).release();
  static nb::handle f16 = nb::object(torch_module().attr("float16")).release();
  static nb::handle bf16 = nb::object(torch_module().attr("bfloat16")).release();
  static nb::handle f64 = nb::object(torch_module().attr("float64")).release();
  try {
    nb::object dtype = object.attr("dtype");
    out.dtype_known = true;
    if (dtype.is(f32))
      out.dtype = DataType::kFloat32;
    else if (dtype.is(f16))
      out.dtype = DataType::kFloat16;
    else if (dtype.is(bf16))
      out.dtype = DataType::kBFloat16;
    else if (dtype.is(f64))
      out.dtype = DataType::kFloat64;
    else
      out.dtype_known = false;
    if (!out.dtype_known) out.dtype_name = nb::cast<std::string>(nb::str(dtype));
    out.data = to_pointer(object.attr("data_ptr")(), "data_ptr()");
    out.dims = to_dims(object.attr("shape"), "shape");
    out.contiguous = nb::cast<bool>(object.attr("is_contiguous")());
    out.on_device = nb::cast<bool>(object.attr("is_cuda"));
    out.device_id = out.on_device ? nb::cast<int>(object.attr("get_device")()) : 0;
    return true;
  } catch (nb::python_error&) {
    return false;  // sparse, meta, ...: DLPack says what it can
  } catch (nb::cast_error&) {
    return false;
  }
}

}  // namespace

ArrayRef import_array(nb::handle object, const std::string& what) {
  ArrayRef out;
  out.object = nb::borrow(object);
  out.kind = kind_of(object);
  if (out.kind == ArrayKind::kNumpy && import_buffer(object, out)) return out;
  if (out.kind == ArrayKind::kTorch && import_torch(object, out)) return out;
  nb::ndarray<nb::ro> view;
  if (nb::try_cast(object, view, false)) {
    out.data = const_cast<void*>(view.data());
    out.dims.resize(view.ndim());
    for (size_t i = 0; i < view.ndim(); ++i) out.dims[i] = view.shape(i);
    out.dtype_known = to_data_type(view.dtype(), out.dtype);
    out.dtype_name = describe(view.dtype());
    const int device = view.device_type();
    out.on_device = device == nb::device::cuda::value || device == nb::device::cuda_managed::value;
    out.device_id = view.device_id();
    if (device != nb::device::cpu::value && device != nb::device::cuda_host::value &&
        !out.on_device)
      throw_error(StatusCode::kInvalidArgument,
                  what + " lives on DLPack device type " + std::to_string(device) +
                      ": mlprt reads host memory and CUDA device memory");
    out.contiguous = c_contiguous(
        out.dims, [&](size_t i) { return view.stride(i); }, 1);
    return out;
  }
  if (import_cuda_array_interface(object, out)) return out;
  throw_error(StatusCode::kInvalidArgument,
              what +
                  ": expected an array (numpy, torch, cupy, or an object with __dlpack__ / "
                  "__cuda_array_interface__), got " +
                  nb::type_name(object.type()).c_str());
}

ArrayRef contiguous_copy(const ArrayRef& array, const std::string& what) {
  nb::object copy;
  switch (array.kind) {
    case ArrayKind::kNumpy:
      copy = numpy_module().attr("ascontiguousarray")(array.object);
      break;
    case ArrayKind::kTorch:
      copy = array.object.attr("contiguous")();
      break;
    case ArrayKind::kCupy:
      copy = nb::module_::import_("cupy").attr("ascontiguousarray")(array.object);
      break;
    case ArrayKind::kOther:
      throw_error(StatusCode::kInvalidArgument,
                  what + " is not C-contiguous and mlprt cannot copy this kind of array (" +
                      nb::type_name(array.object.type()).c_str() + "): pass a contiguous one");
  }
  const std::string note = what +
                           " is not C-contiguous: mlprt copied it (pass a contiguous array "
                           "to avoid the copy)";
  if (PyErr_WarnEx(PyExc_UserWarning, note.c_str(), 2) != 0) throw nb::python_error();
  return import_array(copy, what);
}

ArrayRef allocate_like(const ArrayRef& like, nb::handle shape, DataType dtype,
                       const std::string& what) {
  ArrayKind kind = like.kind;
  if (kind == ArrayKind::kOther)
    kind = !like.on_device       ? ArrayKind::kNumpy
           : importable("torch") ? ArrayKind::kTorch
           : importable("cupy")  ? ArrayKind::kCupy
                                 : ArrayKind::kOther;
  nb::object array;
  switch (kind) {
    case ArrayKind::kNumpy: {
      static nb::handle empty = nb::object(numpy_module().attr("empty")).release();
      static nb::handle float32 = nb::object(numpy_module().attr("dtype")("float32")).release();
      array = dtype == DataType::kFloat32 ? empty(shape, float32)
                                          : empty(shape, numpy_dtype(dtype, what));
      break;
    }
    case ArrayKind::kTorch: {
      if (like.kind == ArrayKind::kTorch && like.dtype_known && like.dtype == dtype) {
        array = like.object.attr("new_empty")(shape);  // the input's dtype and device
        break;
      }
      static nb::handle empty = nb::object(torch_module().attr("empty")).release();
      nb::object device =
          like.kind == ArrayKind::kTorch ? like.object.attr("device")
          : like.on_device               ? nb::object(nb::str("cuda:") +
                                                      nb::str(nb::int_(like.device_id < 0 ? 0 : like.device_id)))
                                         : nb::object(nb::str("cpu"));
      array = empty(shape, nb::arg("dtype") = torch_dtype(dtype), nb::arg("device") = device);
      break;
    }
    case ArrayKind::kCupy:
      array = nb::module_::import_("cupy").attr("empty")(shape, numpy_dtype(dtype, what));
      break;
    case ArrayKind::kOther:
      throw_error(StatusCode::kInvalidArgument,
                  what +
                      ": no library to make a GPU output with (install torch or cupy, or pass "
                      "outputs=)");
  }
  if (kind == ArrayKind::kTorch) {
    // A fresh contiguous tensor of the asked dtype and device: only its address is needed.
    ArrayRef out;
    out.object = array;
    out.kind = kind;
    out.data = to_pointer(array.attr("data_ptr")(), "data_ptr()");
    out.dtype_known = true;
    out.dtype = dtype;
    out.on_device = like.on_device;
    out.device_id = like.device_id;
    return out;
  }
  return import_array(array, what);
}

void* current_stream_of(const ArrayRef& array) {
  if (!array.on_device) return nullptr;
  if (array.kind == ArrayKind::kTorch) {
    // torch's raw-handle query where it has one (no Stream object made per call).
    static nb::handle raw =
        nb::getattr(torch_module().attr("_C"), "_cuda_getCurrentRawStream", nb::none()).release();
    if (!raw.is_none()) return from_raw_stream(to_pointer(raw(array.device_id), "current stream"));
    static nb::handle current =
        nb::object(nb::module_::import_("torch.cuda").attr("current_stream")).release();
    return to_stream(current(array.object.attr("device")));
  }
  if (array.kind == ArrayKind::kCupy) {
    static nb::handle current =
        nb::object(nb::module_::import_("cupy.cuda").attr("get_current_stream")).release();
    return to_stream(current());
  }
  return nullptr;
}

}  // namespace mlprt::python
