#pragma once
// Cold start: what a cpu engine's first inference would do once per process or primitive
// (oneDNN's first execution of each primitive, the OpenMP pool of the loading thread, caches and
// TLB for the packed weights) is done at load instead, by one inference of profile 0 (a new
// context's profile) at its opt and its min shape on zeros, so that the caller's first call
// costs about a warm one. Other profiles are not warmed: that would pack their weights in every
// process that loads the plan (see warm_up.cpp).

#include "mlprt/engine.h"

namespace mlprt::detail {

/// Runs `engine`'s profile 0 at its opt and min shapes (or once at its static shape) on zeros, in a throwaway
/// context. Failures are logged as warnings, never returned: the caller's own calls report them.
void warm_up_engine(const Engine& engine);

}  // namespace mlprt::detail
