// Fuzz target: load plans of random slices.
//
// The input describes a small file (up to four tensors of rank 0 to 3, byte-wide dtypes and F4)
// and a list of load requests, each the whole tensor or a slice whose starts, stops and steps go
// to the extremes (steps up to 2^64 - 1, bounds of INT64_MIN). The file is opened on every
// storage in memory (borrowed bytes, owned bytes, and one without data(), read as pread_file is)
// and the requests are loaded into destinations (load_into) and through a consumer within a
// small budget (load). Each load must agree with the slice rules worked out here independently:
// the first invalid request's error, or exactly the bytes a naive gather takes, on every storage.
#include "fuzz_check.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

/// A start or a stop: small either way, or an extreme.
std::int64_t bound(fuzz::decisions& in) {
  switch (in.below(10)) {
    case 0: return st::to_end;
    case 1: return std::numeric_limits<std::int64_t>::min();
    case 2: return static_cast<std::int64_t>(in.u64());
    default: return static_cast<std::int8_t>(in.byte()) % 9;
  }
}

/// A step: small, zero, or near 2^62, 2^63 and 2^64.
std::uint64_t step(fuzz::decisions& in) {
  switch (in.below(10)) {
    case 0: return 0;
    case 1: return std::uint64_t{1} << 62;
    case 2: return (std::uint64_t{1} << 63) - 1;
    case 3: return std::uint64_t{1} << 63;
    case 4: return std::numeric_limits<std::uint64_t>::max();
    case 5: return in.u64();
    default: return 1 + in.byte() % 4;
  }
}

__extension__ typedef __int128 wide;

constexpr st::dtype dtypes[] = {st::dtype::U8,  st::dtype::I16, st::dtype::BF16,
                                st::dtype::F32, st::dtype::F64, st::dtype::F4};

/// The selection `dims` makes of `shape` by the slice rules (README, "Slices"), or false when
/// they refuse it.
bool expected_selection(const std::vector<std::uint64_t>& shape, const std::vector<st::slice_dim>& dims,
                        std::vector<fuzz::taken>& out) {
  if (dims.size() > shape.size()) return false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const st::slice_dim want = d < dims.size() ? dims[d] : st::all();
    // Python's rules on 128-bit numbers, where nothing wraps.
    const wide size = shape[d];
    const wide start = want.start < 0 ? size + want.start : want.start;
    if (start < 0) return false;
    if (want.single) {
      if (start >= size) return false;
      out.push_back({static_cast<std::uint64_t>(start), 1, 1});
      continue;
    }
    const wide stop = want.stop == st::to_end ? size : want.stop < 0 ? size + want.stop : want.stop;
    if (stop < 0 || want.step == 0 || stop > size || start > stop) return false;
    const wide count = stop == start ? 0 : (stop - start - 1) / want.step + 1;
    out.push_back({static_cast<std::uint64_t>(start), static_cast<std::uint64_t>(count), want.step});
  }
  return true;
}

struct tensor_spec {
  st::dtype type;
  std::vector<std::uint64_t> shape;
  std::uint64_t first;  // its offset in the data buffer
  std::uint64_t bytes;
};

struct request_spec {
  std::size_t tensor;
  std::vector<st::slice_dim> dims;
  bool short_destination;  // a destination one byte short
};

