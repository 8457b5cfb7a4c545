// Fuzz target: the writer, from declarations derived from the input.
//
// The input is read as a little program: how many tensors, each one's name (from a small alphabet
// that yields repeated names, "__metadata__", escapes, NUL and non-UTF-8 on purpose), dtype (the
// sub-byte ones too) and shape (zeros, small dimensions and huge ones), optional metadata, an
// alignment (valid or not), then how to stream the data. The target predicts from the
// declarations alone which rules they break, and checks that file_layout::make refuses exactly
// when one is broken, with the kind of a broken rule. A layout that is made is read back by the
// reader (through a storage that serves the header and zeros, so even a layout of 2^63 bytes can
// be checked); a small one is written three ways (try_serialize to a vector, try_serialize to a
// stream, a stream_writer fed in random chunks and by producers), which must give the same
// bytes, and the reader must give back every name, dtype, shape and byte.
#include "fuzz_check.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace st = safetensors;

namespace {

using input = fuzz::decisions;

// Pieces of names, keys and values. No valid piece starts with a UTF-8 continuation byte, so any
// concatenation of valid pieces is valid UTF-8, and every invalid piece makes any string that
// holds it invalid, whatever comes around it. The target knows which strings are valid from how
// it built them, without asking the library.
const std::string_view valid_pieces[] = {"a",
                                         "b",
                                         "w",
                                         ".",
                                         "layers",
                                         "0",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\t",
                                         "\x01",
                                         std::string_view("\0", 1),
                                         "\x7f",
                                         " ",
                                         "__metadata__",
                                         "/",
                                         "__"};
const std::string_view invalid_pieces[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "a\x80"};
/// A name no declaration can have and still be laid out (it is not UTF-8).
const std::string_view unknown_name = "\xfe";

std::string make_text(input& in, bool& utf8) {
  std::string text;
  switch (in.below(16)) {
    case 0: text = "__metadata__"; break;
    case 1: text.assign(1 + in.below(255), 'n'); break;
    default: {
      const std::size_t pieces = in.below(4);
      for (std::size_t i = 0; i < pieces; ++i) text += valid_pieces[in.below(std::size(valid_pieces))];
    }
  }
  if (in.below(16) == 0) {
    text += invalid_pieces[in.below(std::size(invalid_pieces))];
    utf8 = false;
  }
  return text;
}

std::uint64_t make_dimension(input& in) {
  switch (in.below(16)) {
    case 0: return 0;
    case 1: return in.u64();
    case 2: return std::uint64_t{1} << 32;
    case 3: return std::uint64_t{1} << 61;
    case 4: return std::uint64_t{1} << 62;
    case 5: return UINT64_MAX;
    case 6: return in.byte();
    default: return in.below(5);
  }
}

std::uint64_t make_alignment(input& in) {
  switch (in.below(16)) {
    case 0: return 16;
    case 1: return 64;
    case 2: return 4096;
    case 3: return in.u64();                                    // almost never valid
    case 4: return std::uint64_t{1} << (3 + in.below(18));      // 8 .. 2^20
    case 5: return std::uint64_t{1} << (27 + 2 * in.below(3));  // valid, but no header fits; 2^31: too large
    case 6: return in.below(9);                                 // 0 .. 8
    default: return 8;
  }
}

/// A storage that holds a layout's header followed by zeros: the reader can check the header of
/// a layout of any size without the data being anywhere.
class layout_storage {
 public:
  explicit layout_storage(const st::file_layout& layout) : layout_(&layout) {}
  std::uint64_t size() const noexcept { return layout_->file_size(); }
  st::result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (offset > size() || count > size() - offset) return st::error(st::error_kind::io_error, "past the end");
    const std::string_view header = layout_->header();
    for (std::size_t i = 0; i < count; ++i)
      destination[i] = offset + i < header.size() ? static_cast<std::byte>(header[offset + i]) : std::byte{0};
    return {};
  }

 private:
  const st::file_layout* layout_;
};

/// The reader finds every declared tensor with its dtype, shape and offsets, and the metadata.
template <class Reader>
void check_read_back(const Reader& reader, const st::file_layout& layout, const st::metadata_entries& metadata) {
  FUZZ_CHECK(reader.size() == layout.entries().size());
  FUZZ_CHECK(reader.data_start() == layout.data_start());
  FUZZ_CHECK(reader.data_size() == layout.data_size());
  for (const st::file_layout::entry& e : layout.entries()) {
    const st::tensor_info* info = reader.find(e.declaration.name);
    FUZZ_CHECK(info != nullptr);
    FUZZ_CHECK(info->dtype == e.declaration.dtype);
    FUZZ_CHECK(
        std::equal(info->shape.begin(), info->shape.end(), e.declaration.shape.begin(), e.declaration.shape.end()));
    FUZZ_CHECK(info->data_offsets == e.data_offsets);
  }
  FUZZ_CHECK(reader.has_metadata() == metadata.present());
  FUZZ_CHECK(reader.metadata().size() == metadata.entries().size());
  for (const auto& [key, value] : metadata.entries()) {
    const std::string* found = reader.metadata().find(key);
    FUZZ_CHECK(found && *found == value);
  }
}

