// Fuzz target: the reader over arbitrary bytes.
//
// Every input is opened four ways: from memory (zero-copy views), through a storage without
// data() (the header is copied, tensors are read on demand), with allow_trailing_bytes, and, when
// the input has a data buffer, as an exact-size copy of its first 8 + N bytes (so that a header
// scanner reading past the header's end touches unallocated memory and the sanitizer sees it).
// The outcomes must agree as the format's order of checks says; a file that opens is walked
// tensor by tensor (lookup, views, copies, partial reads) and every byte is checked.
#include "fuzz_check.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace st = safetensors;

namespace {

using fuzz::copying_storage;
using copying_reader = st::basic_reader<copying_storage>;

template <class Result>
void check_refused(const Result& opened) {
  FUZZ_CHECK(fuzz::is_reader_kind(opened.error().kind()));
  FUZZ_CHECK(!opened.error().message().empty());
}

/// Both failed with the same kind and message, or both succeeded.
template <class A, class B>
bool same_outcome(const A& a, const B& b) {
  if (a.has_value() != b.has_value()) return false;
  if (a) return true;
  return a.error().kind() == b.error().kind() && a.error().message() == b.error().message();
}

bool tensor_before(const st::tensor_info& a, const st::tensor_info& b) {
  if (a.data_offsets[0] != b.data_offsets[0]) return a.data_offsets[0] < b.data_offsets[0];
  if (a.data_offsets[1] != b.data_offsets[1]) return a.data_offsets[1] < b.data_offsets[1];
  return a.name < b.name;
}

volatile unsigned sink;  // keeps the byte sums from being optimised away

/// A slice as the reader makes it must take exactly `want`, viewed (when contiguous) or copied.
template <class Reader>
void check_slice(const Reader& reader, const st::tensor_info& t, const std::uint8_t* bytes,
                 std::vector<st::slice_dim> dims, const std::vector<fuzz::taken>& want) {
  const std::vector<std::byte> expected = fuzz::naive_gather(t, bytes, want);
  auto slice = reader.try_slice(t.name, std::move(dims));
  FUZZ_CHECK(slice);
  const std::size_t width = st::dtype_bits(t.dtype) / 8;
  FUZZ_CHECK(slice->element_count() * width == expected.size());
  std::vector<std::byte> copy(expected.size());
  FUZZ_CHECK(slice->try_copy_to(copy, t.dtype));
  FUZZ_CHECK(copy == expected);
  if (slice->contiguous()) {
    auto run = slice->try_bytes();
    FUZZ_CHECK(run && std::equal(run->begin(), run->end(), expected.begin(), expected.end()));
  }
  copy.resize(expected.size() + width);
  auto refused = slice->try_copy_to(copy, t.dtype);
  FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::invalid_tensor_view);
}

