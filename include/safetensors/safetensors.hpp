// safetensors-hpp: read and write the safetensors tensor file format.
// One header, C++17 or later. https://github.com/huggingface/safetensors describes the format;
// this library follows the official Rust crate's behaviour (see the project's SPEC notes).
//
// What is where, in this order (internals live in namespace safetensors::detail):
//   Configuration   SAFETENSORS_MAX_HEADER_SIZE, SAFETENSORS_EXCEPTIONS, SAFETENSORS_NO_FILESYSTEM
//   Errors          error_kind, error_kind_count, all_error_kinds, error_kind_name, error,
//                   exception, result<T>
//   span            span<T> (std::span under C++20)
//   Dtypes          dtype, dtype_count, all_dtypes, dtype_bits, dtype_names, dtype_name,
//                   dtype_from_name
//   Numbers         bfloat16, float16, float8_e5m2, float8_e4m3, float8_e4m3fnuz, float8_e5m2fnuz,
//                   float8_e8m0; packing; convert
//   Tensors         tensor_info, dtype_for, tensor_view, copy_to, slice_dim, at, range, all, to_end,
//                   tensor_slice, metadata_map
//   Parsing         detail: checked arithmetic, size_of_tensor, UTF-8, name_table, json_scanner,
//                   header_scanner, parse_header
//   Storages        borrowed_bytes, owned_bytes, mapped_file, pread_file, direct_io_alignment
//   Loading         thread_pool, load_options, load_request, load_piece, load_plan
//   The reader      read_options, basic_reader<Storage>, memory_reader, buffer_reader,
//                   mapped_reader, pread_reader, try_open, try_open_pread, try_open_memory, ...
//   The writer      tensor_declaration, tensor_source, metadata_entries, write_options,
//                   file_layout, vector_sink, ostream_sink, file_sink, basic_writer<Sink>,
//                   serialize, save, make_stream_writer, make_file_writer
// Companions: safetensors/model.hpp (sharded models; nothing beyond this header) and
// safetensors/remote.hpp (HTTP, HTTPS and S3; libcurl).
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_HPP
#define SAFETENSORS_HPP

#define SAFETENSORS_VERSION_MAJOR 0
#define SAFETENSORS_VERSION_MINOR 1
#define SAFETENSORS_VERSION_PATCH 0

// ---------------------------------------------------------------------------------------------
// Configuration. Each macro may be defined by the user before including this header.
// ---------------------------------------------------------------------------------------------

/// Largest header length accepted, in bytes. The format's limit is 100,000,000; an engine that
/// only opens small files may lower it to bound the memory a hostile file can ask for.
#ifndef SAFETENSORS_MAX_HEADER_SIZE
#define SAFETENSORS_MAX_HEADER_SIZE 100000000ULL
#endif

/// 1 when the throwing API is available. Detected from the compiler's exception support.
#ifndef SAFETENSORS_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || (defined(_MSC_VER) && defined(_CPPUNWIND))
#define SAFETENSORS_EXCEPTIONS 1
#else
#define SAFETENSORS_EXCEPTIONS 0
#endif
#endif

/// Define SAFETENSORS_NO_FILESYSTEM to leave out the file storages (mapped_file, pread_file) and
/// every operating-system include, e.g. on targets without a file system.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <complex>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if SAFETENSORS_EXCEPTIONS
#include <stdexcept>
#endif

#if defined(__cpp_lib_span) || (__cplusplus >= 202002L && __has_include(<span>))
#include <span>
#endif

#ifndef SAFETENSORS_NO_FILESYSTEM
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
// getrandom for the name-hash seed: glibc 2.25 and later, musl, Android from API 28.
#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>) && (!defined(__ANDROID__) || __ANDROID_API__ >= 28)
#include <sys/random.h>
#define SAFETENSORS_DETAIL_HAS_GETRANDOM 1
#endif
#endif
#endif
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
  header_too_large,                ///< header length over SAFETENSORS_MAX_HEADER_SIZE
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
inline constexpr std::array<error_kind, error_kind_count> all_error_kinds = {
    error_kind::header_too_small,           error_kind::header_too_large,   error_kind::invalid_header_length,
    error_kind::invalid_header,             error_kind::invalid_header_deserialization,
    error_kind::invalid_offset,             error_kind::validation_overflow, error_kind::misaligned_slice,
    error_kind::tensor_invalid_info,        error_kind::metadata_incomplete_buffer,
    error_kind::tensor_not_found,           error_kind::invalid_tensor_view, error_kind::invalid_conversion,
    error_kind::invalid_argument,           error_kind::invalid_index,      error_kind::io_error};
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

// ---------------------------------------------------------------------------------------------
// span: std::span under C++20, a minimal equivalent under C++17
// ---------------------------------------------------------------------------------------------

#if defined(__cpp_lib_span)
/// A contiguous sequence of T that does not own it (std::span under C++20).
template <class T>
using span = std::span<T>;
#else
/// A contiguous sequence of T that does not own it: the subset of std::span this library uses.
template <class T>
class span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using size_type = std::size_t;
  using pointer = T*;
  using reference = T&;
  using iterator = T*;

  /// An empty span.
  constexpr span() noexcept = default;
  /// The `count` elements starting at `first`.
  constexpr span(T* first, std::size_t count) noexcept : data_(first), size_(count) {}
  /// A view of a whole array.
  template <std::size_t N>
  constexpr span(T (&array)[N]) noexcept : data_(array), size_(N) {}
  /// A view of a container with data() and size(), e.g. std::vector or std::array.
  template <class Container,
            class = std::enable_if_t<
                !std::is_same_v<std::remove_cv_t<std::remove_reference_t<Container>>, span> &&
                std::is_convertible_v<decltype(std::declval<Container&>().data()), T*>>>
  constexpr span(Container& container) noexcept : data_(container.data()), size_(container.size()) {}
  /// A view of a container of const elements, temporaries included, as std::span allows: the
  /// span must not outlive the full expression it is made in.
  template <class Container,
            class = std::enable_if_t<
                std::is_const_v<T> && !std::is_same_v<std::remove_cv_t<Container>, span> &&
                std::is_convertible_v<decltype(std::declval<const Container&>().data()), T*>>>
  constexpr span(const Container& container) noexcept : data_(container.data()), size_(container.size()) {}
  /// A span of const T from a span of T.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  constexpr span(const span<U>& other) noexcept : data_(other.data()), size_(other.size()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr T* begin() const noexcept { return data_; }
  constexpr T* end() const noexcept { return data_ + size_; }
  constexpr T& operator[](std::size_t index) const noexcept { return data_[index]; }
  constexpr T& front() const noexcept { return data_[0]; }
  constexpr T& back() const noexcept { return data_[size_ - 1]; }
  constexpr span first(std::size_t count) const noexcept { return {data_, count}; }
  constexpr span subspan(std::size_t offset, std::size_t count) const noexcept { return {data_ + offset, count}; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};
#endif

// ---------------------------------------------------------------------------------------------
// Dtypes
// ---------------------------------------------------------------------------------------------

/// Element types, in the official crate's order. The writer lays tensors out in descending order
/// of it, which puts wider elements first and so keeps every tensor naturally aligned.
enum class dtype : std::uint8_t {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

/// Number of dtypes.
inline constexpr std::size_t dtype_count = 22;

/// Every dtype, in enum order.
inline constexpr std::array<dtype, dtype_count> all_dtypes = {
    dtype::BOOL, dtype::F4,   dtype::F6_E2M3, dtype::F6_E3M2, dtype::U8,          dtype::I8,
    dtype::F8_E5M2, dtype::F8_E4M3, dtype::F8_E8M0, dtype::F8_E4M3FNUZ, dtype::F8_E5M2FNUZ, dtype::I16,
    dtype::U16, dtype::F16,  dtype::BF16,   dtype::I32,     dtype::U32,         dtype::F32,
    dtype::C64, dtype::F64,  dtype::I64,    dtype::U64};

/// Bits per element: 4 for F4, 6 for F6_*, 64 for C64 (two F32), else the type's width.
constexpr std::size_t dtype_bits(dtype type) noexcept {
  switch (type) {
    case dtype::F4: return 4;
    case dtype::F6_E2M3:
    case dtype::F6_E3M2: return 6;
    case dtype::BOOL:
    case dtype::U8:
    case dtype::I8:
    case dtype::F8_E5M2:
    case dtype::F8_E4M3:
    case dtype::F8_E8M0:
    case dtype::F8_E4M3FNUZ:
    case dtype::F8_E5M2FNUZ: return 8;
    case dtype::I16:
    case dtype::U16:
    case dtype::F16:
    case dtype::BF16: return 16;
    case dtype::I32:
    case dtype::U32:
    case dtype::F32: return 32;
    case dtype::C64:
    case dtype::F64:
    case dtype::I64:
    case dtype::U64: return 64;
  }
  return 0;
}

/// The JSON spelling of every dtype, in enum order.
inline constexpr std::array<std::string_view, dtype_count> dtype_names = {
    "BOOL",        "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
    "I16",         "U16", "F16",     "BF16",    "I32", "U32", "F32",     "C64",     "F64",     "I64",         "U64"};

/// The JSON spelling of a dtype, e.g. "BF16".
constexpr std::string_view dtype_name(dtype type) noexcept {
  const auto index = static_cast<std::size_t>(type);
  return index < dtype_count ? dtype_names[index] : std::string_view();
}

/// The dtype spelled `name` (exact, case-sensitive), or nullopt.
constexpr std::optional<dtype> dtype_from_name(std::string_view name) noexcept {
  // Every spelling is 2 to 11 bytes. Length, first and last byte leave at most one candidate to
  // compare whole, so a header of many tensors makes one short compare per tensor, not ten.
  if (name.size() < 2 || name.size() > 11) return std::nullopt;
  for (std::size_t i = 0; i < dtype_count; ++i) {
    const std::string_view candidate = dtype_names[i];
    if (candidate.size() == name.size() && candidate.front() == name.front() && candidate.back() == name.back() &&
        candidate == name)
      return static_cast<dtype>(i);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Numbers: storage types for the dtypes C++ lacks, byte order, conversions between dtypes.
// First, in detail: little-endian loads and stores, bit casts, binary floating-point formats.
// ---------------------------------------------------------------------------------------------

namespace detail {

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
/// True on a big-endian host (s390x, big-endian POWER), where the file's little-endian values need
/// their bytes reversed.
inline constexpr bool host_is_big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
#else
/// Compilers that do not define __BYTE_ORDER__ (MSVC) only target little-endian machines.
inline constexpr bool host_is_big_endian = false;
#endif

/// `value` with its bytes in reverse order. Compilers turn the loop into one byte-swap instruction.
template <class T>
constexpr T byte_swap(T value) noexcept {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "byte_swap takes an integer");
  using bits_type = std::make_unsigned_t<T>;
  auto in = static_cast<bits_type>(value);
  bits_type out = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out = static_cast<bits_type>(static_cast<bits_type>(out << 8) | static_cast<bits_type>(in & 0xffu));
    in = static_cast<bits_type>(in >> 8);
  }
  return static_cast<T>(out);
}

/// Reads a little-endian integer T from the sizeof(T) bytes at `bytes`, which need no alignment.
template <class T>
inline T load_le(const std::byte* bytes) noexcept {
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  if constexpr (host_is_big_endian) value = byte_swap(value);
  return value;
}

/// Writes the integer `value` as sizeof(T) little-endian bytes at `bytes`, which need no alignment.
template <class T>
inline void store_le(std::byte* bytes, T value) noexcept {
  if constexpr (host_is_big_endian) value = byte_swap(value);
  std::memcpy(bytes, &value, sizeof(T));
}

/// The object of type `To` with the bytes of `from`: std::bit_cast for C++17. Conversions work on
/// bits so that NaN payloads survive (an FPU quiets a signaling NaN it converts) and results do
/// not depend on the rounding mode or flush-to-zero.
template <class To, class From>
inline To bit_cast(const From& from) noexcept {
  static_assert(sizeof(To) == sizeof(From) && std::is_trivially_copyable_v<To> && std::is_trivially_copyable_v<From>);
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

/// Bits of a double's sign.
inline constexpr std::uint64_t double_sign = std::uint64_t{1} << 63;
/// Bits of a double's positive infinity; larger magnitudes are NaNs.
inline constexpr std::uint64_t double_infinity = std::uint64_t{0x7ff} << 52;
/// The quiet bit of a double NaN, the top bit of its fraction.
inline constexpr std::uint64_t double_quiet_bit = std::uint64_t{1} << 51;

/// What a format does with the encodings beyond its finite numbers.
enum class float_specials : std::uint8_t {
  ieee,               ///< exponent all ones: infinity (zero fraction) or NaN; +0 and -0
  all_ones_nan,       ///< S.1111.111 is NaN; no infinity; +0 and -0 (OCP E4M3)
  negative_zero_nan,  ///< 0x80 is the only NaN; no infinity, no -0 (the FNUZ formats)
  finite,             ///< every encoding a finite number: no infinity, no NaN; +0 and -0 (OCP MX FP4, FP6)
};

/// A signed binary floating-point format of at most 32 bits: sign, exponent, fraction.
struct float_format {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  float_specials specials;
  /// Finite values beyond the largest finite one become it instead of infinity. True for every
  /// format without infinities, and for E5M2, whose overflow the OCP spec lets saturate.
  bool saturate;

  /// Position of the sign bit.
  constexpr int sign_shift() const noexcept { return exponent_bits + mantissa_bits; }
  /// Bits of the exponent field when it is all ones.
  constexpr std::uint32_t exponent_field_all_ones() const noexcept {
    return ((std::uint32_t{1} << exponent_bits) - 1) << mantissa_bits;
  }
  /// Every bit but the sign.
  constexpr std::uint32_t magnitude_mask() const noexcept { return (std::uint32_t{1} << sign_shift()) - 1; }
  /// Encoding of the largest finite magnitude.
  constexpr std::uint32_t max_finite() const noexcept {
    switch (specials) {
      case float_specials::ieee: return magnitude_mask() - (std::uint32_t{1} << mantissa_bits);
      case float_specials::all_ones_nan: return magnitude_mask() - 1;
      case float_specials::negative_zero_nan:
      case float_specials::finite: return magnitude_mask();
    }
    return 0;
  }
};

/// IEEE binary32 (F32).
inline constexpr float_format float32_format{8, 23, 127, float_specials::ieee, false};
/// IEEE binary16 (F16).
inline constexpr float_format float16_format{5, 10, 15, float_specials::ieee, false};
/// bfloat16 (BF16).
inline constexpr float_format bfloat16_format{8, 7, 127, float_specials::ieee, false};
/// OCP E5M2 (F8_E5M2).
inline constexpr float_format float8_e5m2_format{5, 2, 15, float_specials::ieee, true};
/// OCP E4M3, the "FN" variant (F8_E4M3).
inline constexpr float_format float8_e4m3_format{4, 3, 7, float_specials::all_ones_nan, true};
/// E4M3FNUZ (F8_E4M3FNUZ).
inline constexpr float_format float8_e4m3fnuz_format{4, 3, 8, float_specials::negative_zero_nan, true};
/// E5M2FNUZ (F8_E5M2FNUZ).
inline constexpr float_format float8_e5m2fnuz_format{5, 2, 16, float_specials::negative_zero_nan, true};
/// OCP MX E2M1 (F4): largest finite value 6.
inline constexpr float_format float4_e2m1_format{2, 1, 1, float_specials::finite, true};
/// OCP MX E2M3 (F6_E2M3): largest finite value 7.5.
inline constexpr float_format float6_e2m3_format{2, 3, 1, float_specials::finite, true};
/// OCP MX E3M2 (F6_E3M2): largest finite value 28.
inline constexpr float_format float6_e3m2_format{3, 2, 3, float_specials::finite, true};

/// The double, as bits, that `bits` encode in `format`: exact. An IEEE NaN keeps its sign and its
/// payload, moved to the top of the double's fraction, so that narrowing back restores it.
inline std::uint64_t decode_float(const float_format& format, std::uint32_t bits) noexcept {
  const int mantissa_bits = format.mantissa_bits;
  const std::uint64_t sign = (bits >> format.sign_shift()) & 1u ? double_sign : 0;
  const std::uint32_t magnitude = bits & format.magnitude_mask();
  const std::uint32_t exponent_field = magnitude >> mantissa_bits;
  const std::uint64_t fraction = magnitude & ((std::uint32_t{1} << mantissa_bits) - 1);
  switch (format.specials) {
    case float_specials::ieee:
      if ((magnitude & format.exponent_field_all_ones()) == format.exponent_field_all_ones())
        return sign | double_infinity | (fraction << (52 - mantissa_bits));
      break;
    case float_specials::all_ones_nan:
      if (magnitude == format.magnitude_mask()) return sign | double_infinity | double_quiet_bit;
      break;
    case float_specials::negative_zero_nan:
      if (bits == std::uint32_t{1} << format.sign_shift()) return double_infinity | double_quiet_bit;
      break;
    case float_specials::finite: break;
  }
  if (exponent_field == 0) {
    // A subnormal counts multiples of the smallest one, 2^(1 - bias - mantissa_bits): a normal
    // double for every format here, so the product is exact whatever the FPU's modes.
    const double smallest = bit_cast<double>(static_cast<std::uint64_t>(1023 + 1 - format.bias - mantissa_bits) << 52);
    return sign | bit_cast<std::uint64_t>(static_cast<double>(fraction) * smallest);
  }
  return sign | (static_cast<std::uint64_t>(static_cast<int>(exponent_field) - format.bias + 1023) << 52) |
         (fraction << (52 - mantissa_bits));
}

/// The finite, non-negative double `magnitude` (as bits) rounded to nearest, ties to even, into a
/// format with `mantissa_bits` fraction bits and exponent `bias`: the encoding without sign, which
/// exceeds the format's largest finite one when the value overflows. Rounding the double directly,
/// not through a float, keeps a value just off a midpoint from being rounded onto it first.
inline std::uint32_t round_magnitude(std::uint64_t magnitude, int mantissa_bits, int bias) noexcept {
  const int biased_exponent = static_cast<int>(magnitude >> 52);
  // Zero and double subnormals lie far below half the smallest subnormal of every format here.
  if (biased_exponent == 0) return 0;
  const int exponent = biased_exponent - 1023;
  if (exponent > bias + 1) return std::numeric_limits<std::uint32_t>::max();
  const int min_exponent = 1 - bias;
  // Below min_exponent the quantum stays that of the smallest normals: the result is subnormal.
  const int target = exponent > min_exponent ? exponent : min_exponent;
  const int shift = 52 - mantissa_bits + (target - exponent);
  if (shift >= 64) return 0;
  const std::uint64_t significand = (magnitude & ((std::uint64_t{1} << 52) - 1)) | (std::uint64_t{1} << 52);
  std::uint64_t kept = significand >> shift;
  const std::uint64_t lost = significand & ((std::uint64_t{1} << shift) - 1);
  const std::uint64_t half = std::uint64_t{1} << (shift - 1);
  if (lost > half || (lost == half && (kept & 1) != 0)) ++kept;
  // Adding the significand, leading bit included, to the exponent field steps the field when the
  // value is normal or rounding carried out of the fraction, and leaves it 0 for a subnormal.
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(target - min_exponent) << mantissa_bits) + kept);
}

/// The double `bits` in `format`, rounded to nearest, ties to even. NaN stays NaN (keeping its
/// sign and the top of its payload where the format has room); infinity stays infinity where the
/// format has one and becomes the largest finite value of its sign where it has not; overflow goes
/// to infinity or, when the format saturates, to the largest finite value; and where the format has
/// no -0, a result of zero is +0. A format with no NaN at all (float_specials::finite) has nothing
/// to give for one: callers refuse NaN first, as convert() does; here it becomes a zero.
inline std::uint32_t encode_float(const float_format& format, std::uint64_t bits) noexcept {
  const std::uint32_t sign = bits & double_sign ? std::uint32_t{1} << format.sign_shift() : 0;
  const std::uint64_t magnitude = bits & ~double_sign;
  const std::uint32_t infinity = format.exponent_field_all_ones();
  if (magnitude > double_infinity) {
    switch (format.specials) {
      case float_specials::ieee: {
        const int mantissa_bits = format.mantissa_bits;
        auto payload = static_cast<std::uint32_t>((magnitude >> (52 - mantissa_bits)) & ((1u << mantissa_bits) - 1));
        // An empty payload would read as infinity: set the quiet bit instead.
        if (payload == 0) payload = std::uint32_t{1} << (mantissa_bits - 1);
        return sign | infinity | payload;
      }
      case float_specials::all_ones_nan: return sign | format.magnitude_mask();
      case float_specials::negative_zero_nan: return std::uint32_t{1} << format.sign_shift();
      case float_specials::finite: return sign;
    }
  }
  if (magnitude == double_infinity)
    return sign | (format.specials == float_specials::ieee ? infinity : format.max_finite());
  std::uint32_t rounded = round_magnitude(magnitude, format.mantissa_bits, format.bias);
  if (rounded > format.max_finite()) rounded = format.saturate ? format.max_finite() : infinity;
  if (rounded == 0 && format.specials == float_specials::negative_zero_nan) return 0;
  return sign | rounded;
}

/// The double, as bits, that the E8M0 byte `bits` encodes: 2^(bits - 127), or NaN for 0xff.
constexpr std::uint64_t decode_e8m0(std::uint8_t bits) noexcept {
  if (bits == 0xff) return double_infinity | double_quiet_bit;
  return static_cast<std::uint64_t>(bits - 127 + 1023) << 52;
}

/// The double `bits` as E8M0; the rules are float8_e8m0::from_double's.
constexpr std::uint8_t encode_e8m0(std::uint64_t bits) noexcept {
  const std::uint64_t magnitude = bits & ~double_sign;
  if (magnitude > double_infinity) return 0xff;
  if ((bits & double_sign) != 0 && magnitude != 0) return 0xff;
  if (magnitude == double_infinity) return 0xfe;
  const int exponent = static_cast<int>(magnitude >> 52) - 1023;
  if (exponent < -127) return 0x00;
  // Between 2^e and 2^(e+1) the midpoint is 1.5 * 2^e: a fraction of one half or more rounds up.
  const int rounded = exponent + 127 + static_cast<int>((magnitude >> 51) & 1);
  return static_cast<std::uint8_t>(rounded > 0xfe ? 0xfe : rounded);
}

/// The float with the bits of the F16 `bits`, without a branch, so that loops of it vectorize.
inline std::uint32_t float16_to_float32_bits(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t shifted = static_cast<std::uint32_t>(bits & 0x7fffu) << 13;
  const std::uint32_t exponent = shifted & 0x0f800000u;
  const std::uint32_t normal = shifted + 0x38000000u;    // rebias: + (127 - 15) << 23
  const std::uint32_t special = shifted + 0x70000000u;   // exponent field 31 becomes 255
  // A subnormal m * 2^-24 is (2^-14 + m * 2^-24) - 2^-14: both operands and the result are
  // normal floats, so the subtraction is exact even under flush-to-zero.
  const float biased = bit_cast<float>(shifted + 0x38800000u) - bit_cast<float>(0x38800000u);
  const std::uint32_t subnormal = bit_cast<std::uint32_t>(biased);
  // Masks rather than conditionals: GCC leaves a conditional next to floating-point code a branch.
  const std::uint32_t is_special = 0u - static_cast<std::uint32_t>(exponent == 0x0f800000u);
  const std::uint32_t is_subnormal = 0u - static_cast<std::uint32_t>(exponent == 0);
  const std::uint32_t is_normal = ~(is_special | is_subnormal);
  return sign | (normal & is_normal) | (special & is_special) | (subnormal & is_subnormal);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Number types for the narrow floating dtypes
//
// Each holds the raw bits of one element, in host order once loaded from the file's
// little-endian bytes. Widening (to_float, to_double) is exact. Narrowing (from_float,
// from_double) rounds to nearest, ties to even (float8_e8m0: ties up, see its comment), straight
// from the argument: never through an
// intermediate rounding. NaNs keep their sign where the format has one; IEEE-style NaNs also keep
// the top of their payload and are not quieted (the quiet bit is set only when none of the payload
// fits), so every bit pattern survives a round trip through float and double. The work is done on
// bits, so results do not depend on the FPU's rounding mode or flush-to-zero. Overflow and
// infinity follow each type's comment; the F8 types use the saturating conversion of the OCP
// 8-bit floating point specification (v1.0).
// ---------------------------------------------------------------------------------------------

namespace detail {
/// The float with the bits of the narrow float `bits` in `Format`, by the general path.
template <const float_format& Format, class Bits>
std::uint32_t narrow_to_float32_bits(Bits bits) noexcept {
  return encode_float(float32_format, decode_float(Format, bits));
}

/// The float with the bits of the BF16 `bits`: its top half.
inline std::uint32_t bfloat16_to_float32_bits(std::uint16_t bits) noexcept { return static_cast<std::uint32_t>(bits) << 16; }

/// The shared body of the narrow float types with a sign, whose differences are all in `Format`
/// (and, for speed, in `ToFloat32Bits`, which widens to float's bits).
template <class Derived, class Bits, const float_format& Format, std::uint32_t (*ToFloat32Bits)(Bits) noexcept>
struct narrow_float {
  /// The raw bits.
  Bits bits = 0;

  /// The number whose encoding is `raw`.
  static constexpr Derived from_bits(Bits raw) noexcept { return Derived{{raw}}; }
  /// The nearest value to `value`, ties to even; the type's comment says what happens at the edges.
  static Derived from_float(float value) noexcept {
    return from_double_bits(decode_float(float32_format, bit_cast<std::uint32_t>(value)));
  }
  /// The nearest value to `value`, ties to even; the type's comment says what happens at the edges.
  static Derived from_double(double value) noexcept { return from_double_bits(bit_cast<std::uint64_t>(value)); }
  /// The value, exactly.
  float to_float() const noexcept { return bit_cast<float>(ToFloat32Bits(bits)); }
  /// The value, exactly.
  double to_double() const noexcept { return bit_cast<double>(decode_float(Format, bits)); }

  /// Same bits: where the format has them, +0 and -0 differ; a NaN equals itself.
  friend constexpr bool operator==(Derived a, Derived b) noexcept { return a.bits == b.bits; }
  /// Different bits.
  friend constexpr bool operator!=(Derived a, Derived b) noexcept { return a.bits != b.bits; }

 private:
  /// The nearest value to the double with bits `value`.
  static Derived from_double_bits(std::uint64_t value) noexcept {
    return from_bits(static_cast<Bits>(encode_float(Format, value)));
  }
};

/// narrow_float for an 8-bit format, widened by the general path.
template <class Derived, const float_format& Format>
using float8_base = narrow_float<Derived, std::uint8_t, Format, narrow_to_float32_bits<Format, std::uint8_t>>;
}  // namespace detail

/// bfloat16 (BF16): the top half of an IEEE binary32, with 8 exponent and 7 fraction bits, bias
/// 127, infinities, NaNs, subnormals and signed zeros. As in IEEE 754, values beyond the largest
/// finite one (about 3.3895e38) after rounding become infinity.
struct bfloat16
    : detail::narrow_float<bfloat16, std::uint16_t, detail::bfloat16_format, detail::bfloat16_to_float32_bits> {};

/// IEEE 754 binary16 (F16): 5 exponent and 10 fraction bits, bias 15, infinities, NaNs,
/// subnormals and signed zeros. As in IEEE 754, values of 65520 and beyond (the midpoint between
/// the largest finite value, 65504, and 65536) become infinity.
struct float16 : detail::narrow_float<float16, std::uint16_t, detail::float16_format, detail::float16_to_float32_bits> {};

/// OCP E5M2 (F8_E5M2): 5 exponent and 2 fraction bits, bias 15, IEEE-style infinities (S.11111.00),
/// NaNs (S.11111.{01,10,11}), subnormals and signed zeros; largest finite value 57344. Saturating:
/// finite values beyond 57344 become ±57344, while ±infinity, which E5M2 holds, stays ±infinity.
/// A NaN keeps its sign and the top two payload bits, or becomes the quiet S.11111.10.
struct float8_e5m2 : detail::float8_base<float8_e5m2, detail::float8_e5m2_format> {};

/// OCP E4M3, the "FN" variant (F8_E4M3): 4 exponent and 3 fraction bits, bias 7, signed zeros and
/// subnormals, no infinities; S.1111.111 is NaN, so the largest finite value is 448 (S.1111.110).
/// Saturating: finite values beyond 448 and ±infinity become ±448. NaN becomes S.1111.111,
/// keeping its sign.
struct float8_e4m3 : detail::float8_base<float8_e4m3, detail::float8_e4m3_format> {};

/// E4M3FNUZ (F8_E4M3FNUZ): 4 exponent and 3 fraction bits, bias 8, subnormals, no infinities and
/// no -0; 0x80, the encoding -0 would have, is the only NaN. Largest finite value 240 (0x7f).
/// Saturating: finite values beyond 240 and ±infinity become ±240; every NaN becomes 0x80; -0, and
/// negative values that round to zero, become +0.
struct float8_e4m3fnuz : detail::float8_base<float8_e4m3fnuz, detail::float8_e4m3fnuz_format> {};

/// E5M2FNUZ (F8_E5M2FNUZ): 5 exponent and 2 fraction bits, bias 16, subnormals, no infinities and
/// no -0; 0x80 is the only NaN. Largest finite value 57344 (0x7f). Saturating: finite values beyond
/// 57344 and ±infinity become ±57344; every NaN becomes 0x80; -0, and negative values that round to
/// zero, become +0.
struct float8_e5m2fnuz : detail::float8_base<float8_e5m2fnuz, detail::float8_e5m2fnuz_format> {};

/// E8M0 (F8_E8M0), the scale type of the OCP Microscaling (MX) formats: 8 exponent bits and
/// nothing else, no sign, no zero, no infinity; `bits` encodes 2^(bits - 127), from 2^-127 to
/// 2^127, and 0xff is the only NaN. Narrowing rounds to the nearest power of two by value: the
/// midpoint between 2^e and 2^(e+1) is 1.5 * 2^e, and a tie goes up, to 2^(e+1), as in PyTorch's
/// float8_e8m0fnu and ml_dtypes (with one significant bit, ties-to-even has no even neighbour).
/// It saturates at both ends: values from 1.5 * 2^127 up, and +infinity, become 2^127; zero (either
/// sign) and positive values below 2^-127 become 2^-127. NaN, negative values and -infinity, which
/// have no unsigned counterpart, become NaN.
struct float8_e8m0 {
  /// The raw bits: the biased exponent.
  std::uint8_t bits = 0;

  /// The number whose encoding is `raw`.
  static constexpr float8_e8m0 from_bits(std::uint8_t raw) noexcept { return float8_e8m0{raw}; }
  /// The power of two nearest to `value`, within the rules above.
  static float8_e8m0 from_float(float value) noexcept {
    return {detail::encode_e8m0(detail::decode_float(detail::float32_format, detail::bit_cast<std::uint32_t>(value)))};
  }
  /// The power of two nearest to `value`, within the rules above.
  static float8_e8m0 from_double(double value) noexcept { return {detail::encode_e8m0(detail::bit_cast<std::uint64_t>(value))}; }
  /// The value, exactly (2^-127 is a float subnormal, built from bits so flush-to-zero cannot lose it).
  float to_float() const noexcept {
    if (bits == 0xff) return detail::bit_cast<float>(0x7fc00000u);
    return detail::bit_cast<float>(bits == 0 ? 0x00400000u : static_cast<std::uint32_t>(bits) << 23);
  }
  /// The value, exactly.
  double to_double() const noexcept { return detail::bit_cast<double>(detail::decode_e8m0(bits)); }

  /// Same bits.
  friend constexpr bool operator==(float8_e8m0 a, float8_e8m0 b) noexcept { return a.bits == b.bits; }
  /// Different bits.
  friend constexpr bool operator!=(float8_e8m0 a, float8_e8m0 b) noexcept { return a.bits != b.bits; }
};

// ---------------------------------------------------------------------------------------------
// Conversion between dtypes
// ---------------------------------------------------------------------------------------------

namespace detail {

/// The kind of every error of a conversion itself (not of a buffer's size).
inline constexpr error_kind conversion_error_kind = error_kind::invalid_conversion;

/// One element between its source and destination: a float as the bits of the double it equals
/// (which keeps NaN payloads), or an integer exactly, since neither double nor int64_t holds
/// every U64 and I64 value.
struct element {
  /// What an element holds.
  enum class kind : std::uint8_t { floating, signed_integer, unsigned_integer };
  kind type;  ///< which of the three `bits` holds
  std::uint64_t bits;  ///< double bits, an int64_t in two's complement, or a uint64_t
};

/// Why an element has no value in the destination dtype.
enum class write_status : std::uint8_t { ok, nan, fraction, out_of_range };

/// The element of dtype `type` at `bytes`. Sub-byte dtypes and C64 never get here.
inline element read_element(const std::byte* bytes, dtype type) noexcept {
  using kind = element::kind;
  auto as_signed = [](std::int64_t value) { return element{kind::signed_integer, static_cast<std::uint64_t>(value)}; };
  auto as_unsigned = [](std::uint64_t value) { return element{kind::unsigned_integer, value}; };
  auto as_float = [](std::uint64_t double_bits) { return element{kind::floating, double_bits}; };
  switch (type) {
    case dtype::BOOL: return as_unsigned(load_le<std::uint8_t>(bytes) != 0 ? 1 : 0);
    case dtype::U8: return as_unsigned(load_le<std::uint8_t>(bytes));
    case dtype::I8: return as_signed(load_le<std::int8_t>(bytes));
    case dtype::U16: return as_unsigned(load_le<std::uint16_t>(bytes));
    case dtype::I16: return as_signed(load_le<std::int16_t>(bytes));
    case dtype::U32: return as_unsigned(load_le<std::uint32_t>(bytes));
    case dtype::I32: return as_signed(load_le<std::int32_t>(bytes));
    case dtype::U64: return as_unsigned(load_le<std::uint64_t>(bytes));
    case dtype::I64: return as_signed(load_le<std::int64_t>(bytes));
    case dtype::F8_E5M2: return as_float(decode_float(float8_e5m2_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E4M3: return as_float(decode_float(float8_e4m3_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E4M3FNUZ: return as_float(decode_float(float8_e4m3fnuz_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E5M2FNUZ: return as_float(decode_float(float8_e5m2fnuz_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E8M0: return as_float(decode_e8m0(load_le<std::uint8_t>(bytes)));
    case dtype::F16: return as_float(decode_float(float16_format, load_le<std::uint16_t>(bytes)));
    case dtype::BF16: return as_float(decode_float(bfloat16_format, load_le<std::uint16_t>(bytes)));
    case dtype::F32: return as_float(decode_float(float32_format, load_le<std::uint32_t>(bytes)));
    case dtype::F64: return as_float(load_le<std::uint64_t>(bytes));
    case dtype::F4:
    case dtype::F6_E2M3:
    case dtype::F6_E3M2:
    case dtype::C64: break;
  }
  return as_unsigned(0);
}

/// |value| of a 64-bit integer as a double, as bits with `negative` giving the sign. Rounds to
/// nearest, ties to even, or with `to_odd` truncates and sets the last bit if anything was lost: a
/// second rounding of that to at most 51 significant bits then equals one rounding of the integer
/// (Boldo and Melquiond, "When double rounding is odd", 2005), so I64 and U64 reach F32, BF16
/// and the rest without double rounding.
inline std::uint64_t integer_to_double_bits(bool negative, std::uint64_t magnitude, bool to_odd) noexcept {
  const std::uint64_t sign = negative ? double_sign : 0;
  int shift = 0;
  while ((magnitude >> shift) >= (std::uint64_t{1} << 53)) ++shift;
  std::uint64_t kept = magnitude >> shift;
  if (shift != 0) {
    const std::uint64_t lost = magnitude & ((std::uint64_t{1} << shift) - 1);
    const std::uint64_t half = std::uint64_t{1} << (shift - 1);
    if (to_odd) {
      if (lost != 0) kept |= 1;
    } else if (lost > half || (lost == half && (kept & 1) != 0)) {
      ++kept;
    }
  }
  // kept <= 2^53 (below it before a rounding step up) and the scale is a power of two: both
  // conversions and the product are exact.
  return sign | bit_cast<std::uint64_t>(static_cast<double>(kept) * static_cast<double>(std::uint64_t{1} << shift));
}

/// `value` as double bits: exact for floats, rounded for integers as integer_to_double_bits says.
inline std::uint64_t to_double_bits(element value, bool to_odd) noexcept {
  switch (value.type) {
    case element::kind::floating: return value.bits;
    case element::kind::signed_integer: {
      const bool negative = static_cast<std::int64_t>(value.bits) < 0;
      return integer_to_double_bits(negative, negative ? 0 - value.bits : value.bits, to_odd);
    }
    case element::kind::unsigned_integer: return integer_to_double_bits(false, value.bits, to_odd);
  }
  return 0;
}

/// True when the finite double `value` has no fractional part.
inline bool is_integral(double value) noexcept {
  // From 2^52 up every double is an integer; below, the cast to int64_t is in range.
  return value >= 4503599627370496.0 || value <= -4503599627370496.0 ||
         static_cast<double>(static_cast<std::int64_t>(value)) == value;
}

/// Stores `value` at `bytes` as the integer type T, if T holds it exactly.
template <class T>
inline write_status store_integer(std::byte* bytes, element value) noexcept {
  using limits = std::numeric_limits<T>;
  switch (value.type) {
    case element::kind::floating: {
      if ((value.bits & ~double_sign) > double_infinity) return write_status::nan;
      const double number = bit_cast<double>(value.bits);
      if (!is_integral(number)) return write_status::fraction;
      // 2^digits is T's max + 1, and -2^digits its min for a signed T: both exact doubles.
      const double limit = 2.0 * static_cast<double>(std::uint64_t{1} << (limits::digits - 1));
      const double low = limits::is_signed ? -limit : 0.0;
      if (!(number >= low && number < limit)) return write_status::out_of_range;
      store_le<T>(bytes, static_cast<T>(number));
      return write_status::ok;
    }
    case element::kind::signed_integer: {
      const auto number = static_cast<std::int64_t>(value.bits);
      if constexpr (limits::is_signed) {
        if (number < limits::min() || number > limits::max()) return write_status::out_of_range;
      } else {
        if (number < 0 || static_cast<std::uint64_t>(number) > limits::max()) return write_status::out_of_range;
      }
      store_le<T>(bytes, static_cast<T>(number));
      return write_status::ok;
    }
    case element::kind::unsigned_integer:
      if (value.bits > static_cast<std::uint64_t>(limits::max())) return write_status::out_of_range;
      store_le<T>(bytes, static_cast<T>(value.bits));
      return write_status::ok;
  }
  return write_status::ok;
}

/// Stores `value` at `bytes` as dtype `type`. Sub-byte dtypes and C64 never get here.
inline write_status write_element(std::byte* bytes, dtype type, element value) noexcept {
  // Integers reach narrow floats through a round-to-odd double, F64 through a rounded one.
  auto narrow = [&](const float_format& format) { return encode_float(format, to_double_bits(value, true)); };
  switch (type) {
    case dtype::BOOL:
      if (value.type == element::kind::floating) {
        const std::uint64_t magnitude = value.bits & ~double_sign;
        if (magnitude > double_infinity) return write_status::nan;
        store_le<std::uint8_t>(bytes, magnitude != 0 ? 1 : 0);
      } else {
        store_le<std::uint8_t>(bytes, value.bits != 0 ? 1 : 0);
      }
      return write_status::ok;
    case dtype::U8: return store_integer<std::uint8_t>(bytes, value);
    case dtype::I8: return store_integer<std::int8_t>(bytes, value);
    case dtype::U16: return store_integer<std::uint16_t>(bytes, value);
    case dtype::I16: return store_integer<std::int16_t>(bytes, value);
    case dtype::U32: return store_integer<std::uint32_t>(bytes, value);
    case dtype::I32: return store_integer<std::int32_t>(bytes, value);
    case dtype::U64: return store_integer<std::uint64_t>(bytes, value);
    case dtype::I64: return store_integer<std::int64_t>(bytes, value);
    case dtype::F8_E5M2: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e5m2_format))); break;
    case dtype::F8_E4M3: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e4m3_format))); break;
    case dtype::F8_E4M3FNUZ: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e4m3fnuz_format))); break;
    case dtype::F8_E5M2FNUZ: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e5m2fnuz_format))); break;
    case dtype::F8_E8M0: store_le(bytes, encode_e8m0(to_double_bits(value, true))); break;
    case dtype::F16: store_le(bytes, static_cast<std::uint16_t>(narrow(float16_format))); break;
    case dtype::BF16: store_le(bytes, static_cast<std::uint16_t>(narrow(bfloat16_format))); break;
    case dtype::F32: store_le(bytes, narrow(float32_format)); break;
    case dtype::F64: store_le(bytes, to_double_bits(value, false)); break;
    case dtype::F4:
    case dtype::F6_E2M3:
    case dtype::F6_E3M2:
    case dtype::C64: break;
  }
  return write_status::ok;
}

