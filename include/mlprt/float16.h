#pragma once
/// @file float16.h
/// IEEE half (fp16) and bfloat16 conversions, for engines whose inputs or outputs are float16
/// or bfloat16 (BuilderConfig::input_formats, or a model typed that way). Rounding to the
/// narrow types is to nearest, ties to even.

#include <cstddef>
#include <cstdint>

#include "mlprt/tensor.h"

namespace mlprt {

[[nodiscard]] float half_to_float(uint16_t half) noexcept;
[[nodiscard]] uint16_t float_to_half(float value) noexcept;
[[nodiscard]] float bf16_to_float(uint16_t bf16) noexcept;
[[nodiscard]] uint16_t float_to_bf16(float value) noexcept;

/// Whether `type` is one of the float types an engine's inputs and outputs may have.
[[nodiscard]] bool is_io_float_type(DataType type) noexcept;

/// Converts `count` elements between float32, float16 and bfloat16 (the same type: a copy).
/// Both types must satisfy is_io_float_type.
void convert_floats(const void* src, DataType src_type, void* dst, DataType dst_type,
                    size_t count) noexcept;

}  // namespace mlprt