/// Slices and conversions of one tensor of a reader with views; bounded to small tensors.
template <class Reader>
void check_views(const Reader& reader, const st::tensor_info& t, const std::uint8_t* bytes) {
  const st::tensor_view view = reader.view(t);
  auto as_bytes = view.template try_as<std::byte>();
  FUZZ_CHECK(as_bytes && as_bytes->data() == view.bytes.data() && as_bytes->size() == view.bytes.size());
  if (st::dtype_bits(t.dtype) % 8 != 0) {
    // Sub-byte (F4, F6): the whole tensor is one run of whole bytes, and every encoding is a
    // finite number that survives a round trip through F64 bit for bit.
    auto whole = reader.try_slice(t.name, {});
    FUZZ_CHECK(whole && whole->contiguous() && whole->byte_size() == view.bytes.size());
    if (t.element_count > 4096) return;
    std::vector<std::byte> wide(static_cast<std::size_t>(t.element_count) * 8), back(view.bytes.size());
    FUZZ_CHECK(st::try_convert(view.bytes, t.dtype, wide, st::dtype::F64));
    FUZZ_CHECK(st::try_convert(wide, st::dtype::F64, back, t.dtype));
    FUZZ_CHECK(std::equal(back.begin(), back.end(), view.bytes.begin(), view.bytes.end()));
    return;
  }
  if (t.element_count > 4096) return;

  // Every element converted to a dtype the data picks: a value or a refusal, never undefined
  // behaviour (a float cast out of range would be); to its own dtype, the same bytes.
  unsigned byte_sum = 0;
  for (std::byte b : view.bytes) byte_sum += std::to_integer<unsigned>(b);
  const st::dtype target = st::all_dtypes[byte_sum % st::dtype_count];
  // A sub-byte target holds the elements only when they fill whole bytes.
  if (t.element_count * st::dtype_bits(target) % 8 == 0) {
    std::vector<std::byte> converted(static_cast<std::size_t>(t.element_count) * st::dtype_bits(target) / 8);
    auto conversion = st::try_copy_to(view, converted, target);
    if (!conversion) {
      FUZZ_CHECK(conversion.error().kind() == st::error_kind::invalid_conversion &&
                 !conversion.error().message().empty());
      FUZZ_CHECK(target != t.dtype);
    }
  }
  std::vector<std::byte> same(view.bytes.size());
  FUZZ_CHECK(st::try_copy_to(view, same, t.dtype));
  FUZZ_CHECK(std::equal(same.begin(), same.end(), view.bytes.begin(), view.bytes.end()));

  const std::size_t rank = t.shape.size();
  auto whole = reader.try_slice(t.name, {});
  FUZZ_CHECK(whole && whole->contiguous() && whole->element_count() == t.element_count);
  std::vector<st::slice_dim> too_many(rank + 1, st::all());
  auto refused = reader.try_slice(t.name, too_many);
  FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::invalid_argument);
  if (rank == 0) return;

  // The middle of the first dimension, every second element of the others (from 1).
  const std::uint64_t first = t.shape[0];
  std::vector<st::slice_dim> dims;
  std::vector<fuzz::taken> want;
  if (first > 0) {
    dims.push_back(st::at(static_cast<std::int64_t>(first / 2)));
    want.push_back({first / 2, 1, 1});
  } else {
    dims.push_back(st::all());
    want.push_back({0, 0, 1});
  }
  for (std::size_t d = 1; d < rank; ++d) {
    const std::uint64_t size = t.shape[d], start = std::min<std::uint64_t>(1, size);
    dims.push_back(st::range(static_cast<std::int64_t>(start), st::to_end, 2));
    want.push_back({start, size > start ? (size - start - 1) / 2 + 1 : 0, 2});
  }
  check_slice(reader, t, bytes, dims, want);
  // The last two thirds of the first dimension, the others whole: one contiguous run.
  dims.assign({st::range(static_cast<std::int64_t>(first / 3))});
  want.assign({{first / 3, first - first / 3, 1}});
  for (std::size_t d = 1; d < rank; ++d) want.push_back({0, t.shape[d], 1});
  check_slice(reader, t, bytes, dims, want);
  // A step so large that only the first element is taken (once counted wrongly as none: the
  // regression input slice-huge-step-selects-nothing).
  dims.assign({st::range(0, st::to_end, UINT64_MAX - 1)});
  want.assign({{0, first > 0 ? 1u : 0u, 1}});
  for (std::size_t d = 1; d < rank; ++d) want.push_back({0, t.shape[d], 1});
  check_slice(reader, t, bytes, dims, want);

  // Selections that do not fit.
  // Indices are signed (negative ones count from the end): sizes past INT64_MAX have no index past
  // their end.
  std::vector<st::slice_dim> bad = {st::range(0, st::to_end, 0), st::range(2, 1)};
  constexpr auto largest_index = static_cast<std::uint64_t>(INT64_MAX);
  if (first <= largest_index) bad.push_back(st::at(static_cast<std::int64_t>(first)));
  if (first < largest_index) bad.push_back(st::range(0, static_cast<std::int64_t>(first + 1)));
  for (const st::slice_dim& dim : bad) {
    auto out_of_range = reader.try_slice(t.name, {dim});
    FUZZ_CHECK(!out_of_range && out_of_range.error().kind() == st::error_kind::invalid_argument);
  }
}