/// Widens `count` 16-bit elements at `source` to 32 bits at `destination` with `widen`, in
/// fixed-size blocks whose inner loop has no branch and no call, so that compilers vectorize it.
template <class Widen>
inline void widen_16_to_32(const std::byte* source, std::byte* destination, std::size_t count, Widen widen) noexcept {
  constexpr std::size_t block = 256;
  std::size_t i = 0;
  for (; i + block <= count; i += block) {
    std::uint16_t in[block];
    std::uint32_t out[block];
    std::memcpy(in, source + 2 * i, sizeof in);
    for (std::size_t k = 0; k < block; ++k) {
      std::uint16_t value = in[k];
      if constexpr (host_is_big_endian) value = byte_swap(value);
      std::uint32_t wide = widen(value);
      if constexpr (host_is_big_endian) wide = byte_swap(wide);
      out[k] = wide;
    }
    std::memcpy(destination + 4 * i, out, sizeof out);
  }
  for (; i < count; ++i) store_le(destination + 4 * i, widen(load_le<std::uint16_t>(source + 2 * i)));
}

/// A double for a message: the shortest text that reads back as the same value.
inline std::string number_text(double value) {
  char text[32];
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) return text;
  }
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

/// An element's value for a message.
inline std::string element_text(element value) {
  switch (value.type) {
    case element::kind::floating: return number_text(bit_cast<double>(value.bits));
    case element::kind::signed_integer: return std::to_string(static_cast<std::int64_t>(value.bits));
    case element::kind::unsigned_integer: return std::to_string(value.bits);
  }
  return "";
}

/// The values an integer dtype holds, for a message, e.g. "-128 to 127".
inline std::string integer_range_text(dtype type) {
  auto range = [](auto low, auto high) { return std::to_string(low) + " to " + std::to_string(high); };
  switch (type) {
    case dtype::U8: return range(0, std::numeric_limits<std::uint8_t>::max());
    case dtype::I8: return range(std::numeric_limits<std::int8_t>::min(), std::numeric_limits<std::int8_t>::max());
    case dtype::U16: return range(0, std::numeric_limits<std::uint16_t>::max());
    case dtype::I16: return range(std::numeric_limits<std::int16_t>::min(), std::numeric_limits<std::int16_t>::max());
    case dtype::U32: return range(0, std::numeric_limits<std::uint32_t>::max());
    case dtype::I32: return range(std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max());
    case dtype::U64: return range(0, std::numeric_limits<std::uint64_t>::max());
    case dtype::I64: return range(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
    default: return "";
  }
}

/// True for the dtypes whose elements are smaller than a byte.
constexpr bool is_sub_byte(dtype type) noexcept { return dtype_bits(type) % 8 != 0; }

/// The format of a sub-byte float dtype.
constexpr const float_format& sub_byte_format(dtype type) noexcept {
  return type == dtype::F4 ? float4_e2m1_format : type == dtype::F6_E2M3 ? float6_e2m3_format : float6_e3m2_format;
}
}  // namespace detail

/// How elements smaller than a byte (F4, F6_E2M3, F6_E3M2) lie in their bytes, which the format
/// leaves open. A tensor's shape counts elements; its bytes hold them back to back.
enum class packing : std::uint8_t {
  /// The default. F4: element 2i in the low nibble of byte i and 2i+1 in the high nibble, as
  /// PyTorch's float4_e2m1fn_x2 stores them. F6: a little-endian bit stream, element i in bits
  /// [6i, 6i + 6) counted from the least significant bit of byte 0 (no producer convention is
  /// known; this is the F4 rule's natural extension).
  low_first,
  /// F4: element 2i in the high nibble. F6: a big-endian bit stream, element i in bits
  /// [6i, 6i + 6) counted from the most significant bit of byte 0.
  high_first,
};

namespace detail {
/// The `bits` bits of sub-byte element `index` of `bytes`, laid out as `order` says.
inline std::uint32_t load_packed(const std::byte* bytes, std::size_t index, std::size_t bits, packing order) noexcept {
  const std::size_t first = index * bits;
  const std::size_t at = first / 8, shift = first % 8;
  const bool spans_two = shift + bits > 8;
  const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
  const std::uint32_t low = std::to_integer<std::uint32_t>(bytes[at]);
  const std::uint32_t high = spans_two ? std::to_integer<std::uint32_t>(bytes[at + 1]) : 0;
  if (order == packing::low_first) return ((low | (high << 8)) >> shift) & mask;
  return (((low << 8) | high) >> (16 - shift - bits)) & mask;
}

/// Stores `value` as sub-byte element `index` of `bytes`, laid out as `order` says; the other
/// elements' bits are kept.
inline void store_packed(std::byte* bytes, std::size_t index, std::size_t bits, packing order, std::uint32_t value) noexcept {
  const std::size_t first = index * bits;
  const std::size_t at = first / 8, shift = first % 8;
  const bool spans_two = shift + bits > 8;
  const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
  std::uint32_t word = std::to_integer<std::uint32_t>(bytes[at]) | (spans_two ? std::to_integer<std::uint32_t>(bytes[at + 1]) << 8 : 0);
  if (order == packing::low_first) {
    word = (word & ~(mask << shift)) | ((value & mask) << shift);
    bytes[at] = static_cast<std::byte>(word & 0xff);
    if (spans_two) bytes[at + 1] = static_cast<std::byte>(word >> 8);
    return;
  }
  // Big-endian: byte `at` is the high half of a 16-bit window.
  std::uint32_t window = ((word & 0xff) << 8) | (word >> 8);
  const std::size_t position = 16 - shift - bits;
  window = (window & ~(mask << position)) | ((value & mask) << position);
  bytes[at] = static_cast<std::byte>(window >> 8);
  if (spans_two) bytes[at + 1] = static_cast<std::byte>(window & 0xff);
}
}  // namespace detail

/// Converts every element of `source`, of dtype `source_type`, to `destination_type` and stores it
/// in `destination`. Both hold elements in the file's layout: little-endian (which is host order
/// on a little-endian host), at any alignment, sub-byte elements packed as `order` says. They must
/// not overlap.
///
/// - Both must hold whole elements, the same number of them.
/// - Any dtype converts to any other except C64, which converts only to C64.
/// - To the same dtype the bytes are copied unchanged.
/// - Float to float: exact when the destination holds the value, else rounded to nearest, ties to
///   even, once, with the destination type's rules for overflow, infinity and NaN (see bfloat16,
///   float16 and the float8 types; F32 and F64 follow IEEE 754). NaN payloads are kept as far as
///   they fit.
/// - F4 (OCP MX E2M1, largest value 6), F6_E2M3 (7.5) and F6_E3M2 (28) have no infinity and no
///   NaN: as the OCP MX specification's saturating conversion does, values beyond the largest and
///   ±infinity become ±the largest value; a NaN, which they cannot hold, is an error.
/// - Integer to float: rounded to nearest, ties to even, once (U64 max becomes 2^64 in F64).
/// - Float to integer: the value must be a whole number in the destination's range, else error.
///   Integer to integer: the value must be in range, else error.
/// - BOOL reads as 0 or 1 (any nonzero byte is 1) and stores 1 for any nonzero value, 0 for zero,
///   and refuses NaN.
///
/// Errors: InvalidTensorView when the sizes do not match, InvalidConversion for a dtype pair or an
/// element that cannot be converted; each names the sizes, or the element's index and value. On
/// an element error, the elements before it have been written, those after it not.
inline result<void> convert(span<const std::byte> source, dtype source_type, span<std::byte> destination,
                            dtype destination_type, packing order = packing::low_first) {
  const auto fail = [](std::string message) { return error(detail::conversion_error_kind, std::move(message)); };
  if ((source_type == dtype::C64) != (destination_type == dtype::C64))
    return fail("C64 converts only to C64, not " + std::string(dtype_name(source_type)) + " to " +
                std::string(dtype_name(destination_type)));
  const std::size_t source_bits = dtype_bits(source_type);
  const std::size_t destination_bits = dtype_bits(destination_type);
  auto describe = [](const char* side, std::size_t bytes, std::size_t bits, dtype type) {
    std::string text = std::string(side) + " has " + std::to_string(bytes) + " bytes (";
    if (bytes * 8 % bits == 0) return text + std::to_string(bytes * 8 / bits) + " " + std::string(dtype_name(type)) + " elements)";
    return text + "not a whole number of " + std::to_string(bits) + "-bit " + std::string(dtype_name(type)) + " elements)";
  };
  if (source.size() * 8 % source_bits != 0 || destination.size() * 8 % destination_bits != 0 ||
      source.size() * 8 / source_bits != destination.size() * 8 / destination_bits)
    return error(error_kind::invalid_tensor_view, describe("source", source.size(), source_bits, source_type) + " but " +
                describe("destination", destination.size(), destination_bits, destination_type) +
                ": they must hold the same number of whole elements");
  const std::size_t count = source.size() * 8 / source_bits;
  if (count == 0) return {};
  const std::byte* from = source.data();
  std::byte* to = destination.data();
  if (source_type == destination_type) {
    std::memcpy(to, from, source.size());
    return {};
  }
  if (destination_type == dtype::F32 && source_type == dtype::BF16) {
    detail::widen_16_to_32(from, to, count, [](std::uint16_t bits) { return static_cast<std::uint32_t>(bits) << 16; });
    return {};
  }
  if (destination_type == dtype::F32 && source_type == dtype::F16) {
    detail::widen_16_to_32(from, to, count, [](std::uint16_t bits) { return detail::float16_to_float32_bits(bits); });
    return {};
  }
  const bool packed_source = detail::is_sub_byte(source_type);
  const bool packed_destination = detail::is_sub_byte(destination_type);
  for (std::size_t i = 0; i < count; ++i) {
    const detail::element value =
        packed_source ? detail::element{detail::element::kind::floating,
                                        detail::decode_float(detail::sub_byte_format(source_type),
                                                             detail::load_packed(from, i, source_bits, order))}
                      : detail::read_element(from + i * (source_bits / 8), source_type);
    detail::write_status status = detail::write_status::ok;
    if (!packed_destination) {
      status = detail::write_element(to + i * (destination_bits / 8), destination_type, value);
    } else if (value.type == detail::element::kind::floating && (value.bits & ~detail::double_sign) > detail::double_infinity) {
      status = detail::write_status::nan;
    } else {
      const std::uint32_t bits = detail::encode_float(detail::sub_byte_format(destination_type), detail::to_double_bits(value, true));
      detail::store_packed(to, i, destination_bits, order, bits);
    }
    if (status == detail::write_status::ok) continue;
    std::string message = "element " + std::to_string(i) + " (" + detail::element_text(value) + ") of " +
                          std::string(dtype_name(source_type)) + " has no " + std::string(dtype_name(destination_type)) +
                          " value: ";
    switch (status) {
      case detail::write_status::nan:
        message += destination_type == dtype::BOOL ? "NaN is neither true nor false"
                   : packed_destination            ? std::string(dtype_name(destination_type)) + " has no NaN"
                                                   : "NaN is not an integer";
        break;
      case detail::write_status::fraction: message += "it is not a whole number"; break;
      case detail::write_status::out_of_range:
        message += "it is outside " + detail::integer_range_text(destination_type);
        break;
      case detail::write_status::ok: break;
    }
    return fail(std::move(message));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Tensors: descriptions, views, typed copies, slices, metadata
// ---------------------------------------------------------------------------------------------

/// One tensor's entry in a header: name, dtype, shape and data offsets. Obtained from a reader,
/// which owns the name and shape storage; valid as long as the reader is.
struct tensor_info {
  /// The tensor's name, unescaped (may hold any Unicode, NUL included).
  std::string_view name;
  /// The element type.
  safetensors::dtype dtype = safetensors::dtype::U8;
  /// Size of each dimension, leading first; empty for a scalar.
  span<const std::uint64_t> shape;
  /// [begin, end) byte offsets relative to the start of the data buffer.
  std::array<std::uint64_t, 2> data_offsets{};
  /// Product of `shape` (1 for a scalar); validated not to overflow.
  std::uint64_t element_count = 0;

  /// Number of bytes of the tensor's data: data_offsets[1] - data_offsets[0].
  std::uint64_t byte_size() const noexcept { return data_offsets[1] - data_offsets[0]; }
};

namespace detail {
/// The integer dtype of `bytes` bytes, signed or not.
constexpr dtype integer_dtype(std::size_t bytes, bool is_signed) noexcept {
  switch (bytes) {
    case 1: return is_signed ? dtype::I8 : dtype::U8;
    case 2: return is_signed ? dtype::I16 : dtype::U16;
    case 4: return is_signed ? dtype::I32 : dtype::U32;
    default: return is_signed ? dtype::I64 : dtype::U64;
  }
}

/// The dtype whose elements a C++ type holds, for typed views, copies and sources: every integer
/// type by its size and signedness (bool is BOOL), float, double, std::complex<float> and this
/// library's number types. Other types have no `value`.
template <class T, class = void>
struct dtype_of {};
template <class T>
struct dtype_of<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && sizeof(T) <= 8>>
    : std::integral_constant<dtype, integer_dtype(sizeof(T), std::is_signed_v<T>)> {};
template <> struct dtype_of<bool> : std::integral_constant<dtype, dtype::BOOL> {};
template <> struct dtype_of<float> : std::integral_constant<dtype, dtype::F32> {};
template <> struct dtype_of<double> : std::integral_constant<dtype, dtype::F64> {};
template <> struct dtype_of<std::complex<float>> : std::integral_constant<dtype, dtype::C64> {};
template <> struct dtype_of<bfloat16> : std::integral_constant<dtype, dtype::BF16> {};
template <> struct dtype_of<float16> : std::integral_constant<dtype, dtype::F16> {};
template <> struct dtype_of<float8_e5m2> : std::integral_constant<dtype, dtype::F8_E5M2> {};
template <> struct dtype_of<float8_e4m3> : std::integral_constant<dtype, dtype::F8_E4M3> {};
template <> struct dtype_of<float8_e8m0> : std::integral_constant<dtype, dtype::F8_E8M0> {};
template <> struct dtype_of<float8_e4m3fnuz> : std::integral_constant<dtype, dtype::F8_E4M3FNUZ> {};
template <> struct dtype_of<float8_e5m2fnuz> : std::integral_constant<dtype, dtype::F8_E5M2FNUZ> {};
}  // namespace detail

/// The dtype of the elements a C++ type holds (see detail::dtype_of): dtype_for<float> is F32,
/// dtype_for<std::int64_t> I64, dtype_for<bfloat16> BF16.
template <class T>
inline constexpr dtype dtype_for = detail::dtype_of<std::remove_cv_t<T>>::value;

namespace detail {
/// Swaps each element of `bytes` (of `type`) between little-endian and host order; nothing to do
/// on a little-endian host. C64 is two F32 halves.
inline void to_host_order(span<std::byte> bytes, dtype type) noexcept {
  if constexpr (host_is_big_endian) {
    const std::size_t width = type == dtype::C64 ? 4 : dtype_bits(type) / 8;
    if (width < 2) return;
    for (std::size_t at = 0; at + width <= bytes.size(); at += width) std::reverse(bytes.data() + at, bytes.data() + at + width);
  } else {
    (void)bytes;
    (void)type;
  }
}
}  // namespace detail

/// A tensor's description together with its bytes, which it does not own.
struct tensor_view {
  /// The tensor's entry in the header.
  const tensor_info* info = nullptr;
  /// The tensor's bytes: byte_size() of them, little-endian, alignment not guaranteed.
  span<const std::byte> bytes;

  /// The tensor's name.
  std::string_view name() const noexcept { return info->name; }
  /// The tensor's dtype.
  safetensors::dtype dtype() const noexcept { return info->dtype; }
  /// The tensor's shape.
  span<const std::uint64_t> shape() const noexcept { return info->shape; }

  /// The elements as a span of T, without a copy: T must be the dtype's type exactly (float for
  /// F32, bfloat16 for BF16, std::complex<float> for C64, ...; std::byte for any dtype, and for
  /// BOOL, F4 and F6_* which are bytes only), and the bytes aligned for T. Otherwise an
  /// InvalidTensorView that says why; copy_to copies at any alignment and on any host.
  template <class T>
  result<span<const T>> try_as() const {
    if constexpr (std::is_same_v<T, std::byte>) {
      return bytes;
    } else {
      constexpr safetensors::dtype wanted = detail::dtype_of<T>::value;
      if (dtype() != wanted)
        return error(error_kind::invalid_tensor_view, "tensor " + detail::quote(name()) + " is " +
                                                          std::string(dtype_name(dtype())) + ", not " +
                                                          std::string(dtype_name(wanted)));
      if (detail::host_is_big_endian && sizeof(T) > 1 && !bytes.empty())
        return error(error_kind::invalid_tensor_view,
                     "tensor " + detail::quote(name()) + " is little-endian and this host is big-endian: use copy_to, "
                     "which swaps the bytes");
      if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(T) != 0)
        return error(error_kind::invalid_tensor_view,
                     "tensor " + detail::quote(name()) + " is not aligned to " + std::to_string(alignof(T)) +
                         " bytes in memory (its writer did not align it): use copy_to, which copies at any alignment");
      return span<const T>(reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T));
    }
  }
  /// The elements as a span of T, without a copy; throws InvalidTensorView (see try_as).
  template <class T>
  span<const T> as() const {
    return try_as<T>().value();
  }
};

