#include "backends/cpu/cpu_dense_run.h"

#include <omp.h>

#include <cstddef>
#include <cstring>
#include <new>

#include "backends/cpu/cpu_layers.h"
#include "common/check.h"
#include "common/warm_up_scope.h"

namespace mlprt::backend::cpu {

using dnnl::memory;

Status ThreadPoolResources::reserve(const dnnl::engine& engine, int threads,
                                    size_t scratchpad_bytes) {
  try {
    const auto wanted = static_cast<size_t>(std::max(threads, 1));
    const size_t bytes = std::max<size_t>(scratchpad_bytes, 64);
    if (bytes > m_scratchpad_bytes) {
      for (ThreadResources& t : m_threads) {
        t.scratchpad = memory(memory::desc({static_cast<int64_t>(bytes)}, memory::data_type::u8,
                                           memory::format_tag::a),
                              engine);
        std::memset(t.scratchpad.get_data_handle(), 0, bytes);
      }
      m_scratchpad_bytes = bytes;
    }
    while (m_threads.size() < wanted) {
      ThreadResources t;
      t.stream = dnnl::stream(engine);
      t.scratchpad = memory(memory::desc({static_cast<int64_t>(m_scratchpad_bytes)},
                                         memory::data_type::u8, memory::format_tag::a),
                            engine);
      // First touch here, not in the first run.
      std::memset(t.scratchpad.get_data_handle(), 0, m_scratchpad_bytes);
      m_threads.push_back(std::move(t));
    }
  } catch (const dnnl::error& e) {
    return make_error(StatusCode::kInternal, "cpu backend: cannot create the streams and ",
                      scratchpad_bytes, "-byte scratchpads of ", threads, " threads: ", e.what());
  }
  return Status::ok();
}

Status DenseRun::make_call(const dnnl::engine& engine, size_t variant, RowRange rows,
                           const dnnl::stream& stream, void* scratchpad, Call& call) {
  // A warm-up at load runs a variant whose weights are not packed yet on the runtime-M one
  // (common/warm_up_scope.h): packing them is left to the first context that runs that M.
  const DenseVariant& wanted = m_layer->variants[variant];
  if (detail::WarmUpScope::active() && wanted.packed && !wanted.packed->packed()) variant = 0;
  const DenseSpec& spec = m_layer->spec;
  const DenseVariant& v = m_layer->variants[variant];
  const int64_t m = rows.end - rows.begin;
  call.variant = variant;
  call.rows = rows;
  call.bf16 = v.tactic.precision == DensePrecision::kBf16;
  call.unfused = !v.tactic.fused && spec.activation.kind != ir::ActivationKind::kNone;
  call.stream = stream.get();
  call.nargs = 0;
  call.fp16 = false;
  const DenseHandoff& handoff = m_layer->handoff;
  call.src_elem = handoff.src_bf16 ? 2 : 4;
  call.dst_elem = handoff.dst_bf16 ? 2 : 4;
  if (handoff.src_bf16) call.bf16 = false;  // X is bf16 already: nothing to convert
  call.f32 = false;
  if (m == 0) return Status::ok();
  if (v.tactic.kernel == DenseKernel::kMlprt && v.tactic.precision == DensePrecision::kFp32) {
    // Our fp32 kernel reads x and writes y as they are: no oneDNN memory object, no copy.
    call.f32 = true;
    call.unfused = false;
    call.kernel_threads = v.tactic.threads == 1 ? 1 : 0;
    call.bias = spec.has_bias ? static_cast<const float*>(m_layer->bias.get_data_handle()) : nullptr;
    call.nargs = 1;  // not empty; the kernel reads no oneDNN arguments
    return Status::ok();
  }
  try {
    // Null handles: the addresses are set per call in run().
    call.src = handoff.src_bf16
                   ? memory(memory::desc({m, spec.k}, memory::data_type::bf16,
                                         memory::dims{spec.k, 1}),
                            engine, nullptr)
                   : memory(dense_src_desc(spec, m), engine, nullptr);
    if (v.tactic.precision == DensePrecision::kFp16) {
      // Our kernel: an fp16 copy of the rows, the activation as a pass after it.
      call.fp16 = true;
      call.unfused = spec.activation.kind != ir::ActivationKind::kNone;
      call.kernel_threads = v.tactic.threads == 1 ? 1 : 0;
      const int64_t bytes = m * fp16_row_stride(spec.k) * 2;
      call.src_low = memory(memory::desc({bytes}, memory::data_type::u8, memory::format_tag::a),
                            engine);
      std::memset(call.src_low.get_data_handle(), 0, static_cast<size_t>(bytes));
      call.dst = memory(dense_dst_desc(spec, m), engine, nullptr);
      call.nargs = 1;  // not empty; the fp16 path reads no oneDNN arguments
      return Status::ok();
    }
    if (call.bf16) {
      call.src_low = memory(memory::desc({m, spec.k}, memory::data_type::bf16,
                                         memory::dims{spec.k, 1}),
                            engine);
      std::memset(call.src_low.get_data_handle(), 0, static_cast<size_t>(m * spec.k * 2));
    }
    call.dst = memory(dense_dst_desc(spec, m, handoff.dst_bf16), engine, nullptr);
    call.scratchpad = memory(v.scratchpad_desc, engine, scratchpad);
  } catch (const dnnl::error& e) {
    return make_error(StatusCode::kInternal, "cpu backend: layer '", m_name,
                      "' (Dense): oneDNN failed to create memory for ", m, " rows: ", e.what());
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: layer '", m_name,
                      "' (Dense): out of memory for ", m, " rows");
  }
  auto add_arg = [&](int arg, const memory& mem) {
    call.args[static_cast<size_t>(call.nargs++)] = dnnl_exec_arg_t{arg, mem.get()};
  };
  add_arg(DNNL_ARG_SRC, call.bf16 ? call.src_low : call.src);
  dnnl::memory weights = v.weights;
  if (!weights) {
    Result<dnnl::memory> packed = v.packed->get();
    if (!packed) return packed.status().with_context("layer '" + m_name + "' (Dense)");
    weights = *packed;
  }
  add_arg(DNNL_ARG_WEIGHTS, weights);
  if (spec.has_bias) add_arg(DNNL_ARG_BIAS, m_layer->bias);
  add_arg(DNNL_ARG_DST, call.dst);
  add_arg(DNNL_ARG_SCRATCHPAD, call.scratchpad);
  return Status::ok();
}

