#pragma once
// What an Engine shares with its ExecutionContexts. Immutable after load.

#include <memory>
#include <vector>

#include "backends/backend.h"
#include "mlprt/engine.h"
#include "plan/plan.h"

namespace mlprt::detail {

struct EngineState {
  plan::Plan plan;
  EngineInfo info;
  std::vector<TensorDesc> io_tensors;  ///< inputs, then outputs
  const backend::Backend* backend = nullptr;
  std::unique_ptr<backend::Executable> executable;
  std::vector<uint8_t> retuned_plan;  ///< the re-tuned plan's bytes when the load re-tuned it
};

}  // namespace mlprt::detail