/// The bytes a selection of an F4 tensor delivers: its elements in row-major order, packed two a
/// byte, low nibble first, as the file packs them (the library checked that each run fills whole
/// bytes, so the runs' bytes are exactly these).
std::vector<std::byte> gather_nibbles(const std::vector<std::uint64_t>& shape, const std::uint8_t* bytes,
                                      const std::vector<fuzz::taken>& dims) {
  std::uint64_t count = 1;
  for (const fuzz::taken& d : dims) count *= d.count;
  std::vector<std::byte> out(static_cast<std::size_t>((count + 1) / 2));
  if (count == 0) return out;
  const std::size_t rank = shape.size();
  std::vector<std::uint64_t> strides(rank, 1), position(rank, 0);
  for (std::size_t d = rank; d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  for (std::uint64_t j = 0;; ++j) {
    std::uint64_t element = 0;
    for (std::size_t d = 0; d < rank; ++d) element += (dims[d].start + position[d] * dims[d].step) * strides[d];
    const unsigned nibble = (bytes[element / 2] >> (4 * (element % 2))) & 0xF;
    out[j / 2] |= static_cast<std::byte>(nibble << (4 * (j % 2)));
    std::size_t d = rank;
    while (d > 0 && ++position[d - 1] == dims[d - 1].count) position[--d] = 0;
    if (d == 0) return out;
  }
}

/// Loads the requests from `reader` both ways, into destinations and through a consumer, and
/// checks the outcome: refused with `refusal` when !valid, else exactly `expected`.
template <class Reader>
void check_loads(const Reader& reader, const std::vector<request_spec>& specs,
                 const std::vector<std::vector<std::byte>>& expected, bool valid, st::error_kind refusal,
                 const st::load_options& options) {
  std::vector<std::vector<std::byte>> destinations(specs.size());
  std::vector<st::load_request> requests;
  bool sizes_right = true;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    std::size_t size = expected[i].size();
    if (specs[i].short_destination && size > 0) {
      --size;
      sizes_right = false;
    }
    destinations[i].assign(size, std::byte{0xEE});
    requests.emplace_back(&reader.tensors()[specs[i].tensor], destinations[i], specs[i].dims);
  }
  auto loaded = reader.try_load_into(requests, options);
  if (!valid) {
    FUZZ_CHECK(!loaded && loaded.error().kind() == refusal);
    return;
  }
  if (!sizes_right) {
    FUZZ_CHECK(!loaded && loaded.error().kind() == st::error_kind::invalid_tensor_view);
  } else {
    FUZZ_CHECK(loaded);
    for (std::size_t i = 0; i < specs.size(); ++i) FUZZ_CHECK(destinations[i] == expected[i]);
  }
  // Through a consumer, within a budget of a few blocks: pieces land where their offsets say,
  // each byte once.
  std::vector<std::vector<std::byte>> assembled(specs.size());
  std::vector<std::vector<unsigned char>> seen(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    assembled[i].assign(expected[i].size(), std::byte{0xEE});
    seen[i].assign(expected[i].size(), 0);
    requests[i].destination = {};
  }
  st::load_options streaming = options;
  streaming.consumer_thread = true;
  auto streamed = reader.try_load(
      requests,
      [&](const st::load_piece& piece) {
    FUZZ_CHECK(piece.request < specs.size());
    FUZZ_CHECK(piece.offset <= assembled[piece.request].size() &&
               piece.bytes.size() <= assembled[piece.request].size() - piece.offset);
    for (std::size_t k = 0; k < piece.bytes.size(); ++k) {
      const std::size_t at = static_cast<std::size_t>(piece.offset) + k;
      FUZZ_CHECK(seen[piece.request][at] == 0);
      seen[piece.request][at] = 1;
      assembled[piece.request][at] = piece.bytes[k];
    }
      },
      streaming);
  FUZZ_CHECK(streamed);
  for (std::size_t i = 0; i < specs.size(); ++i) FUZZ_CHECK(assembled[i] == expected[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::decisions in(data, size);
  // The file: tensors t0.. of small shapes, their bytes a pattern, one after another.
  std::vector<tensor_spec> tensors(1 + in.byte() % 4);
  std::string header = "{";
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    tensor_spec& t = tensors[i];
    t.type = dtypes[in.byte() % std::size(dtypes)];
    t.shape.resize(in.byte() % 4);
    std::uint64_t elements = 1;
    for (std::uint64_t& dimension : t.shape) elements *= dimension = in.byte() % 7;
    // F4 packs two elements a byte: a tensor of F4 must fill whole bytes.
    if (t.type == st::dtype::F4 && elements % 2 != 0) t.type = st::dtype::U8;
    t.first = offset;
    t.bytes = elements * st::dtype_bits(t.type) / 8;
    std::string shape;
    for (std::uint64_t dimension : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(dimension);
    header += std::string(i == 0 ? "" : ",") + "\"t" + std::to_string(i) + "\":{\"dtype\":\"" +
              std::string(st::dtype_name(t.type)) + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + t.bytes) + "]}";
    offset += t.bytes;
  }
  header += "}";
  std::vector<std::byte> file(8 + header.size() + offset);
  for (int i = 0; i < 8; ++i) file[static_cast<std::size_t>(i)] = static_cast<std::byte>(header.size() >> (8 * i));
  std::memcpy(file.data() + 8, header.data(), header.size());
  const std::uint8_t* tensor_data = reinterpret_cast<const std::uint8_t*>(file.data()) + 8 + header.size();
  for (std::uint64_t k = 0; k < offset; ++k) file[8 + header.size() + k] = static_cast<std::byte>((k * 131 + 7) % 251);

  // The requests, and what each must give. The plan is refused at its first invalid request:
  // the requests after it are not made.
  std::vector<request_spec> specs;
  std::vector<std::vector<std::byte>> expected;
  bool valid = true;
  st::error_kind refusal = st::error_kind::invalid_argument;
  for (std::size_t count = 1 + in.byte() % 6; specs.size() < count;) {
    request_spec r{in.byte() % tensors.size(), {}, in.byte() % 16 == 0};
    const tensor_spec& t = tensors[r.tensor];
    if (in.byte() % 4 != 0) {
      r.dims.resize(in.byte() % (t.shape.size() + 2));
      for (st::slice_dim& d : r.dims) {
        d.single = in.byte() % 4 == 0;
        d.start = bound(in);
        d.stop = d.single ? st::to_end : bound(in);
        d.step = d.single ? 1 : step(in);
      }
    }
    specs.push_back(r);
    std::vector<fuzz::taken> taken;
    if (!expected_selection(t.shape, r.dims, taken)) {
      valid = false;
      break;
    }
    const st::tensor_info described{"t", t.type, t.shape, {t.first, t.first + t.bytes}};
    if (t.type == st::dtype::F4) {
      // Whether each run of a sub-byte selection fills whole bytes is the library's to say
      // (MisalignedSlice); what the bytes are is checked here.
      auto made = st::tensor_slice::try_make(described, r.dims);
      if (!made) {
        FUZZ_CHECK(made.error().kind() == st::error_kind::misaligned_slice);
        valid = false;
        refusal = st::error_kind::misaligned_slice;
        break;
      }
      expected.push_back(gather_nibbles(t.shape, tensor_data + t.first, taken));
      FUZZ_CHECK(made->byte_size() == expected.back().size());
    } else {
      expected.push_back(fuzz::naive_gather(described, tensor_data + t.first, taken));
    }
  }
  expected.resize(specs.size());

  st::load_options options;
  options.threads = 1 + in.byte() % 2;
  options.block_size = std::size_t{1} << (in.byte() % 8 + 4);
  options.merge_gap = in.byte() % 2 == 0 ? 0 : std::uint64_t{1} << (in.byte() % 16);
  options.budget = std::uint64_t{4096} << (in.byte() % 3);

  auto borrowed = st::try_open_buffer(file);
  FUZZ_CHECK(borrowed);
  check_loads(*borrowed, specs, expected, valid, refusal, options);
  auto owned = st::basic_reader<st::owned_bytes>::try_open(st::owned_bytes(file));
  FUZZ_CHECK(owned);
  check_loads(*owned, specs, expected, valid, refusal, options);
  auto copied = st::basic_reader<fuzz::copying_storage>::try_open(fuzz::copying_storage(file.data(), file.size()));
  FUZZ_CHECK(copied);
  check_loads(*copied, specs, expected, valid, refusal, options);
  return 0;
}
