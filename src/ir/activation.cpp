#include "ir/activation.h"

#include <array>
#include <utility>

namespace mlprt::ir {
namespace {

constexpr std::array<std::pair<ActivationKind, std::string_view>, 21> kNames = {{
    {ActivationKind::kNone, "none"},
    {ActivationKind::kRelu, "relu"},
    {ActivationKind::kLeakyRelu, "leaky_relu"},
    {ActivationKind::kSigmoid, "sigmoid"},
    {ActivationKind::kTanh, "tanh"},
    {ActivationKind::kElu, "elu"},
    {ActivationKind::kSelu, "selu"},
    {ActivationKind::kHardSigmoid, "hard_sigmoid"},
    {ActivationKind::kHardSwish, "hard_swish"},
    {ActivationKind::kSoftplus, "softplus"},
    {ActivationKind::kGeluErf, "gelu_erf"},
    {ActivationKind::kGeluTanh, "gelu_tanh"},
    {ActivationKind::kClip, "clip"},
    {ActivationKind::kSoftplusThreshold, "softplus_threshold"},
    {ActivationKind::kExp, "exp"},
    {ActivationKind::kLog, "log"},
    {ActivationKind::kNeg, "neg"},
    {ActivationKind::kAbs, "abs"},
    {ActivationKind::kSqrt, "sqrt"},
    {ActivationKind::kReciprocal, "reciprocal"},
    {ActivationKind::kErf, "erf"},
}};

}  // namespace

std::optional<ActivationKind> parse_activation(std::string_view name) {
  for (const auto& [kind, text] : kNames) {
    if (text == name) return kind;
  }
  return std::nullopt;
}

bool dense_fusable(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kNone:
    case ActivationKind::kRelu:
    case ActivationKind::kLeakyRelu:
    case ActivationKind::kSigmoid:
    case ActivationKind::kTanh:
    case ActivationKind::kElu:
    case ActivationKind::kGeluErf:
    case ActivationKind::kGeluTanh:
    case ActivationKind::kClip:
    case ActivationKind::kHardSwish:
      return true;
    default:
      return false;
  }
}

std::optional<ActivationSpec> activation_of(const Node& node) {
  const std::string& op = node.op;
  auto spec = [](ActivationKind kind, double alpha = 0.0, double beta = 0.0) {
    return std::optional<ActivationSpec>(ActivationSpec{kind, alpha, beta});
  };
  if (op == "Relu") return spec(ActivationKind::kRelu);
  if (op == "LeakyRelu") return spec(ActivationKind::kLeakyRelu, node.get_float("alpha", 0.01));
  if (op == "Sigmoid") return spec(ActivationKind::kSigmoid);
  if (op == "Tanh") return spec(ActivationKind::kTanh);
  if (op == "Elu") return spec(ActivationKind::kElu, node.get_float("alpha", 1.0));
  if (op == "Selu") {
    // ONNX's defaults are these float32 values, written exactly.
    return spec(ActivationKind::kSelu, node.get_float("alpha", 1.67326319217681884765625),
                node.get_float("gamma", 1.05070102214813232421875));
  }
  if (op == "HardSigmoid") {
    return spec(ActivationKind::kHardSigmoid, node.get_float("alpha", 0.2),
                node.get_float("beta", 0.5));
  }
  if (op == "HardSwish") return spec(ActivationKind::kHardSwish);
  if (op == "Softplus") return spec(ActivationKind::kSoftplus);
  if (op == "Exp") return spec(ActivationKind::kExp);
  if (op == "Log") return spec(ActivationKind::kLog);
  if (op == "Neg") return spec(ActivationKind::kNeg);
  if (op == "Abs") return spec(ActivationKind::kAbs);
  if (op == "Sqrt") return spec(ActivationKind::kSqrt);
  if (op == "Reciprocal") return spec(ActivationKind::kReciprocal);
  if (op == "Erf") return spec(ActivationKind::kErf);
  if (op == "Gelu") {
    const std::string approximate = node.get_string("approximate", "none");
    if (approximate == "none") return spec(ActivationKind::kGeluErf);
    if (approximate == "tanh") return spec(ActivationKind::kGeluTanh);
    return std::nullopt;
  }
  if (op == "Activation") {
    const auto kind = parse_activation(node.get_string("kind", ""));
    if (!kind) return std::nullopt;
    return spec(*kind, node.get_float("alpha", 0.0), node.get_float("beta", 0.0));
  }
  return std::nullopt;
}

std::string_view activation_name(ActivationKind kind) {
  for (const auto& [k, text] : kNames) {
    if (k == kind) return text;
  }
  return "none";
}

}  // namespace mlprt::ir