/// Copies every element of `tensor` into `destination` as `target` values in host byte order,
/// converting them (see convert() for the rules) and swapping bytes on a big-endian host. The
/// destination may have any alignment; it holds exactly element_count elements of `target`.
inline result<void> copy_to(const tensor_view& tensor, span<std::byte> destination, dtype target,
                            packing order = packing::low_first) {
  if (auto converted = convert(tensor.bytes, tensor.dtype(), destination, target, order); !converted) {
    return error(converted.error().kind(), "tensor " + detail::quote(tensor.name()) + ": " + converted.error().message());
  }
  detail::to_host_order(destination, target);
  return {};
}

/// Copies every element of `tensor` into `destination` as values of T (float, bfloat16,
/// std::int64_t, ...), converting them; `destination` holds exactly element_count of them.
/// Sub-byte tensors' elements are read as `order` says.
template <class T>
result<void> copy_to(const tensor_view& tensor, span<T> destination, packing order = packing::low_first) {
  static_assert(std::is_trivially_copyable_v<T>, "copy_to fills trivially copyable element types");
  return copy_to(tensor, span<std::byte>(reinterpret_cast<std::byte*>(destination.data()), destination.size() * sizeof(T)),
                 detail::dtype_of<T>::value, order);
}

/// Stands for "to the end of the dimension" as a range's stop.
inline constexpr std::int64_t to_end = std::numeric_limits<std::int64_t>::max();

/// What a slice takes of one dimension: a single index (the dimension is dropped from the
/// result) or the range [start, stop) every step-th element. Made by at(), range() and all().
/// Indices and bounds below zero count from the end, as in Python: -1 is the last element.
struct slice_dim {
  /// True for a single index (in start).
  bool single = false;
  /// The index, or the first element of the range; negative counts from the end.
  std::int64_t start = 0;
  /// One past the range's last element; negative counts from the end; to_end for the size.
  std::int64_t stop = to_end;
  /// Distance between taken elements, at least 1.
  std::uint64_t step = 1;
};

/// The element at `index` of a dimension (-1 is the last); the dimension is dropped, as x[i] does
/// in Python.
constexpr slice_dim at(std::int64_t index) noexcept { return {true, index, to_end, 1}; }
/// The elements [start, stop) of a dimension, every step-th, as x[start:stop:step] in Python;
/// negative bounds count from the end.
constexpr slice_dim range(std::int64_t start, std::int64_t stop = to_end, std::uint64_t step = 1) noexcept {
  return {false, start, stop, step};
}
/// The whole dimension, as x[:] in Python.
constexpr slice_dim all() noexcept { return range(0); }

/// A selection of a tensor's elements, per dimension an index or a range (leading dimensions
/// first; dimensions not given are taken whole), as tensor parallelism loads its part of each
/// weight. Made from a tensor's description (any storage: the selection's byte ranges are what a
/// reader reads) or from a view (the selection can also be viewed, when contiguous, or copied).
///
/// The selection is a sequence of runs: run_count() pieces of the tensor, run_bytes() each, that
/// follow one another in the selection's row-major order. Runs come in groups whose runs are
/// equally spaced in the tensor (for_each_run_group), which is how a column block of a matrix is
/// described without a list as long as its rows.
class tensor_slice {
 public:
  /// Checks `dims` against the tensor's shape: an InvalidArgument names the dimension at fault. A
  /// sub-byte tensor's (F4, F6) selection must start and end on byte boundaries, run by run,
  /// else MisalignedSlice, as the official slice code says.
  static result<tensor_slice> make(const tensor_info& info, std::vector<slice_dim> dims) {
    return make(tensor_view{&info, {}}, std::move(dims));
  }
  /// As the other form, keeping the view's bytes for try_bytes() and copy_to().
  static result<tensor_slice> make(const tensor_view& tensor, std::vector<slice_dim> dims) {
    const span<const std::uint64_t> shape = tensor.shape();
    const std::string subject = "slice of tensor " + detail::quote(tensor.name());
    if (dims.size() > shape.size())
      return error(error_kind::invalid_argument, subject + ": " + std::to_string(dims.size()) +
                                                     " dimensions given for a tensor of rank " + std::to_string(shape.size()));
    tensor_slice slice;
    slice.tensor_ = tensor;
    slice.count_ = 1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      const slice_dim want = d < dims.size() ? dims[d] : all();
      const std::uint64_t size = shape[d];
      const std::string where = subject + ", dimension " + std::to_string(d) + " (size " + std::to_string(size) + "): ";
      std::uint64_t start = 0;
      if (!resolve(want.start, size, start))
        return error(error_kind::invalid_argument,
                     where + (want.single ? "index " : "start ") + std::to_string(want.start) + " is out of range");
      taken t{};
      if (want.single) {
        if (start >= size)
          return error(error_kind::invalid_argument, where + "index " + std::to_string(want.start) + " is out of range");
        t = {start, 1, 1};
      } else {
        std::uint64_t stop = size;
        if (want.stop != to_end && !resolve(want.stop, size, stop))
          return error(error_kind::invalid_argument, where + "stop " + std::to_string(want.stop) + " is out of range");
        if (want.step == 0) return error(error_kind::invalid_argument, where + "the step must be at least 1");
        if (stop > size)
          return error(error_kind::invalid_argument, where + "stop " + std::to_string(want.stop) + " is past the end");
        if (start > stop)
          return error(error_kind::invalid_argument,
                       where + "start " + std::to_string(want.start) + " is after " +
                           (want.stop == to_end ? "the end" : "stop " + std::to_string(want.stop)));
        // Counted so that no step, however close to 2^64, wraps around.
        t = {start, stop > start ? (stop - start - 1) / want.step + 1 : 0, want.step};
        slice.shape_.push_back(t.count);
      }
      slice.taken_.push_back(t);
      slice.count_ *= t.count;  // at most the tensor's element count, which fits
    }
    slice.find_runs();
    if (auto aligned = slice.check_byte_aligned(); !aligned) return aligned.error();
    return slice;
  }

  /// The tensor sliced: its description, and its bytes when the slice was made from a view.
  const tensor_view& tensor() const noexcept { return tensor_; }
  /// The tensor's description.
  const tensor_info& info() const noexcept { return *tensor_.info; }
  /// The selection's shape: one entry per range, none for single indices.
  const std::vector<std::uint64_t>& shape() const noexcept { return shape_; }
  /// Number of elements selected.
  std::uint64_t element_count() const noexcept { return count_; }
  /// Number of bytes selected: element_count() elements of the tensor's dtype.
  std::uint64_t byte_size() const noexcept { return count_ * bits() / 8; }
  /// True when the selection is one run of bytes: try_bytes() views it without a copy.
  bool contiguous() const noexcept { return contiguous_; }

  /// Bytes in each run; 0 when nothing is selected.
  std::uint64_t run_bytes() const noexcept { return count_ == 0 ? 0 : run_length_ * bits() / 8; }
  /// Number of runs; 0 when nothing is selected.
  std::uint64_t run_count() const noexcept { return count_ == 0 ? 0 : count_ / run_length_; }
  /// Calls `visit(first, stride, count)` for each group of runs, in selection order: `count` runs
  /// of run_bytes() whose first starts `first` bytes into the tensor and each next `stride`
  /// bytes after the one before. `visit` returns void, or bool: false stops the walk.
  template <class Visit>
  void for_each_run_group(Visit&& visit) const {
    if (count_ == 0) return;
    // Offsets in elements, then in bytes (whole bytes: check_byte_aligned saw to it).
    const std::uint64_t b = bits();
    auto go_on = [&](std::uint64_t first, std::uint64_t stride, std::uint64_t count) {
      if constexpr (std::is_void_v<decltype(visit(first, stride, count))>) {
        visit(first, stride, count);
        return true;
      } else {
        return static_cast<bool>(visit(first, stride, count));
      }
    };
    if (run_dim_ == 0) {
      go_on(run_base_ * b / 8, run_length_ * b / 8, std::uint64_t{1});
      return;
    }
    // The innermost walked dimension makes a group; the dimensions before it are walked like an
    // odometer.
    const std::size_t inner = run_dim_ - 1;
    const std::uint64_t stride = taken_[inner].step * strides_[inner] * b / 8;
    std::vector<std::uint64_t> position(inner, 0);
    for (;;) {
      std::uint64_t element = run_base_ + taken_[inner].start * strides_[inner];
      for (std::size_t d = 0; d < inner; ++d) element += (taken_[d].start + position[d] * taken_[d].step) * strides_[d];
      if (!go_on(element * b / 8, stride, taken_[inner].count)) return;
      std::size_t d = inner;
      while (d > 0 && ++position[d - 1] == taken_[d - 1].count) position[--d] = 0;
      if (d == 0) return;
    }
  }

  /// The selection's bytes without a copy (little-endian, in the tensor's dtype) when it is
  /// contiguous and the slice was made from a view; otherwise an InvalidTensorView saying why.
  result<span<const std::byte>> try_bytes() const {
    if (auto viewable = check_viewable(); !viewable) return viewable.error();
    if (!contiguous_)
      return error(error_kind::invalid_tensor_view, "slice of tensor " + detail::quote(tensor_.name()) +
                                                        " is not one contiguous run of bytes: use copy_to to gather it");
    return tensor_.bytes.subspan(static_cast<std::size_t>(run_start_ * bits() / 8), static_cast<std::size_t>(byte_size()));
  }

  /// Gathers the selected elements, in row-major order, into `destination` as `target` values in
  /// host byte order (converted as convert() does, sub-byte elements packed as `order` says);
  /// `destination` holds exactly element_count(). Slices made from a view only (a reader reads
  /// the others: read_into, load_into).
  result<void> copy_to(span<std::byte> destination, dtype target, packing order = packing::low_first) const {
    if (auto viewable = check_viewable(); !viewable) return viewable;
    const std::size_t target_bits = dtype_bits(target);
    if (destination.size() * 8 % target_bits != 0 || destination.size() * 8 / target_bits != count_)
      return error(error_kind::invalid_tensor_view,
                   "slice of tensor " + detail::quote(tensor_.name()) + " has " + std::to_string(count_) +
                       " elements; the destination holds " + std::to_string(destination.size()) + " bytes, not " +
                       std::to_string(count_) + " " + std::string(dtype_name(target)) + " elements");
    // A run of a sub-byte target must fill whole bytes too.
    if (run_length_ * target_bits % 8 != 0)
      return error(error_kind::misaligned_slice, "slice of tensor " + detail::quote(tensor_.name()) + ": runs of " +
                                                     std::to_string(run_length_) + " " + std::string(dtype_name(target)) +
                                                     " elements do not fill whole bytes");
    std::size_t written = 0;
    const auto run_size = static_cast<std::size_t>(run_bytes());
    const auto run_out = static_cast<std::size_t>(run_length_ * target_bits / 8);
    result<void> outcome;
    for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t runs) {
      for (std::uint64_t r = 0; r < runs; ++r) {
        const span<const std::byte> source = tensor_.bytes.subspan(static_cast<std::size_t>(first + r * stride), run_size);
        if (auto converted = convert(source, tensor_.dtype(), destination.subspan(written, run_out), target, order);
            !converted) {
          outcome = error(converted.error().kind(),
                          "slice of tensor " + detail::quote(tensor_.name()) + ": " + converted.error().message());
          return false;
        }
        written += run_out;
      }
      return true;
    });
    if (!outcome) return outcome;
    detail::to_host_order(destination, target);
    return {};
  }
  /// Gathers the selected elements into `destination` as values of T (see the untyped form).
  template <class T>
  result<void> copy_to(span<T> destination, packing order = packing::low_first) const {
    static_assert(std::is_trivially_copyable_v<T>, "copy_to fills trivially copyable element types");
    return copy_to(span<std::byte>(reinterpret_cast<std::byte*>(destination.data()), destination.size() * sizeof(T)),
                   detail::dtype_of<T>::value, order);
  }

 private:
  struct taken {
    std::uint64_t start;
    std::uint64_t count;
    std::uint64_t step;
  };

  // `value` as a position in a dimension of `size`: negative counts from the end. False when it
  // stays below zero.
  static bool resolve(std::int64_t value, std::uint64_t size, std::uint64_t& out) noexcept {
    if (value >= 0) {
      out = static_cast<std::uint64_t>(value);
      return true;
    }
    const std::uint64_t back = 0 - static_cast<std::uint64_t>(value);
    if (back > size) return false;
    out = size - back;
    return true;
  }

  std::uint64_t bits() const noexcept { return dtype_bits(tensor_.dtype()); }

  // A sub-byte selection must be whole bytes run by run: each run's length, its first run's
  // start, and every step between runs of the walked dimensions, in bits, multiples of 8.
  result<void> check_byte_aligned() const {
    const std::uint64_t b = bits();
    if (b % 8 == 0 || count_ == 0) return {};
    bool aligned = run_length_ * b % 8 == 0 && run_start_ * b % 8 == 0;
    for (std::size_t d = 0; d < run_dim_; ++d) {
      if (taken_[d].count > 1) aligned = aligned && taken_[d].step * strides_[d] * b % 8 == 0;
    }
    if (aligned) return {};
    return error(error_kind::misaligned_slice,
                 "slice of tensor " + detail::quote(tensor_.name()) + ": its runs of " + std::string(dtype_name(tensor_.dtype())) +
                     " elements do not start and end on byte boundaries (a run of " + std::to_string(run_length_) +
                     " elements from element " + std::to_string(run_start_) + ")");
  }

  result<void> check_viewable() const {
    if (tensor_.bytes.size() != tensor_.info->byte_size())
      return error(error_kind::invalid_tensor_view,
                   "slice of tensor " + detail::quote(tensor_.name()) +
                       " was made from its description, without its bytes: read it through its reader");
    return {};
  }

  // Splits the selection into runs of elements contiguous in the tensor (the trailing dimensions
  // taken whole, plus the one before them when its step is 1) and the outer dimensions before
  // them, walked one position at a time.
  void find_runs() {
    const std::size_t rank = taken_.size();
    const span<const std::uint64_t> shape = tensor_.shape();
    strides_.assign(rank, 0);
    contiguous_ = true;
    // Nothing to copy; and beside a zero, the other dimensions' product may not even fit.
    if (count_ == 0) return;
    std::uint64_t stride = 1;
    for (std::size_t d = rank; d-- > 0;) {
      strides_[d] = stride;
      stride *= shape[d];
    }
    run_dim_ = rank;
    while (run_dim_ > 0 && taken_[run_dim_ - 1].start == 0 && taken_[run_dim_ - 1].count == shape[run_dim_ - 1] &&
           taken_[run_dim_ - 1].step == 1)
      --run_dim_;
    run_length_ = run_dim_ == 0 ? count_ : strides_[run_dim_ - 1];
    run_base_ = 0;
    if (run_dim_ > 0 && taken_[run_dim_ - 1].step == 1) {
      --run_dim_;
      run_length_ = taken_[run_dim_].count * strides_[run_dim_];
      run_base_ = taken_[run_dim_].start * strides_[run_dim_];
    }
    run_start_ = run_base_;
    for (std::size_t d = 0; d < run_dim_; ++d) {
      if (taken_[d].count != 1) contiguous_ = false;
      run_start_ += taken_[d].start * strides_[d];
    }
  }

  tensor_view tensor_;
  std::vector<taken> taken_;
  std::vector<std::uint64_t> shape_;
  std::vector<std::uint64_t> strides_;  // elements between neighbours of each dimension
  std::uint64_t count_ = 0;
  std::size_t run_dim_ = 0;             // dimensions before this one are walked
  std::uint64_t run_length_ = 0;        // elements in each run
  std::uint64_t run_base_ = 0;          // element offset of the run within its row
  std::uint64_t run_start_ = 0;         // first element, when contiguous
  bool contiguous_ = false;
};

namespace detail {
struct metadata_access;
}  // namespace detail

/// The header's `__metadata__`: string keys to string values, sorted by key (keys are unique).
class metadata_map {
 public:
  using entry = std::pair<std::string, std::string>;

  /// The value of `key`, or nullptr.
  const std::string* find(std::string_view key) const noexcept {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                               [](const entry& e, std::string_view k) { return e.first < k; });
    if (it == entries_.end() || it->first != key) return nullptr;
    return &it->second;
  }
  /// Number of entries.
  std::size_t size() const noexcept { return entries_.size(); }
  /// True when there are no entries.
  bool empty() const noexcept { return entries_.empty(); }
  /// Entries in key order.
  std::vector<entry>::const_iterator begin() const noexcept { return entries_.begin(); }
  /// End of the entries.
  std::vector<entry>::const_iterator end() const noexcept { return entries_.end(); }

 private:
  friend struct detail::metadata_access;
  std::vector<entry> entries_;
};

namespace detail {
/// Grants the parser access to metadata_map's entries.
struct metadata_access {
  static std::vector<metadata_map::entry>& entries(metadata_map& map) { return map.entries_; }
};
}  // namespace detail


// ---------------------------------------------------------------------------------------------
// Parsing, in detail: checked arithmetic, the size rule, UTF-8, the name table, the JSON and
// header scanners
// ---------------------------------------------------------------------------------------------

namespace detail {

/// a * b, or false when it overflows.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// a + b, or false when it overflows.
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) return false;
  out = a + b;
  return true;
}

/// A tensor's element count and byte size.
struct tensor_size {
  std::uint64_t elements;
  std::uint64_t bytes;
};

/// SPEC rules 8 and 9 for one tensor, the one check the reader and the writer share: the element
/// count by checked multiplication left to right over `shape` (so [2^32, 2^32, 0] overflows before
/// the zero is reached), then the bit count, which must fill whole bytes. True with `out` set when
/// both hold; size_error() then says which broke. Split so that the reader's loop over every
/// tensor stays a few inlined instructions.
inline bool fits_size_rules(dtype type, span<const std::uint64_t> shape, tensor_size& out) noexcept {
  std::uint64_t elements = 1;
  for (std::uint64_t dim : shape) {
    if (!checked_mul(elements, dim, elements)) return false;
  }
  std::uint64_t bits = 0;
  if (!checked_mul(elements, dtype_bits(type), bits) || bits % 8 != 0) return false;
  out = {elements, bits / 8};
  return true;
}

/// The error of a tensor that fits_size_rules refused, naming it and the rule.
inline error size_error(std::string_view name, dtype type, span<const std::uint64_t> shape) {
  std::uint64_t elements = 1;
  for (std::uint64_t dim : shape) {
    if (!checked_mul(elements, dim, elements))
      return error(error_kind::validation_overflow,
                   "tensor " + quote(name) + ": the element count of its shape overflows 64 bits");
  }
  std::uint64_t bits = 0;
  if (!checked_mul(elements, dtype_bits(type), bits))
    return error(error_kind::validation_overflow, "tensor " + quote(name) + ": " + std::to_string(elements) + " " +
                                                      std::string(dtype_name(type)) +
                                                      " elements overflow 64 bits when counted in bits");
  return error(error_kind::misaligned_slice, "tensor " + quote(name) + ": " + std::to_string(elements) + " " +
                                                 std::string(dtype_name(type)) + " elements fill " + std::to_string(bits) +
                                                 " bits, not a whole number of bytes");
}

/// SPEC rules 8 and 9 for one tensor (see fits_size_rules), as a result naming the tensor.
inline result<tensor_size> size_of_tensor(std::string_view name, dtype type, span<const std::uint64_t> shape) {
  tensor_size size{};
  if (fits_size_rules(type, shape, size)) return size;
  return size_error(name, type, shape);
}

/// Offset of the first byte that does not start or continue a valid UTF-8 sequence (as Rust's
/// str::from_utf8 decides: no overlong forms, no surrogates, nothing above U+10FFFF), or `size`.
inline std::size_t utf8_invalid_at(const unsigned char* text, std::size_t size) noexcept {
  std::size_t i = 0;
  while (i < size) {
    // Header JSON is mostly ASCII: skip it eight bytes at a time.
    while (i + 8 <= size) {
      std::uint64_t word;
      std::memcpy(&word, text + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= size) break;
    unsigned char lead = text[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length;
    unsigned char low = 0x80, high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return i;
    }
    if (size - i < length) return i;
    if (text[i + 1] < low || text[i + 1] > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if ((text[i + k] & 0xc0) != 0x80) return i;
    }
    i += length;
  }
  return size;
}

/// A seed for hash_name, different in every process and unknown outside it: the name table
/// cannot be flooded by a file whose names were chosen offline to collide. From the system's
/// random source where the library knows one (getrandom on Linux, arc4random_buf on Apple's
/// systems and the BSDs); else, as on Windows or with SAFETENSORS_NO_FILESYSTEM, from the clock
/// and an address that moves with address-space layout randomisation.
inline std::uint64_t hash_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::uint64_t random = 0;
#if defined(SAFETENSORS_DETAIL_HAS_GETRANDOM)
    if (::getrandom(&random, sizeof random, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof random)) return random;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    ::arc4random_buf(&random, sizeof random);
    return random;
#endif
    static const int anchor = 0;
    random = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
             (static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&anchor)) << 17);
    random = (random ^ (random >> 30)) * 0xbf58476d1ce4e5b9ULL;
    random = (random ^ (random >> 27)) * 0x94d049bb133111ebULL;
    return random ^ (random >> 31);
  }();
  return seed;
}

/// The 128-bit product of `a` and `b` from 32-bit halves, its two halves xor-ed: fold_multiply
/// where the compiler has no 128-bit integer (MSVC), and what the tests compare it with.
inline std::uint64_t fold_multiply_by_halves(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32, b_lo = b & 0xffffffffu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
  const std::uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;  // < 2^64: no carry lost
  const std::uint64_t low = (middle << 32) | (lo_lo & 0xffffffffu);
  const std::uint64_t high = hi_hi + (hi_lo >> 32) + (middle >> 32);
  return low ^ high;
}

/// The 128-bit product of `a` and `b`, its two halves xor-ed: every bit of the result depends on
/// every bit of both operands, which a 64-bit product (low bits from low bits only) cannot give.
inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__SIZEOF_INT128__)
  __extension__ typedef unsigned __int128 u128;
  const u128 product = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
#else
  return fold_multiply_by_halves(a, b);
#endif
}

/// 64-bit hash of a name under `seed`, eight bytes at a time. The seed enters every round through
/// a folded 128-bit product, so which names share the low bits of their hashes (the table slot)
/// changes with the seed: names cannot be chosen offline to collide under a seed they do not know.
inline std::uint64_t hash_name(std::string_view name, std::uint64_t seed) noexcept {
  constexpr std::uint64_t word_key = 0xa0761d6478bd642fULL, state_key = 0xe7037ed1a0b428dbULL;
  std::uint64_t h = fold_multiply(seed ^ word_key, name.size() ^ state_key);
  std::size_t i = 0;
  for (; i + 8 <= name.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, name.data() + i, 8);
    h = fold_multiply(word ^ seed ^ word_key, h ^ state_key);
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, name.data() + i, name.size() - i);
  h = fold_multiply(tail ^ seed ^ word_key, h ^ state_key);
  return fold_multiply(h ^ word_key, seed ^ state_key);
}

/// Tensor names to positions in an array, by open addressing with linear probing. A slot holds
/// the top 32 bits of the name's hash (its tag) and the position + 1 (0 marks an empty slot):
/// probes compare tags first and read a name only when they match, so names that merely share a
/// slot cost no cache miss and no compare. Names hash under the process's seed (hash_seed), so
/// no file can be made offline whose names collide. The names themselves stay where they are:
/// every call takes `name_at(position)`, which gives the name at a position.
class name_table {
 public:
  /// What find() gives for a name that is not there.
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  /// The hash of `name` under the process's seed.
  static std::uint64_t hash(std::string_view name) noexcept { return hash_name(name, hash_seed()); }

  /// Empties the table and sizes it for `count` names (fewer than 2^32), at most half full.
  void reset(std::size_t count) {
    std::size_t size = 4;
    while (size < count * 2) size *= 2;
    slots_.assign(size, 0);
  }

  /// Asks the cache for the slot where a name hashed to `hash` starts probing, soon to be written:
  /// a caller inserting many names prefetches some ahead, since once the table outgrows the cache
  /// each insertion would otherwise wait for memory.
  void prefetch(std::uint64_t hash) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(&slots_[hash & (slots_.size() - 1)], 1);
#else
    (void)hash;
#endif
  }

  /// The position of `name` (hashed to `hash`), or npos.
  template <class NameAt>
  std::size_t find(std::string_view name, std::uint64_t hash, NameAt&& name_at) const {
    if (slots_.empty()) return npos;
    const std::uint64_t entry = slots_[probe(name, hash, name_at)];
    return entry == 0 ? npos : position_of(entry);
  }

  /// Inserts `position`, whose name `name` hashes to `hash`. Returns the position that already
  /// held that name (which `position` replaces), or `position` itself.
  template <class NameAt>
  std::size_t insert(std::size_t position, std::string_view name, std::uint64_t hash, NameAt&& name_at) {
    std::uint64_t& slot = slots_[probe(name, hash, name_at)];
    const std::size_t earlier = slot == 0 ? position : position_of(slot);
    slot = (hash & 0xffffffff00000000ULL) | (static_cast<std::uint64_t>(position) + 1);
    return earlier;
  }

 private:
  // The slot holding `name`, or the empty slot where it would go.
  template <class NameAt>
  std::size_t probe(std::string_view name, std::uint64_t hash, NameAt& name_at) const {
    const std::size_t mask = slots_.size() - 1;
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const std::uint64_t entry = slots_[slot];
      if (entry == 0 || (static_cast<std::uint32_t>(entry >> 32) == tag && name_at(position_of(entry)) == name)) return slot;
    }
  }

  static std::size_t position_of(std::uint64_t entry) noexcept { return static_cast<std::size_t>(entry & 0xffffffffu) - 1; }

  std::vector<std::uint64_t> slots_;
};

