#include "runtime/split_batch.h"

#include <algorithm>
#include <sstream>

#include "common/check.h"
#include "common/log.h"
#include "runtime/context_state.h"

namespace mlprt::detail {
namespace {

// Profile p's largest batch for every input at once, or -1 where an input has no range.
int64_t max_batch(const OptimizationProfile& profile, const std::vector<TensorDesc>& io) {
  int64_t batch = -1;
  for (const TensorDesc& t : io) {
    if (t.mode != TensorIOMode::kInput) continue;
    auto range = profile.get_dimensions(t.name);
    if (!range || range->max.empty()) return -1;
    batch = batch < 0 ? range->max[0] : std::min(batch, range->max[0]);
  }
  return batch;
}

ir::ShapeMap with_batch(const ir::ShapeMap& inputs, int64_t rows) {
  ir::ShapeMap out = inputs;
  for (auto& [name, dims] : out) dims[0] = rows;
  return out;
}

bool profile_holds(const OptimizationProfile& profile, const ir::ShapeMap& inputs) {
  for (const auto& [name, dims] : inputs) {
    auto range = profile.get_dimensions(name);
    if (!range || !range->contains(dims)) return false;
  }
  return true;
}

// Whether every output of `at` has `rows` as axis 0 and the whole batch's trailing dims: the
// runtime's own guard that chunks stay inside the caller's buffers, whatever the plan claims.
Status check_rows(const std::vector<TensorDesc>& io, const ir::ShapeMap& full,
                  const ir::ShapeMap& at, int64_t rows) {
  for (const TensorDesc& t : io) {
    const Dims& whole = full.at(t.name);
    const Dims& part = at.at(t.name);
    if (part.empty() || part[0] != rows || part.size() != whole.size() ||
        !std::equal(part.begin() + 1, part.end(), whole.begin() + 1)) {
      return make_error(StatusCode::kInvalidArgument, "split batch: '", t.name, "' has shape ",
                        to_string(whole), " for the whole batch but ", to_string(part),
                        " for a chunk of ", rows, " rows: it does not split along axis 0");
    }
  }
  return Status::ok();
}

}  // namespace

std::string split_batch_hint() {
  return "; a batch past every profile's max can run in chunks of the best profile with split "
         "batch (ExecutionContext::set_split_batch(true), `mlprt run --splitBatch`)";
}

Status check_split_allowed(const plan::Plan& plan) {
  if (!plan.row_independence) {
    return Status(StatusCode::kUnsupported,
                  "split batch: the plan does not record whether its rows are independent (it "
                  "was built by an mlprt from before split batch): rebuild to enable split "
                  "batch, with `mlprt build`");
  }
  const ir::RowIndependence& rows = *plan.row_independence;
  if (rows.independent) return Status::ok();
  return Status(StatusCode::kUnsupported,
                "split batch is not allowed for this plan: the builder could not prove every "
                "layer keeps rows independent" +
                    (rows.layer.empty() ? std::string() : " (layer '" + rows.layer + "')") + ": " +
                    rows.reason);
}

bool past_every_profile(const plan::Plan& plan, const std::string& name, const Dims& dims) {
  if (dims.empty() || plan.profiles.empty()) return false;
  for (const OptimizationProfile& profile : plan.profiles) {
    auto range = profile.get_dimensions(name);
    if (!range || range->max.empty() || dims[0] <= range->max[0]) return false;
  }
  return true;
}

Status check_split_shape(const plan::Plan& plan, const std::string& name, const Dims& dims) {
  std::ostringstream ranges;
  for (size_t p = 0; p < plan.profiles.size(); ++p) {
    auto range = plan.profiles[p].get_dimensions(name);
    if (!range || range->max.empty()) continue;
    Dims chunk = dims;
    chunk[0] = range->max[0];
    if (range->contains(chunk)) return Status::ok();
    ranges << (ranges.tellp() > 0 ? "; " : "") << "profile " << p << ": " << to_string(*range);
  }
  return make_error(StatusCode::kOutOfRange, "split batch: input '", name, "' shape ",
                    to_string(dims),
                    " has a batch past every profile, but its other dims fit "
                    "no profile (",
                    ranges.str(), ")");
}

Result<SplitPlan> plan_split(const plan::Plan& plan, const std::vector<TensorDesc>& io,
                             const ir::ShapeMap& input_shapes) {
  MLPRT_RETURN_IF_ERROR(check_split_allowed(plan));
  SplitPlan split;
  split.rows = -1;
  for (const auto& [name, dims] : input_shapes) {
    if (dims.empty()) {
      return make_error(StatusCode::kInvalidArgument, "split batch: input '", name,
                        "' is a scalar; every input needs the batch as axis 0");
    }
    if (split.rows >= 0 && dims[0] != split.rows) {
      return make_error(StatusCode::kInvalidArgument,
                        "split batch: every input needs the same batch (axis 0); input '", name,
                        "' has ", dims[0], " rows, another has ", split.rows);
    }
    split.rows = dims[0];
  }
  // The best profile: the largest max batch that holds the other dims (first on a tie).
  split.profile = -1;
  std::ostringstream tried;
  for (size_t p = 0; p < plan.profiles.size(); ++p) {
    const int64_t batch = max_batch(plan.profiles[p], io);
    tried << (p ? "; " : "") << "profile " << p << ":";
    for (const auto& [name, range] : plan.profiles[p].ranges())
      tried << " " << name << " " << to_string(range);
    if (batch <= 0 || batch <= split.chunk_rows) continue;
    if (!profile_holds(plan.profiles[p], with_batch(input_shapes, batch))) continue;
    split.profile = static_cast<int>(p);
    split.chunk_rows = batch;
  }
  if (split.profile < 0) {
    std::ostringstream given;
    for (const auto& [name, dims] : input_shapes)
      given << (given.tellp() > 0 ? ", " : "") << name << " " << to_string(dims);
    return make_error(StatusCode::kOutOfRange, "split batch: no profile holds a chunk of ",
                      given.str(), " (the dims after axis 0 must fit a profile): ", tried.str());
  }
  MLPRT_ASSIGN_OR_RETURN(split.full_shapes, ir::infer_shapes(plan.graph, input_shapes));
  MLPRT_ASSIGN_OR_RETURN(split.chunk_shapes,
                         ir::infer_shapes(plan.graph, with_batch(input_shapes, split.chunk_rows)));
  MLPRT_RETURN_IF_ERROR(check_rows(io, split.full_shapes, split.full_shapes, split.rows));
  MLPRT_RETURN_IF_ERROR(check_rows(io, split.full_shapes, split.chunk_shapes, split.chunk_rows));
  for (const TensorDesc& t : io) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t n, volume(split.chunk_shapes.at(t.name)));
    split.row_bytes.push_back(static_cast<size_t>(n / split.chunk_rows) * element_size(t.dtype));
  }
  split.full_chunks = split.rows / split.chunk_rows;
  const int64_t rest = split.rows % split.chunk_rows;
  if (rest == 0) return split;
  const ir::ShapeMap tail_inputs = with_batch(input_shapes, rest);
  // A shorter tail in the best profile, else in any that holds it, else a full chunk that ends
  // at the last row (rows are independent, so the overlap is the same values written again).
  std::vector<size_t> order{static_cast<size_t>(split.profile)};
  for (size_t p = 0; p < plan.profiles.size(); ++p) order.push_back(p);
  for (size_t p : order) {
    if (profile_holds(plan.profiles[p], tail_inputs)) {
      split.tail_profile = static_cast<int>(p);
      break;
    }
  }
  if (split.tail_profile >= 0) {
    MLPRT_ASSIGN_OR_RETURN(split.tail_shapes, ir::infer_shapes(plan.graph, tail_inputs));
    MLPRT_RETURN_IF_ERROR(check_rows(io, split.full_shapes, split.tail_shapes, rest));
    split.tail_first = split.full_chunks * split.chunk_rows;
    split.tail_rows = rest;
  } else {
    split.tail_on_main = true;
    split.tail_first = split.rows - split.chunk_rows;
    split.tail_rows = split.chunk_rows;
  }
  return split;
}

