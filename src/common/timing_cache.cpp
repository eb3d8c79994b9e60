#include "common/timing_cache.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "common/check.h"
#include "mlprt/builder.h"

namespace mlprt::detail {
namespace {

constexpr const char* kFormat = "mlprt.timing_cache";
constexpr int kVersion = 1;

}  // namespace

Result<TimingCache> TimingCache::load(const std::filesystem::path& path) {
  TimingCache cache;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return cache;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(StatusCode::kNotFound, "timing cache '", path.string(),
                      "' exists but cannot be opened for reading");
  }
  std::ostringstream text;
  text << in.rdbuf();
  const nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object() || json.value("format", "") != kFormat ||
      !json.contains("entries") || !json["entries"].is_object()) {
    return make_error(StatusCode::kCorruptData, "timing cache '", path.string(),
                      "' is not an mlprt timing cache (JSON object with format '", kFormat,
                      "' and 'entries' expected); delete it or pass another --timingCacheFile");
  }
  // An integer only: get<int>() of a float is a cast, undefined past int's range.
  const auto version = json.find("version");
  if (version == json.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kVersion) {
    return make_error(StatusCode::kVersionMismatch, "timing cache '", path.string(),
                      "' has version ", version == json.end() ? "none" : version->dump(),
                      "; this build reads version ",
                      kVersion, "; delete it to start a new one");
  }
  for (const auto& [key, value] : json["entries"].items()) {
    if (!value.is_number() || value.get<double>() < 0) {
      return make_error(StatusCode::kCorruptData, "timing cache '", path.string(), "': entry '",
                        key, "' is not a non-negative number of microseconds");
    }
    cache.m_entries[key] = value.get<double>();
  }
  return cache;
}

std::optional<double> TimingCache::find(const std::string& key) const {
  auto it = m_entries.find(key);
  if (it == m_entries.end()) return std::nullopt;
  return it->second;
}

void TimingCache::insert(const std::string& key, double microseconds) {
  auto [it, added] = m_entries.insert_or_assign(key, microseconds);
  (void)it;
  (void)added;
  m_modified = true;
}

Status TimingCache::save(const std::filesystem::path& path) const {
  const nlohmann::json json = {{"format", kFormat}, {"version", kVersion}, {"entries", m_entries}};
  const std::string text = json.dump(1) + "\n";
  return write_file_atomic(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace mlprt::detail
