// Every case of the reference corpus (tests/data/reference/index.json), through every storage:
// the reader must give exactly `expect`, and for accepted files every field of the manifest.
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
// The s390x cross build (SAFETENSORS_TEST_NO_SHA256) has no libcrypto for its target: there, the
// bytes are checked through first_bytes_hex and first_values, and their hashes by native builds.
#ifndef SAFETENSORS_TEST_NO_SHA256
#include <openssl/evp.h>
#endif

#include <cmath>
#include <fstream>

namespace st = safetensors;
using nlohmann::json;

namespace {

using test::reference_dir;

json load_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return json::parse(in);
}

#ifndef SAFETENSORS_TEST_NO_SHA256
std::string sha256_hex(st::span<const std::byte> bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  REQUIRE(EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) == 1);
  static const char hex[] = "0123456789abcdef";
  std::string text;
  for (unsigned int i = 0; i < length; ++i) {
    text += hex[digest[i] >> 4];
    text += hex[digest[i] & 15];
  }
  return text;
}
#endif

std::string hex_prefix(st::span<const std::byte> bytes, std::size_t count) {
  static const char hex[] = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < std::min(count, bytes.size()); ++i) {
    auto byte = std::to_integer<unsigned>(bytes[i]);
    text += hex[byte >> 4];
    text += hex[byte & 15];
  }
  return text;
}

struct reference_case {
  std::string file;
  std::string expect;
  json expected_parse;  // the manifest fields of an accepted file
  std::string official_message;
};

