// safetensors-hpp: errors (error_kind, error, exception) and result<T>, the value-or-error every fallible call returns.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_ERROR_HPP
#define SAFETENSORS_ERROR_HPP

#include "config.hpp"

#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#if SAFETENSORS_EXCEPTIONS
#include <stdexcept>
#endif

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong. A kind with the name of a variant of the official reader's `SafeTensorError`
/// (see error_kind_name) means what that variant means; invalid_conversion, invalid_argument and
/// invalid_index are this library's own.
enum class error_kind : std::uint8_t {
  header_too_small,                ///< fewer than 8 bytes
  header_too_large,                ///< header length over read_options::max_header_size
  invalid_header_length,           ///< 8 + header length past the end of the buffer
  invalid_header,                  ///< header bytes are not valid UTF-8
  invalid_header_deserialization,  ///< header is not a JSON object of the expected shape
  invalid_offset,                  ///< tensors do not tile the data buffer
  validation_overflow,             ///< element or bit count overflows 64 bits
  misaligned_slice,                ///< a sub-byte tensor does not fill whole bytes
  tensor_invalid_info,             ///< data_offsets disagree with dtype and shape
  metadata_incomplete_buffer,      ///< data buffer longer or shorter than the tensors
  tensor_not_found,                ///< no tensor of that name
  invalid_tensor_view,             ///< a caller's buffer does not fit the tensor
  invalid_conversion,              ///< a value or dtype that cannot be converted to the one asked for
  invalid_argument,                ///< a call the API does not allow (bad option, wrong order)
  invalid_index,                   ///< a sharded model's index is malformed or disagrees with its shards
  io_error,                        ///< the operating system refused a file operation
};

/// Number of error kinds.
inline constexpr std::size_t error_kind_count = 16;

/// Every error kind, in enum order.
inline constexpr std::array<error_kind, error_kind_count> all_error_kinds = {error_kind::header_too_small,
                                                                             error_kind::header_too_large,
                                                                             error_kind::invalid_header_length,
                                                                             error_kind::invalid_header,
                                                                             error_kind::invalid_header_deserialization,
                                                                             error_kind::invalid_offset,
                                                                             error_kind::validation_overflow,
                                                                             error_kind::misaligned_slice,
                                                                             error_kind::tensor_invalid_info,
                                                                             error_kind::metadata_incomplete_buffer,
                                                                             error_kind::tensor_not_found,
                                                                             error_kind::invalid_tensor_view,
                                                                             error_kind::invalid_conversion,
                                                                             error_kind::invalid_argument,
                                                                             error_kind::invalid_index,
                                                                             error_kind::io_error};
static_assert(static_cast<std::size_t>(error_kind::io_error) + 1 == error_kind_count,
              "a new error kind goes into all_error_kinds and error_kind_count");

/// The official variant name of a kind, e.g. "InvalidOffset".
constexpr std::string_view error_kind_name(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::header_too_small: return "HeaderTooSmall";
    case error_kind::header_too_large: return "HeaderTooLarge";
    case error_kind::invalid_header_length: return "InvalidHeaderLength";
    case error_kind::invalid_header: return "InvalidHeader";
    case error_kind::invalid_header_deserialization: return "InvalidHeaderDeserialization";
    case error_kind::invalid_offset: return "InvalidOffset";
    case error_kind::validation_overflow: return "ValidationOverflow";
    case error_kind::misaligned_slice: return "MisalignedSlice";
    case error_kind::tensor_invalid_info: return "TensorInvalidInfo";
    case error_kind::metadata_incomplete_buffer: return "MetadataIncompleteBuffer";
    case error_kind::tensor_not_found: return "TensorNotFound";
    case error_kind::invalid_tensor_view: return "InvalidTensorView";
    case error_kind::invalid_conversion: return "InvalidConversion";
    case error_kind::invalid_argument: return "InvalidArgument";
    case error_kind::invalid_index: return "InvalidIndex";
    case error_kind::io_error: return "IoError";
  }
  return "Unknown";
}

/// An error as a value: a kind and a message that names the tensor or key and the rule broken.
class error {
 public:
  /// Makes an error of `kind` with a human-readable `message`.
  error(error_kind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  /// The kind, for programs to branch on.
  error_kind kind() const noexcept { return kind_; }
  /// The message, for people: e.g. `tensor "b": data_offsets [8, 4] end before they begin`.
  const std::string& message() const noexcept { return message_; }
  /// "Kind: message", e.g. "InvalidOffset: tensor \"b\": ...".
  std::string to_string() const {
    std::string text(error_kind_name(kind_));
    text += ": ";
    text += message_;
    return text;
  }

 private:
  error_kind kind_;
  std::string message_;
};

#if SAFETENSORS_EXCEPTIONS
/// The exception thrown by the throwing API. `what()` is `error::to_string()`.
class exception : public std::runtime_error {
 public:
  /// Wraps an error value.
  explicit exception(const safetensors::error& err) : std::runtime_error(err.to_string()), error_(err) {}
  /// The kind of the wrapped error.
  error_kind kind() const noexcept { return error_.kind(); }
  /// The wrapped error value.
  const safetensors::error& error() const noexcept { return error_; }

