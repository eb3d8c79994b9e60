// libFuzzer target for plan loading: bytes -> Engine::load, and on success one run at the first
// profile's min shape (and a split-batch run where the plan allows it); see
// plan_fuzz_support.cpp. A custom mutator keeps inputs framed as plans: it parses the framing,
// mutates the metadata JSON (as text, or as a tree: a value replaced, a key dropped, an element
// repeated) or the backend section (or, rarely, the weights or a header field), then frames
// the sections again with canonical offsets and recomputes the CRC-64, so that mutations reach
// the validation behind the checksum instead of stopping at it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mlprt/logger.h"
#include "plan/plan_metadata.h"
#include "plan_framing.h"
#include "plan_fuzz_support.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using Json = nlohmann::json;
using mlprt::fuzz::PlanSections;

// libFuzzer's byte mutator on a string or byte vector, growing it by up to `grow` bytes.
template <typename Bytes>
void mutate_bytes(Bytes& bytes, size_t grow) {
  const size_t size = bytes.size();
  if (size + grow == 0) return;
  bytes.resize(size + grow);
  const size_t n = LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(bytes.data()), size, size + grow);
  bytes.resize(n);
}

// Every value of the tree, for picking one to change.
void collect(Json& v, std::vector<Json*>& out) {
  out.push_back(&v);
  if (v.is_object() || v.is_array()) {
    for (Json& child : v) collect(child, out);
  }
}

Json interesting_value(std::mt19937& rng) {
  static const Json kValues[] = {0,
                                 -1,
                                 1,
                                 2,
                                 63,
                                 64,
                                 65,
                                 -64,
                                 int64_t{1} << 31,
                                 int64_t{1} << 32,
                                 int64_t{1} << 62,
                                 INT64_MAX,
                                 INT64_MIN,
                                 UINT64_MAX,
                                 0.5,
                                 -0.0,
                                 1e308,
                                 "nan",
                                 "inf",
                                 "",
                                 "float16",
                                 "bfloat16",
                                 "int64",
                                 "bool",
                                 "Dense",
                                 "Softmax",
                                 "Reshape",
                                 "LayerNorm",
                                 "ScaleShift",
                                 "relu",
                                 "gelu_erf",
                                 "none",
                                 nullptr,
                                 true,
                                 false,
                                 Json::array(),
                                 Json::object(),
                                 Json::array({-1}),
                                 Json::array({0, 0}),
                                 Json::array({1, 6}),
                                 Json::array({-1, 6}),
                                 Json{{"type", "ints"}, {"value", Json::array({-1})}},
                                 Json{{"type", "int"}, {"value", 0}},
                                 Json{{"value", 3}, {"symbol", "b"}}};
  return kValues[rng() % std::size(kValues)];
}

// One structural edit of the JSON tree; false if the text is not JSON (or too deep to walk).
bool mutate_tree(std::string& text, std::mt19937& rng) {
  if (mlprt::plan::detail::json_depth(text) > 64) return false;
  Json root = Json::parse(text, nullptr, false);
  if (root.is_discarded()) return false;
  std::vector<Json*> values;
  collect(root, values);
  Json& target = *values[rng() % values.size()];
  switch (rng() % 6) {
    case 0:
    case 1:
      target = interesting_value(rng);
      break;
    case 2:  // another value of the same tree
      target = Json(*values[rng() % values.size()]);
      break;
    case 3:
      if (target.is_object() && !target.empty()) {
        auto it = target.begin();
        std::advance(it, static_cast<long>(rng() % target.size()));
        target.erase(it.key());
      } else if (target.is_array() && !target.empty()) {
        target.erase(target.begin() + static_cast<long>(rng() % target.size()));
      }
      break;
    case 4:
      if (target.is_array() && !target.empty()) target.push_back(target[rng() % target.size()]);
      break;
    default:
      if (target.is_number_integer()) {  // a step of -2..2, wrapping (no signed overflow)
        const uint64_t step = static_cast<uint64_t>(rng() % 5) - 2u;
        target = static_cast<int64_t>(static_cast<uint64_t>(target.get<int64_t>()) + step);
      }
      break;
  }
  text = root.dump(-1, ' ', false, Json::error_handler_t::replace);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mlprt::set_log_severity(mlprt::Severity::kError);
  mlprt::set_log_callback([](mlprt::Severity, std::string_view) {});
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937 rng(seed);
  auto sections = mlprt::fuzz::split_plan(std::span<const uint8_t>(data, size));
  if (!sections) return LLVMFuzzerMutate(data, size, max_size);  // not framed: plain bytes
  PlanSections& s = *sections;
  const unsigned choice = rng() % 16;
  if (choice < 6) {
    if (!mutate_tree(s.metadata, rng)) mutate_bytes(s.metadata, 16);
  } else if (choice < 9) {
    mutate_bytes(s.metadata, 16);
  } else if (choice < 11) {
    std::string blob(s.blob.begin(), s.blob.end());  // the backends' blobs are JSON
    if (mutate_tree(blob, rng)) {
      s.blob.assign(blob.begin(), blob.end());
    } else {
      mutate_bytes(s.blob, 16);
    }
  } else if (choice < 14) {
    mutate_bytes(s.blob, 16);
  } else if (choice < 15) {
    mutate_bytes(s.weights, 0);
  } else {
    // A header field (sizes, offsets, flags, versions) edited after framing, resealed.
    std::vector<uint8_t> out = mlprt::fuzz::frame_plan(s);
    const size_t field = 8 + 4 * (rng() % 16);
    mlprt::plan::layout::write_u32(out, field,
                                   static_cast<uint32_t>(rng() % 4 == 0 ? rng() : rng() % 256));
    mlprt::fuzz::reseal(out);
    if (out.size() > max_size) return size;
    std::memcpy(data, out.data(), out.size());
    return out.size();
  }
  const std::vector<uint8_t> out = mlprt::fuzz::frame_plan(s);
  if (out.size() > max_size) return size;
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)mlprt::fuzz::load_and_run(std::span<const uint8_t>(data, size));
  return 0;
}
