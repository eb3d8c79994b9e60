#pragma once
// The profiler the runtime gives its backend contexts: it forwards each layer time to the
// user's Profiler, or, during a split-batch enqueue, sums them per layer over the chunks and
// reports the sums once at the end (one time per layer per enqueue, whatever the chunk count).

#include <string_view>
#include <utility>
#include <vector>

#include "mlprt/profiler.h"

namespace mlprt::detail {

class ProfileSums final : public Profiler {
 public:
  /// `layers`: how many entries one execute reports at most (reserved now, so that enqueue
  /// does not allocate).
  void set_target(Profiler* target, size_t layers) {
    m_target = target;
    m_sums.clear();
    m_sums.reserve(layers);
  }
  [[nodiscard]] Profiler* target() const noexcept { return m_target; }

  /// Between begin_sum and end_sum, times are summed per layer name instead of forwarded.
  void begin_sum() {
    m_summing = true;
    m_sums.clear();
  }
  /// Reports the sums, in the order the layers first reported (`report` false: drops them,
  /// after a failed chunk).
  void end_sum(bool report) {
    m_summing = false;
    for (const auto& [name, ms] : m_sums) {
      if (report) m_target->report_layer_time(name, ms);
    }
    m_sums.clear();
  }

  void report_layer_time(std::string_view layer_name, float ms) override {
    if (!m_summing) {
      m_target->report_layer_time(layer_name, ms);
      return;
    }
    // The names stay valid during the enqueue: they are the backend's layer names.
    for (auto& [name, sum] : m_sums) {
      if (name == layer_name) {
        sum += ms;
        return;
      }
    }
    m_sums.emplace_back(layer_name, ms);
  }

 private:
  Profiler* m_target = nullptr;
  bool m_summing = false;
  std::vector<std::pair<std::string_view, float>> m_sums;
};

}  // namespace mlprt::detail
