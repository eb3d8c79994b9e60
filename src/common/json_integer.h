#pragma once
// Integers read from JSON we did not write ourselves (plans' backend sections, timing caches).
// nlohmann's get<int>() of a floating-point value is a plain cast, undefined behaviour past the
// integer's range (the plan fuzzer found `"version": 1e308`): these refuse anything but a JSON
// integer with a json::type_error, which the readers already turn into a clear error.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlprt {

template <typename T>
T json_integer(const nlohmann::json& v) {
  if (!v.is_number_integer()) {
    throw nlohmann::json::type_error::create(
        302, "type must be an integer, but is " + std::string(v.type_name()), &v);
  }
  return v.get<T>();
}

/// object[key] as an integer, `fallback` when the key is absent.
template <typename T>
T json_integer(const nlohmann::json& object, const char* key, T fallback) {
  if (!object.is_object()) return json_integer<T>(object);  // throws: not an object either
  auto it = object.find(key);
  return it == object.end() ? fallback : json_integer<T>(*it);
}

template <typename T>
std::vector<T> json_integers(const nlohmann::json& v) {
  if (!v.is_array()) {
    throw nlohmann::json::type_error::create(
        302, "type must be an array, but is " + std::string(v.type_name()), &v);
  }
  std::vector<T> out;
  for (const nlohmann::json& e : v) out.push_back(json_integer<T>(e));
  return out;
}

}  // namespace mlprt