Status DenseRun::prepare_whole(const dnnl::engine& engine, const std::string& name,
                               const DenseLayer& layer, int64_t m, const dnnl::stream& stream,
                               void* scratchpad) {
  if (m_layer == &layer && m_whole && m_rows == m) return Status::ok();
  m_layer = &layer;
  m_name = name;
  m_whole = true;
  m_rows = -1;
  m_calls.assign(1, Call{});
  MLPRT_RETURN_IF_ERROR(
      make_call(engine, layer.variant_for(m), {0, m}, stream, scratchpad, m_calls[0]));
  m_rows = m;
  return Status::ok();
}

Status DenseRun::prepare_blocks(const dnnl::engine& engine, const std::string& name,
                                const DenseLayer& layer, const std::vector<RowRange>& ranges,
                                ThreadPoolResources& pool) {
  m_layer = &layer;
  m_name = name;
  m_whole = false;
  m_rows = -1;
  if (layer.spec.transpose_x) {
    return make_error(StatusCode::kInternal, "cpu backend: layer '", name,
                      "' (Dense): a transposed X cannot be split into row blocks");
  }
  m_calls.assign(ranges.size(), Call{});
  for (size_t t = 0; t < ranges.size(); ++t) {
    ThreadResources& res = pool.at(t);
    const size_t variant = layer.block_variant_for(ranges[t].end - ranges[t].begin);
    MLPRT_RETURN_IF_ERROR(make_call(engine, variant, ranges[t], res.stream,
                                    res.scratchpad.get_data_handle(), m_calls[t]));
  }
  m_rows = ranges.empty() ? 0 : ranges.back().end;
  return Status::ok();
}

// Uses oneDNN's C API: the C++ execute() builds an argument map and vector on every call.
Status DenseRun::run_call(Call& call, const float* x, const float* residual, float* y) {
  MLPRT_RETURN_IF_ERROR(run_product(call, x, y));
  if (residual != nullptr) {
    // The residual epilogue (layers without activation only, ir::fuse_residual_adds): on the
    // call's rows right after its product, while they are in cache.
    const DenseSpec& spec = m_layer->spec;
    const int64_t first = call.rows.begin * spec.n;
    add_in_place(y + first, residual + first, (call.rows.end - call.rows.begin) * spec.n);
  }
  return Status::ok();
}

