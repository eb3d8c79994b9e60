#pragma once
// GTEST_SKIP, saying why, where the cuda backend has no device (CI has none).

#include <gtest/gtest.h>

#include "backends/registry.h"

#define SKIP_WITHOUT_GPU()                                                                     \
  do {                                                                                         \
    auto backend_ = ::mlprt::backend::find_backend("cuda");                                    \
    if (!backend_.is_ok()) GTEST_SKIP() << "no CUDA device: " << backend_.status().message();  \
    const ::mlprt::Status available_ = (*backend_)->check_available();                         \
    if (!available_.is_ok()) GTEST_SKIP() << "no CUDA device: " << available_.message();       \
  } while (0)
