#pragma once
/// @file status.h
/// Error handling for the public API: no exceptions cross it. Every fallible call returns a
/// [[nodiscard]] Status or Result<T> whose message names the model, node, tensor or shape at
/// fault and what is allowed.

#include <string>
#include <utility>
#include <variant>

namespace mlprt {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   ///< bad user input: flag, shape, name
  kNotFound,          ///< a named tensor, file or profile does not exist
  kUnsupported,       ///< valid input we do not (yet) handle: op, dtype, attribute
  kOutOfRange,        ///< a shape outside every optimization profile
  kCorruptData,       ///< a model or plan file that fails its own consistency checks
  kVersionMismatch,   ///< a plan from another format version
  kHardwareMismatch,  ///< a plan built for other hardware
  kIoError,           ///< the file system refused
  kInternal,          ///< a bug in mlprt: please report it
};

[[nodiscard]] const char* to_string(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : m_code(code), m_message(std::move(message)) {}
  static Status ok() { return {}; }

  [[nodiscard]] bool is_ok() const noexcept { return m_code == StatusCode::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  [[nodiscard]] StatusCode code() const noexcept { return m_code; }
  [[nodiscard]] const std::string& message() const noexcept { return m_message; }
  /// Returns a copy whose message is "context: message".
  [[nodiscard]] Status with_context(const std::string& context) const;

 private:
  StatusCode m_code = StatusCode::kOk;
  std::string m_message;
};

/// Either a value or an error Status. Accessing value() of an error is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_state(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  /// An OK status carries no value: it becomes an internal error rather than an error
  /// without a message.
  Result(Status status)  // NOLINT(google-explicit-constructor)
      : m_state(status.is_ok() ? Status(StatusCode::kInternal,
                                        "internal error: a result was made from an OK status "
                                        "without a value")
                               : std::move(status)) {}

  [[nodiscard]] bool is_ok() const noexcept { return std::holds_alternative<T>(m_state); }
  explicit operator bool() const noexcept { return is_ok(); }
  [[nodiscard]] Status status() const { return is_ok() ? Status::ok() : std::get<Status>(m_state); }

  T& value() & { return std::get<T>(m_state); }
  const T& value() const& { return std::get<T>(m_state); }
  T&& value() && { return std::get<T>(std::move(m_state)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> m_state;
};

}  // namespace mlprt