// ------------------------------------------------------------------- ContextState's part

bool ContextState::needs_split() const {
  for (const auto& [name, dims] : m_input_shapes) {
    if (past_every_profile(m_engine->plan, name, dims)) return true;
  }
  return false;
}

Status ContextState::resolve_split() {
  m_split.reset();
  MLPRT_ASSIGN_OR_RETURN(SplitPlan split,
                         plan_split(m_engine->plan, m_engine->io_tensors, m_input_shapes));
  for (const TensorDesc& t : m_engine->io_tensors) {
    if (t.mode != TensorIOMode::kOutput) continue;
    MLPRT_ASSIGN_OR_RETURN(const int64_t n, volume(split.full_shapes.at(t.name)));
    auto& buffer = m_owned_outputs[t.name];
    const size_t bytes = static_cast<size_t>(n) * element_size(t.dtype);
    if (buffer.size() < bytes) buffer.resize(bytes);
  }
  MLPRT_RETURN_IF_ERROR(m_backend->prepare(split.chunk_shapes));
  const int64_t calls = split.full_chunks + (split.tail_on_main ? 1 : 0);
  MLPRT_RETURN_IF_ERROR(m_backend->set_calls_per_enqueue(static_cast<size_t>(calls)));
  m_calls_reserved = true;
  if (split.tail_profile >= 0) {
    if (!m_tail_backend) {
      MLPRT_ASSIGN_OR_RETURN(m_tail_backend, m_engine->executable->create_context());
      MLPRT_RETURN_IF_ERROR(m_tail_backend->set_device_io(m_location == TensorLocation::kDevice));
      if (m_threads_set) MLPRT_RETURN_IF_ERROR(m_tail_backend->set_num_threads(m_threads));
      if (m_graph_set) MLPRT_RETURN_IF_ERROR(m_tail_backend->set_use_graph(m_use_graph));
      if (m_profiler.target()) MLPRT_RETURN_IF_ERROR(m_tail_backend->set_profiler(&m_profiler));
    }
    MLPRT_RETURN_IF_ERROR(m_tail_backend->prepare(split.tail_shapes));
  }
  detail::log(Severity::kVerbose, "split batch: ", split.rows, " rows in ", split.full_chunks,
              " chunks of ", split.chunk_rows, " (profile ", split.profile, ")",
              split.tail_rows == 0 ? std::string()
              : split.tail_on_main
                  ? ", then rows " + std::to_string(split.tail_first) + ".. as one more full chunk"
                  : " + " + std::to_string(split.tail_rows) + " rows (profile " +
                        std::to_string(split.tail_profile) + ")");
  m_shapes = split.full_shapes;
  m_split = std::move(split);
  return Status::ok();
}

