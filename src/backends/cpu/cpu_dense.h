#pragma once
// Dense layers on oneDNN matmul: primitive creation and weight packing, done once at load.
//
// Choice for the row count M (batch x leading dims), which varies at run time:
//  * every layer has a primitive with M = DNNL_RUNTIME_DIM_VAL (oneDNN's gemm:jit) that is
//    correct for every M; its weights are stored in the plain layout it asks for.
//  * for each M the plan recorded at a profile's opt shape, the layer also gets a fixed-M
//    primitive whose weights are reordered at load into the blocked layout it prefers
//    (brgemm). Measured on avx512_core for 784x32: 2.3 vs 5.1 us at M=1, 9.7 vs 11.6 us at
//    M=32, 61 vs 79 us at M=256, so the opt shape (what the user tunes for) takes that path.
// Both live in the Executable and are shared by every context; only src/dst/scratchpad
// memory objects are per context.

#include <cstdint>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ir/activation.h"
#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::backend::cpu {

/// "node 'fc1' (Dense)"
std::string describe(const ir::Node& node);
/// A Status for a oneDNN failure while handling `node`.
Status dnnl_failure(const ir::Node& node, const char* doing, const dnnl::error& e);

struct DenseSpec {
  int64_t k = 0;
  int64_t n = 0;
  bool transpose_x = false;
  ir::ActivationSpec activation;  ///< epilogue, one of ir::dense_fusable's kinds
  bool has_bias = false;
};

/// Checks the node's weights/bias/attributes and returns its sizes.
Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node);

/// X as oneDNN sees it: [M, K] (row-major, or column-major for transpose_x). `m` may be
/// DNNL_RUNTIME_DIM_VAL.
dnnl::memory::desc dense_src_desc(const DenseSpec& spec, int64_t m);
dnnl::memory::desc dense_dst_desc(const DenseSpec& spec, int64_t m);

/// Matmul primitive descriptor for `m` rows (DNNL_RUNTIME_DIM_VAL: any), user scratchpad.
Result<dnnl::matmul::primitive_desc> make_dense_pd(const dnnl::engine& engine,
                                                   const ir::Node& node, const DenseSpec& spec,
                                                   int64_t m);

struct DenseVariant {
  int64_t fixed_m = -1;  ///< -1: runtime M, serves every M
  dnnl::matmul primitive;
  dnnl::memory weights;  ///< packed once, in the layout `primitive` wants
  dnnl::memory::desc scratchpad_desc;
  std::string impl;  ///< oneDNN's implementation name, e.g. "brg:avx512_core"
};

struct DenseLayer {
  DenseSpec spec;
  dnnl::memory bias;  ///< null when the layer has no bias
  std::vector<DenseVariant> variants;  ///< [0]: runtime M; then one per fixed M

  /// Index into `variants` of the primitive used for `m` rows.
  [[nodiscard]] size_t variant_for(int64_t m) const;
};

/// Creates the primitives (runtime M plus one per entry of `fixed_ms`) and packs the weights.
Result<DenseLayer> make_dense_layer(const dnnl::engine& engine, const ir::Graph& graph,
                                    const ir::Node& node, const std::vector<int64_t>& fixed_ms);

}  // namespace mlprt::backend::cpu