/// Everything a header holds once scanned and validated. Names point into the header bytes (kept
/// by the storage, or in `owned_header`) or, when escaped, into `unescaped_names`; shapes into
/// `dims`. None of these move once built, so the views in `tensors` survive moving the index.
struct header_index {
  std::vector<tensor_info> tensors;              // in data order
  std::unique_ptr<char[]> owned_header;          // the header bytes, when the storage does not keep them
  std::unique_ptr<char[]> unescaped_names;       // names that had escapes, unescaped, back to back
  std::vector<std::uint64_t> dims;               // every shape, back to back
  name_table names;                              // positions in `tensors`
  metadata_map metadata;
  bool has_metadata = false;
  std::uint64_t header_length = 0;
  std::uint64_t data_size = 0;

  const tensor_info* find(std::string_view name) const {
    const std::size_t at = names.find(name, name_table::hash(name), [&](std::size_t i) { return tensors[i].name; });
    return at == name_table::npos ? nullptr : &tensors[at];
  }
};

}  // namespace detail


namespace detail {

/// A cursor over JSON text with the strict grammar this library's documents need (RFC 8259: no
/// trailing commas or comments, exact escapes, valid surrogate pairs, keys unique at every depth,
/// nesting below 128 levels). The header scanner and the index parser of sharded models are
/// built on it. A failing step records its message, with the position in the document, e.g.
/// "(at header byte 12)", and returns false.
class json_scanner {
 protected:
  json_scanner(const char* text, std::size_t size, const char* document) noexcept
      : start_(text), cur_(text), end_(text + size), document_(document) {}

  static constexpr int max_depth = 127;  // the root object is level 1; 128 levels are refused

  const char* start_;
  const char* cur_;
  const char* end_;
  const char* document_;  // "header" or "index", for messages
  std::string scratch_;
  std::string error_;

  std::size_t position() const noexcept { return static_cast<std::size_t>(cur_ - start_); }

  bool set_error(const std::string& what) {
    error_ = what + " (at " + document_ + " byte " + std::to_string(position()) + ")";
    return false;
  }

  void skip_whitespace() noexcept {
    if (cur_ < end_ && static_cast<unsigned char>(*cur_) > ' ') return;  // compact headers have none
    while (cur_ < end_ && (*cur_ == ' ' || *cur_ == '\n' || *cur_ == '\r' || *cur_ == '\t')) ++cur_;
  }

  bool expect_colon() {
    skip_whitespace();
    if (cur_ == end_ || *cur_ != ':') return set_error("expected ':' after a key");
    ++cur_;
    skip_whitespace();
    return true;
  }

  static int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool read_hex4(unsigned& out) {
    if (end_ - cur_ < 4) return set_error("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int digit = hex_value(cur_[i]);
      if (digit < 0) return set_error("invalid \\u escape");
      out = out * 16 + static_cast<unsigned>(digit);
    }
    cur_ += 4;
    return true;
  }

  static bool ends_run(char c) noexcept { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; }

  // The first '"', backslash or control byte in [from, end_), or end_. Names are long runs of
  // plain bytes, so whole words are tested first: a word with none of the three is skipped.
  const char* find_run_end(const char* from) const noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    while (end_ - from >= 8) {
      std::uint64_t word;
      std::memcpy(&word, from, 8);
      const std::uint64_t quotes = word ^ (ones * '"');
      const std::uint64_t slashes = word ^ (ones * '\\');
      const std::uint64_t special = ((quotes - ones) & ~quotes) | ((slashes - ones) & ~slashes) |
                                    ((word - ones * 0x20) & ~word);
      if (special & highs) break;
      from += 8;
    }
    while (from < end_ && !ends_run(*from)) ++from;
    return from;
  }

  // Scans a JSON string at cur_ and calls emit(pointer, size) for each unescaped run of bytes.
  template <class Emit>
  bool scan_string(Emit&& emit) {
    if (cur_ == end_ || *cur_ != '"') return set_error("expected a string");
    ++cur_;
    for (;;) {
      const char* run = cur_;
      cur_ = find_run_end(cur_);
      if (cur_ != run) emit(run, static_cast<std::size_t>(cur_ - run));
      if (cur_ == end_) return set_error("unterminated string");
      char c = *cur_;
      if (c == '"') {
        ++cur_;
        return true;
      }
      if (c != '\\') return set_error("control character in a string must be escaped");
      ++cur_;
      if (cur_ == end_) return set_error("unterminated escape");
      char escaped = *cur_++;
      char single;
      switch (escaped) {
        case '"': single = '"'; break;
        case '\\': single = '\\'; break;
        case '/': single = '/'; break;
        case 'b': single = '\b'; break;
        case 'f': single = '\f'; break;
        case 'n': single = '\n'; break;
        case 'r': single = '\r'; break;
        case 't': single = '\t'; break;
        case 'u': {
          unsigned code = 0;
          if (!read_hex4(code)) return false;
          if (code >= 0xdc00 && code <= 0xdfff) return set_error("lone trailing surrogate in \\u escape");
          if (code >= 0xd800 && code <= 0xdbff) {
            unsigned low = 0;
            if (end_ - cur_ < 2 || cur_[0] != '\\' || cur_[1] != 'u')
              return set_error("lone leading surrogate in \\u escape");
            cur_ += 2;
            if (!read_hex4(low)) return false;
            if (low < 0xdc00 || low > 0xdfff) return set_error("invalid surrogate pair in \\u escape");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          char utf8[4];
          std::size_t count;
          if (code < 0x80) {
            utf8[0] = static_cast<char>(code);
            count = 1;
          } else if (code < 0x800) {
            utf8[0] = static_cast<char>(0xc0 | (code >> 6));
            utf8[1] = static_cast<char>(0x80 | (code & 0x3f));
            count = 2;
          } else if (code < 0x10000) {
            utf8[0] = static_cast<char>(0xe0 | (code >> 12));
            utf8[1] = static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            utf8[2] = static_cast<char>(0x80 | (code & 0x3f));
            count = 3;
          } else {
            utf8[0] = static_cast<char>(0xf0 | (code >> 18));
            utf8[1] = static_cast<char>(0x80 | ((code >> 12) & 0x3f));
            utf8[2] = static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            utf8[3] = static_cast<char>(0x80 | (code & 0x3f));
            count = 4;
          }
          emit(utf8, count);
          continue;
        }
        default: return set_error("invalid escape in a string");
      }
      emit(&single, 1);
    }
  }

  // A short string (a field name, a dtype) as a view: of the header bytes themselves when the
  // string has no escape, else of its unescaped copy in scratch_, valid until the next call.
  bool scan_key(std::string_view& out) {
    if (cur_ < end_ && *cur_ == '"') {
      const char* stop = find_run_end(cur_ + 1);
      if (stop < end_ && *stop == '"') {
        out = std::string_view(cur_ + 1, static_cast<std::size_t>(stop - cur_ - 1));
        cur_ = stop + 1;
        return true;
      }
    }
    if (!scan_string_into(scratch_)) return false;
    out = scratch_;
    return true;
  }

  bool scan_string_into(std::string& out) {
    out.clear();
    return scan_string([&out](const char* bytes, std::size_t count) { out.append(bytes, count); });
  }

  // A plain unsigned decimal integer that fits 64 bits: no sign, fraction, exponent or leading
  // zero. `subject()` names it in a message, e.g. `a shape dimension of tensor "x"`.
  template <class Subject>
  bool scan_unsigned(std::uint64_t& out, Subject&& subject) {
    auto refuse = [&](const char* rule) { return set_error(subject() + " " + rule); };
    if (cur_ == end_) return refuse((std::string("is missing: the ") + document_ + " ends").c_str());
    if (*cur_ == '-') return refuse("must not be negative");
    if (*cur_ < '0' || *cur_ > '9') return refuse("must be an unsigned integer");
    const char* first = cur_;
    while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    const auto digits = static_cast<std::size_t>(cur_ - first);
    if (*first == '0' && digits > 1) return refuse("has a leading zero");
    // 2^64-1 has 20 digits: fewer cannot overflow, 20 can, compared as text; more always do.
    static constexpr std::string_view max_value = "18446744073709551615";
    if (digits > max_value.size() ||
        (digits == max_value.size() && std::string_view(first, digits) > max_value))
      return refuse("is larger than 2^64-1");
    std::uint64_t value = 0;
    for (const char* digit = first; digit < cur_; ++digit) value = value * 10 + static_cast<std::uint64_t>(*digit - '0');
    if (cur_ < end_ && (*cur_ == '.' || *cur_ == 'e' || *cur_ == 'E'))
      return refuse("must be an integer without fraction or exponent");
    out = value;
    return true;
  }

  // Any JSON number, checked against the grammar and skipped.
  bool skip_number() {
    if (cur_ < end_ && *cur_ == '-') ++cur_;
    if (cur_ == end_) return set_error("invalid number");
    if (*cur_ == '0') {
      ++cur_;
    } else if (*cur_ >= '1' && *cur_ <= '9') {
      while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    } else {
      return set_error("invalid value");
    }
    if (cur_ < end_ && *cur_ == '.') {
      ++cur_;
      if (cur_ == end_ || *cur_ < '0' || *cur_ > '9') return set_error("invalid number");
      while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    }
    if (cur_ < end_ && (*cur_ == 'e' || *cur_ == 'E')) {
      ++cur_;
      if (cur_ < end_ && (*cur_ == '+' || *cur_ == '-')) ++cur_;
      if (cur_ == end_ || *cur_ < '0' || *cur_ > '9') return set_error("invalid number");
      while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    }
    return true;
  }

  bool skip_literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - cur_) < word.size() || std::memcmp(cur_, word.data(), word.size()) != 0)
      return set_error("invalid value");
    cur_ += word.size();
    return true;
  }

  // Any JSON value at nesting level `depth` (the level a container opened here would have),
  // validated and skipped. Object keys must be unique here too.
  bool skip_value(int depth) {
    if (cur_ == end_) return set_error(std::string("unexpected end of ") + document_ + ", expected a value");
    switch (*cur_) {
      case '"': return scan_string([](const char*, std::size_t) {});
      case 't': return skip_literal("true");
      case 'f': return skip_literal("false");
      case 'n': return skip_literal("null");
      case '[': {
        if (depth > max_depth) return set_error("nesting deeper than 127 levels");
        ++cur_;
        skip_whitespace();
        if (cur_ < end_ && *cur_ == ']') {
          ++cur_;
          return true;
        }
        for (;;) {
          if (!skip_value(depth + 1)) return false;
          skip_whitespace();
          if (cur_ == end_) return set_error(std::string("unexpected end of ") + document_ + " in an array");
          if (*cur_ == ']') {
            ++cur_;
            return true;
          }
          if (*cur_ != ',') return set_error("expected ',' or ']' in an array");
          ++cur_;
          skip_whitespace();
        }
      }
      case '{': {
        if (depth > max_depth) return set_error("nesting deeper than 127 levels");
        ++cur_;
        skip_whitespace();
        if (cur_ < end_ && *cur_ == '}') {
          ++cur_;
          return true;
        }
        std::vector<std::string> keys;
        for (;;) {
          std::string key;
          if (!scan_string_into(key)) return false;
          keys.push_back(std::move(key));
          if (!expect_colon()) return false;
          if (!skip_value(depth + 1)) return false;
          skip_whitespace();
          if (cur_ == end_) return set_error(std::string("unexpected end of ") + document_ + " in an object");
          if (*cur_ == '}') {
            ++cur_;
            break;
          }
          if (*cur_ != ',') return set_error("expected ',' or '}' in an object");
          ++cur_;
          skip_whitespace();
        }
        std::sort(keys.begin(), keys.end());
        auto repeated = std::adjacent_find(keys.begin(), keys.end());
        if (repeated != keys.end()) return set_error("duplicate key " + quote(*repeated));
        return true;
      }
      default: return skip_number();
    }
  }

  // Compared in 8-byte words (the last one overlapping the one before) rather than by memcmp,
  // which GCC calls for literals over 16 bytes: a call per literal per tensor.
  template <std::size_t N>
  bool match(const char (&literal)[N]) noexcept {
    constexpr std::size_t length = N - 1;
    if (static_cast<std::size_t>(end_ - cur_) < length) return false;
    std::uint64_t difference = 0;
    if constexpr (length >= 8) {
      for (std::size_t i = 0; i + 8 < length; i += 8) difference |= load_word(cur_ + i) ^ load_word(literal + i);
      difference |= load_word(cur_ + length - 8) ^ load_word(literal + length - 8);
    } else {
      for (std::size_t i = 0; i < length; ++i) difference |= static_cast<unsigned char>(cur_[i] ^ literal[i]);
    }
    if (difference != 0) return false;
    cur_ += length;
    return true;
  }

  static std::uint64_t load_word(const char* bytes) noexcept {
    std::uint64_t word;
    std::memcpy(&word, bytes, sizeof word);
    return word;
  }

  // Up to 19 digits without a leading zero: a number that cannot overflow. Anything else is left
  // to scan_unsigned, which also explains what is wrong.
  bool match_small_unsigned(std::uint64_t& out) noexcept {
    const char* first = cur_;
    std::uint64_t value = 0;
    while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9' && cur_ - first < 19) {
      value = value * 10 + static_cast<std::uint64_t>(*cur_ - '0');
      ++cur_;
    }
    if (cur_ == first || (*first == '0' && cur_ - first > 1)) return false;
    out = value;
    return true;
  }

};

/// Scans header JSON with the grammar of a safetensors header, enforcing SPEC rules 5 and 6:
/// strict JSON (json_scanner), root object, typed tensor entries, metadata of strings, unique
/// keys, nesting below 128 levels. Numbers in shape and data_offsets must be plain unsigned
/// integers.
class header_scanner : private json_scanner {
 public:
  header_scanner(const char* text, std::size_t size) noexcept : json_scanner(text, size, "header") {}

  /// Scans the whole header into `index`: tensors in parse order, their shapes and the metadata.
  /// Each tensor's element_count holds, until index_tensors, its dims offset << 32 | dims count.
  result<void> scan(header_index& index) {
    index_ = &index;
    // An entry takes at least 49 bytes ("":{"dtype":"F4","shape":[],"data_offsets":[0,0]}), which
    // bounds the count: reserving for it avoids copies and touches only the pages used.
    const std::size_t most_tensors = static_cast<std::size_t>(end_ - start_) / 49 + 1;
    index.tensors.reserve(most_tensors);
    index.dims.reserve(most_tensors * 4);
    skip_whitespace();
    if (cur_ == end_) return fail("the header is empty, expected a JSON object");
    if (*cur_ != '{') return fail("the header must be a JSON object");
    ++cur_;
    skip_whitespace();
    bool seen_metadata = false;
    if (cur_ < end_ && *cur_ == '}') {
      ++cur_;
    } else {
      for (;;) {
        std::string_view key;
        if (!scan_name(key)) return failure();
        if (!expect_colon()) return failure();
        if (key == "__metadata__") {
          if (seen_metadata) return fail("duplicate key \"__metadata__\"");
          seen_metadata = true;
          if (!scan_metadata(index)) return failure();
        } else {
          tensor_info& tensor = index.tensors.emplace_back();
          tensor.name = key;
          if (!scan_tensor_entry(key, tensor, index.dims)) return failure();
        }
        skip_whitespace();
        if (cur_ == end_) return fail("unexpected end of header, expected ',' or '}'");
        if (*cur_ == ',') {
          ++cur_;
          skip_whitespace();
          continue;
        }
        if (*cur_ == '}') {
          ++cur_;
          break;
        }
        return fail("expected ',' or '}' after an entry");
      }
    }
    skip_whitespace();
    if (cur_ != end_) return fail("unexpected bytes after the header's closing '}'");
    return {};
  }

 private:
  header_index* index_ = nullptr;
  std::size_t unescaped_used_ = 0;

  result<void> failure() { return safetensors::error(error_kind::invalid_header_deserialization, error_); }
  result<void> fail(const std::string& what) {
    set_error(what);
    return failure();
  }
  // A tensor name: a view of the header bytes when it has no escape (nearly always), else of its
  // unescaped copy. Unescaped text never outgrows its JSON spelling, so the copies' arena, sized to
  // the whole header, never overflows or moves.
  bool scan_name(std::string_view& out) {
    if (cur_ < end_ && *cur_ == '"') {
      const char* stop = find_run_end(cur_ + 1);
      if (stop < end_ && *stop == '"') {
        out = std::string_view(cur_ + 1, static_cast<std::size_t>(stop - cur_ - 1));
        cur_ = stop + 1;
        return true;
      }
    }
    if (!index_->unescaped_names) index_->unescaped_names.reset(new char[static_cast<std::size_t>(end_ - start_)]);
    char* arena = index_->unescaped_names.get();
    const std::size_t first = unescaped_used_;
    bool scanned = scan_string([&](const char* bytes, std::size_t count) {
      std::memcpy(arena + unescaped_used_, bytes, count);
      unescaped_used_ += count;
    });
    out = std::string_view(arena + first, unescaped_used_ - first);
    return scanned;
  }

  bool scan_metadata(header_index& index) {
    if (cur_ < end_ && *cur_ == 'n') {
      if (!skip_literal("null")) return false;
      return true;
    }
    if (cur_ == end_ || *cur_ != '{') return set_error("__metadata__ must be an object of strings or null");
    ++cur_;
    index.has_metadata = true;
    auto& entries = metadata_access::entries(index.metadata);
    skip_whitespace();
    if (cur_ < end_ && *cur_ == '}') {
      ++cur_;
      return true;
    }
    for (;;) {
      std::string key;
      std::string value;
      if (!scan_string_into(key)) return false;
      if (!expect_colon()) return false;
      if (cur_ == end_ || *cur_ != '"') return set_error("__metadata__ value of key " + quote(key) + " must be a string");
      if (!scan_string_into(value)) return false;
      entries.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (cur_ == end_) return set_error("unexpected end of header in __metadata__");
      if (*cur_ == '}') {
        ++cur_;
        break;
      }
      if (*cur_ != ',') return set_error("expected ',' or '}' in __metadata__");
      ++cur_;
      skip_whitespace();
    }
    std::sort(entries.begin(), entries.end());
    auto repeated = std::adjacent_find(entries.begin(), entries.end(),
                                       [](const auto& a, const auto& b) { return a.first == b.first; });
    if (repeated != entries.end()) return set_error("duplicate key " + quote(repeated->first) + " in __metadata__");
    return true;
  }

  bool scan_shape(std::string_view name, tensor_info& tensor, std::vector<std::uint64_t>& dims) {
    if (cur_ == end_ || *cur_ != '[') return set_error("shape of tensor " + quote(name) + " must be an array");
    ++cur_;
    const std::size_t first_dim = dims.size();
    tensor.element_count = pack_dims(first_dim, 0);
    skip_whitespace();
    if (cur_ < end_ && *cur_ == ']') {
      ++cur_;
      return true;
    }
    for (;;) {
      std::uint64_t dim = 0;
      if (!scan_unsigned(dim, [&] { return "a shape dimension of tensor " + quote(name); })) return false;
      dims.push_back(dim);
      tensor.element_count = pack_dims(first_dim, dims.size() - first_dim);
      skip_whitespace();
      if (cur_ == end_) return set_error("unexpected end of header in the shape of tensor " + quote(name));
      if (*cur_ == ']') {
        ++cur_;
        return true;
      }
      if (*cur_ != ',') return set_error("expected ',' or ']' in the shape of tensor " + quote(name));
      ++cur_;
      skip_whitespace();
    }
  }

  bool scan_offsets(std::string_view name, tensor_info& tensor) {
    const char* rule = "data_offsets must be an array of exactly two unsigned integers";
    if (cur_ == end_ || *cur_ != '[') return set_error(std::string(rule) + " in tensor " + quote(name));
    ++cur_;
    std::uint64_t values[2];
    for (int i = 0; i < 2; ++i) {
      skip_whitespace();
      if (!scan_unsigned(values[i], [&] { return "a data offset of tensor " + quote(name); })) return false;
      skip_whitespace();
      char want = i == 0 ? ',' : ']';
      if (cur_ == end_ || *cur_ != want) return set_error(std::string(rule) + " in tensor " + quote(name));
      ++cur_;
    }
    tensor.data_offsets = {values[0], values[1]};
    return true;
  }

  // A shape's place in dims, kept in element_count until index_tensors: both fit 32 bits, since
  // the header is at most 100,000,000 bytes.
  static std::uint64_t pack_dims(std::size_t offset, std::size_t count) noexcept {
    return (static_cast<std::uint64_t>(offset) << 32) | static_cast<std::uint64_t>(count);
  }

  // The entry exactly as writers produce it, {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}:
  // literal matches instead of a general scan. Returns false, having consumed part of the entry,
  // at the first difference; the caller then scans the entry again in full.
  bool match_canonical_entry(tensor_info& tensor, std::vector<std::uint64_t>& dims) {
    if (!match("{\"dtype\":\"")) return false;
    const char* spelled = cur_;
    while (cur_ < end_ && ((*cur_ >= 'A' && *cur_ <= 'Z') || (*cur_ >= '0' && *cur_ <= '9') || *cur_ == '_')) ++cur_;
    auto type = dtype_from_name(std::string_view(spelled, static_cast<std::size_t>(cur_ - spelled)));
    if (!type || !match("\",\"shape\":[")) return false;
    tensor.dtype = *type;
    const std::size_t first_dim = dims.size();
    if (!match("]")) {
      for (;;) {
        std::uint64_t dim = 0;
        if (!match_small_unsigned(dim)) return false;
        dims.push_back(dim);
        if (match("]")) break;
        if (!match(",")) return false;
      }
    }
    tensor.element_count = pack_dims(first_dim, dims.size() - first_dim);
    return match(",\"data_offsets\":[") && match_small_unsigned(tensor.data_offsets[0]) && match(",") &&
           match_small_unsigned(tensor.data_offsets[1]) && match("]}");
  }

  bool scan_tensor_entry(std::string_view name, tensor_info& tensor, std::vector<std::uint64_t>& dims) {
    const char* entry_start = cur_;
    const std::size_t dims_before = dims.size();
    if (match_canonical_entry(tensor, dims)) return true;
    cur_ = entry_start;
    dims.resize(dims_before);
    if (cur_ == end_ || *cur_ != '{') return set_error("entry of tensor " + quote(name) + " must be an object");
    ++cur_;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    std::vector<std::string> other_keys;
    skip_whitespace();
    bool empty = cur_ < end_ && *cur_ == '}';
    if (empty) ++cur_;
    while (!empty) {
      std::string_view field;
      if (!scan_key(field)) return false;
      if (!expect_colon()) return false;
      if (field == "dtype") {
        if (has_dtype) return set_error("duplicate key \"dtype\" in tensor " + quote(name));
        has_dtype = true;
        if (cur_ == end_ || *cur_ != '"') return set_error("dtype of tensor " + quote(name) + " must be a string");
        std::string_view spelled;
        if (!scan_key(spelled)) return false;
        auto type = dtype_from_name(spelled);
        if (!type) return set_error("unknown dtype " + quote(spelled) + " in tensor " + quote(name));
        tensor.dtype = *type;
      } else if (field == "shape") {
        if (has_shape) return set_error("duplicate key \"shape\" in tensor " + quote(name));
        has_shape = true;
        if (!scan_shape(name, tensor, dims)) return false;
      } else if (field == "data_offsets") {
        if (has_offsets) return set_error("duplicate key \"data_offsets\" in tensor " + quote(name));
        has_offsets = true;
        if (!scan_offsets(name, tensor)) return false;
      } else {
        other_keys.emplace_back(field);
        if (!skip_value(3)) return false;
      }
      skip_whitespace();
      if (cur_ == end_) return set_error("unexpected end of header in tensor " + quote(name));
      if (*cur_ == '}') {
        ++cur_;
        break;
      }
      if (*cur_ != ',') return set_error("expected ',' or '}' in tensor " + quote(name));
      ++cur_;
      skip_whitespace();
    }
    if (!other_keys.empty()) {
      std::sort(other_keys.begin(), other_keys.end());
      auto repeated = std::adjacent_find(other_keys.begin(), other_keys.end());
      if (repeated != other_keys.end())
        return set_error("duplicate key " + quote(*repeated) + " in tensor " + quote(name));
    }
    if (!has_dtype) return set_error("tensor " + quote(name) + " has no dtype");
    if (!has_shape) return set_error("tensor " + quote(name) + " has no shape");
    if (!has_offsets) return set_error("tensor " + quote(name) + " has no data_offsets");
    return true;
  }
};