Status DenseRun::run_product(Call& call, const float* x, float* y) {
  if (call.nargs == 0) return Status::ok();
  const DenseSpec& spec = m_layer->spec;
  const int64_t m = call.rows.end - call.rows.begin;
  // Row blocks only exist for row-major X: block rows start at row * K (elements of the
  // handoff's type where X or Y is bf16).
  const float* xb = reinterpret_cast<const float*>(reinterpret_cast<const std::byte*>(x) +
                                                   call.rows.begin * spec.k * call.src_elem);
  float* yb = reinterpret_cast<float*>(reinterpret_cast<std::byte*>(y) +
                                       call.rows.begin * spec.n * call.dst_elem);
  if (call.f32) {
    const DenseVariant& v = m_layer->variants[call.variant];
    // 0: the caller's OpenMP count, which execute() sets to the context's threads; inside a
    // region (a row block of a split) the calling thread only.
    const int threads = call.kernel_threads > 0 ? call.kernel_threads
                        : omp_in_parallel()     ? 1
                                                : omp_get_max_threads();
    f32_gemm(xb, m, *v.f32_weights, call.bias, spec.activation, yb, threads);
    return Status::ok();
  }
  dnnl_status_t st = dnnl_memory_set_data_handle(call.src.get(), const_cast<float*>(xb));
  if (st == dnnl_success) st = dnnl_memory_set_data_handle(call.dst.get(), yb);
  if (call.fp16) {
    if (st != dnnl_success) {
      return make_error(StatusCode::kInternal, "cpu backend: layer '", m_name,
                        "' (Dense): cannot set the buffers of rows ", call.rows.begin, "..",
                        call.rows.end, " (dnnl status ", static_cast<int>(st), ")");
    }
    auto* xh = static_cast<uint16_t*>(call.src_low.get_data_handle());
    convert_rows_to_fp16(xb, m, spec.k, xh);
    const DenseVariant& v = m_layer->variants[call.variant];
    const float* bias =
        spec.has_bias ? static_cast<const float*>(m_layer->bias.get_data_handle()) : nullptr;
    // 0: the caller's OpenMP count, which execute() sets to the context's threads.
    const int threads = call.kernel_threads > 0 ? call.kernel_threads : omp_get_max_threads();
    fp16_gemm(xh, m, *v.fp16_weights, bias, yb, threads);
    if (call.unfused) run_activation(spec.activation, yb, yb, m * spec.n);
    return Status::ok();
  }
  if (call.bf16) {
    convert_src_to_bf16(spec, m, xb, static_cast<uint16_t*>(call.src_low.get_data_handle()));
  }
  if (st == dnnl_success) {
    st = dnnl_primitive_execute(m_layer->variants[call.variant].primitive.get(), call.stream,
                                call.nargs, call.args.data());
  }
  if (st == dnnl_success) st = dnnl_stream_wait(call.stream);
  if (st != dnnl_success) {
    return make_error(StatusCode::kInternal, "cpu backend: layer '", m_name,
                      "' (Dense): oneDNN matmul failed for rows ", call.rows.begin, "..",
                      call.rows.end, " (dnnl status ", static_cast<int>(st), ")");
  }
  if (call.unfused) run_activation(spec.activation, yb, yb, m * spec.n);
  return Status::ok();
}

Status DenseRun::run(const float* x, float* y, const float* residual) {
  if (m_calls.size() == 1) return run_call(m_calls[0], x, residual, y);
  // One status per block: a failing thread cannot return out of the region.
  std::array<Status, kMaxRowBlocks> failed;
  const auto blocks = static_cast<int>(std::min<size_t>(m_calls.size(), failed.size()));
#pragma omp parallel for num_threads(blocks) schedule(static, 1)
  for (int t = 0; t < blocks; ++t) {
    Status status = run_call(m_calls[static_cast<size_t>(t)], x, residual, y);
    if (!status.is_ok()) failed[static_cast<size_t>(t)] = std::move(status);
  }
  for (int t = 0; t < blocks; ++t) {
    if (!failed[static_cast<size_t>(t)].is_ok()) return failed[static_cast<size_t>(t)];
  }
  return Status::ok();
}

Status DenseRun::run_block(size_t t, const float* x, float* y, const float* residual) {
  if (t >= m_calls.size()) return Status::ok();
  return run_call(m_calls[t], x, residual, y);
}

}  // namespace mlprt::backend::cpu