/// The layout is the official one: file order by dtype (largest alignment first) then name,
/// tensors packed from 0, an 8-byte length, padding to the alignment.
void check_layout(const st::file_layout& layout, std::uint64_t alignment) {
  const auto& entries = layout.entries();
  std::uint64_t offset = 0;
  for (std::size_t k = 0; k < entries.size(); ++k) {
    const st::file_layout::entry& e = entries[k];
    if (k > 0) {
      const st::tensor_declaration& p = entries[k - 1].declaration;
      FUZZ_CHECK(p.dtype > e.declaration.dtype || (p.dtype == e.declaration.dtype && p.name < e.declaration.name));
    }
    FUZZ_CHECK(e.data_offsets[0] == offset);
    offset = e.data_offsets[1];
    auto found = layout.find(e.declaration.name);
    FUZZ_CHECK(found && *found == k);
  }
  FUZZ_CHECK(!layout.find(unknown_name));
  FUZZ_CHECK(layout.data_size() == offset);
  const std::string_view header = layout.header();
  FUZZ_CHECK(header.size() % alignment == 0 && header.size() >= 16);
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(header[static_cast<std::size_t>(i)]);
  FUZZ_CHECK(length == header.size() - 8);
  FUZZ_CHECK(header[8] == '{');
  const std::size_t last = header.find_last_not_of(' ');
  FUZZ_CHECK(last != std::string_view::npos && header[last] == '}');
  FUZZ_CHECK(header.size() - 1 - last < alignment);
  FUZZ_CHECK(layout.file_size() == header.size() + layout.data_size());
}