/// Walks an opened file. `data`/`size` are the bytes it was opened from.
template <class Reader>
void check_reader(const Reader& reader, const std::uint8_t* data, std::size_t size, bool strict) {
  FUZZ_CHECK(reader.header_length() <= st::format_max_header_size);
  FUZZ_CHECK(reader.data_start() == 8 + reader.header_length());
  FUZZ_CHECK(reader.data_start() + reader.data_size() == size);
  const std::uint8_t* data_buffer = data + reader.data_start();

  st::span<const st::tensor_info> tensors = reader.tensors();
  FUZZ_CHECK(tensors.size() == reader.size());
  std::uint64_t covered = 0;
  std::vector<std::byte> copy;
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    const st::tensor_info& t = tensors[k];
    // Data order, tiling the buffer from 0; unique names.
    if (k > 0) FUZZ_CHECK(tensor_before(tensors[k - 1], t));
    FUZZ_CHECK(t.data_offsets[0] == covered);
    FUZZ_CHECK(t.data_offsets[1] >= t.data_offsets[0]);
    covered = t.data_offsets[1];
    FUZZ_CHECK(covered <= reader.data_size());
    // The byte size follows from dtype and shape, without overflow.
    std::uint64_t elements = 1;
    for (std::uint64_t dim : t.shape) {
      FUZZ_CHECK(dim == 0 || elements <= UINT64_MAX / dim);
      elements *= dim;
    }
    FUZZ_CHECK(elements == t.element_count);
    const std::uint64_t bits_per = st::dtype_bits(t.dtype);
    FUZZ_CHECK(elements <= UINT64_MAX / bits_per);
    FUZZ_CHECK(elements * bits_per % 8 == 0);
    FUZZ_CHECK(elements * bits_per / 8 == t.byte_size());
    FUZZ_CHECK(st::dtype_from_name(st::dtype_name(t.dtype)) == t.dtype);

    // Lookup gives this very entry.
    FUZZ_CHECK(reader.find(t.name) == &t);
    FUZZ_CHECK(reader.contains(t.name));
    auto info = reader.try_info(t.name);
    FUZZ_CHECK(info && *info == &t);
    if (!t.name.empty()) {
      // A name one byte shorter is another tensor's or nobody's.
      std::string_view shorter = t.name.substr(0, t.name.size() - 1);
      const st::tensor_info* other = reader.find(shorter);
      FUZZ_CHECK(other == nullptr || other->name == shorter);
    }

    const auto byte_size = static_cast<std::size_t>(t.byte_size());
    const std::uint8_t* expected = data_buffer + t.data_offsets[0];
    if constexpr (Reader::has_views) {
      st::tensor_view view = reader.view(t);
      FUZZ_CHECK(view.info == &t);
      FUZZ_CHECK(reinterpret_cast<const std::uint8_t*>(view.bytes.data()) == expected);
      FUZZ_CHECK(view.bytes.size() == byte_size);
      unsigned sum = 0;
      for (std::byte b : view.bytes) sum += std::to_integer<unsigned>(b);
      sink = sum;
      auto by_name = reader.try_view(t.name);
      FUZZ_CHECK(by_name && by_name->bytes.data() == view.bytes.data());
      check_views(reader, t, expected);
    }
    auto read = reader.try_read(t.name);
    FUZZ_CHECK(read && read->size() == byte_size);
    FUZZ_CHECK(byte_size == 0 || std::memcmp(read->data(), expected, byte_size) == 0);

    // Pieces: the start, the middle, the end, and requests that do not fit.
    for (std::uint64_t offset : {std::uint64_t{0}, t.byte_size() / 2, t.byte_size()}) {
      const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(t.byte_size() - offset, 16));
      copy.assign(count, std::byte{0});
      auto part = reader.try_read_part(t, offset, copy);
      FUZZ_CHECK(part);
      FUZZ_CHECK(count == 0 || std::memcmp(copy.data(), expected + offset, count) == 0);
    }
    copy.assign(1, std::byte{0});
    for (std::uint64_t offset : {t.byte_size(), t.byte_size() + 1, std::uint64_t{UINT64_MAX}}) {
      auto refused = reader.try_read_part(t, offset, copy);
      FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::invalid_tensor_view);
    }
    copy.assign(byte_size + 1, std::byte{0});
    auto wrong_size = reader.try_read_into(t, copy);
    FUZZ_CHECK(!wrong_size && wrong_size.error().kind() == st::error_kind::invalid_tensor_view);
  }
  if (strict) FUZZ_CHECK(covered == reader.data_size());

  // Metadata: sorted, unique keys, each found.
  const st::metadata_map& metadata = reader.metadata();
  if (!reader.has_metadata()) FUZZ_CHECK(metadata.empty());
  const std::string* previous = nullptr;
  for (const auto& [key, value] : metadata) {
    if (previous) FUZZ_CHECK(*previous < key);
    previous = &key;
    const std::string* found = metadata.find(key);
    FUZZ_CHECK(found && *found == value);
  }
  auto missing = reader.try_info(std::string_view("\xff", 1));  // not UTF-8: no tensor has this name
  FUZZ_CHECK(!missing && missing.error().kind() == st::error_kind::tensor_not_found);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto opened = st::try_open_memory(data, size);
  auto copied = copying_reader::try_open(copying_storage(data, size));
  FUZZ_CHECK(same_outcome(opened, copied));
  st::read_options lenient;
  lenient.allow_trailing_bytes = true;
  auto lenient_opened = st::try_open_memory(data, size, lenient);

  if (opened) {
    check_reader(*opened, data, size, true);
    check_reader(*copied, data, size, true);
    FUZZ_CHECK(lenient_opened && lenient_opened->size() == opened->size());
  } else {
    check_refused(opened);
    if (opened.error().kind() != st::error_kind::metadata_incomplete_buffer)
      FUZZ_CHECK(same_outcome(opened, lenient_opened));
#if SAFETENSORS_EXCEPTIONS
    bool thrown = false;
    try {
      (void)st::open_memory(data, size);
    } catch (const st::exception& e) {
      thrown = e.kind() == opened.error().kind() && e.what() == opened.error().to_string();
    }
    FUZZ_CHECK(thrown);
#endif
  }
  if (lenient_opened)
    check_reader(*lenient_opened, data, size, false);
  else
    check_refused(lenient_opened);

  // The header alone, in a buffer of exactly its size: rules 1-10 do not look at the data
  // buffer, so only rule 11 (or, after it, the duplicate-name report) may now decide otherwise.
  if (size >= 8) {
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data[i];
    if (header_length <= st::format_max_header_size && header_length < size - 8) {
      std::vector<std::uint8_t> header_only(data, data + 8 + header_length);
      auto truncated = st::try_open_memory(header_only.data(), header_only.size());
      if (opened) {
        // The tensors cover the whole (non-empty) buffer, so without it they cover too much.
        FUZZ_CHECK(!truncated && truncated.error().kind() == st::error_kind::metadata_incomplete_buffer);
      } else {
        const st::error_kind kind = opened.error().kind();
        if (kind == st::error_kind::metadata_incomplete_buffer) {
          // Tensors covering nothing fit an empty buffer: then it opens, or a repeated name shows.
          if (!truncated)
            FUZZ_CHECK(truncated.error().kind() == kind ||
                       truncated.error().kind() == st::error_kind::invalid_header_deserialization);
        } else if (kind == st::error_kind::invalid_header_deserialization) {
          FUZZ_CHECK(same_outcome(opened, truncated) ||
                     (!truncated && truncated.error().kind() == st::error_kind::metadata_incomplete_buffer));
        } else {
          FUZZ_CHECK(same_outcome(opened, truncated));
        }
      }
    }
  }
  return 0;
}
