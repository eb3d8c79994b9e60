#pragma once
/// @file device.h
/// GPU selection for the cuda backend (like cudaSetDevice): engines built or loaded afterwards
/// on the calling thread use that GPU, and their contexts stay on it.

#include "mlprt/status.h"

namespace mlprt {

/// Makes GPU `index` current on the calling thread. Error if the index does not exist or this
/// build has no cuda backend (index 0 is then accepted: the cpu).
Status set_device(int index);

}  // namespace mlprt
