#pragma once
/// @file version.h

namespace mlprt {

inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;
inline constexpr const char* kVersionString = "0.1.0";
/// Version of the plan file format this mlprt writes and reads (docs/plan-format.md).
inline constexpr unsigned kPlanFormatVersion = 1;

}  // namespace mlprt