 private:
  safetensors::error error_;
};
#endif

namespace detail {
/// Appends the JSON escape of `byte` as a backslash, u00 and two lowercase hex digits, as
/// serde_json writes it.
inline void append_unicode_escape(std::string& out, unsigned char byte) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\u00";
  out += hex[byte >> 4];
  out += hex[byte & 15];
}

/// `text` as a JSON string literal, for messages: names may hold quotes, newlines or NUL.
inline std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      append_unicode_escape(out, byte);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

/// True when `text` ends with `suffix`.
inline bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// `url` fit to be shown: a password in it (USER:PASSWORD at the host) becomes USER:***, and
/// the values of query parameters that carry secrets (a token, a signature, a credential, a
/// key, a password: presigned S3 URLs, hub tokens in a query) become `***`. Every message and
/// every path a remote file shows goes through this.
inline std::string redact_url(std::string_view url) {
  std::string shown(url);
  const std::size_t authority = shown.find("://");
  if (authority != std::string::npos) {
    const std::size_t host_start = authority + 3;
    const std::size_t authority_end = shown.find_first_of("/?#", host_start);
    const std::size_t at = shown.rfind('@', authority_end == std::string::npos ? shown.size() : authority_end);
    if (at != std::string::npos && at > host_start) {
      const std::size_t colon = shown.find(':', host_start);
      if (colon != std::string::npos && colon < at) shown.replace(colon + 1, at - colon - 1, "***");
    }
  }
  const std::size_t query = shown.find('?');
  if (query == std::string::npos) return shown;
  const std::size_t fragment = shown.find('#', query);
  const std::size_t query_end = fragment == std::string::npos ? shown.size() : fragment;
  std::string redacted = shown.substr(0, query + 1);
  std::size_t start = query + 1;
  while (start <= query_end) {
    std::size_t end = shown.find('&', start);
    if (end == std::string::npos || end > query_end) end = query_end;
    const std::string parameter = shown.substr(start, end - start);
    const std::size_t equals = parameter.find('=');
    std::string name = parameter.substr(0, equals);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool secret = equals != std::string::npos &&
                        (name.find("token") != std::string::npos || name.find("signature") != std::string::npos ||
                         name.find("credential") != std::string::npos || name.find("key") != std::string::npos ||
                         name.find("password") != std::string::npos || name == "sig");
    redacted += secret ? parameter.substr(0, equals + 1) + "***" : parameter;
    if (end < query_end) redacted += '&';
    start = end + 1;
  }
  return redacted + shown.substr(query_end);
}

/// Throws `err` as safetensors::exception, or without exceptions prints it and aborts: the
/// throwing API was asked for a value that is not there.
[[noreturn]] inline void raise(const error& err) {
#if SAFETENSORS_EXCEPTIONS
  throw exception(err);
#else
  std::fprintf(stderr, "safetensors: %s\n", err.to_string().c_str());
  std::abort();
#endif
}
}  // namespace detail

/// A value of type T or an error: the non-throwing API returns these.
/// `value()` gives the value or throws (aborts under -fno-exceptions): the throwing API on top.
template <class T>
class [[nodiscard]] result {
 public:
  /// A successful result.
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  /// A failed result.
  result(safetensors::error err) : state_(std::in_place_index<1>, std::move(err)) {}

  /// True when a value is held.
  bool has_value() const noexcept { return state_.index() == 0; }
  /// True when a value is held.
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws safetensors::exception (or aborts) when this holds an error.
  T& value() & {
    if (!has_value()) detail::raise(*std::get_if<1>(&state_));
    return *std::get_if<0>(&state_);
  }
  /// The value; throws safetensors::exception (or aborts) when this holds an error.
  const T& value() const& {
    if (!has_value()) detail::raise(*std::get_if<1>(&state_));
    return *std::get_if<0>(&state_);
  }
  /// The value, moved out; throws safetensors::exception (or aborts) when this holds an error.
  T&& value() && {
    if (!has_value()) detail::raise(*std::get_if<1>(&state_));
    return std::move(*std::get_if<0>(&state_));
  }
  /// The value, or `fallback` when this holds an error (which is dropped): for callers to whom a
  /// failure only means "use the default", e.g. `reader.try_read_as<float>("bias").value_or({})`.
  template <class U = T>
  T value_or(U&& fallback) const& {
    return has_value() ? *std::get_if<0>(&state_) : static_cast<T>(std::forward<U>(fallback));
  }
  /// The value moved out, or `fallback` when this holds an error.
  template <class U = T>
  T value_or(U&& fallback) && {
    return has_value() ? std::move(*std::get_if<0>(&state_)) : static_cast<T>(std::forward<U>(fallback));
  }
  /// The value; only when has_value().
  T& operator*() & noexcept { return *std::get_if<0>(&state_); }
  /// The value; only when has_value().
  const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
  /// Member access to the value; only when has_value().
  T* operator->() noexcept { return std::get_if<0>(&state_); }
  /// Member access to the value; only when has_value().
  const T* operator->() const noexcept { return std::get_if<0>(&state_); }

  /// The error; only when !has_value().
  const safetensors::error& error() const& noexcept { return *std::get_if<1>(&state_); }

 private:
  std::variant<T, safetensors::error> state_;
};

/// A result with no value: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  /// Success.
  result() = default;
  /// Failure.
  result(safetensors::error err) : error_(std::move(err)) {}

  /// True on success.
  bool has_value() const noexcept { return !error_.has_value(); }
  /// True on success.
  explicit operator bool() const noexcept { return has_value(); }
  /// Throws safetensors::exception (or aborts) on failure.
  void value() const {
    if (error_) detail::raise(*error_);
  }
  /// The error; only when !has_value().
  const safetensors::error& error() const& noexcept { return *error_; }

 private:
  std::optional<safetensors::error> error_;
};

namespace detail {
/// `err` with `name` (a path or URL) in front of its message, as every error about a file reads:
/// `"model.safetensors": ...`. Unchanged when `name` is empty (bytes in memory have none).
inline error about(std::string_view name, const error& err) {
  if (name.empty()) return err;
  return error(err.kind(), quote(name) + ": " + err.message());
}
}  // namespace detail

}  // namespace safetensors

#endif  // SAFETENSORS_ERROR_HPP