std::vector<reference_case> all_cases() {
  json index = load_json(reference_dir + "index.json");
  std::vector<reference_case> cases;
  for (const char* group : {"valid", "invalid", "foreign"}) {
    for (const json& entry : index.at(group)) {
      reference_case c;
      c.file = entry.at("file").get<std::string>();
      c.expect = entry.at("expect").get<std::string>();
      c.official_message = entry.value("official_message", "");
      if (c.expect == "ok") {
        json manifest = load_json(reference_dir + entry.at("manifest").get<std::string>());
        c.expected_parse = manifest.contains("official_parse") ? manifest.at("official_parse") : manifest;
      }
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

// A manifest's number: a JSON number, or "nan", "inf", "-inf".
bool same_number(double got, const json& want) {
  if (want.is_string()) {
    const std::string text = want.get<std::string>();
    if (text == "nan") return std::isnan(got);
    return got == (text == "inf" ? 1 : -1) * std::numeric_limits<double>::infinity();
  }
  const double value = want.get<double>();
  return got == value && std::signbit(got) == std::signbit(value);
}

// The manifest's first_values, reproduced through copy_to: exact integers, floats widened to
// double, C64 as [re, im] pairs, BOOL as its byte.
void check_first_values(const st::tensor_info& info, const std::vector<std::byte>& bytes, const json& want) {
  const st::tensor_view view{&info, bytes};
  const std::size_t count = static_cast<std::size_t>(info.element_count);
  switch (info.dtype) {
    case st::dtype::I8:
    case st::dtype::I16:
    case st::dtype::I32:
    case st::dtype::I64: {
      std::vector<std::int64_t> values(count);
      REQUIRE(st::try_copy_to(view, st::span<std::int64_t>(values)));
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(values[i] == want[i].get<std::int64_t>());
      break;
    }
    case st::dtype::BOOL:
    case st::dtype::U8:
    case st::dtype::U16:
    case st::dtype::U32:
    case st::dtype::U64: {
      std::vector<std::uint64_t> values(count);
      REQUIRE(st::try_copy_to(view, st::span<std::uint64_t>(values)));
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(values[i] == want[i].get<std::uint64_t>());
      break;
    }
    case st::dtype::C64: {
      std::vector<std::complex<float>> values(count);
      REQUIRE(st::try_copy_to(view, st::span<std::complex<float>>(values)));
      for (std::size_t i = 0; i < want.size(); ++i) {
        CHECK(same_number(values[i].real(), want[i][0]));
        CHECK(same_number(values[i].imag(), want[i][1]));
      }
      break;
    }
    default: {
      std::vector<double> values(count);
      REQUIRE(st::try_copy_to(view, st::span<double>(values)));
      for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("element " << i);
        CHECK(same_number(values[i], want[i]));
      }
    }
  }
}

// Compares an accepted file's reader with its manifest, field by field. `bytes_of` gives a tensor's bytes.
template <class Reader, class BytesOf>
void check_manifest(const Reader& reader, const json& manifest, BytesOf&& bytes_of) {
  CHECK(reader.header_length() == manifest.at("header_length").template get<std::uint64_t>());
  CHECK(reader.data_start() == manifest.at("data_start").template get<std::uint64_t>());
  CHECK(reader.data_size() == manifest.at("data_length").template get<std::uint64_t>());
  const json& metadata = manifest.at("metadata");
  CHECK(reader.has_metadata() == !metadata.is_null());
  if (!metadata.is_null()) {
    CHECK(reader.metadata().size() == metadata.size());
    for (const auto& [key, value] : metadata.items()) {
      const std::string* found = reader.metadata().find(key);
      REQUIRE(found != nullptr);
      CHECK(*found == value.template get<std::string>());
    }
  }
  const json& tensors = manifest.at("tensors");
  REQUIRE(reader.size() == manifest.at("tensor_count").template get<std::size_t>());
  REQUIRE(reader.tensors().size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const json& want = tensors[i];
    const st::tensor_info& got = reader.tensors()[i];
    INFO("tensor " << i << " " << st::detail::quote(want.at("name").template get<std::string>()));
    CHECK(got.name == want.at("name").template get<std::string>());
    CHECK(st::dtype_name(got.dtype) == want.at("dtype").template get<std::string>());
    CHECK(std::vector<std::uint64_t>(got.shape.begin(), got.shape.end()) ==
          want.at("shape").template get<std::vector<std::uint64_t>>());
    CHECK(got.data_offsets[0] == want.at("data_offsets")[0].template get<std::uint64_t>());
    CHECK(got.data_offsets[1] == want.at("data_offsets")[1].template get<std::uint64_t>());
    CHECK(got.element_count == want.at("element_count").template get<std::uint64_t>());
    CHECK(got.byte_size() == want.at("byte_length").template get<std::uint64_t>());
    CHECK(reader.find(got.name) == &got);
    std::vector<std::byte> bytes = bytes_of(got);
#ifndef SAFETENSORS_TEST_NO_SHA256
    CHECK(sha256_hex(bytes) == want.at("sha256").get<std::string>());
#endif
    CHECK(hex_prefix(bytes, 32) == want.at("first_bytes_hex").template get<std::string>());
    if (want.contains("first_values")) check_first_values(got, bytes, want.at("first_values"));
  }
}

// The name in an official message such as "invalid offset for tensor `b`", or "".
std::string tensor_in_official_message(const std::string& message) {
  auto start = message.find("tensor `");
  if (start == std::string::npos) return "";
  start += 8;
  auto stop = message.find('`', start);
  return stop == std::string::npos ? "" : message.substr(start, stop - start);
}

template <class Result>
void check_case(const reference_case& c, const Result& opened) {
  CHECK(test::outcome(opened) == c.expect);
  if (test::outcome(opened) != c.expect) return;
  if (!opened) {
    std::string name = tensor_in_official_message(c.official_message);
    if (!name.empty()) CHECK_THAT(opened.error().message(), Catch::Contains(st::detail::quote(name)));
    return;
  }
  const auto& reader = *opened;
  check_manifest(reader, c.expected_parse, [&](const st::tensor_info& info) {
    std::vector<std::byte> bytes(static_cast<std::size_t>(info.byte_size()));
    REQUIRE(reader.try_read_into(info, bytes));
    if constexpr (std::decay_t<decltype(reader)>::has_views) {
      st::tensor_view view = reader.view(info);
      REQUIRE(view.bytes.size() == bytes.size());
      CHECK(std::equal(view.bytes.begin(), view.bytes.end(), bytes.begin()));
    }
    return bytes;
  });
}

}  // namespace

TEST_CASE("reference corpus: the index lists every file of the corpus", "[reference]") {
  std::vector<reference_case> cases = all_cases();
  CHECK(cases.size() == 28 + 68 + 5);
}

TEST_CASE("reference corpus: every case gives `expect` through every storage", "[reference]") {
  for (const reference_case& c : all_cases()) {
    const std::string path = reference_dir + c.file;
    INFO(c.file << " expects " << c.expect);
    std::vector<std::byte> bytes = test::read_file(path);

    {
      INFO("borrowed bytes");
      check_case(c, st::try_open_memory(bytes.data(), bytes.size()));
    }
    {
      INFO("owned bytes");
      check_case(c, st::try_open_buffer(bytes));
    }
    {
      INFO("mapped file");
      check_case(c, st::try_open(path));
    }
    {
      INFO("pread file");
      check_case(c, st::try_open_pread(path));
    }
  }
}

namespace {
// `bytes` with a space after every ':' and ',' of its header outside strings, and the length
// prefix made to match: the scanner's literal fast path (made for the compact form writers
// produce) no longer matches any entry, and the general path reads them all. Files whose prefix
// does not hold a header are returned unchanged.
std::vector<std::byte> with_spaced_header(const std::vector<std::byte>& bytes) {
  if (bytes.size() < 8) return bytes;
  const std::uint64_t length = st::detail::load_le<std::uint64_t>(bytes.data());
  if (length > bytes.size() - 8) return bytes;
  const auto header_end = static_cast<std::size_t>(8 + length);
  std::string spaced;
  bool in_string = false, escaped = false;
  for (std::size_t i = 8; i < header_end; ++i) {
    const char c = static_cast<char>(bytes[i]);
    spaced += c;
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ':' || c == ',') {
      spaced += ' ';
    }
  }
  std::vector<std::byte> out(8 + spaced.size() + (bytes.size() - header_end));
  st::detail::store_le<std::uint64_t>(out.data(), spaced.size());
  std::memcpy(out.data() + 8, spaced.data(), spaced.size());
  std::memcpy(out.data() + 8 + spaced.size(), bytes.data() + header_end, bytes.size() - header_end);
  return out;
}
}  // namespace

