// safetensors-hpp: span<T>, std::span under C++20 and a minimal equivalent under C++17.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_SPAN_HPP
#define SAFETENSORS_SPAN_HPP

#include "config.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>

#if defined(__cpp_lib_span) || (__cplusplus >= 202002L && __has_include(<span>))
#include <span>
#endif

namespace safetensors {

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
            class = std::enable_if_t<!std::is_same_v<std::remove_cv_t<std::remove_reference_t<Container> >, span> &&
                                     std::is_convertible_v<decltype(std::declval<Container&>().data()), T*> > >
  constexpr span(Container& container) noexcept : data_(container.data()), size_(container.size()) {}
  /// A view of a container of const elements, temporaries included, as std::span allows: the
  /// span must not outlive the full expression it is made in.
  template <class Container,
            class = std::enable_if_t<std::is_const_v<T> && !std::is_same_v<std::remove_cv_t<Container>, span> &&
                                     std::is_convertible_v<decltype(std::declval<const Container&>().data()), T*> > >
  constexpr span(const Container& container) noexcept : data_(container.data()), size_(container.size()) {}
  /// A span of const T from a span of T.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]> > >
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

}  // namespace safetensors

#endif  // SAFETENSORS_SPAN_HPP
