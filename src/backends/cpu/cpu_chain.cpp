#include "backends/cpu/cpu_chain.h"

#include <omp.h>

#include <algorithm>
#include <array>

#include "backends/cpu/cpu_layers.h"
#include "common/check.h"

namespace mlprt::backend::cpu {
namespace {

int64_t elements_of(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace

std::string ChainRun::why_not_row_wise(const CpuExecutable& exe, const ir::ShapeMap& shapes) {
  if (exe.input_ids().empty()) return "the graph has no input";
  const std::vector<TensorSlot>& tensors = exe.tensors();
  const Dims& first = shapes.at(tensors[exe.input_ids()[0]].name);
  if (first.empty()) return "input '" + tensors[exe.input_ids()[0]].name + "' is a scalar";
  const int64_t rows = first[0];
  for (const TensorSlot& slot : tensors) {
    if (slot.role == TensorRole::kConstant) continue;
    const Dims& dims = shapes.at(slot.name);
    if (dims.empty() || dims[0] != rows) {
      return "tensor '" + slot.name + "' of shape " + to_string(dims) + " does not have " +
             std::to_string(rows) + " rows in dim 0";
    }
  }
  for (const Layer& layer : exe.layers()) {
    const Dims& in = shapes.at(tensors[layer.inputs[0]].name);
    const auto rank = static_cast<int64_t>(in.size());
    switch (layer.kind) {
      case LayerKind::kDense:
        if (layer.dense.spec.transpose_x) return "layer '" + layer.name + "' transposes X";
        break;
      case LayerKind::kSoftmax:
      case LayerKind::kLayerNorm:
      case LayerKind::kScaleShift: {
        const int64_t axis = layer.params.axis < 0 ? layer.params.axis + rank : layer.params.axis;
        if (axis < 1) return "layer '" + layer.name + "' reduces over dim 0";
        break;
      }
      case LayerKind::kAdd: {
        const Dims& out = shapes.at(tensors[layer.output].name);
        for (size_t input : layer.inputs) {
          const Dims& dims = shapes.at(tensors[input].name);
          const bool full = dims == out;
          const bool leading_one = dims.size() < out.size() || dims[0] == 1;
          const int64_t n = elements_of(dims);
          if (!full && !(leading_one && (n == 1 || n == elements_of(out) / rows))) {
            return "layer '" + layer.name + "' broadcasts '" + tensors[input].name +
                   "' of shape " + to_string(dims) + " within rows of " + to_string(out);
          }
        }
        break;
      }
      case LayerKind::kRelu:
      case LayerKind::kActivation:
      case LayerKind::kView: break;
      case LayerKind::kCopy:
      case LayerKind::kReduceMean:
      case LayerKind::kMatMul:
        return "layer '" + layer.name + "' (" + layer.op + ") is not run row-split";
    }
  }
  return "";
}

Result<bool> ChainRun::prepare(const CpuExecutable& exe, const ir::ShapeMap& shapes, int threads,
                               const std::vector<RowLoop>& loops, ThreadPoolResources& pool) {
  m_active = false;
  m_exe = &exe;
  if (exe.chain_rows().empty() || exe.input_ids().empty()) return false;
  const std::vector<TensorSlot>& tensors = exe.tensors();
  const Dims& first = shapes.at(tensors[exe.input_ids()[0]].name);
  const int64_t rows = first.empty() ? 0 : first[0];
  const std::vector<int64_t>& wanted = exe.chain_rows();
  if (std::find(wanted.begin(), wanted.end(), rows) == wanted.end()) return false;
  m_blocks = split_rows(rows, threads);
  if (m_blocks.size() < 2 || !why_not_row_wise(exe, shapes).empty()) return false;
  MLPRT_RETURN_IF_ERROR(pool.reserve(exe.engine(), static_cast<int>(m_blocks.size()),
                                     exe.scratchpad_bytes()));
  m_steps.clear();
  m_dense.resize(exe.layers().size());
  for (size_t l = 0; l < exe.layers().size(); ++l) {
    const Layer& layer = exe.layers()[l];
    if (layer.kind == LayerKind::kView) continue;
    const Dims& out = shapes.at(tensors[layer.output].name);
    Step step;
    step.layer = l;
    step.features = elements_of(out) / rows;
    if (layer.kind == LayerKind::kDense) {
      // Dense rows per batch row (1 unless X has more than two dims).
      const int64_t per_row =
          elements_of(shapes.at(tensors[layer.inputs[0]].name)) / layer.dense.spec.k / rows;
      std::vector<RowRange> ranges = m_blocks;
      for (RowRange& r : ranges) r = {r.begin * per_row, r.end * per_row};
      MLPRT_RETURN_IF_ERROR(
          m_dense[l].prepare_blocks(exe.engine(), layer.name, layer.dense, ranges, pool));
    } else if (layer.kind == LayerKind::kSoftmax || layer.kind == LayerKind::kLayerNorm ||
               layer.kind == LayerKind::kScaleShift) {
      step.loop = loops[l];
      step.loop.outer /= rows;
    } else if (layer.kind == LayerKind::kAdd) {
      auto operand = [&](size_t input) {
        const Dims& dims = shapes.at(tensors[input].name);
        if (dims == out) return Operand::kFull;
        return elements_of(dims) == 1 ? Operand::kScalar : Operand::kRow;
      };
      step.a = operand(layer.inputs[0]);
      step.b = operand(layer.inputs[1]);
    }
    m_steps.push_back(step);
  }
  m_active = true;
  return true;
}

Status ChainRun::run_block(size_t t, const std::vector<float*>& ptrs) {
  const RowRange rows = m_blocks[t];
  const int64_t count = rows.end - rows.begin;
  for (const Step& step : m_steps) {
    const Layer& layer = m_exe->layers()[step.layer];
    const float* x = ptrs[layer.inputs[0]];
    float* y = ptrs[layer.output];
    const int64_t f = step.features;
    const int64_t offset = rows.begin * f;
    switch (layer.kind) {
      case LayerKind::kDense:
        MLPRT_RETURN_IF_ERROR(m_dense[step.layer].run_block(
            t, x, y, layer.residual ? ptrs[layer.inputs.back()] : nullptr));
        break;
      case LayerKind::kRelu:
      case LayerKind::kActivation: {
        ir::ActivationSpec relu;
        relu.kind = ir::ActivationKind::kRelu;
        run_activation(layer.kind == LayerKind::kRelu ? relu : layer.params.activation,
                       x + offset, y + offset, count * f);
        break;
      }
      case LayerKind::kSoftmax:
      case LayerKind::kLayerNorm:
      case LayerKind::kScaleShift: {
        RowLoop loop = step.loop;
        loop.outer *= count;
        if (layer.kind == LayerKind::kSoftmax) run_softmax(loop, layer.params.log, x + offset, y + offset);
        if (layer.kind == LayerKind::kLayerNorm) run_layer_norm(loop, layer.params, x + offset, y + offset);
        if (layer.kind == LayerKind::kScaleShift) {
          run_scale_shift(loop, layer.params, x + offset, y + offset);
        }
        break;
      }
      case LayerKind::kAdd: {
        const float* b = ptrs[layer.inputs[1]];
        if (step.a == Operand::kFull && step.b == Operand::kFull) {
          run_binary_row(layer.params.binary, x + offset, 1, b + offset, 1, y + offset, count * f);
        } else if (step.a == Operand::kScalar || step.b == Operand::kScalar) {
          const bool a_scalar = step.a == Operand::kScalar;
          run_binary_row(layer.params.binary, a_scalar ? x : x + offset, a_scalar ? 0 : 1,
                         a_scalar ? b + offset : b, a_scalar ? 1 : 0, y + offset, count * f);
        } else {
          // One operand is one row, repeated for every row.
          for (int64_t r = rows.begin; r < rows.end; ++r) {
            const float* ar = step.a == Operand::kRow ? x : x + r * f;
            const float* br = step.b == Operand::kRow ? b : b + r * f;
            run_binary_row(layer.params.binary, ar, 1, br, 1, y + r * f, f);
          }
        }
        break;
      }
      case LayerKind::kView:
      case LayerKind::kCopy:  // never in a row-split chain (why_not_row_wise)
      case LayerKind::kReduceMean:
      case LayerKind::kMatMul: break;
    }
  }
  return Status::ok();
}

Status ChainRun::run(const std::vector<float*>& ptrs) {
  std::array<Status, kMaxRowBlocks> failed;
  const auto blocks = static_cast<int>(m_blocks.size());
#pragma omp parallel num_threads(blocks)
  {
    // Inside an enclosing region OpenMP gives this one thread only: it runs every block.
    for (int t = omp_get_thread_num(); t < blocks; t += omp_get_num_threads()) {
      Status status = run_block(static_cast<size_t>(t), ptrs);
      if (!status.is_ok()) failed[static_cast<size_t>(t)] = std::move(status);
    }
  }
  for (int t = 0; t < blocks; ++t) {
    if (!failed[static_cast<size_t>(t)].is_ok()) return failed[static_cast<size_t>(t)];
  }
  return Status::ok();
}

}  // namespace mlprt::backend::cpu
