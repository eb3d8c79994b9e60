// network.h: INetworkDefinition (also mlprt.Network), ITensor, OnnxParser, ParserError.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "bind_logger.h"
#include "network.h"

namespace mlprt::python {
namespace {

struct NetworkTensor {
  TensorDesc desc;
  bool is_input = true;
};

struct ParserError {
  std::string message;
  StatusCode code = StatusCode::kOk;
};

struct OnnxParser {
  nb::object network_ref;  // keeps the Python network alive
  NetworkDefinition* network = nullptr;
  std::vector<ParserError> errors;

  bool record(Result<std::unique_ptr<Network>> parsed) {
    if (!parsed) {
      errors.push_back({parsed.status().message(), parsed.status().code()});
      return false;
    }
    network->network = std::move(parsed).value();
    return true;
  }
};

bool same_bytes(const std::string& path, std::span<const uint8_t> bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || static_cast<size_t>(in.tellg()) != bytes.size()) return false;
  in.seekg(0);
  std::vector<char> file(bytes.size());
  in.read(file.data(), static_cast<std::streamsize>(file.size()));
  return in && std::memcmp(file.data(), bytes.data(), bytes.size()) == 0;
}

enum class CreationFlag : uint32_t { kExplicitBatch = 0, kStronglyTyped = 1 };

NetworkTensor tensor_at(const NetworkDefinition& self, int index, bool input) {
  const Network& network = self.get(input ? "get_input" : "get_output");
  std::vector<TensorDesc> list = input ? network.inputs() : network.outputs();
  if (index < 0 || index >= static_cast<int>(list.size()))
    throw_error(StatusCode::kNotFound,
                std::string(input ? "input" : "output") + " index " + std::to_string(index) +
                    " out of range: the network has " + std::to_string(list.size()));
  return {list[static_cast<size_t>(index)], input};
}

}  // namespace

const Network& NetworkDefinition::get(const char* caller) const {
  if (!network)
    throw_error(StatusCode::kInvalidArgument,
                std::string(caller) +
                    ": the network is empty: fill it with OnnxParser(network, logger).parse(...) "
                    "or parse_from_file(path) first");
  return *network;
}

