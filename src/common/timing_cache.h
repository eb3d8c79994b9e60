#pragma once
// The builder's timing cache: measured tactic times keyed by a string that names the layer
// signature, the tactic and the hardware (the backend builds the key). Stored as JSON with
// sorted keys, so the same contents always give the same file.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "mlprt/status.h"

namespace mlprt::detail {

class TimingCache {
 public:
  /// Reads `path`; a missing file is an empty cache, a malformed one is an error that names it.
  [[nodiscard]] static Result<TimingCache> load(const std::filesystem::path& path);

  [[nodiscard]] std::optional<double> find(const std::string& key) const;
  void insert(const std::string& key, double microseconds);
  [[nodiscard]] size_t size() const noexcept { return m_entries.size(); }
  /// True when insert() added or changed an entry since load.
  [[nodiscard]] bool modified() const noexcept { return m_modified; }

  /// Writes the cache atomically (temporary file, then rename).
  [[nodiscard]] Status save(const std::filesystem::path& path) const;

 private:
  std::map<std::string, double> m_entries;
  bool m_modified = false;
};

}  // namespace mlprt::detail
