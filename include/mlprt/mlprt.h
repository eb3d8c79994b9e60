#pragma once
/// @file mlprt.h
/// mlprt: an inference runtime for multi-layer perceptrons.
///
/// Build once (ONNX -> plan):
/// @code
///   auto network = mlprt::Network::from_onnx_file("mlp.onnx");
///   mlprt::BuilderConfig config;                       // backend "auto"
///   mlprt::OptimizationProfile profile;
///   (void)profile.set_dimensions("input", {{1, 784}, {32, 784}, {64, 784}});
///   config.profiles.push_back(profile);
///   auto plan = mlprt::build_serialized_engine(**network, config);
///   (void)mlprt::write_file_atomic("mlp.plan", plan->bytes);
/// @endcode
/// Run many times:
/// @code
///   auto engine = mlprt::Engine::load_file("mlp.plan");
///   auto context = (*engine)->create_execution_context();
///   (void)(*context)->set_optimization_profile(0);
///   (void)(*context)->set_input_shape("input", {8, 784});
///   (void)(*context)->set_tensor_address("input", images.data());
///   (void)(*context)->enqueue();
///   auto logits = (*context)->output("output");       // dims {8, 10}
/// @endcode
/// Every call returns a Status or Result: check it.

#include "mlprt/builder.h"
#include "mlprt/builder_config.h"
#include "mlprt/device.h"
#include "mlprt/host_cpu.h"
#include "mlprt/engine.h"
#include "mlprt/execution_context.h"
#include "mlprt/float16.h"
#include "mlprt/logger.h"
#include "mlprt/network.h"
#include "mlprt/optimization_profile.h"
#include "mlprt/profiler.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"
#include "mlprt/version.h"