/// Checks SPEC rules 7-11 over the scanned tensors, in the official order, puts the tensors in
/// data order and builds the name table. `index.data_size` is the real size of the data buffer.
inline result<void> index_tensors(header_index& index, bool allow_trailing_bytes) {
  std::vector<tensor_info>& tensors = index.tensors;
  if (tensors.size() >= std::numeric_limits<std::uint32_t>::max())
    return error(error_kind::invalid_header_deserialization, "too many tensors");

  name_table& names = index.names;
  names.reset(tensors.size());
  auto name_at = [&](std::size_t at) { return tensors[at].name; };

  // A name seen twice keeps its last entry, as the official reader does; the repetition is
  // reported once the offsets have been checked.
  // Names hash `lookahead` tensors ahead of their insertion, and their slots are prefetched:
  // once the table outgrows the L2 cache (some 100,000 tensors), waiting for each slot in turn
  // made the time per tensor half as much again as for 10,000.
  constexpr std::size_t lookahead = 16;
  std::uint64_t upcoming[lookahead] = {};
  for (std::size_t at = 0; at < lookahead && at < tensors.size(); ++at) {
    upcoming[at] = name_table::hash(tensors[at].name);
    names.prefetch(upcoming[at]);
  }
  std::vector<bool> replaced;
  std::string repeated_name;
  for (std::size_t at = 0; at < tensors.size(); ++at) {
    const std::uint64_t hash = upcoming[at % lookahead];
    if (at + lookahead < tensors.size()) {
      upcoming[at % lookahead] = name_table::hash(tensors[at + lookahead].name);
      names.prefetch(upcoming[at % lookahead]);
    }
    const std::size_t earlier = names.insert(at, tensors[at].name, hash, name_at);
    if (earlier == at) continue;
    if (replaced.empty()) {
      replaced.assign(tensors.size(), false);
      repeated_name = std::string(tensors[at].name);
    }
    replaced[earlier] = true;
  }
  const bool has_repeat = !replaced.empty();
  if (has_repeat) {
    std::size_t kept = 0;
    for (std::size_t at = 0; at < tensors.size(); ++at) {
      if (!replaced[at]) tensors[kept++] = tensors[at];
    }
    tensors.resize(kept);
  }

  // Offsets compared one by one: std::array's operators call memcmp, once per tensor.
  auto before = [](const tensor_info& x, const tensor_info& y) {
    if (x.data_offsets[0] != y.data_offsets[0]) return x.data_offsets[0] < y.data_offsets[0];
    if (x.data_offsets[1] != y.data_offsets[1]) return x.data_offsets[1] < y.data_offsets[1];
    return x.name < y.name;
  };
  // Writers emit tensors in data order, so the table built above usually stands as it is.
  const bool sorted = std::is_sorted(tensors.begin(), tensors.end(), before);
  if (!sorted) std::sort(tensors.begin(), tensors.end(), before);
  if (!sorted || has_repeat) {
    names.reset(tensors.size());
    for (std::size_t at = 0; at < tensors.size(); ++at) names.insert(at, tensors[at].name, name_table::hash(tensors[at].name), name_at);
  }

  std::string repeat_note;
  if (has_repeat) repeat_note = " (the name " + quote(repeated_name) + " appears twice; its last entry was kept)";

  std::uint64_t expected_begin = 0;
  for (tensor_info& t : tensors) {
    const std::uint64_t packed = t.element_count;
    t.shape = span<const std::uint64_t>(index.dims.data() + (packed >> 32), static_cast<std::size_t>(packed & 0xffffffffu));
    const std::uint64_t begin = t.data_offsets[0];
    const std::uint64_t end = t.data_offsets[1];
    if (begin != expected_begin || end < begin) {
      std::string why = end < begin ? "end before they begin"
                                    : (begin < expected_begin ? "overlap the previous tensor, which ends at "
                                                              : "leave a hole after the previous tensor, which ends at ") +
                                          std::to_string(expected_begin);
      return error(error_kind::invalid_offset, "tensor " + quote(t.name) + ": data_offsets [" + std::to_string(begin) +
                                                   ", " + std::to_string(end) + "] " + why + repeat_note);
    }
    expected_begin = end;
    tensor_size size{};
    if (!fits_size_rules(t.dtype, t.shape, size)) {
      const error broken = size_error(t.name, t.dtype, t.shape);
      return error(broken.kind(), broken.message() + repeat_note);
    }
    if (end - begin != size.bytes)
      return error(error_kind::tensor_invalid_info,
                   "tensor " + quote(t.name) + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       "] span " + std::to_string(end - begin) + " bytes but " + std::string(dtype_name(t.dtype)) +
                       " with " + std::to_string(size.elements) + " elements needs " + std::to_string(size.bytes) +
                       repeat_note);
    t.element_count = size.elements;
  }
  if (expected_begin != index.data_size && !(allow_trailing_bytes && expected_begin < index.data_size)) {
    return error(error_kind::metadata_incomplete_buffer,
                 "the tensors cover " + std::to_string(expected_begin) + " bytes but the data buffer holds " +
                     std::to_string(index.data_size) + repeat_note);
  }
  if (has_repeat)
    return error(error_kind::invalid_header_deserialization,
                 "duplicate key " + quote(repeated_name) + ": two tensors have the same name");
  return {};
}

/// Parses and validates a header (SPEC rules 4-11) whose bytes are `text`, followed in the file
/// by a data buffer of `data_size` bytes (of which the tensors may leave some at the end unused
/// if `allow_trailing_bytes`: read_options::allow_trailing_bytes).
/// `owner`, when given, holds `text` and is kept by the index: names point into the header.
inline result<header_index> parse_header(const char* text, std::size_t size, std::uint64_t data_size,
                                         bool allow_trailing_bytes, std::unique_ptr<char[]> owner = nullptr) {
  std::size_t bad = utf8_invalid_at(reinterpret_cast<const unsigned char*>(text), size);
  if (bad != size)
    return error(error_kind::invalid_header, "the header is not valid UTF-8 (at header byte " + std::to_string(bad) + ")");
  header_index index;
  index.owned_header = std::move(owner);
  index.header_length = size;
  index.data_size = data_size;
  header_scanner scanner(text, size);
  if (auto scanned = scanner.scan(index); !scanned) return scanned.error();
  if (auto indexed = index_tensors(index, allow_trailing_bytes); !indexed) return indexed.error();
  return index;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Storage policies
//
// A storage holds a file's bytes or reaches them. Every storage has
//   std::uint64_t size() const;
//   result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const;
// and read_at must be safe to call from many threads at once: a reader promises thread safety
// and its loads read with several threads. A storage may also offer (each found at compile time):
//   const std::byte* data() const;              the bytes are in memory: zero-copy views
//   const std::string& path() const;            where the bytes come from: every error names it
//   std::size_t first_read_size() const;        bytes worth reading at once when opening (the
//                                               header is read in one go when it fits)
//   result<void> read_direct_at(std::uint64_t offset, std::byte* destination, std::size_t count) const;
//                                               reads past the page cache (offset, count and
//                                               destination multiples of direct_io_alignment;
//                                               fewer bytes only at the end of the file)
//   void set_random_access(bool) const;         residency advice: read-around off or on
//   result<void> prefetch(std::uint64_t offset, std::uint64_t count) const;   read ahead
//   result<void> release(std::uint64_t offset, std::uint64_t count) const;    give memory back
// ---------------------------------------------------------------------------------------------

/// Bytes the caller owns and keeps alive (and unchanged) for as long as the reader.
class borrowed_bytes {
 public:
  /// The `size` bytes at `data`.
  borrowed_bytes(const void* data, std::size_t size) noexcept
      : data_(static_cast<const std::byte*>(data)), size_(size) {}

  /// First byte.
  const std::byte* data() const noexcept { return data_; }
  /// Number of bytes.
  std::uint64_t size() const noexcept { return size_; }
  /// Copies `count` bytes at `offset` to `destination`.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (offset > size_ || count > size_ - offset)
      return error(error_kind::io_error, "read past the end of the buffer");
    if (count != 0) std::memcpy(destination, data_ + offset, count);
    return {};
  }

 private:
  const std::byte* data_;
  std::size_t size_;
};

/// Bytes the reader owns, e.g. a file read into memory or received over a network.
class owned_bytes {
 public:
  /// Takes ownership of `bytes`.
  explicit owned_bytes(std::vector<std::byte> bytes) noexcept : bytes_(std::move(bytes)) {}

  /// First byte.
  const std::byte* data() const noexcept { return bytes_.data(); }
  /// Number of bytes.
  std::uint64_t size() const noexcept { return bytes_.size(); }
  /// Copies `count` bytes at `offset` to `destination`.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    return borrowed_bytes(bytes_.data(), bytes_.size()).read_at(offset, destination, count);
  }

 private:
  std::vector<std::byte> bytes_;
};

/// Offsets, lengths and addresses of direct reads (O_DIRECT) are multiples of this: the largest
/// logical block size in common use.
inline constexpr std::size_t direct_io_alignment = 4096;

namespace detail {
/// `err` with `name` (a path or URL) in front of its message, as every error about a file reads:
/// `"model.safetensors": ...`. Unchanged when `name` is empty (bytes in memory have none).
inline error about(std::string_view name, const error& err) {
  if (name.empty()) return err;
  return error(err.kind(), quote(name) + ": " + err.message());
}
}  // namespace detail

#ifndef SAFETENSORS_NO_FILESYSTEM

namespace detail {
/// `"path": what: the system's reason`.
inline std::string system_error_text(const std::string& what, const std::string& path) {
#if defined(_WIN32)
  return quote(path) + ": " + what + ": Windows error " + std::to_string(GetLastError());
#else
  return quote(path) + ": " + what + ": " + std::strerror(errno);
#endif
}

inline std::uint64_t page_size() noexcept {
#if defined(_WIN32)
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwPageSize;
#else
  static const long size = ::sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::uint64_t>(size) : 4096;
#endif
}

inline unsigned long process_id() noexcept {
#if defined(_WIN32)
  return GetCurrentProcessId();
#else
  return static_cast<unsigned long>(::getpid());
#endif
}

#if defined(_WIN32)
inline std::wstring widen(const std::string& utf8) {
  int count = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring wide(static_cast<std::size_t>(count), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), wide.data(), count);
  return wide;
}
#endif

/// An open file descriptor (a HANDLE on Windows), closed on destruction.
class file_handle {
 public:
#if defined(_WIN32)
  using native_type = HANDLE;
  static native_type invalid() noexcept { return INVALID_HANDLE_VALUE; }
#else
  using native_type = int;
  static constexpr native_type invalid() noexcept { return -1; }
#endif
  file_handle() noexcept = default;
  explicit file_handle(native_type handle) noexcept : handle_(handle) {}
  file_handle(file_handle&& other) noexcept : handle_(std::exchange(other.handle_, invalid())) {}
  file_handle& operator=(file_handle&& other) noexcept {
    if (this != &other) {
      close();
      handle_ = std::exchange(other.handle_, invalid());
    }
    return *this;
  }
  file_handle(const file_handle&) = delete;
  file_handle& operator=(const file_handle&) = delete;
  ~file_handle() { close(); }

  native_type get() const noexcept { return handle_; }
  /// True when a file is open.
  explicit operator bool() const noexcept { return handle_ != invalid(); }
  /// Gives up ownership: the caller closes the handle.
  native_type release() noexcept { return std::exchange(handle_, invalid()); }

  /// Opens `path` read-only and finds its size; refuses anything but a regular file.
  static result<file_handle> open_read(const std::string& path, std::uint64_t& size) {
#if defined(_WIN32)
    HANDLE handle = CreateFileW(widen(path).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                                OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (handle == INVALID_HANDLE_VALUE) return error(error_kind::io_error, system_error_text("cannot open", path));
    file_handle file(handle);
    LARGE_INTEGER length;
    if (!GetFileSizeEx(handle, &length)) return error(error_kind::io_error, system_error_text("cannot stat", path));
    size = static_cast<std::uint64_t>(length.QuadPart);
    return file;
#else
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return error(error_kind::io_error, system_error_text("cannot open", path));
    file_handle file(fd);
    struct stat status;
    if (::fstat(fd, &status) != 0) return error(error_kind::io_error, system_error_text("cannot stat", path));
    if (!S_ISREG(status.st_mode)) return error(error_kind::io_error, quote(path) + ": not a regular file");
    size = static_cast<std::uint64_t>(status.st_size);
    return file;
#endif
  }

 private:
  void close() noexcept {
    if (handle_ == invalid()) return;
#if defined(_WIN32)
    CloseHandle(handle_);
#else
    ::close(handle_);
#endif
    handle_ = invalid();
  }
  native_type handle_ = invalid();
};

/// Reads `count` bytes at `offset` of `file` into `destination`, with as many positioned reads as
/// it takes. The file ending first is an IoError (it shrank after it was opened), unless
/// `end_ok`, when the bytes up to the end are read and their number returned.
inline result<std::size_t> read_fully(const file_handle& file, const std::string& path, std::uint64_t offset,
                                      std::byte* destination, std::size_t count, bool end_ok = false) {
  std::size_t total = 0;
  while (count > 0) {
#if defined(_WIN32)
    OVERLAPPED position{};
    position.Offset = static_cast<DWORD>(offset);
    position.OffsetHigh = static_cast<DWORD>(offset >> 32);
    DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(count, 1u << 30));
    DWORD got = 0;
    if (!ReadFile(file.get(), destination, chunk, &got, &position) && GetLastError() != ERROR_HANDLE_EOF)
      return error(error_kind::io_error, system_error_text("cannot read", path));
    std::size_t done = got;
#else
    std::size_t chunk = std::min<std::size_t>(count, std::size_t{1} << 30);
    ssize_t got = ::pread(file.get(), destination, chunk, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return error(error_kind::io_error, system_error_text("cannot read", path));
    }
    std::size_t done = static_cast<std::size_t>(got);
#endif
    if (done == 0) {
      if (end_ok) break;
      return error(error_kind::io_error,
                   quote(path) + ": ended at byte " + std::to_string(offset) + ": it shrank after it was opened");
    }
    destination += done;
    offset += done;
    count -= done;
    total += done;
  }
  return total;
}
}  // namespace detail

/// A file mapped read-only into memory: opening costs O(1), pages load when first touched.
///
/// Risk: if another process truncates the file while it is mapped, touching the lost pages
/// raises SIGBUS. Use pread_file for files that may change under the reader.
class mapped_file {
 public:
  /// Maps the file at `path`. An IoError names the path and the system's reason.
  static result<mapped_file> open(const std::string& path) {
    std::uint64_t size = 0;
    auto file = detail::file_handle::open_read(path, size);
    if (!file) return file.error();
    mapped_file mapped;
    mapped.path_ = path;
    if (size == 0) return mapped;
    if (size > std::numeric_limits<std::size_t>::max())
      return error(error_kind::io_error, detail::quote(path) + ": too large to map");
#if defined(_WIN32)
    HANDLE mapping = CreateFileMappingW(file->get(), nullptr, PAGE_READONLY, 0, 0, nullptr);
    if (mapping == nullptr) return error(error_kind::io_error, detail::system_error_text("cannot map", path));
    void* address = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    CloseHandle(mapping);
    if (address == nullptr) return error(error_kind::io_error, detail::system_error_text("cannot map", path));
#else
    void* address = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, file->get(), 0);
    if (address == MAP_FAILED) return error(error_kind::io_error, detail::system_error_text("cannot map", path));
#endif
    mapped.data_ = static_cast<const std::byte*>(address);
    mapped.size_ = static_cast<std::size_t>(size);
    mapped.file_ = std::move(*file);
    return mapped;
  }

  mapped_file(mapped_file&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        file_(std::move(other.file_)),
        path_(std::move(other.path_)) {}
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      file_ = std::move(other.file_);
      path_ = std::move(other.path_);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  /// First byte of the mapping (nullptr for an empty file).
  const std::byte* data() const noexcept { return data_; }
  /// Number of bytes.
  std::uint64_t size() const noexcept { return size_; }
  /// The file's path.
  const std::string& path() const noexcept { return path_; }
  /// Copies `count` bytes at `offset` to `destination`.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (auto read = borrowed_bytes(data_, size_).read_at(offset, destination, count); !read)
      return detail::about(path_, read.error());
    return {};
  }

  /// Turns the kernel's read-around of touched pages off (random) or back on (madvise RANDOM or
  /// NORMAL over the whole mapping). A hint: failures are ignored.
  void set_random_access(bool random) const noexcept {
#if !defined(_WIN32)
    if (data_ != nullptr) ::madvise(const_cast<std::byte*>(data_), size_, random ? MADV_RANDOM : MADV_NORMAL);
#else
    (void)random;
#endif
  }

  /// Asks the kernel to start reading bytes [offset, offset + count) in, so that touching them
  /// later does not wait (madvise WILLNEED). A hint: returns before the reads complete.
  result<void> prefetch(std::uint64_t offset, std::uint64_t count) const {
    auto [start, length] = page_range(offset, count);
    if (length == 0) return {};
#if defined(_WIN32)
#if defined(_WIN32_WINNT) && _WIN32_WINNT >= 0x0602
    WIN32_MEMORY_RANGE_ENTRY range{const_cast<std::byte*>(data_) + start, length};
    PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0);
#endif
#else
    if (::madvise(const_cast<std::byte*>(data_) + start, length, MADV_WILLNEED) != 0)
      return error(error_kind::io_error, detail::system_error_text("madvise WILLNEED failed", path_));
#endif
    return {};
  }

  /// Gives back the memory of bytes [offset, offset + count): drops them from this process
  /// (madvise DONTNEED) and, being clean file pages, from the page cache (fadvise DONTNEED).
  /// Reading them again later reads the file again. For weights already copied elsewhere.
  result<void> release(std::uint64_t offset, std::uint64_t count) const {
    auto [start, length] = page_range(offset, count);
    if (length == 0) return {};
#if defined(_WIN32)
    // Unlocking pages that are not locked removes them from the working set.
    VirtualUnlock(const_cast<std::byte*>(data_) + start, length);
#else
    if (::madvise(const_cast<std::byte*>(data_) + start, length, MADV_DONTNEED) != 0)
      return error(error_kind::io_error, detail::system_error_text("madvise DONTNEED failed", path_));
#if defined(POSIX_FADV_DONTNEED)
    ::posix_fadvise(file_.get(), static_cast<off_t>(start), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
#endif
#endif
    return {};
  }

 private:
  mapped_file() = default;

  // The whole pages covering [offset, offset + count), clipped to the file: madvise wants a
  // page-aligned start.
  std::pair<std::size_t, std::size_t> page_range(std::uint64_t offset, std::uint64_t count) const noexcept {
    if (offset >= size_ || count == 0) return {0, 0};
    const std::uint64_t end = offset + std::min<std::uint64_t>(count, size_ - offset);
    const std::uint64_t page = detail::page_size();
    const std::uint64_t start = offset / page * page;
    return {static_cast<std::size_t>(start), static_cast<std::size_t>(end - start)};
  }

  void unmap() noexcept {
    if (data_ == nullptr) return;
#if defined(_WIN32)
    UnmapViewOfFile(data_);
#else
    ::munmap(const_cast<std::byte*>(data_), size_);
#endif
    data_ = nullptr;
  }
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  detail::file_handle file_;
  std::string path_;
};

/// A file read with positioned reads (pread) on demand: only the header is read at open; tensor
/// bytes are copied into memory the caller provides. The choice for network file systems where
/// mapping is slow, for loads into the engine's own memory (a mapped file's pages would count
/// twice in the process's memory), and for files that may change while open (a file that shrank
/// is an IoError, never a crash).
class pread_file {
 public:
  /// Opens the file at `path`. An IoError names the path and the system's reason.
  static result<pread_file> open(const std::string& path) {
    pread_file file;
    auto handle = detail::file_handle::open_read(path, file.size_);
    if (!handle) return handle.error();
    file.handle_ = std::move(*handle);
    file.path_ = path;
    file.direct_ = std::make_unique<direct_handle>();
    return file;
  }

  /// The file's size when it was opened.
  std::uint64_t size() const noexcept { return size_; }
  /// The file's path.
  const std::string& path() const noexcept { return path_; }
  /// Opening reads this much at once: the length prefix and, in most files, the whole header, in
  /// one read instead of two.
  static constexpr std::size_t first_read_size() noexcept { return 64 * 1024; }

  /// Reads `count` bytes at `offset` into `destination`; an IoError when the file has fewer.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (auto read = detail::read_fully(handle_, path_, offset, destination, count); !read) return read.error();
    return {};
  }

  /// Reads `count` bytes at `offset` past the page cache (O_DIRECT, Linux), into `destination`:
  /// all three multiples of direct_io_alignment. Fewer bytes only where the file ends. The
  /// direct handle is opened on first use; where the file system refuses O_DIRECT, or on other
  /// systems, the read goes through the cache instead.
  result<void> read_direct_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(count, size_ > offset ? size_ - offset : 0));
#if defined(O_DIRECT)
    std::call_once(direct_->opened, [&] {
      int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
      if (fd >= 0) direct_->file = detail::file_handle(fd);
    });
    if (direct_->file) {
      auto read = detail::read_fully(direct_->file, path_, offset, destination, count, true);
      if (!read) return read.error();
      if (*read < wanted)
        return error(error_kind::io_error, detail::quote(path_) + ": ended at byte " + std::to_string(offset + *read) +
                                               ": it shrank after it was opened");
      return {};
    }
#endif
    return read_at(offset, destination, wanted);
  }

 private:
  // The O_DIRECT descriptor, opened by the first direct read. Held by pointer so that the file
  // stays movable (a once_flag is not).
  struct direct_handle {
    std::once_flag opened;
    detail::file_handle file;
  };

  pread_file() = default;
  detail::file_handle handle_;
  std::string path_;
  std::uint64_t size_ = 0;
  std::unique_ptr<direct_handle> direct_;
};

#endif  // SAFETENSORS_NO_FILESYSTEM

namespace detail {
template <class Storage, class = void>
struct is_storage : std::false_type {};
template <class Storage>
struct is_storage<Storage,
                  std::enable_if_t<std::is_convertible_v<decltype(std::declval<const Storage&>().size()), std::uint64_t> &&
                                   std::is_same_v<decltype(std::declval<const Storage&>().read_at(
                                                      std::uint64_t{}, std::declval<std::byte*>(), std::size_t{})),
                                                  result<void>>>> : std::true_type {};

template <class Storage, class = void>
struct has_data : std::false_type {};
template <class Storage>
struct has_data<Storage, std::void_t<decltype(std::declval<const Storage&>().data())>> : std::true_type {};

template <class Storage, class = void>
struct has_path : std::false_type {};
template <class Storage>
struct has_path<Storage, std::void_t<decltype(std::string_view(std::declval<const Storage&>().path()))>>
    : std::true_type {};

template <class Storage, class = void>
struct has_first_read_size : std::false_type {};
template <class Storage>
struct has_first_read_size<Storage, std::void_t<decltype(std::declval<const Storage&>().first_read_size())>>
    : std::true_type {};

template <class Storage, class = void>
struct has_direct_io : std::false_type {};
template <class Storage>
struct has_direct_io<Storage, std::void_t<decltype(std::declval<const Storage&>().read_direct_at(
                                  std::uint64_t{}, std::declval<std::byte*>(), std::size_t{}))>> : std::true_type {};

template <class Storage, class = void>
struct has_access_advice : std::false_type {};
template <class Storage>
struct has_access_advice<Storage, std::void_t<decltype(std::declval<const Storage&>().set_random_access(true))>>
    : std::true_type {};

template <class Storage, class = void>
struct has_residency_control : std::false_type {};
template <class Storage>
struct has_residency_control<Storage, std::void_t<decltype(std::declval<const Storage&>().prefetch(0, 0)),
                                                  decltype(std::declval<const Storage&>().release(0, 0))>>
    : std::true_type {};

/// Where a storage's bytes come from, for messages: its path, or nothing for bytes in memory.
template <class Storage>
std::string_view storage_name(const Storage& storage) noexcept {
  if constexpr (has_path<Storage>::value) {
    return storage.path();
  } else {
    (void)storage;
    return {};
  }
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Loading: plans of reads over one file or many shards, run by a pool of threads
// ---------------------------------------------------------------------------------------------

/// Threads that load plans run on. A load without a pool starts its threads and joins them
/// before it returns; an engine that loads often keeps one pool and passes it in
/// load_options::pool. Its threads wait on a condition variable between jobs.
class thread_pool {
 public:
  /// The size a pool gets by default: the machine's cores, at least 2.
  static unsigned default_size() noexcept {
    const unsigned cores = std::thread::hardware_concurrency();
    return cores < 2 ? 2 : cores;
  }

  /// A pool in which `size` threads work on each job, the calling thread included: size - 1
  /// threads are started now.
  explicit thread_pool(unsigned size = default_size()) {
    const unsigned helpers = size > 1 ? size - 1 : 0;
    threads_.reserve(helpers);
    for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this, i] { serve(i + 1); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  /// Waits for the pool's threads to end.
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(lock_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  /// Threads that work on a job, the caller included.
  unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()) + 1; }

  /// Calls task(worker) for every worker from 0 to workers - 1 at once (worker 0 on the calling
  /// thread; `workers` is capped at size()) and returns when every call has returned. One job at
  /// a time: a second caller waits for the first job to end. `task` must not throw.
  template <class Task>
  void run(unsigned workers, Task& task) {
    std::lock_guard<std::mutex> one_job(job_lock_);
    workers = std::max(1u, std::min(workers, size()));
    {
      std::lock_guard<std::mutex> lock(lock_);
      job_ = &task;
      call_ = [](void* job, unsigned worker) { (*static_cast<Task*>(job))(worker); };
      job_workers_ = workers;
      pending_ = workers - 1;
      ++generation_;
    }
    wake_.notify_all();
    task(0u);
    std::unique_lock<std::mutex> lock(lock_);
    done_.wait(lock, [&] { return pending_ == 0; });
  }

 private:
  void serve(unsigned worker) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(lock_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (worker >= job_workers_) continue;
      void* job = job_;
      void (*call)(void*, unsigned) = call_;
      lock.unlock();
      call(job, worker);
      lock.lock();
      if (--pending_ == 0) done_.notify_all();
    }
  }

  std::mutex job_lock_;  // held by run() for a whole job
  std::mutex lock_;      // guards the fields below
  std::condition_variable wake_;
  std::condition_variable done_;
  void* job_ = nullptr;
  void (*call_)(void*, unsigned) = nullptr;
  unsigned job_workers_ = 0;
  unsigned pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// How a load reads: threads, block size, merging, direct I/O, and for consumers the memory
/// budget and where the consumer runs.
struct load_options {
  /// Reading threads (the calling thread is one of them). 0: the pool's size, or without a pool
  /// thread_pool::default_size() (the machine's cores, at least 2). Several keep an NVMe queue,
  /// a network file system or an HTTP server busy.
  unsigned threads = 0;
  /// Most bytes in one read (at least 4096 are used). Reads of a range larger than this are cut
  /// into blocks of it, which threads read at once.
  std::size_t block_size = std::size_t{8} << 20;
  /// Byte runs no further apart than this in a file are read as one range, the bytes between
  /// them read and dropped (counted in load_plan::bytes_read()): one read instead of two is
  /// cheaper than skipping a page. Raise it for remote storages, where a request costs a round
  /// trip.
  std::uint64_t merge_gap = 4096;
  /// Read past the page cache where the storage can (pread_file on Linux: O_DIRECT): reads are
  /// widened to multiples of direct_io_alignment, and blocks are read into aligned staging memory
  /// (or straight into a destination whose address, file offset and size are all aligned).
  bool direct_io = false;
  /// Consumers: the staging memory, in bytes, that blocks are read into before the consumer sees
  /// them; it must hold one block of the plan. try_load plans blocks no larger than the budget;
  /// a plan made beforehand and executed with a budget under its block size is refused
  /// (InvalidArgument). Memory stays at this whatever the model's size.
  std::uint64_t budget = std::uint64_t{256} << 20;
  /// Consumers: call the consumer on one thread of its own (the calling thread), one piece at a
  /// time, while `threads` other threads read; otherwise each reading thread calls it for the
  /// blocks it read, so calls come from several threads at once.
  bool consumer_thread = false;
  /// Threads to run on; nullptr starts threads for this load alone.
  thread_pool* pool = nullptr;
};

/// A tensor, or a slice of one, to load, and where its bytes go.
struct load_request {
  /// No tensor: fill in the fields.
  load_request() = default;
  /// The tensor `of` (or the `selection` of it) into `into`, from shard `in_shard` of a model.
  load_request(const tensor_info* of, span<std::byte> into = {}, std::vector<slice_dim> selection = {},
               std::size_t in_shard = 0)
      : tensor(of), destination(into), slice(std::move(selection)), shard(in_shard) {}

  /// The tensor, from the reader (or model) that loads it.
  const tensor_info* tensor = nullptr;
  /// Where its bytes go (load_into): exactly the bytes delivered. Unused by consumers.
  span<std::byte> destination;
  /// Per dimension at(), range() or all(), as for slices; empty for the whole tensor. The bytes
  /// delivered are the selection's, in row-major order.
  std::vector<slice_dim> slice;
  /// Models: the shard holding `tensor` (model_reader::request fills it in). 0 for one file.
  std::size_t shard = 0;
};

/// Bytes of one request delivered to a consumer: `bytes` are the request's bytes from `offset`
/// on. They are valid until the consumer returns.
struct load_piece {
  /// The request's position in the list the plan was made from.
  std::size_t request = 0;
  /// Where `bytes` go in the request's bytes.
  std::uint64_t offset = 0;
  /// The bytes, little-endian as in the file.
  span<const std::byte> bytes;
};

namespace detail {
/// A storage as a plan sees it: its file's facts and its operations, type-erased so that one
/// plan spans shards and one executor serves every storage.
struct plan_source {
  const void* storage = nullptr;
  /// Path or URL for messages (the storage's own, which outlives the plan); empty in memory.
  std::string_view name;
  /// The file's bytes, for in-memory storages: copied from directly.
  const std::byte* memory = nullptr;
  std::uint64_t size = 0;
  std::uint64_t data_start = 0;
  /// The reader's tensors: a request's tensor must be one of them.
  span<const tensor_info> tensors;
  result<void> (*read)(const void*, std::uint64_t, std::byte*, std::size_t) = nullptr;
  result<void> (*read_direct)(const void*, std::uint64_t, std::byte*, std::size_t) = nullptr;
  result<void> (*prefetch)(const void*, std::uint64_t, std::uint64_t) = nullptr;
  result<void> (*release)(const void*, std::uint64_t, std::uint64_t) = nullptr;
};

/// The plan_source of a reader's storage.
template <class Storage>
plan_source make_plan_source(const Storage& storage, std::uint64_t data_start, span<const tensor_info> tensors) {
  plan_source source;
  source.storage = &storage;
  source.name = storage_name(storage);
  if constexpr (has_data<Storage>::value) source.memory = storage.data();
  source.size = storage.size();
  source.data_start = data_start;
  source.tensors = tensors;
  source.read = [](const void* s, std::uint64_t offset, std::byte* destination, std::size_t count) {
    return static_cast<const Storage*>(s)->read_at(offset, destination, count);
  };
  if constexpr (has_direct_io<Storage>::value) {
    source.read_direct = [](const void* s, std::uint64_t offset, std::byte* destination, std::size_t count) {
      return static_cast<const Storage*>(s)->read_direct_at(offset, destination, count);
    };
  }
  if constexpr (has_residency_control<Storage>::value) {
    source.prefetch = [](const void* s, std::uint64_t offset, std::uint64_t count) {
      return static_cast<const Storage*>(s)->prefetch(offset, count);
    };
    source.release = [](const void* s, std::uint64_t offset, std::uint64_t count) {
      return static_cast<const Storage*>(s)->release(offset, count);
    };
  }
  return source;
}

/// Memory aligned for direct I/O, freed on destruction; allocation failure leaves it empty.
class aligned_bytes {
 public:
  aligned_bytes() noexcept = default;
  explicit aligned_bytes(std::size_t size) noexcept
      : data_(static_cast<std::byte*>(::operator new(size, std::align_val_t(direct_io_alignment), std::nothrow))) {}
  aligned_bytes(aligned_bytes&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  aligned_bytes& operator=(aligned_bytes&& other) noexcept {
    std::swap(data_, other.data_);
    return *this;
  }
  aligned_bytes(const aligned_bytes&) = delete;
  aligned_bytes& operator=(const aligned_bytes&) = delete;
  ~aligned_bytes() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(direct_io_alignment));
  }
  std::byte* get() const noexcept { return data_; }

 private:
  std::byte* data_ = nullptr;
};

class plan_builder;
}  // namespace detail

/// Reads planned across every file of a load at once: the requests' byte ranges, sorted, merged
/// where adjacent (or at most load_options::merge_gap apart), cut into blocks. Executing it reads
/// the blocks with a pool of threads, several files and several blocks in flight together, into
/// the requests' destinations (try_execute_into) or into bounded staging memory handed to a
/// consumer (try_execute). Made by a reader's or a model's try_plan, try_load_into and try_load;
/// it refers to the readers and destinations it was made with, which must outlive it.
///
/// Blocks are taken in turn from each file (the first block of every file, then the second...).
/// A failed read, a consumer's error or an exception stops the plan cleanly: no new block is
/// started, every thread is joined and every buffer freed, and the first error is returned,
/// naming the file and the tensor. Destinations then hold a mix of old and new bytes.
class load_plan {
 public:
  /// Number of requests.
  std::size_t size() const noexcept { return requests_.size(); }
  /// Bytes delivered: the requests' (whole tensors' or slices') bytes.
  std::uint64_t bytes() const noexcept { return bytes_; }
  /// Bytes read from the files: the merged ranges, gaps between runs included, and with direct
  /// I/O the widening to aligned offsets.
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  /// Number of ranges read after merging.
  std::size_t read_count() const noexcept { return read_count_; }
  /// Number of blocks.
  std::size_t block_count() const noexcept { return blocks_.size(); }
  /// The blocks' largest size.
  std::size_t block_size() const noexcept { return block_size_; }