void ContextState::bind_rows(int64_t first) {
  const auto& io = m_engine->io_tensors;
  for (size_t i = 0; i < io.size(); ++i) {
    const size_t offset = static_cast<size_t>(first) * m_split->row_bytes[i];
    if (io[i].mode == TensorIOMode::kInput) {
      const auto* base = static_cast<const std::byte*>(m_bindings.inputs.find(io[i].name)->second);
      m_chunk_bindings.inputs.find(io[i].name)->second = base + offset;
    } else {
      auto* base = static_cast<std::byte*>(m_bindings.outputs.find(io[i].name)->second);
      m_chunk_bindings.outputs.find(io[i].name)->second = base + offset;
    }
  }
}

Status ContextState::enqueue_split(void* stream) {
  // With a profiler: each layer's time summed over the chunks, reported once at the end.
  if (m_profiler.target() == nullptr) return enqueue_chunks(stream);
  m_profiler.begin_sum();
  Status status = enqueue_chunks(stream);
  m_profiler.end_sum(status.is_ok());
  return status;
}

Status ContextState::enqueue_chunks(void* stream) {
  const SplitPlan& split = *m_split;
  m_chunk_bindings.device_addresses = m_bindings.device_addresses;
  for (int64_t c = 0; c < split.full_chunks; ++c) {
    bind_rows(c * split.chunk_rows);
    // No with_context on success: enqueue must not allocate.
    if (Status s = m_backend->execute(m_chunk_bindings, stream); !s.is_ok()) {
      return s.with_context("split batch: chunk " + std::to_string(c));
    }
  }
  if (split.tail_rows == 0) return Status::ok();
  bind_rows(split.tail_first);
  backend::BackendContext& tail = split.tail_on_main ? *m_backend : *m_tail_backend;
  if (Status s = tail.execute(m_chunk_bindings, stream); !s.is_ok()) {
    return s.with_context("split batch: last chunk");
  }
  return Status::ok();
}

}  // namespace mlprt::detail
