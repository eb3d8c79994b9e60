#pragma once
// Marks the thread that warms a freshly loaded engine up (runtime/warm_up.h), so that a backend
// can warm up without allocating what only a real call at that shape needs: the cpu backend
// runs a layer whose packed weights are not packed yet on its runtime-M primitive instead (it
// packs on first real use, backends/cpu/cpu_dense.h LazyPackedWeights), so that loading a plan
// does not hold a packed copy of every weight of profile 0's tactics beside the plain one.

namespace mlprt::detail {

class WarmUpScope {
 public:
  WarmUpScope() noexcept { flag() = true; }
  ~WarmUpScope() { flag() = false; }
  WarmUpScope(const WarmUpScope&) = delete;
  WarmUpScope& operator=(const WarmUpScope&) = delete;
  /// Whether the calling thread is inside a warm-up.
  [[nodiscard]] static bool active() noexcept { return flag(); }

 private:
  static bool& flag() noexcept {
    static thread_local bool warming = false;
    return warming;
  }
};

}  // namespace mlprt::detail