  /// Reads every request's bytes into its destination, which must hold exactly them
  /// (InvalidTensorView otherwise, before anything is read).
  result<void> try_execute_into(const load_options& options = {}) const {
    for (const request& r : requests_) {
      if (r.destination.size() != r.bytes)
        return detail::about(sources_[r.source].name,
                             error(error_kind::invalid_tensor_view, describe(r) + " has " + std::to_string(r.bytes) +
                                                                        " bytes but the destination holds " +
                                                                        std::to_string(r.destination.size())));
    }
    execution run(*this, options, nullptr);
    return run.go();
  }
  /// Reads every request's bytes into its destination; throws on an error.
  void execute_into(const load_options& options = {}) const { try_execute_into(options).value(); }

  /// Reads the blocks into staging buffers of at most options.budget bytes in all and calls
  /// `consumer(const load_piece&)` for each piece of each request as it arrives, in no set
  /// order; a buffer is reused once the consumer returns. `consumer` returns void or
  /// result<void> (an error stops the plan); see load_options::consumer_thread for the thread it
  /// runs on. From in-memory storages (mapped files) pieces point into the storage itself and no
  /// staging is used. A strided slice arrives run by run.
  template <class Consumer>
  result<void> try_execute(Consumer&& consumer, const load_options& options = {}) const {
    using consumer_type = std::remove_reference_t<Consumer>;
    piece_sink sink;
    sink.context = const_cast<void*>(static_cast<const void*>(std::addressof(consumer)));
    sink.call = [](void* context, const load_piece& piece) -> result<void> {
      auto& call = *static_cast<consumer_type*>(context);
      if constexpr (std::is_void_v<decltype(call(piece))>) {
        call(piece);
        return {};
      } else {
        return call(piece);
      }
    };
    execution run(*this, options, &sink);
    return run.go();
  }
  /// Calls `consumer` for every piece (see try_execute); throws on an error.
  template <class Consumer>
  void execute(Consumer&& consumer, const load_options& options = {}) const {
    try_execute(std::forward<Consumer>(consumer), options).value();
  }

  /// Asks the kernel to read the plan's ranges ahead, in the order the plan reads them (storages
  /// that can: mapped files); for engines that stay on mapped views.
  result<void> prefetch() const { return advise(false); }
  /// Gives back the memory of the plan's ranges (mapped files), e.g. once copied to a device.
  result<void> release() const { return advise(true); }

 private:
  friend class detail::plan_builder;

  struct request {
    const tensor_info* tensor;
    span<std::byte> destination;
    std::uint64_t bytes;
    std::size_t source;
    bool sliced;
  };
  // Runs of a block that go to one request: `runs` runs of `run_bytes`, `stride` apart in the
  // block from `block_offset`, delivered back to back from `request_offset`.
  struct copy {
    std::size_t request;
    std::uint64_t request_offset;
    std::uint64_t block_offset;
    std::uint64_t run_bytes;
    std::uint64_t stride;
    std::uint64_t runs;
  };
  struct block {
    std::size_t source;
    std::uint64_t offset;
    std::uint64_t size;   // bytes read (a direct read's widening included)
    std::uint64_t valid;  // of them, the bytes before the end of the file
    std::size_t first_copy;
    std::size_t copy_count;
  };
  struct piece_sink {
    void* context = nullptr;
    result<void> (*call)(void*, const load_piece&) = nullptr;
  };

  std::string describe(const request& r) const {
    return std::string(r.sliced ? "slice of tensor " : "tensor ") + detail::quote(r.tensor->name);
  }

  result<void> advise(bool release_pages) const {
    for (const block& b : blocks_) {
      const detail::plan_source& s = sources_[b.source];
      auto call = release_pages ? s.release : s.prefetch;
      if (call == nullptr) continue;
      if (auto advised = call(s.storage, b.offset, b.valid); !advised) return advised;
    }
    return {};
  }

  // One run of a plan: its threads, staging memory and first error.
  class execution {
    // A block of at most this many contiguous runs is read into its destinations run by run: a
    // read each (an HTTP request each, for a remote storage) against a second pass over the bytes.
    static constexpr std::size_t max_runs_read_in_place = 4;

   public:
    execution(const load_plan& plan, const load_options& options, const piece_sink* sink)
        : plan_(plan), options_(options), sink_(sink) {}

    result<void> go() {
      const std::size_t block_count = plan_.blocks_.size();
      if (block_count == 0) return {};
      unsigned threads = options_.threads != 0 ? options_.threads
                                               : (options_.pool != nullptr ? options_.pool->size() : thread_pool::default_size());
      if (options_.pool != nullptr) threads = std::min(threads, options_.pool->size());
      readers_ = static_cast<unsigned>(std::min<std::size_t>(std::max(threads, 1u), block_count));
      // A consumer thread of its own is the calling thread, beside the readers, when the pool has
      // room for both.
      consumer_thread_ = sink_ != nullptr && options_.consumer_thread &&
                         (options_.pool == nullptr || options_.pool->size() >= 2);
      if (consumer_thread_ && options_.pool != nullptr) readers_ = std::min(readers_, options_.pool->size() - 1);
      if (sink_ != nullptr) {
        if (auto staged = allocate_staging(); !staged) return staged;
      }
      remaining_readers_ = readers_;
      const unsigned workers = readers_ + (consumer_thread_ ? 1u : 0u);
      auto task = [this](unsigned worker) { work(worker); };
      if (workers == 1) {
        task(0u);
      } else if (options_.pool != nullptr) {
        options_.pool->run(workers, task);
      } else {
        thread_pool own(workers);
        own.run(workers, task);
      }
#if SAFETENSORS_EXCEPTIONS
      if (exception_) std::rethrow_exception(exception_);
#endif
      if (first_error_) return *first_error_;
      return {};
    }

   private:
    result<void> allocate_staging() {
      // In-memory storages deliver from their own bytes: they need no staging.
      bool needs_staging = false;
      for (const block& b : plan_.blocks_) needs_staging = needs_staging || plan_.sources_[b.source].memory == nullptr;
      if (!needs_staging) return {};
      const std::uint64_t size = plan_.block_size_;
      if (options_.budget < size)
        return error(error_kind::invalid_argument, "a budget of " + std::to_string(options_.budget) +
                                                       " bytes holds no block of " + std::to_string(size) +
                                                       " bytes: plan with a smaller block_size");
      const std::uint64_t count = std::min<std::uint64_t>(options_.budget / size, plan_.blocks_.size());
      for (std::uint64_t i = 0; i < count; ++i) {
        detail::aligned_bytes buffer(static_cast<std::size_t>(size));
        if (buffer.get() == nullptr)
          return error(error_kind::io_error, "cannot allocate a staging buffer of " + std::to_string(size) + " bytes");
        free_buffers_.push_back(buffer.get());
        staging_.push_back(std::move(buffer));
      }
      return {};
    }

    void work(unsigned worker) {
#if SAFETENSORS_EXCEPTIONS
      try {
#endif
        if (consumer_thread_ && worker == 0) {
          consume_queue();
        } else {
          read_blocks();
        }
#if SAFETENSORS_EXCEPTIONS
      } catch (...) {
        std::lock_guard<std::mutex> lock(lock_);
        if (!exception_ && !first_error_) exception_ = std::current_exception();
        stop_locked();
      }
#endif
      if (!(consumer_thread_ && worker == 0)) {
        std::lock_guard<std::mutex> lock(lock_);
        if (--remaining_readers_ == 0) ready_.notify_all();
      }
    }

    void read_blocks() {
      detail::aligned_bytes own_staging;  // load_into: blocks that are not read in place
      for (;;) {
        if (stopped_.load(std::memory_order_acquire)) return;
        const std::size_t index = next_block_.fetch_add(1, std::memory_order_relaxed);
        if (index >= plan_.blocks_.size()) return;
        const block& b = plan_.blocks_[index];
        const detail::plan_source& source = plan_.sources_[b.source];
        if (sink_ == nullptr) {
          if (!fill_destinations(b, source, own_staging)) return;
          continue;
        }
        // An in-memory storage's block is delivered where it lies, without a staging buffer.
        std::byte* buffer = nullptr;
        if (source.memory == nullptr) {
          buffer = take_buffer();
          if (buffer == nullptr) return;
          if (auto read = read_block(b, source, buffer); !read) {
            fail(read.error(), b);
            give_back(buffer);
            return;
          }
        }
        if (consumer_thread_) {
          std::lock_guard<std::mutex> lock(lock_);
          filled_.push_back({index, buffer});
          ready_.notify_one();
        } else {
          const bool delivered = deliver(b, buffer != nullptr ? buffer : source.memory + b.offset);
          if (buffer != nullptr) give_back(buffer);
          if (!delivered) return;
        }
      }
    }

    // load_into: a block that is one run of one destination is read straight into it; others go
    // through staging memory and are copied out run by run.
    bool fill_destinations(const block& b, const detail::plan_source& source, detail::aligned_bytes& staging) {
      const copy* first = plan_.copies_.data() + b.first_copy;
      if (source.memory != nullptr) {
        for (std::size_t c = 0; c < b.copy_count; ++c) copy_out(first[c], source.memory + b.offset);
        return true;
      }
      if (b.copy_count == 1 && first->runs == 1 && first->block_offset == 0 && first->run_bytes == b.size) {
        std::byte* into = plan_.requests_[first->request].destination.data() + first->request_offset;
        const bool aligned = reinterpret_cast<std::uintptr_t>(into) % direct_io_alignment == 0 &&
                             b.offset % direct_io_alignment == 0 && b.size % direct_io_alignment == 0;
        auto read = options_.direct_io && source.read_direct != nullptr && aligned
                        ? source.read_direct(source.storage, b.offset, into, static_cast<std::size_t>(b.size))
                        : source.read(source.storage, b.offset, into, static_cast<std::size_t>(b.valid));
        if (!read) fail(read.error(), b);
        return static_cast<bool>(read);
      }
      // A block across a few contiguous runs (the end of one tensor, a small one, the start of the
      // next) is read run by run straight into the destinations: staging it would pass over its
      // bytes twice. Many runs, strided runs and direct reads still go through staging, in one read.
      const bool direct = options_.direct_io && source.read_direct != nullptr;
      if (!direct && b.copy_count <= max_runs_read_in_place &&
          std::all_of(first, first + b.copy_count, [](const copy& c) { return c.runs == 1; })) {
        for (std::size_t c = 0; c < b.copy_count; ++c) {
          std::byte* into = plan_.requests_[first[c].request].destination.data() + first[c].request_offset;
          auto read = source.read(source.storage, b.offset + first[c].block_offset, into,
                                  static_cast<std::size_t>(first[c].run_bytes));
          if (!read) {
            fail(read.error(), b);
            return false;
          }
        }
        return true;
      }
      if (staging.get() == nullptr) {
        staging = detail::aligned_bytes(plan_.block_size_);
        if (staging.get() == nullptr) {
          fail(error(error_kind::io_error,
                     "cannot allocate a staging buffer of " + std::to_string(plan_.block_size_) + " bytes"),
               b);
          return false;
        }
      }
      if (auto read = read_block(b, source, staging.get()); !read) {
        fail(read.error(), b);
        return false;
      }
      for (std::size_t c = 0; c < b.copy_count; ++c) copy_out(first[c], staging.get());
      return true;
    }

    result<void> read_block(const block& b, const detail::plan_source& source, std::byte* into) const {
      if (options_.direct_io && source.read_direct != nullptr)
        return source.read_direct(source.storage, b.offset, into, static_cast<std::size_t>(b.size));
      return source.read(source.storage, b.offset, into, static_cast<std::size_t>(b.valid));
    }

    void copy_out(const copy& c, const std::byte* block_bytes) const {
      std::byte* to = plan_.requests_[c.request].destination.data() + c.request_offset;
      const std::byte* from = block_bytes + c.block_offset;
      const auto run = static_cast<std::size_t>(c.run_bytes);
      for (std::uint64_t r = 0; r < c.runs; ++r) {
        std::memcpy(to, from, run);
        to += run;
        from += c.stride;
      }
    }

    bool deliver(const block& b, const std::byte* block_bytes) {
      const copy* first = plan_.copies_.data() + b.first_copy;
      for (std::size_t c = 0; c < b.copy_count; ++c) {
        const copy& piece = first[c];
        for (std::uint64_t r = 0; r < piece.runs; ++r) {
          if (stopped_.load(std::memory_order_acquire)) return false;
          load_piece delivered;
          delivered.request = piece.request;
          delivered.offset = piece.request_offset + r * piece.run_bytes;
          delivered.bytes = span<const std::byte>(block_bytes + piece.block_offset + r * piece.stride,
                                                  static_cast<std::size_t>(piece.run_bytes));
          if (auto consumed = sink_->call(sink_->context, delivered); !consumed) {
            const request& target = plan_.requests_[piece.request];
            fail(error(consumed.error().kind(), plan_.describe(target) + ": the consumer failed at byte " +
                                                    std::to_string(delivered.offset) + ": " + consumed.error().message()),
                 b, false);
            return false;
          }
        }
      }
      return true;
    }

    void consume_queue() {
      std::unique_lock<std::mutex> lock(lock_);
      for (;;) {
        ready_.wait(lock, [&] { return !filled_.empty() || remaining_readers_ == 0 || stopped_.load(); });
        if (stopped_.load() || filled_.empty()) return;
        const std::pair<std::size_t, std::byte*> next = filled_.front();
        filled_.pop_front();
        lock.unlock();
        // A block of an in-memory storage comes without a buffer: it is read where it lies.
        const block& b = plan_.blocks_[next.first];
        const bool delivered =
            deliver(b, next.second != nullptr ? next.second : plan_.sources_[b.source].memory + b.offset);
        if (next.second != nullptr) give_back(next.second);
        lock.lock();
        if (!delivered) return;
      }
    }

    std::byte* take_buffer() {
      std::unique_lock<std::mutex> lock(lock_);
      returned_.wait(lock, [&] { return !free_buffers_.empty() || stopped_.load(); });
      if (stopped_.load()) return nullptr;
      std::byte* buffer = free_buffers_.back();
      free_buffers_.pop_back();
      return buffer;
    }

    void give_back(std::byte* buffer) {
      std::lock_guard<std::mutex> lock(lock_);
      free_buffers_.push_back(buffer);
      returned_.notify_one();
    }

    // Records the first error, naming the file (storage errors already do) and the tensor the
    // block was read for, and stops the plan.
    void fail(const error& err, const block& b, bool name_file = true) {
      std::lock_guard<std::mutex> lock(lock_);
      if (!first_error_ && !exception_) {
        const detail::plan_source& source = plan_.sources_[b.source];
        std::string message = err.message();
        if (name_file && b.copy_count > 0)
          message += " (reading bytes [" + std::to_string(b.offset) + ", " + std::to_string(b.offset + b.valid) +
                     ") for " + plan_.describe(plan_.requests_[plan_.copies_[b.first_copy].request]) + ")";
        const std::string prefix = detail::quote(source.name);
        const bool named = !source.name.empty() && message.compare(0, prefix.size(), prefix) == 0;
        first_error_ = named ? error(err.kind(), message) : detail::about(source.name, error(err.kind(), message));
      }
      stop_locked();
    }

    void stop_locked() {
      stopped_.store(true, std::memory_order_release);
      returned_.notify_all();
      ready_.notify_all();
    }

    const load_plan& plan_;
    const load_options& options_;
    const piece_sink* sink_;
    unsigned readers_ = 1;
    bool consumer_thread_ = false;
    std::atomic<std::size_t> next_block_{0};
    std::atomic<bool> stopped_{false};
    std::mutex lock_;  // guards everything below
    std::condition_variable returned_;  // a staging buffer is free
    std::condition_variable ready_;     // a filled buffer waits for the consumer, or readers ended
    std::vector<detail::aligned_bytes> staging_;
    std::vector<std::byte*> free_buffers_;
    std::deque<std::pair<std::size_t, std::byte*>> filled_;  // block, and its staging buffer if any
    unsigned remaining_readers_ = 0;
    std::optional<error> first_error_;
#if SAFETENSORS_EXCEPTIONS
    std::exception_ptr exception_;
#else
    bool exception_ = false;
#endif
  };

  std::vector<detail::plan_source> sources_;
  std::vector<request> requests_;
  std::vector<copy> copies_;
  std::vector<block> blocks_;  // in the order they are read
  std::uint64_t bytes_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::size_t read_count_ = 0;
  std::size_t block_size_ = 0;
};

namespace detail {
/// Turns load requests into a load_plan (see load_plan for what it does).
class plan_builder {
 public:
  static result<load_plan> build(std::vector<plan_source> sources, span<const load_request> requests,
                                 const load_options& options) {
    plan_builder builder(std::move(sources), options);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const load_request& r = requests[i];
      if (auto checked = builder.check(i, r.tensor, r.shard); !checked) return checked.error();
      if (r.slice.empty()) {
        builder.add(i, r.shard, *r.tensor, nullptr, r.destination);
        continue;
      }
      auto slice = tensor_slice::make(*r.tensor, r.slice);
      if (!slice) return about(builder.plan_.sources_[r.shard].name, slice.error());
      builder.add(i, r.shard, *r.tensor, &*slice, r.destination);
    }
    builder.lay_out();
    return std::move(builder.plan_);
  }

  /// The plan that reads one slice of a tensor of `sources`' first file into `destination`.
  static result<load_plan> build(std::vector<plan_source> sources, const tensor_slice& slice, span<std::byte> destination,
                                 const load_options& options) {
    plan_builder builder(std::move(sources), options);
    if (auto checked = builder.check(0, &slice.info(), 0); !checked) return checked.error();
    builder.add(0, 0, slice.info(), &slice, destination);
    builder.lay_out();
    return std::move(builder.plan_);
  }

 private:
  // Equally spaced runs of one request in one file.
  struct group {
    std::size_t source;
    std::uint64_t start;  // file offset of the first run
    std::uint64_t stride;
    std::uint64_t run_bytes;
    std::uint64_t runs;
    std::size_t request;
    std::uint64_t request_offset;
    std::uint64_t end() const noexcept { return start + (runs - 1) * stride + run_bytes; }
  };

  plan_builder(std::vector<plan_source> sources, const load_options& options)
      : block_size_(std::max<std::size_t>(options.block_size / direct_io_alignment * direct_io_alignment,
                                          direct_io_alignment)),
        merge_gap_(options.merge_gap),
        direct_(options.direct_io) {
    plan_.sources_ = std::move(sources);
  }

  // Request `index` names a tensor of shard `shard`.
  result<void> check(std::size_t index, const tensor_info* tensor, std::size_t shard) const {
    const std::string which = "load request " + std::to_string(index);
    if (tensor == nullptr) return error(error_kind::invalid_tensor_view, which + " names no tensor");
    if (shard >= plan_.sources_.size())
      return error(error_kind::invalid_argument, which + " names shard " + std::to_string(shard) + " of " +
                                                     std::to_string(plan_.sources_.size()));
    const plan_source& source = plan_.sources_[shard];
    if (source.storage == nullptr)
      return about(source.name, error(error_kind::invalid_argument,
                                      which + " names shard " + std::to_string(shard) +
                                          ", which is not open: take a model's requests from its try_request"));
    // Pointers into one array compare with std::less, which is a total order even across arrays.
    const std::less<const tensor_info*> before;
    if (before(tensor, source.tensors.data()) || !before(tensor, source.tensors.data() + source.tensors.size()))
      return about(source.name, error(error_kind::invalid_argument,
                                      which + ": tensor " + quote(tensor->name) + " is not one of this file's tensors"));
    return {};
  }

  // The runs of `tensor` (or of `slice` of it) for request `index`: one group for a whole tensor,
  // a group per run group of a slice, or a group per run where runs are further apart than a
  // merge (a column block of a wide matrix).
  void add(std::size_t index, std::size_t shard, const tensor_info& tensor, const tensor_slice* slice,
           span<std::byte> destination) {
    const std::uint64_t base = plan_.sources_[shard].data_start + tensor.data_offsets[0];
    std::uint64_t delivered = tensor.byte_size();
    if (slice == nullptr) {
      if (delivered != 0) groups_.push_back({shard, base, delivered, delivered, 1, index, 0});
    } else {
      delivered = slice->byte_size();
      const std::uint64_t run_bytes = slice->run_bytes();
      std::uint64_t request_offset = 0;
      slice->for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t runs) {
        if (runs > 1 && stride - run_bytes > merge_gap_) {
          for (std::uint64_t k = 0; k < runs; ++k, request_offset += run_bytes)
            groups_.push_back({shard, base + first + k * stride, run_bytes, run_bytes, 1, index, request_offset});
        } else {
          groups_.push_back({shard, base + first, stride, run_bytes, runs, index, request_offset});
          request_offset += runs * run_bytes;
        }
        return true;
      });
    }
    plan_.requests_.push_back({&tensor, destination, delivered, shard, slice != nullptr});
    plan_.bytes_ += delivered;
  }

  bool direct_for(std::size_t source) const { return direct_ && plan_.sources_[source].read_direct != nullptr; }

  // Sorts the groups, merges them into ranges, cuts the ranges into blocks with their copies, and
  // orders the blocks file by file in turn.
  void lay_out() {
    std::sort(groups_.begin(), groups_.end(), [](const group& a, const group& b) {
      if (a.source != b.source) return a.source < b.source;
      if (a.start != b.start) return a.start < b.start;
      return a.request < b.request;
    });
    std::vector<std::vector<load_plan::block>> per_source(plan_.sources_.size());
    std::size_t first = 0;
    while (first < groups_.size()) {
      const std::size_t source = groups_[first].source;
      std::uint64_t low = widen_down(source, groups_[first].start);
      std::uint64_t high = widen_up(source, groups_[first].end());
      std::size_t last = first + 1;
      while (last < groups_.size() && groups_[last].source == source &&
             widen_down(source, groups_[last].start) <= high + std::min(merge_gap_, ~high)) {
        high = std::max(high, widen_up(source, groups_[last].end()));
        ++last;
      }
      cut(source, low, high, first, last, per_source[source]);
      ++plan_.read_count_;
      first = last;
    }
    plan_.block_size_ = block_size_;
    for (std::size_t round = 0;; ++round) {
      bool any = false;
      for (const auto& blocks : per_source) {
        if (round >= blocks.size()) continue;
        plan_.blocks_.push_back(blocks[round]);
        any = true;
      }
      if (!any) break;
    }
  }

  std::uint64_t widen_down(std::size_t source, std::uint64_t offset) const {
    return direct_for(source) ? offset / direct_io_alignment * direct_io_alignment : offset;
  }
  std::uint64_t widen_up(std::size_t source, std::uint64_t offset) const {
    if (!direct_for(source) || offset > std::numeric_limits<std::uint64_t>::max() - direct_io_alignment) return offset;
    return (offset + direct_io_alignment - 1) / direct_io_alignment * direct_io_alignment;
  }

  // Cuts the range [low, high) of `source`, which covers groups [first, last), into blocks and
  // gives each the copies of the runs (or parts of runs) inside it.
  void cut(std::size_t source, std::uint64_t low, std::uint64_t high, std::size_t first, std::size_t last,
           std::vector<load_plan::block>& blocks) {
    const std::uint64_t file_size = plan_.sources_[source].size;
    std::vector<std::size_t> active;  // groups that reach into the current block or beyond
    std::size_t next = first;
    for (std::uint64_t begin = low; begin < high;) {
      std::uint64_t end = high - begin > block_size_ ? begin + block_size_ : high;
      while (next < last && groups_[next].start < end) active.push_back(next++);
      // A block that ends where a request's bytes end, rather than a little past it, is read
      // straight into that request's destination instead of through staging memory. Direct
      // reads keep their aligned cuts.
      if (!direct_for(source)) {
        for (std::size_t g : active) {
          const std::uint64_t group_end = groups_[g].end();
          if (group_end > begin + block_size_ / 4 && group_end < end) end = group_end;
        }
      }
      const std::size_t first_copy = plan_.copies_.size();
      std::size_t kept = 0;
      for (std::size_t g : active) {
        add_copies(groups_[g], begin, end);
        if (groups_[g].end() > end) active[kept++] = g;
      }
      active.resize(kept);
      // A block inside a gap wider than a block (merge_gap above block_size) holds nothing asked for.
      if (plan_.copies_.size() != first_copy) {
        load_plan::block b{source, begin, end - begin, std::min(end, file_size) - begin, first_copy,
                           plan_.copies_.size() - first_copy};
        plan_.bytes_read_ += b.valid;
        blocks.push_back(b);
      }
      begin = end;
    }
  }

  // The copies of group g's runs that lie in the block [begin, end).
  void add_copies(const group& g, std::uint64_t begin, std::uint64_t end) {
    if (g.end() <= begin || g.start >= end) return;
    auto emit = [&](std::uint64_t run, std::uint64_t from, std::uint64_t to, std::uint64_t runs) {
      // Runs [run, run + runs), or for one run the part [from, to) of the file.
      const std::uint64_t run_start = g.start + run * g.stride;
      plan_.copies_.push_back({g.request, g.request_offset + run * g.run_bytes + (from - run_start), from - begin,
                               runs == 1 ? to - from : g.run_bytes, g.stride, runs});
    };
    // Runs that end after `begin`, and start before `end`.
    std::uint64_t run = begin <= g.start ? 0 : (begin - g.start) / g.stride;
    if (g.start + run * g.stride + g.run_bytes <= begin) ++run;
    const std::uint64_t stop = std::min(g.runs, (end - 1 - g.start) / g.stride + 1);
    if (run >= stop) return;
    auto run_start = [&](std::uint64_t k) { return g.start + k * g.stride; };
    // A run cut by the block's start or end is copied in part, on its own.
    if (run_start(run) < begin || run_start(run) + g.run_bytes > end) {
      emit(run, std::max(run_start(run), begin), std::min(run_start(run) + g.run_bytes, end), 1);
      ++run;
    }
    if (run >= stop) return;
    std::uint64_t whole_stop = stop;
    if (run_start(stop - 1) + g.run_bytes > end) --whole_stop;
    if (whole_stop > run) emit(run, run_start(run), run_start(run) + g.run_bytes, whole_stop - run);
    if (whole_stop < stop) emit(whole_stop, run_start(whole_stop), end, 1);
  }

  load_plan plan_;
  std::vector<group> groups_;
  std::size_t block_size_;
  std::uint64_t merge_gap_;
  bool direct_;
};
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------------------------

