#pragma once
// A PyTorch state_dict saved with torch.save (the zip format of torch >= 1.6): the subset of
// pickle (protocol 2, plus the few protocol-4 opcodes newer torch emits) that such a file uses:
// an OrderedDict / dict of tensors rebuilt by torch._utils._rebuild_tensor_v2 from
// persistent-id storages (FloatStorage, HalfStorage, BFloat16Storage, DoubleStorage, ...).
// Contiguous tensors only. Legacy (pre-1.6, non-zip) files, other objects and calls are refused
// with a message saying what was found. Every offset and size is checked (fuzz-safe).

#include <cstdint>
#include <span>
#include <string>

#include "mlprt/status.h"
#include "weights/named_tensors.h"

namespace mlprt::weights {

Result<NamedTensors> read_torch_state_dict(std::span<const uint8_t> bytes, const std::string& source);

}  // namespace mlprt::weights