TEST_CASE("reference corpus: the scanner's general path gives what its fast path gives", "[reference]") {
  std::size_t spaced_files = 0;
  for (const reference_case& c : all_cases()) {
    INFO(c.file);
    const std::vector<std::byte> bytes = test::read_file(reference_dir + c.file);
    const std::vector<std::byte> spaced = with_spaced_header(bytes);
    if (spaced == bytes) continue;
    ++spaced_files;
    auto compact = st::try_open_buffer(bytes);
    auto general = st::try_open_buffer(spaced);
    CHECK(test::outcome(general) == test::outcome(compact));
    if (!compact || !general) continue;
    REQUIRE(general->size() == compact->size());
    for (std::size_t i = 0; i < compact->size(); ++i) {
      const st::tensor_info& a = compact->tensors()[i];
      const st::tensor_info& b = general->tensors()[i];
      CHECK(a.name == b.name);
      CHECK(a.dtype == b.dtype);
      CHECK(std::equal(a.shape.begin(), a.shape.end(), b.shape.begin(), b.shape.end()));
      CHECK(a.data_offsets == b.data_offsets);
      CHECK(a.element_count == b.element_count);
    }
    CHECK(std::equal(compact->metadata().begin(), compact->metadata().end(), general->metadata().begin(),
                     general->metadata().end()));
  }
  CHECK(spaced_files > 80);
}
