// safetensors-hpp: slices of tensors: slice_dim, at, range, all, to_end and tensor_slice.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_SLICE_HPP
#define SAFETENSORS_SLICE_HPP

#include "tensor.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace safetensors {

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
  static result<tensor_slice> try_make(const tensor_info& info, std::vector<slice_dim> dims) {
    return try_make(tensor_view{&info, {}}, std::move(dims));
  }
  /// As the other form, keeping the view's bytes for try_bytes() and try_copy_to().
  static result<tensor_slice> try_make(const tensor_view& tensor, std::vector<slice_dim> dims) {
    const span<const std::uint64_t> shape = tensor.shape();
    const std::string subject = "slice of tensor " + detail::quote(tensor.name());
    if (dims.size() > shape.size())
      return error(error_kind::invalid_argument, subject + ": " + std::to_string(dims.size()) +
                                                     " dimensions given for a tensor of rank " +
                                                     std::to_string(shape.size()));
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
          return error(error_kind::invalid_argument,
                       where + "index " + std::to_string(want.start) + " is out of range");
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
        // Counted so that no step, however close to 2^64, wraps around. A step that takes one
        // element at most is kept as 1: only steps between taken elements enter the byte
        // strides, and those are below the dimension's size, so no product of them overflows.
        const std::uint64_t count = stop > start ? (stop - start - 1) / want.step + 1 : 0;
        t = {start, count, count > 1 ? want.step : 1};
        slice.shape_.push_back(t.count);
      }
      slice.taken_.push_back(t);
      slice.count_ *= t.count;  // at most the tensor's element count, which fits
    }
    slice.find_runs();
    if (auto aligned = slice.check_byte_aligned(); !aligned) return aligned.error();
    return slice;
  }
  /// As try_make; throws safetensors::exception (aborts without exceptions) on failure.
  static tensor_slice make(const tensor_info& info, std::vector<slice_dim> dims) {
    return try_make(info, std::move(dims)).value();
  }
  /// As try_make; throws safetensors::exception (aborts without exceptions) on failure.
  static tensor_slice make(const tensor_view& tensor, std::vector<slice_dim> dims) {
    return try_make(tensor, std::move(dims)).value();
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
      return error(error_kind::invalid_tensor_view,
                   "slice of tensor " + detail::quote(tensor_.name()) +
                       " is not one contiguous run of bytes: use copy_to to gather it");
    return tensor_.bytes.subspan(static_cast<std::size_t>(run_start_ * bits() / 8),
                                 static_cast<std::size_t>(byte_size()));
  }
  /// As try_bytes; throws safetensors::exception (aborts without exceptions) on an error.
  span<const std::byte> bytes() const { return try_bytes().value(); }

  /// Gathers the selected elements, in row-major order, into `destination` as `target` values in
  /// host byte order (converted as try_convert() does, sub-byte elements packed as `order` says);
  /// `destination` holds exactly element_count(). Slices made from a view only (a reader reads
  /// the others: read_into, load_into).
  result<void> try_copy_to(span<std::byte> destination, dtype target, packing order = packing::low_first) const {
    if (auto viewable = check_viewable(); !viewable) return viewable;
    const std::size_t target_bits = dtype_bits(target);
    if (destination.size() * 8 % target_bits != 0 || destination.size() * 8 / target_bits != count_)
      return error(error_kind::invalid_tensor_view,
                   "slice of tensor " + detail::quote(tensor_.name()) + " has " + std::to_string(count_) +
                       " elements; the destination holds " + std::to_string(destination.size()) + " bytes, not " +
                       std::to_string(count_) + " " + std::string(dtype_name(target)) + " elements");
    // A run of a sub-byte target must fill whole bytes too.
    if (run_length_ * target_bits % 8 != 0)
      return error(error_kind::misaligned_slice,
                   "slice of tensor " + detail::quote(tensor_.name()) + ": runs of " + std::to_string(run_length_) +
                       " " + std::string(dtype_name(target)) + " elements do not fill whole bytes");
    std::size_t written = 0;
    const auto run_size = static_cast<std::size_t>(run_bytes());
    const auto run_out = static_cast<std::size_t>(run_length_ * target_bits / 8);
    result<void> outcome;
    for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t runs) {
      for (std::uint64_t r = 0; r < runs; ++r) {
        const span<const std::byte> source =
            tensor_.bytes.subspan(static_cast<std::size_t>(first + r * stride), run_size);
        if (auto converted = try_convert(source, tensor_.dtype(), destination.subspan(written, run_out), target, order);
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
  result<void> try_copy_to(span<T> destination, packing order = packing::low_first) const {
    static_assert(std::is_trivially_copyable_v<T>, "copy_to fills trivially copyable element types");
    return try_copy_to(
        span<std::byte>(reinterpret_cast<std::byte*>(destination.data()), destination.size() * sizeof(T)),
        detail::dtype_of<T>::value, order);
  }
  /// Gathers as try_copy_to does; throws safetensors::exception (aborts without exceptions) when
  /// it cannot.
  void copy_to(span<std::byte> destination, dtype target, packing order = packing::low_first) const {
    try_copy_to(destination, target, order).value();
  }
  /// Gathers as try_copy_to does, into values of T; throws when it cannot.
  template <class T>
  void copy_to(span<T> destination, packing order = packing::low_first) const {
    try_copy_to(destination, order).value();
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
    return error(error_kind::misaligned_slice, "slice of tensor " + detail::quote(tensor_.name()) + ": its runs of " +
                                                   std::string(dtype_name(tensor_.dtype())) +
                                                   " elements do not start and end on byte boundaries (a run of " +
                                                   std::to_string(run_length_) + " elements from element " +
                                                   std::to_string(run_start_) + ")");
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
  std::size_t run_dim_ = 0;       // dimensions before this one are walked
  std::uint64_t run_length_ = 0;  // elements in each run
  std::uint64_t run_base_ = 0;    // element offset of the run within its row
  std::uint64_t run_start_ = 0;   // first element, when contiguous
  bool contiguous_ = false;
};

}  // namespace safetensors

#endif  // SAFETENSORS_SLICE_HPP