std::string_view as_text(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);

  // The declarations, and the rules they break as far as the target can tell.
  std::set<st::error_kind> broken;
  std::vector<st::tensor_declaration> declarations(in.below(9));
  std::uint64_t data_size = 0;
  bool data_size_overflows = false;
  for (st::tensor_declaration& d : declarations) {
    bool utf8 = true;
    d.name = make_text(in, utf8);
    d.dtype = st::all_dtypes[in.below(st::dtype_count)];
    d.shape.resize(in.below(5));
    for (std::uint64_t& dim : d.shape) dim = make_dimension(in);
    if (!utf8) broken.insert(st::error_kind::invalid_header);
    if (d.name == "__metadata__") broken.insert(st::error_kind::invalid_header_deserialization);
    // The element count is multiplied left to right, as the reader does it: [2^32, 2^32, 0]
    // overflows before the zero is reached.
    std::uint64_t elements = 1;
    bool overflow = false;
    for (std::uint64_t dim : d.shape) {
      if (dim != 0 && elements > UINT64_MAX / dim) overflow = true;
      elements *= dim;
      if (overflow) break;
    }
    const std::uint64_t bits_per = st::dtype_bits(d.dtype);
    if (!overflow && elements > UINT64_MAX / bits_per) overflow = true;
    if (overflow) {
      broken.insert(st::error_kind::validation_overflow);
    } else if (elements * bits_per % 8 != 0) {
      broken.insert(st::error_kind::misaligned_slice);
    } else {
      const std::uint64_t bytes = elements * bits_per / 8;
      if (bytes > UINT64_MAX - data_size) data_size_overflows = true;
      data_size += bytes;
    }
  }
  if (data_size_overflows) broken.insert(st::error_kind::validation_overflow);
  {
    std::vector<std::string_view> names;
    for (const auto& d : declarations) names.push_back(d.name);
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end())
      broken.insert(st::error_kind::invalid_header_deserialization);
  }
  st::metadata_entries metadata;
  if (in.below(2)) {
    std::map<std::string, std::string> entries;
    std::map<std::string, bool> entry_utf8;  // a repeated key keeps its last value
    const std::size_t count = in.below(4);
    for (std::size_t i = 0; i < count; ++i) {
      bool key_utf8 = true, value_utf8 = true;
      std::string key = make_text(in, key_utf8);
      std::string value = make_text(in, value_utf8);
      entry_utf8[key] = key_utf8 && value_utf8;
      entries[std::move(key)] = std::move(value);
    }
    for (const auto& [key, utf8] : entry_utf8)
      if (!utf8) broken.insert(st::error_kind::invalid_header);
    metadata = std::move(entries);
  }
  st::write_options options;
  options.alignment = make_alignment(in);
  const bool alignment_valid = options.alignment >= 8 && options.alignment <= (std::uint64_t{1} << 30) &&
                               (options.alignment & (options.alignment - 1)) == 0;
  if (!alignment_valid) broken.insert(st::error_kind::invalid_argument);
  // Any header is padded to at least the alignment, and the limit is 100,000,000: from 2^27 on,
  // no header fits. (The generated names and metadata are far too short to reach it otherwise.)
  if (alignment_valid && options.alignment >= (std::uint64_t{1} << 27) &&
      st::format_max_header_size < options.alignment - 8)
    broken.insert(st::error_kind::header_too_large);
  // The header (at most 2^30 bytes here) plus the data might not fit 64 bits: either outcome is
  // right, the layout says which.
  const bool file_size_may_overflow = !data_size_overflows && data_size > UINT64_MAX - (std::uint64_t{1} << 31);

  auto made = st::file_layout::try_make(declarations, metadata, options);
  if (!made) {
    const st::error_kind kind = made.error().kind();
    FUZZ_CHECK(fuzz::is_layout_kind(kind));
    FUZZ_CHECK(!made.error().message().empty());
    FUZZ_CHECK(broken.count(kind) == 1 || (file_size_may_overflow && kind == st::error_kind::validation_overflow));
    return 0;
  }
  FUZZ_CHECK(broken.empty());
  const st::file_layout& layout = *made;
  check_layout(layout, options.alignment);
  FUZZ_CHECK(layout.data_size() == data_size);
  {
    auto header_read = st::basic_reader<layout_storage>::try_open(layout_storage(layout));
    FUZZ_CHECK(header_read);
    check_read_back(*header_read, layout, metadata);
  }

  // Data that does not match a huge declaration is refused before anything of the declared size
  // is allocated (once it was not: the regression input oom-try-serialize-allocates-declared-size).
  if (layout.file_size() > (std::uint64_t{1} << 20) && in.below(4) == 0) {
    std::vector<st::tensor_source> no_data;
    for (const auto& d : declarations) no_data.push_back({d, {}});
    auto refused = st::try_serialize(no_data, metadata, options);
    FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::tensor_invalid_info);
  }

  // Small files are written, three ways, and read back.
  if (layout.file_size() > (std::size_t{1} << 20)) return 0;
  const std::uint8_t seed = in.byte();
  std::vector<std::vector<std::byte>> bytes(declarations.size());  // each one byte longer than its tensor
  std::vector<st::tensor_source> sources;
  std::map<std::string_view, std::size_t> declared;
  for (std::size_t i = 0; i < declarations.size(); ++i) {
    const auto& entry = layout.entries()[*layout.find(declarations[i].name)];
    bytes[i].resize(static_cast<std::size_t>(entry.byte_size()) + 1);
    for (std::size_t j = 0; j < bytes[i].size(); ++j) bytes[i][j] = static_cast<std::byte>(seed + 31 * i + 7 * j);
    sources.push_back({declarations[i], st::span<const std::byte>(bytes[i].data(), bytes[i].size() - 1)});
    declared[declarations[i].name] = i;
  }
  auto data_of = [&](const st::file_layout::entry& e) { return bytes[declared.at(e.declaration.name)].data(); };

  // Data that does not match its declaration: one byte too many, or one too few.
  if (!sources.empty() && in.below(8) == 0) {
    std::vector<st::tensor_source> wrong = sources;
    st::tensor_source& t = wrong[in.below(wrong.size())];
    const bool longer = t.bytes.empty() || in.below(2);
    t.bytes = st::span<const std::byte>(t.bytes.data(), t.bytes.size() + (longer ? 1 : std::size_t(-1)));
    auto refused = st::try_serialize(wrong, metadata, options);
    FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::tensor_invalid_info);
  }

  auto whole = st::try_serialize(sources, metadata, options);
  FUZZ_CHECK(whole);
  FUZZ_CHECK(whole->size() == layout.file_size());
  FUZZ_CHECK(as_text(*whole).substr(0, layout.header().size()) == layout.header());

  std::ostringstream to_stream;
  FUZZ_CHECK(st::try_serialize(to_stream, sources, metadata, options));
  FUZZ_CHECK(to_stream.str() == as_text(*whole));

  // Streaming, tensor by tensor in file order, with mistakes the writer must refuse harmlessly.
  std::ostringstream streamed;
  auto writer = st::try_make_stream_writer(streamed, declarations, metadata, options);
  FUZZ_CHECK(writer);
  FUZZ_CHECK(writer->layout().header() == layout.header());
  const auto& entries = writer->layout().entries();
  const bool leave_short = in.below(16) == 0 && layout.data_size() > 0;
  std::size_t last_nonempty = 0;
  for (std::size_t k = 0; k < entries.size(); ++k)
    if (entries[k].byte_size() > 0) last_nonempty = k;
  for (std::size_t k = 0; k < entries.size(); ++k) {
    // Left short, a tensor blocks the stream: the ones after it are not written at all.
    if (leave_short && k > last_nonempty) break;
    const st::file_layout::entry& e = entries[k];
    const std::string& name = e.declaration.name;
    const std::byte* source = data_of(e);
    std::uint64_t total = e.byte_size();
    if (leave_short && k == last_nonempty) --total;
    switch (in.below(8)) {
      case 0: {  // a name that was not declared
        auto refused = writer->try_write(unknown_name, {});
        FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::tensor_not_found);
        break;
      }
      case 1: {  // a chunk one byte longer than the tensor
        auto refused =
            writer->try_write(name, st::span<const std::byte>(source, static_cast<std::size_t>(e.byte_size()) + 1));
        FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::tensor_invalid_info);
        break;
      }
      case 2: {  // a later tensor before this one
        for (std::size_t j = k + 1; j < entries.size() && e.byte_size() > 0; ++j) {
          if (entries[j].byte_size() == 0) continue;
          auto refused =
              writer->try_write(entries[j].declaration.name, st::span<const std::byte>(data_of(entries[j]), 1));
          FUZZ_CHECK(!refused && refused.error().kind() == st::error_kind::invalid_argument);
          break;
        }
        break;
      }
      default: break;
    }
    switch (in.below(4)) {
      case 0:
        FUZZ_CHECK(writer->try_write(name, st::span<const std::byte>(source, static_cast<std::size_t>(total))));
        break;
      case 1: {  // chunks of random sizes, empty ones included
        std::uint64_t done = 0;
        int empty_chunks = 0;
        while (done < total) {
          std::uint64_t chunk =
              std::min<std::uint64_t>(total - done, in.below(64) == 0 ? in.u64() % (total + 1) : in.byte());
          if (chunk == 0 && ++empty_chunks > 4) chunk = total - done;
          FUZZ_CHECK(
              writer->try_write(name, st::span<const std::byte>(source + done, static_cast<std::size_t>(chunk))));
          done += chunk;
        }
        break;
      }
      default: {  // a producer, returning void or result<void>
        bool bad_piece = false;
        auto fill = [&](st::span<std::byte> destination, std::uint64_t offset) {
          if (offset + destination.size() > e.byte_size())
            bad_piece = true;
          else
            std::memcpy(destination.data(), source + offset, destination.size());
        };
        if (total == e.byte_size()) {
          if (in.below(2)) {
            FUZZ_CHECK(writer->try_produce(name, fill));
          } else {
            FUZZ_CHECK(writer->try_produce(
                name, [&](st::span<std::byte> destination, std::uint64_t offset) -> st::result<void> {
                  fill(destination, offset);
                  return {};
                }));
          }
        } else {
          FUZZ_CHECK(writer->try_write(name, st::span<const std::byte>(source, static_cast<std::size_t>(total))));
        }
        FUZZ_CHECK(!bad_piece);
      }
    }
  }
  auto finished = writer->try_finish();
  if (leave_short) {
    FUZZ_CHECK(!finished && finished.error().kind() == st::error_kind::tensor_invalid_info);
  } else {
    FUZZ_CHECK(finished);
    FUZZ_CHECK(streamed.str() == as_text(*whole));
  }
  auto after =
      writer->try_write(entries.empty() ? std::string_view("x") : std::string_view(entries[0].declaration.name), {});
  FUZZ_CHECK(!after && after.error().kind() == st::error_kind::invalid_argument);
  auto again = writer->try_finish();
  FUZZ_CHECK(!again && again.error().kind() == st::error_kind::invalid_argument);

  // Read back: every name, dtype, shape and byte.
  auto reader = st::try_open_memory(whole->data(), whole->size());
  FUZZ_CHECK(reader);
  check_read_back(*reader, layout, metadata);
  FUZZ_CHECK(reader->data_start() % options.alignment == 0);
  for (const st::tensor_source& t : sources) {
    st::span<const std::byte> written = reader->view(t.declaration.name).bytes;
    FUZZ_CHECK(written.size() == t.bytes.size());
    FUZZ_CHECK(written.empty() || std::memcmp(written.data(), t.bytes.data(), written.size()) == 0);
  }
  return 0;
}