void bind_network(nb::module_& m) {
  nb::enum_<CreationFlag>(m, "NetworkDefinitionCreationFlag", nb::is_arithmetic(),
                          "Flags of Builder.create_network. Networks are always explicit-batch "
                          "and typed by the model; both flags are accepted.")
      .value("EXPLICIT_BATCH", CreationFlag::kExplicitBatch)
      .value("STRONGLY_TYPED", CreationFlag::kStronglyTyped);

  nb::class_<NetworkTensor>(m, "ITensor", "An input or output of a network.")
      .def_prop_ro("name", [](const NetworkTensor& t) { return t.desc.name; })
      .def_prop_ro(
          "shape", [](const NetworkTensor& t) { return to_tuple(t.desc.dims); },
          "Dimensions as a tuple; -1 marks a dynamic dimension.")
      .def_prop_ro("dtype", [](const NetworkTensor& t) { return t.desc.dtype; })
      .def_prop_ro("is_network_input", [](const NetworkTensor& t) { return t.is_input; })
      .def_prop_ro("is_network_output", [](const NetworkTensor& t) { return !t.is_input; })
      .def("__repr__", [](const NetworkTensor& t) {
        return "ITensor(name='" + t.desc.name + "', shape=" + to_string(t.desc.dims) +
               ", dtype=" + std::string(to_string(t.desc.dtype)) + ")";
      });

  nb::class_<NetworkDefinition>(m, "INetworkDefinition",
                                "An imported model. Created empty by Builder.create_network() and "
                                "filled by OnnxParser, or directly with "
                                "INetworkDefinition.from_onnx_file(path).")
      .def_static(
          "from_onnx_file",
          [](const std::string& path) {
            auto definition = std::make_unique<NetworkDefinition>();
            nb::gil_scoped_release release;
            definition->network =
                value_or_throw(Network::from_onnx_file(path), ErrorSource::kModel);
            return definition;
          },
          nb::arg("path"),
          "Imports an ONNX file (external weights from its folder). Raises ModelError, "
          "UnsupportedError (naming the op, node and opset) or IoError.")
      .def_static(
          "from_onnx_bytes",
          [](nb::bytes model, const std::string& name) {
            auto definition = std::make_unique<NetworkDefinition>();
            std::span<const uint8_t> bytes(static_cast<const uint8_t*>(model.data()), model.size());
            nb::gil_scoped_release release;
            definition->network =
                value_or_throw(Network::from_onnx_bytes(bytes, name), ErrorSource::kModel);
            return definition;
          },
          nb::arg("model"), nb::arg("name") = "<bytes>", "Imports an in-memory ONNX model.")
      .def_prop_ro("name", [](const NetworkDefinition& n) { return n.get("name").name(); })
      .def_prop_ro("num_inputs",
                   [](const NetworkDefinition& n) {
                     return n.network ? static_cast<int>(n.network->inputs().size()) : 0;
                   })
      .def_prop_ro("num_outputs",
                   [](const NetworkDefinition& n) {
                     return n.network ? static_cast<int>(n.network->outputs().size()) : 0;
                   })
      .def(
          "get_input", [](const NetworkDefinition& n, int i) { return tensor_at(n, i, true); },
          nb::arg("index"))
      .def(
          "get_output", [](const NetworkDefinition& n, int i) { return tensor_at(n, i, false); },
          nb::arg("index"))
      .def_prop_ro("has_explicit_batch", [](const NetworkDefinition&) { return true; })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });

  nb::class_<ParserError>(m, "ParserError", "One error OnnxParser recorded.")
      .def(
          "desc", [](const ParserError& e) { return e.message; }, "mlprt's message.")
      .def("code", [](const ParserError& e) { return std::string(to_string(e.code)); })
      .def(
          "node", [](const ParserError&) { return -1; }, "Always -1: the message names the node.")
      .def("__str__", [](const ParserError& e) { return e.message; })
      .def("__repr__", [](const ParserError& e) { return "ParserError('" + e.message + "')"; });

  nb::class_<OnnxParser>(m, "OnnxParser",
                         "Fills an empty network from an ONNX model. parse* return False on "
                         "failure and record why (num_errors, get_error(i)), as TensorRT does.")
      .def(
          "__init__",
          [](OnnxParser* self, nb::handle network, nb::handle logger) {
            install_logger(logger);
            new (self) OnnxParser{nb::borrow(network), &nb::cast<NetworkDefinition&>(network), {}};
          },
          nb::arg("network"), nb::arg("logger").none() = nb::none())
      .def(
          "parse",
          [](OnnxParser& self, nb::bytes model, nb::handle path) {
            std::span<const uint8_t> bytes(static_cast<const uint8_t*>(model.data()), model.size());
            std::string name = path.is_none() ? "<bytes>" : nb::cast<std::string>(nb::str(path));
            Result<std::unique_ptr<Network>> parsed = [&] {
              nb::gil_scoped_release release;
              // With the model's path, external weights are read from its folder: the file is
              // parsed when it holds these very bytes.
              if (!path.is_none() && same_bytes(name, bytes)) return Network::from_onnx_file(name);
              return Network::from_onnx_bytes(bytes, name);
            }();
            return self.record(std::move(parsed));
          },
          nb::arg("model"), nb::arg("path").none() = nb::none(),
          "Parses a serialized ONNX model (bytes). `path`: the file it was read from, needed "
          "for weights stored beside it (external data). Returns True on success.")
      .def(
          "parse_from_file",
          [](OnnxParser& self, const std::filesystem::path& path) {
            Result<std::unique_ptr<Network>> parsed = [&] {
              nb::gil_scoped_release release;
              return Network::from_onnx_file(path);
            }();
            return self.record(std::move(parsed));
          },
          nb::arg("model"), "Parses an ONNX file. Returns True on success.")
      .def_prop_ro("num_errors",
                   [](const OnnxParser& p) { return static_cast<int>(p.errors.size()); })
      .def(
          "get_error",
          [](const OnnxParser& p, int i) {
            if (i < 0 || i >= static_cast<int>(p.errors.size()))
              throw_error(StatusCode::kNotFound,
                          "parser error index " + std::to_string(i) +
                              " out of range: " + std::to_string(p.errors.size()) + " recorded");
            return p.errors[static_cast<size_t>(i)];
          },
          nb::arg("index"))
      .def("clear_errors", [](OnnxParser& p) { p.errors.clear(); })
      .def("__enter__", [](nb::handle self) { return self; })
      .def("__exit__", [](nb::handle, nb::args) { return false; });
}

}  // namespace mlprt::python
