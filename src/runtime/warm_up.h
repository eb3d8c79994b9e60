#pragma once
// Cold start: what a cpu engine's first inference would do once per process or primitive
// (oneDNN's first execution of each primitive, the OpenMP pool of the loading thread, caches and
// TLB for the packed weights) is done at load instead, by one inference per profile at its opt
// and its min shape on zeros, so that the caller's first call costs about a warm one. It runs
// under common/warm_up_scope.h: what a backend packs lazily (the cpu backend's blocked weights)
// is not packed by it, only by a context that runs that shape.

#include "mlprt/engine.h"

namespace mlprt::detail {

/// Runs `engine` per profile at its opt and min shapes (or once at its static shape) on zeros, in a throwaway
/// context. Failures are logged as warnings, never returned: the caller's own calls report them.
void warm_up_engine(const Engine& engine);

}  // namespace mlprt::detail