/// Options for opening a file.
struct read_options {
  /// Accept bytes after the end of the last tensor (some old writers leave a few). Off by default:
  /// the official reader rejects them as MetadataIncompleteBuffer.
  bool allow_trailing_bytes = false;
  /// Mapped files: keep the kernel from reading around the pages that are touched (MADV_RANDOM),
  /// so touching a tensor loads its pages and no others; prefetch() then reads ahead on request.
  /// Off by default: the kernel's read-ahead serves a cold sequential read best. Either way,
  /// opening reads only the header's pages.
  bool random_access = false;
  /// How F4 and F6 elements lie in their bytes, for the conversions the reader makes (read_as).
  safetensors::packing packing = safetensors::packing::low_first;
};

/// A validated safetensors file over a storage policy. Immutable after opening: any number of
/// threads may use one reader at once. Errors about a file with a path name it first:
/// `"model.safetensors": tensor "b": ...`.
template <class Storage>
class basic_reader {
  static_assert(detail::is_storage<Storage>::value,
                "a storage needs `std::uint64_t size() const` and `result<void> read_at(std::uint64_t offset, "
                "std::byte* destination, std::size_t count) const`, safe to call from many threads at once");

 public:
  /// True when the storage is in memory and views are zero-copy.
  static constexpr bool has_views = detail::has_data<Storage>::value;

  /// Validates the file held by `storage` (every rule of the format) and indexes its tensors.
  /// The header is read in one read when it fits in the storage's first_read_size(), else in two.
  static result<basic_reader> open(Storage storage, const read_options& options = {}) {
    const std::string_view name = detail::storage_name(storage);
    auto fail = [&](error_kind kind, std::string message) { return detail::about(name, error(kind, std::move(message))); };
    // Reading the header must not read around it: the kernel would load megabytes of tensor data.
    if constexpr (detail::has_access_advice<Storage>::value) storage.set_random_access(true);
    const std::uint64_t size = storage.size();
    if (size < 8)
      return fail(error_kind::header_too_small,
                  "the file holds " + std::to_string(size) + " bytes, fewer than the 8-byte header length");
    std::size_t first_read = 8;
    if constexpr (!has_views && detail::has_first_read_size<Storage>::value)
      first_read = static_cast<std::size_t>(std::clamp<std::uint64_t>(storage.first_read_size(), 8, size));
    std::unique_ptr<char[]> prefix(new char[first_read]);
    if (auto read = storage.read_at(0, reinterpret_cast<std::byte*>(prefix.get()), first_read); !read) return read.error();
    const auto header_length = detail::load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(prefix.get()));
    if (header_length > SAFETENSORS_MAX_HEADER_SIZE)
      return fail(error_kind::header_too_large, "header length " + std::to_string(header_length) +
                                                    " exceeds the limit of " + std::to_string(SAFETENSORS_MAX_HEADER_SIZE) +
                                                    " bytes");
    if (header_length > size - 8)
      return fail(error_kind::invalid_header_length, "header length " + std::to_string(header_length) +
                                                         " runs past the end of the file (" + std::to_string(size) +
                                                         " bytes)");
    const std::uint64_t data_size = size - 8 - header_length;
    const auto header_bytes = static_cast<std::size_t>(header_length);
    result<detail::header_index> index = [&]() -> result<detail::header_index> {
      if constexpr (has_views) {
        return detail::parse_header(reinterpret_cast<const char*>(storage.data()) + 8, header_bytes, data_size, options.allow_trailing_bytes);
      } else {
        // Names point into the header: the buffer that holds it goes to the index.
        if (8 + header_bytes <= first_read) {
          const char* text = prefix.get() + 8;
          return detail::parse_header(text, header_bytes, data_size, options.allow_trailing_bytes, std::move(prefix));
        }
        // The prefix holds the header's start: only the rest is read.
        std::unique_ptr<char[]> header(new char[header_bytes]);
        const std::size_t have = first_read - 8;
        std::memcpy(header.get(), prefix.get() + 8, have);
        if (auto read = storage.read_at(first_read, reinterpret_cast<std::byte*>(header.get()) + have, header_bytes - have);
            !read)
          return read.error();
        const char* text = header.get();
        return detail::parse_header(text, header_bytes, data_size, options.allow_trailing_bytes, std::move(header));
      }
    }();
    if (!index) {
      // The storage's own errors already name the file.
      const std::string named = detail::quote(name);
      if (!name.empty() && index.error().message().compare(0, named.size(), named) == 0) return index.error();
      return detail::about(name, index.error());
    }
    if constexpr (detail::has_access_advice<Storage>::value) storage.set_random_access(options.random_access);
    return basic_reader(std::move(storage), std::make_unique<detail::header_index>(std::move(*index)), options.packing);
  }

  /// Every tensor, in data order (by data_offsets, ties by name).
  span<const tensor_info> tensors() const noexcept { return {index_->tensors.data(), index_->tensors.size()}; }
  /// Number of tensors.
  std::size_t size() const noexcept { return index_->tensors.size(); }
  /// The tensor named `name`, or nullptr. O(1).
  const tensor_info* find(std::string_view name) const noexcept { return index_->find(name); }
  /// True when a tensor is named `name`.
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// The tensor named `name`, or TensorNotFound.
  result<const tensor_info*> try_info(std::string_view name) const {
    if (const tensor_info* info = find(name)) return info;
    return named(error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name)));
  }
  /// The tensor named `name`; throws TensorNotFound.
  const tensor_info& info(std::string_view name) const { return *try_info(name).value(); }

  /// A zero-copy view of the tensor named `name`, or TensorNotFound. In-memory storages only.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  result<tensor_view> try_view(std::string_view name) const {
    auto info = try_info(name);
    if (!info) return info.error();
    return view(**info);
  }
  /// A zero-copy view of the tensor named `name`; throws TensorNotFound. In-memory storages only.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  tensor_view view(std::string_view name) const {
    return try_view(name).value();
  }
  /// A zero-copy view of a tensor of this reader. In-memory storages only.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  tensor_view view(const tensor_info& info) const noexcept {
    const std::byte* start = storage_.data() + data_start() + info.data_offsets[0];
    return {&info, span<const std::byte>(start, static_cast<std::size_t>(info.byte_size()))};
  }

  /// A slice of the tensor named `name`: per dimension at(i), range(start, stop, step) or all(),
  /// leading dimensions first. On in-memory storages it can be viewed and copied directly; on
  /// every storage, read_into() and load requests read its bytes and no others.
  result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const {
    auto info = try_info(name);
    if (!info) return info.error();
    result<tensor_slice> slice = [&] {
      if constexpr (has_views) {
        return tensor_slice::make(view(**info), std::move(dims));
      } else {
        return tensor_slice::make(**info, std::move(dims));
      }
    }();
    if (!slice) return named(slice.error());
    return slice;
  }
  /// A slice of the tensor named `name`; throws on TensorNotFound or a slice that does not fit.
  tensor_slice slice(std::string_view name, std::vector<slice_dim> dims) const {
    return try_slice(name, std::move(dims)).value();
  }

  /// Copies a tensor's bytes into `destination`, which must be exactly byte_size() long.
  result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const {
    if (destination.size() != info.byte_size())
      return named(error(error_kind::invalid_tensor_view, "tensor " + detail::quote(info.name) + " has " +
                                                              std::to_string(info.byte_size()) +
                                                              " bytes but the destination holds " +
                                                              std::to_string(destination.size())));
    return storage_.read_at(data_start() + info.data_offsets[0], destination.data(), destination.size());
  }
  /// Copies a tensor's bytes into `destination`; throws on a size mismatch or an I/O error.
  void read_into(const tensor_info& info, span<std::byte> destination) const {
    try_read_into(info, destination).value();
  }
  /// Copies the bytes a slice of one of this reader's tensors selects (in the tensor's dtype,
  /// little-endian, row-major) into `destination`, exactly slice.byte_size() long, reading those
  /// bytes and no others (runs a page or less apart are read as one).
  result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const {
    load_options one_thread;
    one_thread.threads = 1;
    auto plan = detail::plan_builder::build(sources(), slice, destination, one_thread);
    if (!plan) return plan.error();
    return plan->try_execute_into(one_thread);
  }
  /// Copies the bytes a slice selects into `destination`; throws on an error.
  void read_into(const tensor_slice& slice, span<std::byte> destination) const {
    try_read_into(slice, destination).value();
  }
  /// Copies the destination.size() bytes of a tensor that start `offset` bytes into it: a tensor
  /// read piece by piece in bounded memory.
  result<void> try_read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    if (offset > info.byte_size() || destination.size() > info.byte_size() - offset)
      return named(error(error_kind::invalid_tensor_view, "tensor " + detail::quote(info.name) + " has " +
                                                              std::to_string(info.byte_size()) + " bytes; cannot read " +
                                                              std::to_string(destination.size()) + " at offset " +
                                                              std::to_string(offset)));
    return storage_.read_at(data_start() + info.data_offsets[0] + offset, destination.data(), destination.size());
  }
  /// A copy of the bytes of the tensor named `name`.
  result<std::vector<std::byte>> try_read(std::string_view name) const {
    auto info = try_info(name);
    if (!info) return info.error();
    auto bytes = allocate((*info)->byte_size(), (*info)->name);
    if (!bytes) return bytes.error();
    if (auto read = try_read_into(**info, *bytes); !read) return read.error();
    return bytes;
  }
  /// A copy of the bytes of the tensor named `name`; throws on TensorNotFound or an I/O error.
  std::vector<std::byte> read(std::string_view name) const { return try_read(name).value(); }
  /// The elements of the tensor named `name` as values of T (float, std::int64_t, bfloat16, ...),
  /// converted exactly as convert() does (F4 and F6 unpacked as read_options::packing says) and
  /// in host byte order: Python's
  /// get_tensor(name).float() in one call. Storages not in memory read the bytes first, so the
  /// tensor's bytes are held twice while it converts.
  template <class T>
  result<std::vector<T>> try_read_as(std::string_view name) const {
    auto info = try_info(name);
    if (!info) return info.error();
    const tensor_info& tensor = **info;
    if (tensor.element_count > std::numeric_limits<std::size_t>::max() / sizeof(T))
      return named(error(error_kind::io_error, "tensor " + detail::quote(tensor.name) + " does not fit in memory"));
    std::vector<T> values(static_cast<std::size_t>(tensor.element_count));
    result<void> copied = [&]() -> result<void> {
      std::vector<std::byte> read_bytes;
      tensor_view source{&tensor, {}};
      if constexpr (has_views) {
        source = view(tensor);
      } else {
        auto bytes = try_read(name);
        if (!bytes) return bytes.error();  // a read's error names the file already
        read_bytes = std::move(*bytes);
        source.bytes = read_bytes;
      }
      if (auto converted = copy_to(source, span<T>(values), packing_); !converted) return named(converted.error());
      return {};
    }();
    if (!copied) return copied.error();
    return values;
  }
  /// The elements of the tensor named `name` as values of T; throws on an error.
  template <class T>
  std::vector<T> read_as(std::string_view name) const {
    return try_read_as<T>(name).value();
  }
  /// A copy of the bytes a slice selects (see try_read_into for slices).
  result<std::vector<std::byte>> try_read(const tensor_slice& slice) const {
    auto bytes = allocate(slice.byte_size(), slice.info().name);
    if (!bytes) return bytes.error();
    if (auto read = try_read_into(slice, *bytes); !read) return read.error();
    return bytes;
  }
  /// A copy of the bytes a slice selects; throws on an error.
  std::vector<std::byte> read(const tensor_slice& slice) const { return try_read(slice).value(); }

  /// Plans the reads of `requests` (see load_plan): for inspection (bytes, bytes_read), for
  /// prefetch(), or to execute later, while this reader and the destinations live.
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options = {}) const {
    return detail::plan_builder::build(sources(), requests, options);
  }
  /// Copies tensors, or slices of them, into memory the engine owns (pinned staging buffers, an
  /// arena), through a plan read by options.threads threads. Each destination holds exactly the
  /// bytes its request delivers. On an error the destinations hold a mix of old and new bytes.
  result<void> try_load_into(span<const load_request> requests, const load_options& options = {}) const {
    auto plan = try_plan(requests, options);
    if (!plan) return plan.error();
    return plan->try_execute_into(options);
  }
  /// Copies one tensor into `destination` (exactly its byte_size()); see the list form.
  result<void> try_load_into(const tensor_info& info, span<std::byte> destination, const load_options& options = {}) const {
    const load_request request{&info, destination};
    return try_load_into(span<const load_request>(&request, 1), options);
  }
  /// Copies tensors into memory the engine owns; throws on a size mismatch or an I/O error.
  void load_into(span<const load_request> requests, const load_options& options = {}) const {
    try_load_into(requests, options).value();
  }
  /// Copies one tensor into `destination`; throws on a size mismatch or an I/O error.
  void load_into(const tensor_info& info, span<std::byte> destination, const load_options& options = {}) const {
    try_load_into(info, destination, options).value();
  }
  /// Reads `requests` into staging memory of at most options.budget bytes and hands each piece
  /// to `consumer(const load_piece&)` as it arrives (see load_plan::try_execute): reading
  /// overlaps with what the consumer does (an upload to a device), in bounded memory. Blocks are
  /// made no larger than the budget.
  template <class Consumer>
  result<void> try_load(span<const load_request> requests, Consumer&& consumer, const load_options& options = {}) const {
    auto plan = try_plan(requests, within_budget(options));
    if (!plan) return plan.error();
    return plan->try_execute(std::forward<Consumer>(consumer), options);
  }
  /// Reads `requests` and hands them to `consumer` (see try_load); throws on an error.
  template <class Consumer>
  void load(span<const load_request> requests, Consumer&& consumer, const load_options& options = {}) const {
    try_load(requests, std::forward<Consumer>(consumer), options).value();
  }

  /// Starts reading a tensor's pages in ahead of use (mapped files only).
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  result<void> prefetch(const tensor_info& info) const {
    return storage_.prefetch(data_start() + info.data_offsets[0], info.byte_size());
  }
  /// Gives back the memory of a tensor's pages, e.g. once it has been copied to a device (mapped
  /// files only). Pages shared with a neighbouring tensor are released too; they read back in
  /// from the file when touched.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  result<void> release(const tensor_info& info) const {
    return storage_.release(data_start() + info.data_offsets[0], info.byte_size());
  }

  /// The header's `__metadata__` (empty when there is none).
  const metadata_map& metadata() const noexcept { return index_->metadata; }
  /// True when the header has a `__metadata__` object (false for none or null).
  bool has_metadata() const noexcept { return index_->has_metadata; }
  /// N: the header's length in bytes, from the file's first 8 bytes.
  std::uint64_t header_length() const noexcept { return index_->header_length; }
  /// 8 + N: where the data buffer starts in the file.
  std::uint64_t data_start() const noexcept { return 8 + index_->header_length; }
  /// Size of the data buffer in bytes.
  std::uint64_t data_size() const noexcept { return index_->data_size; }
  /// The storage the reader reads from.
  const Storage& storage() const noexcept { return storage_; }
  /// The storage's path (or URL), empty for bytes in memory: what errors name.
  std::string_view name() const noexcept { return detail::storage_name(storage_); }

  /// This reader as one source of a plan: for models, which plan over many readers.
  detail::plan_source plan_source() const { return detail::make_plan_source(storage_, data_start(), tensors()); }

 private:
  basic_reader(Storage storage, std::unique_ptr<detail::header_index> index, safetensors::packing order)
      : storage_(std::move(storage)), index_(std::move(index)), packing_(order) {}

  error named(const error& err) const { return detail::about(name(), err); }

  std::vector<detail::plan_source> sources() const { return {plan_source()}; }

  static load_options within_budget(load_options options) {
    const std::uint64_t most = std::max<std::uint64_t>(options.budget / direct_io_alignment * direct_io_alignment,
                                                       direct_io_alignment);
    if (options.block_size > most) options.block_size = static_cast<std::size_t>(most);
    return options;
  }

  result<std::vector<std::byte>> allocate(std::uint64_t size, std::string_view tensor) const {
    if (size > std::numeric_limits<std::size_t>::max())
      return named(error(error_kind::io_error, "tensor " + detail::quote(tensor) + " does not fit in memory"));
    return std::vector<std::byte>(static_cast<std::size_t>(size));
  }

  Storage storage_;
  std::unique_ptr<detail::header_index> index_;
  safetensors::packing packing_;
};

/// A reader over bytes the caller owns.
using memory_reader = basic_reader<borrowed_bytes>;
/// A reader that owns its bytes.
using buffer_reader = basic_reader<owned_bytes>;

/// Validates the `size` bytes at `data`, which the caller keeps alive as long as the reader.
inline result<memory_reader> try_open_memory(const void* data, std::size_t size, const read_options& options = {}) {
  return memory_reader::open(borrowed_bytes(data, size), options);
}
/// Validates the `size` bytes at `data`; throws safetensors::exception.
inline memory_reader open_memory(const void* data, std::size_t size, const read_options& options = {}) {
  return try_open_memory(data, size, options).value();
}
/// Validates `bytes` and keeps them.
inline result<buffer_reader> try_open_buffer(std::vector<std::byte> bytes, const read_options& options = {}) {
  return buffer_reader::open(owned_bytes(std::move(bytes)), options);
}
/// Validates `bytes` and keeps them; throws safetensors::exception.
inline buffer_reader open_buffer(std::vector<std::byte> bytes, const read_options& options = {}) {
  return try_open_buffer(std::move(bytes), options).value();
}

#ifndef SAFETENSORS_NO_FILESYSTEM
/// A reader over a memory-mapped file.
using mapped_reader = basic_reader<mapped_file>;
/// A reader that reads tensor bytes from the file on demand.
using pread_reader = basic_reader<pread_file>;

/// Maps and validates the file at `path`. Costs O(header): no data page is touched.
inline result<mapped_reader> try_open(const std::string& path, const read_options& options = {}) {
  auto file = mapped_file::open(path);
  if (!file) return file.error();
  return mapped_reader::open(std::move(*file), options);
}
/// Maps and validates the file at `path`; throws safetensors::exception.
inline mapped_reader open(const std::string& path, const read_options& options = {}) {
  return try_open(path, options).value();
}
/// Opens and validates the file at `path`, reading only its header (in one read when it is
/// under 64 KiB).
inline result<pread_reader> try_open_pread(const std::string& path, const read_options& options = {}) {
  auto file = pread_file::open(path);
  if (!file) return file.error();
  return pread_reader::open(std::move(*file), options);
}
/// Opens and validates the file at `path`, reading only its header; throws safetensors::exception.
inline pread_reader open_pread(const std::string& path, const read_options& options = {}) {
  return try_open_pread(path, options).value();
}
#endif

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

/// A tensor to be written: its name, dtype and shape. The data comes separately.
struct tensor_declaration {
  /// The tensor's name: any valid UTF-8 except "__metadata__".
  std::string name;
  /// The element type.
  safetensors::dtype dtype = safetensors::dtype::U8;
  /// Size of each dimension, leading first; empty for a scalar.
  std::vector<std::uint64_t> shape;

  /// The declaration matching a tensor read from a file.
  static tensor_declaration from(const tensor_info& info) {
    return {std::string(info.name), info.dtype, std::vector<std::uint64_t>(info.shape.begin(), info.shape.end())};
  }
  /// A tensor of elements of type T (dtype_for<T>: float is F32, bfloat16 BF16, ...).
  template <class T>
  static tensor_declaration of(std::string name, std::vector<std::uint64_t> shape) {
    return {std::move(name), dtype_for<T>, std::move(shape)};
  }
};

/// A tensor to be written together with its bytes (little-endian, byte_size of the declaration).
struct tensor_source {
  /// No tensor: fill in the fields.
  tensor_source() = default;
  /// The tensor `what` with the bytes `data` (little-endian), which the caller keeps alive.
  tensor_source(tensor_declaration what, span<const std::byte> data) : declaration(std::move(what)), bytes(data) {}
  /// The tensor `name` of shape `shape` holding `values` (a std::vector, std::array or span of
  /// elements of one type T: every arithmetic type, std::complex<float>, and the number types
  /// such as bfloat16), whose dtype is dtype_for<T>. The values are in host byte order (swapped
  /// as they are written on a big-endian host); the caller keeps them alive. Their count must be
  /// the shape's (checked when written).
  template <class Container, class T = std::remove_cv_t<std::remove_pointer_t<decltype(std::declval<const Container&>().data())>>,
            class = decltype(detail::dtype_of<T>::value)>
  tensor_source(std::string name, const Container& values, std::vector<std::uint64_t> shape)
      : declaration{std::move(name), dtype_for<T>, std::move(shape)},
        bytes(reinterpret_cast<const std::byte*>(values.data()), values.size() * sizeof(T)),
        host_order(true) {}

  /// Name, dtype and shape.
  tensor_declaration declaration;
  /// The tensor's bytes, which the caller keeps alive until the write returns.
  span<const std::byte> bytes;
  /// True when `bytes` hold elements in host byte order rather than the file's little-endian.
  bool host_order = false;
};

/// The `__metadata__` of a file to write. Default-constructed: none, and the header has no
/// `__metadata__` key. Made from a map: those entries, written in key byte order; an empty map
/// writes `"__metadata__":{}`.
class metadata_entries {
 public:
  /// No metadata.
  metadata_entries() = default;
  /// These entries (implicit, so a map can be passed where metadata is expected).
  metadata_entries(std::map<std::string, std::string> entries) : entries_(std::move(entries)), present_(true) {}
  /// The entries of a file that was read, or none when it had no `__metadata__`.
  template <class Storage>
  static metadata_entries from(const basic_reader<Storage>& reader) {
    if (!reader.has_metadata()) return {};
    return std::map<std::string, std::string>(reader.metadata().begin(), reader.metadata().end());
  }

  /// True when a `__metadata__` object is to be written.
  bool present() const noexcept { return present_; }
  /// The entries, in key order.
  const std::map<std::string, std::string>& entries() const noexcept { return entries_; }

 private:
  std::map<std::string, std::string> entries_;
  bool present_ = false;
};

/// Options for writing.
struct write_options {
  /// The data buffer starts at a multiple of this many bytes from the start of the file: a power
  /// of two from 8 (the official writer's, and the default) to 2^30, else InvalidArgument. 64 or
  /// 4096 suit DMA and direct I/O; the header is padded with spaces, which every reader accepts.
  std::uint64_t alignment = 8;
  /// Path targets: flush the file to stable storage before renaming it into place, and the
  /// directory after (a failure to flush the directory is ignored: the file itself is safe).
  /// Slower; survives power loss, not only crashes.
  bool sync = false;
};

namespace detail {

/// Appends `text` as a JSON string literal escaped exactly as the official writer (serde_json)
/// does: a quote and a backslash escaped, the two-character escapes for backspace, form feed,
/// newline, return and tab, and a u-escape with lowercase hex digits for other control bytes.
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          append_unicode_escape(out, byte);
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

inline bool is_valid_utf8(std::string_view text) noexcept {
  return utf8_invalid_at(reinterpret_cast<const unsigned char*>(text.data()), text.size()) == text.size();
}

}  // namespace detail

/// The layout of a file to be written, computed from the declarations alone, as the official
/// writer lays it out: tensors ordered by dtype (largest alignment first) then name, packed back
/// to back, compact header JSON padded with spaces. Knowing it, the header can be written first
/// and the data streamed after.
class file_layout {
 public:
  /// One tensor's place in the file.
  struct entry {
    /// The declaration.
    tensor_declaration declaration;
    /// [begin, end) relative to the data buffer.
    std::array<std::uint64_t, 2> data_offsets{};
    /// data_offsets[1] - data_offsets[0].
    std::uint64_t byte_size() const noexcept { return data_offsets[1] - data_offsets[0]; }
  };

