#pragma once
// Element-wise activations shared by the float64 evaluator and the backends' float loops, so
// that both compute the same formula (ONNX semantics) for every kind.

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace mlprt::ir {

/// "Activation" layer op kinds (attr "kind") and the Dense epilogue (attr "activation").
/// alpha / beta per kind: leaky_relu alpha = slope; elu alpha; selu alpha, beta = gamma;
/// hard_sigmoid alpha, beta; clip alpha = min, beta = max; softplus_threshold alpha = beta of
/// torch's nn.Softplus (the scale), beta = its threshold: x where alpha * x > threshold, else
/// log(1 + exp(alpha * x)) / alpha; the others take none.
enum class ActivationKind {
  kNone,
  kRelu,
  kLeakyRelu,
  kSigmoid,
  kTanh,
  kElu,
  kSelu,
  kHardSigmoid,
  kHardSwish,
  kSoftplus,
  kGeluErf,
  kGeluTanh,
  kClip,
  kSoftplusThreshold,
  kExp,
  kLog,
  kNeg,
  kAbs,
  kSqrt,
  kReciprocal,
  kErf,
};

inline constexpr std::string_view kActivationKinds =
    "none, relu, leaky_relu, sigmoid, tanh, elu, selu, hard_sigmoid, hard_swish, softplus, "
    "gelu_erf, gelu_tanh, clip, softplus_threshold, exp, log, neg, abs, sqrt, reciprocal, erf";

std::optional<ActivationKind> parse_activation(std::string_view name);
std::string_view activation_name(ActivationKind kind);

/// Kinds the Dense layer's epilogue takes (each is a oneDNN matmul eltwise post-op).
bool dense_fusable(ActivationKind kind);

struct ActivationSpec {
  ActivationKind kind = ActivationKind::kNone;
  double alpha = 0.0;
  double beta = 0.0;
};

/// The activation a node computes: ONNX Relu, LeakyRelu, Sigmoid, Tanh, Elu, Selu,
/// HardSigmoid, HardSwish, Softplus, Gelu, Exp, Log, Neg, Abs, Sqrt, Reciprocal, Erf (with their
/// ONNX defaults) or the layer op
/// "Activation"; nullopt for other ops and unknown kinds. Clip is not included (its bounds may
/// be inputs).
std::optional<ActivationSpec> activation_of(const Node& node);

template <typename T>
inline T apply_activation(ActivationKind kind, T x, T alpha, T beta) {
  switch (kind) {
    case ActivationKind::kNone:
      return x;
    case ActivationKind::kRelu:
      return x > T(0) ? x : T(0);
    case ActivationKind::kLeakyRelu:
      return x >= T(0) ? x : alpha * x;
    case ActivationKind::kSigmoid:
      return T(1) / (T(1) + std::exp(-x));
    case ActivationKind::kTanh:
      return std::tanh(x);
    case ActivationKind::kElu:
      return x > T(0) ? x : alpha * (std::exp(x) - T(1));
    case ActivationKind::kSelu:
      return beta * (x > T(0) ? x : alpha * (std::exp(x) - T(1)));
    case ActivationKind::kHardSigmoid:
      return std::clamp(alpha * x + beta, T(0), T(1));
    case ActivationKind::kHardSwish:
      return x * std::clamp(x / T(6) + T(0.5), T(0), T(1));
    case ActivationKind::kSoftplus:
      // log(1 + e^x) without overflow for large x.
      return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    case ActivationKind::kGeluErf:
      return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case ActivationKind::kGeluTanh:
      return T(0.5) * x *
             (T(1) + std::tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
    case ActivationKind::kClip:
      return std::min(std::max(x, alpha), beta);
    case ActivationKind::kSoftplusThreshold: {
      // As torch's nn.Softplus(beta, threshold) and its dynamo export (Greater + Where).
      const T s = alpha * x;
      if (s > beta) return x;
      return (s > T(0) ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s))) / alpha;
    }
    case ActivationKind::kExp:
      return std::exp(x);
    case ActivationKind::kLog:
      return std::log(x);
    case ActivationKind::kNeg:
      return -x;
    case ActivationKind::kAbs:
      return std::abs(x);
    case ActivationKind::kSqrt:
      return std::sqrt(x);
    case ActivationKind::kReciprocal:
      return T(1) / x;
    case ActivationKind::kErf:
      return std::erf(x);
  }
  return x;
}

}  // namespace mlprt::ir