  /// Validates the declarations (unique names, no "__metadata__", valid UTF-8, whole bytes, no
  /// overflow, header within the limit) and lays the file out.
  static result<file_layout> make(std::vector<tensor_declaration> declarations, const metadata_entries& metadata = {},
                                  const write_options& options = {}) {
    if (options.alignment < 8 || (options.alignment & (options.alignment - 1)) != 0 || options.alignment > (1u << 30))
      return error(error_kind::invalid_argument, "alignment " + std::to_string(options.alignment) +
                                                     " is not a power of two between 8 and 2^30");
    file_layout layout;
    layout.entries_.reserve(declarations.size());
    for (tensor_declaration& declaration : declarations) layout.entries_.push_back({std::move(declaration), {}});
    std::sort(layout.entries_.begin(), layout.entries_.end(), [](const entry& a, const entry& b) {
      if (a.declaration.dtype != b.declaration.dtype) return a.declaration.dtype > b.declaration.dtype;
      return a.declaration.name < b.declaration.name;
    });

    std::vector<const std::string*> names;
    names.reserve(layout.entries_.size());
    for (const entry& e : layout.entries_) names.push_back(&e.declaration.name);
    std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (std::size_t i = 1; i < names.size(); ++i) {
      if (*names[i] == *names[i - 1])
        return error(error_kind::invalid_header_deserialization,
                     "two tensors are named " + detail::quote(*names[i]) + ": names must be unique");
    }

    std::uint64_t offset = 0;
    for (entry& e : layout.entries_) {
      const tensor_declaration& d = e.declaration;
      if (d.name == "__metadata__")
        return error(error_kind::invalid_header_deserialization,
                     "a tensor cannot be named \"__metadata__\": the name is reserved for metadata");
      if (!detail::is_valid_utf8(d.name))
        return error(error_kind::invalid_header, "tensor name " + detail::quote(d.name) + " is not valid UTF-8");
      auto size = detail::size_of_tensor(d.name, d.dtype, d.shape);
      if (!size) return size.error();
      std::uint64_t end = 0;
      if (!detail::checked_add(offset, size->bytes, end))
        return error(error_kind::validation_overflow,
                     "tensor " + detail::quote(d.name) + ": the data buffer's size overflows 64 bits");
      e.data_offsets = {offset, end};
      offset = end;
    }
    layout.data_size_ = offset;

    std::string& json = layout.header_;
    json.assign(8, '\0');
    json += '{';
    if (metadata.present()) {
      json += "\"__metadata__\":{";
      bool first = true;
      for (const auto& [key, value] : metadata.entries()) {
        if (!detail::is_valid_utf8(key) || !detail::is_valid_utf8(value))
          return error(error_kind::invalid_header, "metadata key " + detail::quote(key) + " or its value is not valid UTF-8");
        if (!first) json += ',';
        first = false;
        detail::append_json_string(json, key);
        json += ':';
        detail::append_json_string(json, value);
      }
      json += '}';
      if (!layout.entries_.empty()) json += ',';
    }
    for (std::size_t i = 0; i < layout.entries_.size(); ++i) {
      const entry& e = layout.entries_[i];
      if (i) json += ',';
      detail::append_json_string(json, e.declaration.name);
      json += ":{\"dtype\":\"";
      json += dtype_name(e.declaration.dtype);
      json += "\",\"shape\":[";
      for (std::size_t d = 0; d < e.declaration.shape.size(); ++d) {
        if (d) json += ',';
        json += std::to_string(e.declaration.shape[d]);
      }
      json += "],\"data_offsets\":[";
      json += std::to_string(e.data_offsets[0]);
      json += ',';
      json += std::to_string(e.data_offsets[1]);
      json += "]}";
    }
    json += '}';
    const std::uint64_t unpadded = json.size();
    const std::uint64_t padded = (unpadded + options.alignment - 1) / options.alignment * options.alignment;
    const std::uint64_t header_length = padded - 8;
    if (header_length > SAFETENSORS_MAX_HEADER_SIZE)
      return error(error_kind::header_too_large, "the header would be " + std::to_string(header_length) +
                                                     " bytes, over the limit of " +
                                                     std::to_string(SAFETENSORS_MAX_HEADER_SIZE));
    std::uint64_t file_size = 0;
    if (!detail::checked_add(padded, layout.data_size_, file_size))
      return error(error_kind::validation_overflow, "the file's size overflows 64 bits");
    json.append(static_cast<std::size_t>(padded - unpadded), ' ');
    for (int i = 0; i < 8; ++i) json[static_cast<std::size_t>(i)] = static_cast<char>((header_length >> (8 * i)) & 0xff);

    layout.by_name_.resize(layout.entries_.size());
    for (std::size_t i = 0; i < layout.entries_.size(); ++i) layout.by_name_[i] = i;
    std::sort(layout.by_name_.begin(), layout.by_name_.end(), [&](std::size_t a, std::size_t b) {
      return layout.entries_[a].declaration.name < layout.entries_[b].declaration.name;
    });
    return layout;
  }

  /// Tensors in file order.
  const std::vector<entry>& entries() const noexcept { return entries_; }
  /// Position in entries() of the tensor named `name`, or nullopt. O(log n).
  std::optional<std::size_t> find(std::string_view name) const noexcept {
    auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                               [&](std::size_t i, std::string_view n) { return entries_[i].declaration.name < n; });
    if (it == by_name_.end() || entries_[*it].declaration.name != name) return std::nullopt;
    return *it;
  }
  /// The first 8 + N bytes of the file: length prefix, JSON and padding.
  std::string_view header() const noexcept { return header_; }
  /// 8 + N: where the data buffer starts.
  std::uint64_t data_start() const noexcept { return header_.size(); }
  /// Size of the data buffer.
  std::uint64_t data_size() const noexcept { return data_size_; }
  /// Size of the whole file.
  std::uint64_t file_size() const noexcept { return header_.size() + data_size_; }

 private:
  std::vector<entry> entries_;
  std::vector<std::size_t> by_name_;
  std::string header_;
  std::uint64_t data_size_ = 0;
};

// Sinks: where a writer's bytes go. Each has
//   static constexpr bool positioned;       // accepts tensors in any order
//   result<void> write_at(std::uint64_t offset, const std::byte* bytes, std::size_t count);
//   result<void> commit();                  // every byte is written: make the file visible
//   void discard() noexcept;                // the write failed: leave no trace
// A sequential sink (positioned == false) is always written at increasing, contiguous offsets.

/// A sink that fills a byte vector sized to the whole file.
class vector_sink {
 public:
  static constexpr bool positioned = true;
  /// Writes into `bytes`, which is resized to `file_size` now.
  static result<vector_sink> create(std::vector<std::byte>& bytes, std::uint64_t file_size) {
    if (file_size > std::numeric_limits<std::size_t>::max() / 2)
      return error(error_kind::io_error, "a file of " + std::to_string(file_size) + " bytes does not fit in memory");
    bytes.assign(static_cast<std::size_t>(file_size), std::byte{0});
    return vector_sink(bytes);
  }
  result<void> write_at(std::uint64_t offset, const std::byte* data, std::size_t count) {
    if (count != 0) std::memcpy(bytes_->data() + offset, data, count);
    return {};
  }
  result<void> commit() { return {}; }
  void discard() noexcept { bytes_->clear(); }

 private:
  explicit vector_sink(std::vector<std::byte>& bytes) : bytes_(&bytes) {}
  std::vector<std::byte>* bytes_;
};

/// A sink that writes to a std::ostream, in file order.
class ostream_sink {
 public:
  static constexpr bool positioned = false;
  /// Writes to `stream`, which must outlive the writer.
  explicit ostream_sink(std::ostream& stream) : stream_(&stream) {}
  result<void> write_at(std::uint64_t, const std::byte* data, std::size_t count) {
    stream_->write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count));
    if (!*stream_) return error(error_kind::io_error, "the output stream failed");
    return {};
  }
  result<void> commit() {
    stream_->flush();
    if (!*stream_) return error(error_kind::io_error, "the output stream failed");
    return {};
  }

  /// Bytes already in the stream stay there: a stream cannot be unwritten.
  void discard() noexcept {}

 private:
  std::ostream* stream_;
};

#ifndef SAFETENSORS_NO_FILESYSTEM
/// A sink that writes a temporary file beside `path` and renames it over `path` at commit, so no
/// reader ever sees a half-written file under the final name and existing mappings of the old
/// file stay valid. Abandoned (destroyed before commit), it removes the temporary file.
class file_sink {
 public:
  static constexpr bool positioned = true;

  /// Creates the temporary file (mode 0666 less the umask, as for any new file).
  static result<file_sink> create(const std::string& path, bool sync) {
    file_sink sink;
    sink.path_ = path;
    sink.sync_ = sync;
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto stamp = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
      sink.temp_path_ = path + ".tmp." + std::to_string(detail::process_id()) + "." +
                        std::to_string(counter.fetch_add(1)) + "." + std::to_string(stamp % 1000000007ULL);
#if defined(_WIN32)
      HANDLE handle = CreateFileW(detail::widen(sink.temp_path_).c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW,
                                  FILE_ATTRIBUTE_NORMAL, nullptr);
      if (handle != INVALID_HANDLE_VALUE) {
        sink.file_ = detail::file_handle(handle);
        return sink;
      }
      if (GetLastError() != ERROR_FILE_EXISTS)
        return error(error_kind::io_error, detail::system_error_text("cannot create", sink.temp_path_));
#else
      int fd = ::open(sink.temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        sink.file_ = detail::file_handle(fd);
        return sink;
      }
      if (errno != EEXIST) return error(error_kind::io_error, detail::system_error_text("cannot create", sink.temp_path_));
#endif
    }
    return error(error_kind::io_error, "cannot find a free temporary name beside " + detail::quote(path));
  }

  file_sink(file_sink&& other) noexcept
      : file_(std::move(other.file_)),
        path_(std::move(other.path_)),
        temp_path_(std::exchange(other.temp_path_, std::string())),
        sync_(other.sync_) {}
  file_sink& operator=(file_sink&& other) noexcept {
    if (this != &other) {
      discard();
      file_ = std::move(other.file_);
      path_ = std::move(other.path_);
      temp_path_ = std::exchange(other.temp_path_, std::string());
      sync_ = other.sync_;
    }
    return *this;
  }
  file_sink(const file_sink&) = delete;
  file_sink& operator=(const file_sink&) = delete;
  ~file_sink() { discard(); }

  result<void> write_at(std::uint64_t offset, const std::byte* data, std::size_t count) {
    while (count > 0) {
#if defined(_WIN32)
      OVERLAPPED position{};
      position.Offset = static_cast<DWORD>(offset);
      position.OffsetHigh = static_cast<DWORD>(offset >> 32);
      DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(count, 1u << 30));
      DWORD done = 0;
      if (!WriteFile(file_.get(), data, chunk, &done, &position))
        return error(error_kind::io_error, detail::system_error_text("cannot write", temp_path_));
#else
      ssize_t done = ::pwrite(file_.get(), data, std::min<std::size_t>(count, std::size_t{1} << 30),
                              static_cast<off_t>(offset));
      if (done < 0) {
        if (errno == EINTR) continue;
        return error(error_kind::io_error, detail::system_error_text("cannot write", temp_path_));
      }
#endif
      data += done;
      offset += static_cast<std::uint64_t>(done);
      count -= static_cast<std::size_t>(done);
    }
    return {};
  }

  /// Flushes (with `sync`) and closes the temporary file, which stays under its temporary name:
  /// commit() then only renames it. A set of files (a sharded model's) can so be completed one at
  /// a time, with one file open, and renamed together.
  result<void> close() {
    if (!file_) return {};
#if defined(_WIN32)
    if (sync_ && !FlushFileBuffers(file_.get()))
      return error(error_kind::io_error, detail::system_error_text("cannot flush", temp_path_));
    file_ = detail::file_handle();
#else
    if (sync_ && ::fsync(file_.get()) != 0)
      return error(error_kind::io_error, detail::system_error_text("cannot sync", temp_path_));
    if (::close(file_.release()) != 0)
      return error(error_kind::io_error, detail::system_error_text("cannot close", temp_path_));
#endif
    return {};
  }

  /// Closes the temporary file (flushed with `sync`) and renames it over the target.
  result<void> commit() {
    if (auto closed = close(); !closed) return closed;
    const std::string renaming = "cannot rename " + detail::quote(temp_path_) + " over it";
#if defined(_WIN32)
    if (!MoveFileExW(detail::widen(temp_path_).c_str(), detail::widen(path_).c_str(),
                     MOVEFILE_REPLACE_EXISTING | (sync_ ? MOVEFILE_WRITE_THROUGH : 0)))
      return error(error_kind::io_error, detail::system_error_text(renaming, path_));
#else
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
      return error(error_kind::io_error, detail::system_error_text(renaming, path_));
    if (sync_) {
      std::string::size_type slash = path_.rfind('/');
      std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
      int fd = ::open(directory.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
      }
    }
#endif
    temp_path_.clear();
    return {};
  }

  /// Closes and removes the temporary file, unless it was committed.
  void discard() noexcept {
    if (temp_path_.empty()) return;
    file_ = detail::file_handle();
#if defined(_WIN32)
    DeleteFileW(detail::widen(temp_path_).c_str());
#else
    ::unlink(temp_path_.c_str());
#endif
    temp_path_.clear();
  }

 private:
  file_sink() = default;

  detail::file_handle file_;
  std::string path_;
  std::string temp_path_;  // empty once committed or discarded
  bool sync_ = false;
};
#endif  // SAFETENSORS_NO_FILESYSTEM

/// Writes a file whose layout is fixed up front: the header at creation, then each tensor's bytes
/// in any number of chunks, then finish(). Positioned sinks (vector, path) take tensors in any
/// order; a stream takes them in file order. Memory stays at the header plus a bounded buffer,
/// whatever the file's size.
template <class Sink>
class basic_writer {
 public:
  /// Bytes gathered before they go to the sink; larger chunks go straight through.
  static constexpr std::size_t buffer_size = std::size_t{1} << 20;

  /// Writes the header of `layout` to `sink`.
  static result<basic_writer> start(file_layout layout, Sink sink) {
    basic_writer writer(std::move(layout), std::move(sink));
    const std::string_view header = writer.layout_.header();
    if (auto wrote = writer.sink_.write_at(0, reinterpret_cast<const std::byte*>(header.data()), header.size()); !wrote)
      return wrote.error();
    writer.written_.assign(writer.layout_.entries().size(), 0);
    writer.stream_position_ = header.size();
    return writer;
  }

  /// The layout being written.
  const file_layout& layout() const noexcept { return layout_; }
  /// True when every tensor has all its bytes (finish() can succeed).
  bool complete() const noexcept {
    for (std::size_t i = 0; i < written_.size(); ++i) {
      if (written_[i] != layout_.entries()[i].byte_size()) return false;
    }
    return true;
  }
  /// True once finish() was called.
  bool finished() const noexcept { return finished_; }

  /// Appends `chunk` to the bytes written so far of the tensor named `name`. Refuses a chunk that
  /// would overrun the tensor, and on a stream, a tensor out of file order.
  result<void> try_write(std::string_view name, span<const std::byte> chunk) {
    auto index = index_of(name);
    if (!index) return index.error();
    return write_chunk(*index, chunk.data(), chunk.size());
  }
  /// Appends `chunk` to the tensor named `name` (see try_write); throws on an error.
  void write(std::string_view name, span<const std::byte> chunk) { try_write(name, chunk).value(); }

  /// Fills the tensor named `name` from `producer(span<std::byte> destination, std::uint64_t
  /// tensor_offset)`, called with successive pieces of at most buffer_size bytes until the tensor
  /// is complete; `producer` fills all of `destination` and returns void or result<void> (an error
  /// stops the write). For data made on the fly (a conversion, a generator) without a full copy.
  /// buffer_size is a multiple of every element size, so a piece always holds whole elements.
  template <class Producer>
  result<void> try_produce(std::string_view name, Producer&& producer) {
    auto index = index_of(name);
    if (!index) return index.error();
    if (auto ordered = check_stream_order(*index); !ordered) return ordered;
    const auto& entry = layout_.entries()[*index];
    std::vector<std::byte> piece(static_cast<std::size_t>(std::min<std::uint64_t>(buffer_size, entry.byte_size())));
    while (written_[*index] < entry.byte_size()) {
      const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), entry.byte_size() - written_[*index]));
      span<std::byte> destination(piece.data(), count);
      if constexpr (std::is_void_v<decltype(producer(destination, written_[*index]))>) {
        producer(destination, written_[*index]);
      } else {
        if (auto made = producer(destination, written_[*index]); !made) return made.error();
      }
      if (auto wrote = write_chunk(*index, piece.data(), count); !wrote) return wrote.error();
    }
    return {};
  }
  /// Fills the tensor named `name` from a producer (see try_produce); throws on an error.
  template <class Producer>
  void produce(std::string_view name, Producer&& producer) {
    try_produce(name, std::forward<Producer>(producer)).value();
  }

  /// Checks that every tensor is complete, flushes, and commits the sink (for a path: renames the
  /// temporary file over the target). The writer is done afterwards, whatever the outcome; on a
  /// failure nothing is left behind (for a path: the temporary file is removed at once).
  result<void> try_finish() {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    finished_ = true;
    result<void> outcome = closed_ ? sink_.commit() : complete_and_commit();
    if (!outcome) sink_.discard();
    buffer_ = std::vector<std::byte>();
    return outcome;
  }
  /// Completes the file (see try_finish); throws on an error.
  void finish() { try_finish().value(); }

  /// Sinks that can close (a path): checks that every tensor is complete, flushes, and closes the
  /// file without publishing it (it stays under its temporary name, and no file is open);
  /// finish() then renames it into place. The writer takes no more bytes. An incomplete tensor
  /// is an error that leaves the writer as it was; a failure to close ends the writer.
  template <class S = Sink, class = decltype(std::declval<S&>().close())>
  result<void> try_close() {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    if (closed_) return {};
    if (auto complete = check_complete(); !complete) return complete;
    result<void> outcome = flush();
    if (outcome) outcome = sink_.close();
    if (!outcome) {
      finished_ = true;
      sink_.discard();
      return outcome;
    }
    closed_ = true;
    buffer_ = std::vector<std::byte>();
    return {};
  }
  /// Closes the complete file without publishing it (see try_close); throws on an error.
  template <class S = Sink, class = decltype(std::declval<S&>().close())>
  void close() {
    try_close().value();
  }
  /// True once close() succeeded.
  bool closed() const noexcept { return closed_; }

 private:
  basic_writer(file_layout layout, Sink sink) : layout_(std::move(layout)), sink_(std::move(sink)) {}

  result<void> check_complete() const {
    for (std::size_t i = 0; i < written_.size(); ++i) {
      const auto& entry = layout_.entries()[i];
      if (written_[i] != entry.byte_size())
        return error(error_kind::tensor_invalid_info, "tensor " + detail::quote(entry.declaration.name) + " got " +
                                                          std::to_string(written_[i]) + " of its " +
                                                          std::to_string(entry.byte_size()) + " bytes");
    }
    return {};
  }

  result<void> complete_and_commit() {
    if (auto complete = check_complete(); !complete) return complete;
    if (auto flushed = flush(); !flushed) return flushed;
    return sink_.commit();
  }

  // A stream takes bytes only at its end: the tensor must be the next one in file order.
  result<void> check_stream_order(std::size_t index) const {
    if constexpr (!Sink::positioned) {
      const auto& entry = layout_.entries()[index];
      if (layout_.data_start() + entry.data_offsets[0] + written_[index] != stream_position_)
        return error(error_kind::invalid_argument,
                     "tensor " + detail::quote(entry.declaration.name) +
                         " is out of file order: a stream takes every tensor's bytes in file order, and " +
                         detail::quote(next_in_file_order()) + " comes next");
    }
    (void)index;
    return {};
  }

  result<std::size_t> index_of(std::string_view name) const {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    if (closed_) return error(error_kind::invalid_argument, "the writer's file is complete and closed");
    auto index = layout_.find(name);
    if (!index) return error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name) + " was declared");
    return *index;
  }

  result<void> write_chunk(std::size_t index, const std::byte* data, std::size_t count) {
    const auto& entry = layout_.entries()[index];
    const std::uint64_t done = written_[index];
    if (count > entry.byte_size() - done)
      return error(error_kind::tensor_invalid_info, "tensor " + detail::quote(entry.declaration.name) + " has " +
                                                        std::to_string(entry.byte_size()) + " bytes; " +
                                                        std::to_string(done) + " are written and a chunk of " +
                                                        std::to_string(count) + " would overrun it");
    const std::uint64_t offset = layout_.data_start() + entry.data_offsets[0] + done;
    if (auto ordered = check_stream_order(index); !ordered) return ordered;
    if (count == 0) return {};
    // Contiguous small chunks are gathered so the sink sees few large writes.
    if (offset != buffered_start_ + buffer_.size() || buffer_.size() + count > buffer_size) {
      if (auto flushed = flush(); !flushed) return flushed;
      buffered_start_ = offset;
    }
    if (count >= buffer_size) {
      if (auto wrote = sink_.write_at(offset, data, count); !wrote) return wrote;
      buffered_start_ = offset + count;
    } else {
      if (buffer_.capacity() == 0) buffer_.reserve(buffer_size);
      buffer_.insert(buffer_.end(), data, data + count);
    }
    written_[index] = done + count;
    stream_position_ = offset + count;
    return {};
  }

  result<void> flush() {
    if (buffer_.empty()) return {};
    auto wrote = sink_.write_at(buffered_start_, buffer_.data(), buffer_.size());
    buffered_start_ += buffer_.size();
    buffer_.clear();
    return wrote;
  }

  std::string next_in_file_order() const {
    for (std::size_t i = 0; i < written_.size(); ++i) {
      if (written_[i] != layout_.entries()[i].byte_size()) return layout_.entries()[i].declaration.name;
    }
    return "";
  }

  file_layout layout_;
  Sink sink_;
  std::vector<std::uint64_t> written_;
  std::vector<std::byte> buffer_;
  std::uint64_t buffered_start_ = 0;
  std::uint64_t stream_position_ = 0;
  bool finished_ = false;
  bool closed_ = false;
};

namespace detail {
inline result<file_layout> layout_of(const std::vector<tensor_source>& tensors, const metadata_entries& metadata,
                                     const write_options& options) {
  std::vector<tensor_declaration> declarations;
  declarations.reserve(tensors.size());
  for (const tensor_source& t : tensors) declarations.push_back(t.declaration);
  return file_layout::make(std::move(declarations), metadata, options);
}

// The layout of `tensors`, whose data must match their declarations: checked before any sink is
// made, so that nothing is allocated or created for a size the data does not have.
inline result<file_layout> checked_layout(const std::vector<tensor_source>& tensors, const metadata_entries& metadata,
                                          const write_options& options) {
  auto layout = layout_of(tensors, metadata, options);
  if (!layout) return layout.error();
  for (const tensor_source& t : tensors) {
    const auto& entry = layout->entries()[*layout->find(t.declaration.name)];
    if (t.bytes.size() != entry.byte_size())
      return error(error_kind::tensor_invalid_info,
                   "tensor " + quote(t.declaration.name) + " has " + std::to_string(t.bytes.size()) + " bytes of data but " +
                       std::string(dtype_name(t.declaration.dtype)) + " of its shape needs " +
                       std::to_string(entry.byte_size()));
  }
  return layout;
}

// Writes every tensor of `tensors` (checked by checked_layout) through a writer over `sink`, in
// file order, which every sink takes.
template <class Sink>
result<void> write_all(file_layout layout, Sink sink, const std::vector<tensor_source>& tensors) {
  std::vector<const tensor_source*> in_file_order(tensors.size(), nullptr);
  for (const tensor_source& t : tensors) in_file_order[*layout.find(t.declaration.name)] = &t;
  auto writer = basic_writer<Sink>::start(std::move(layout), std::move(sink));
  if (!writer) return writer.error();
  for (const tensor_source* t : in_file_order) {
    if constexpr (host_is_big_endian) {
      if (t->host_order) {
        // Swapped piece by piece into the file's byte order (pieces hold whole elements).
        auto swapped = writer->try_produce(t->declaration.name, [&](span<std::byte> piece, std::uint64_t offset) {
          std::memcpy(piece.data(), t->bytes.data() + offset, piece.size());
          to_host_order(piece, t->declaration.dtype);
        });
        if (!swapped) return swapped;
        continue;
      }
    }
    if (auto wrote = writer->try_write(t->declaration.name, t->bytes); !wrote) return wrote;
  }
  return writer->try_finish();
}
}  // namespace detail

/// A writer into a byte vector.
using vector_writer = basic_writer<vector_sink>;
/// A writer to a std::ostream (tensors in file order).
using stream_writer = basic_writer<ostream_sink>;

/// The bytes of a file holding `tensors` and `metadata`, laid out as the official writer does.
inline result<std::vector<std::byte>> try_serialize(const std::vector<tensor_source>& tensors,
                                                    const metadata_entries& metadata = {},
                                                    const write_options& options = {}) {
  auto layout = detail::checked_layout(tensors, metadata, options);
  if (!layout) return layout.error();
  std::vector<std::byte> bytes;
  auto sink = vector_sink::create(bytes, layout->file_size());
  if (!sink) return sink.error();
  if (auto wrote = detail::write_all(std::move(*layout), std::move(*sink), tensors); !wrote) return wrote.error();
  return bytes;
}
/// The bytes of a file holding `tensors` and `metadata`; throws safetensors::exception.
inline std::vector<std::byte> serialize(const std::vector<tensor_source>& tensors, const metadata_entries& metadata = {},
                                        const write_options& options = {}) {
  return try_serialize(tensors, metadata, options).value();
}

/// Writes a file holding `tensors` and `metadata` to `stream`.
inline result<void> try_serialize(std::ostream& stream, const std::vector<tensor_source>& tensors,
                                  const metadata_entries& metadata = {}, const write_options& options = {}) {
  auto layout = detail::checked_layout(tensors, metadata, options);
  if (!layout) return layout.error();
  return detail::write_all(std::move(*layout), ostream_sink(stream), tensors);
}
/// Writes a file holding `tensors` and `metadata` to `stream`; throws safetensors::exception.
inline void serialize(std::ostream& stream, const std::vector<tensor_source>& tensors,
                      const metadata_entries& metadata = {}, const write_options& options = {}) {
  try_serialize(stream, tensors, metadata, options).value();
}

/// Starts writing a file to `stream`: the header now, the tensors' bytes through the writer, in
/// file order (`layout().entries()`).
inline result<stream_writer> try_make_stream_writer(std::ostream& stream, std::vector<tensor_declaration> declarations,
                                                    const metadata_entries& metadata = {},
                                                    const write_options& options = {}) {
  auto layout = file_layout::make(std::move(declarations), metadata, options);
  if (!layout) return layout.error();
  return stream_writer::start(std::move(*layout), ostream_sink(stream));
}
/// Starts writing a file to `stream`; throws safetensors::exception.
inline stream_writer make_stream_writer(std::ostream& stream, std::vector<tensor_declaration> declarations,
                                        const metadata_entries& metadata = {}, const write_options& options = {}) {
  return try_make_stream_writer(stream, std::move(declarations), metadata, options).value();
}

#ifndef SAFETENSORS_NO_FILESYSTEM
/// A writer to a path, through a temporary file renamed into place by finish().
using file_writer = basic_writer<file_sink>;

/// Starts writing a file at `path`: tensors' bytes may then come in any order. Until finish()
/// succeeds, `path` is untouched; a writer destroyed before that removes its temporary file.
inline result<file_writer> try_make_file_writer(const std::string& path, std::vector<tensor_declaration> declarations,
                                                const metadata_entries& metadata = {},
                                                const write_options& options = {}) {
  auto layout = file_layout::make(std::move(declarations), metadata, options);
  if (!layout) return layout.error();
  auto sink = file_sink::create(path, options.sync);
  if (!sink) return sink.error();
  return file_writer::start(std::move(*layout), std::move(*sink));
}
/// Starts writing a file at `path`; throws safetensors::exception.
inline file_writer make_file_writer(const std::string& path, std::vector<tensor_declaration> declarations,
                                    const metadata_entries& metadata = {}, const write_options& options = {}) {
  return try_make_file_writer(path, std::move(declarations), metadata, options).value();
}

/// Writes a file holding `tensors` and `metadata` at `path`, crash-safe: the file appears whole
/// under its name, or not at all.
inline result<void> try_save(const std::string& path, const std::vector<tensor_source>& tensors,
                             const metadata_entries& metadata = {}, const write_options& options = {}) {
  auto layout = detail::checked_layout(tensors, metadata, options);
  if (!layout) return layout.error();
  auto sink = file_sink::create(path, options.sync);
  if (!sink) return sink.error();
  return detail::write_all(std::move(*layout), std::move(*sink), tensors);
}
/// Writes a file holding `tensors` and `metadata` at `path`; throws safetensors::exception.
inline void save(const std::string& path, const std::vector<tensor_source>& tensors,
                 const metadata_entries& metadata = {}, const write_options& options = {}) {
  try_save(path, tensors, metadata, options).value();
}
#endif

}  // namespace safetensors

#endif  // SAFETENSORS_HPP
