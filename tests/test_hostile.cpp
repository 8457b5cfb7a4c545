// Hostile inputs: files that broke other readers, built in memory by each test. Every one must
// give a clear error (the exact kind, and the message where it matters) or a correct result, in
// bounded memory (nothing allocated for a size the file only claims) and bounded time.
#include "child_process.hpp"
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <tuple>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace st = safetensors;
using test::outcome;

// Under AddressSanitizer or ThreadSanitizer the process reserves terabytes of shadow address
// space, so an address-space limit cannot be set; the allocator's own limits stand in for it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define TEST_SANITIZED_ALLOCATOR 1
#endif
#endif
#ifndef TEST_SANITIZED_ALLOCATOR
#define TEST_SANITIZED_ALLOCATOR 0
#endif

namespace {

/// A file built in one string (the large cases then cost one copy of the header, not three):
/// append the header with `<<`, then `done(data)` puts its length in front and the data after.
class file_builder {
 public:
  file_builder() : bytes_(8, '\0') {}
  file_builder& operator<<(std::string_view text) {
    bytes_ += text;
    return *this;
  }
  void reserve(std::size_t header_size) { bytes_.reserve(8 + header_size); }
  std::string done(std::string_view data = {}) {
    const std::uint64_t length = bytes_.size() - 8;
    for (int i = 0; i < 8; ++i) bytes_[static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
    bytes_ += data;
    return std::move(bytes_);
  }

 private:
  std::string bytes_;
};

st::result<st::memory_reader> open_bytes(const std::string& bytes, const st::read_options& options = {}) {
  return st::try_open_memory(bytes.data(), bytes.size(), options);
}

/// 8 bytes claiming a header of `length`, followed by `rest`.
std::string claiming(std::uint64_t length, const std::string& rest = "{}") {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
  return bytes + rest;
}

std::vector<std::byte> as_bytes(const std::string& text) {
  std::vector<std::byte> bytes(text.size());
  std::memcpy(bytes.data(), text.data(), text.size());
  return bytes;
}

/// A tensor entry (without braces around the whole header), e.g. entry("a", "U8", "[0]", 0, 0).
std::string entry(const std::string& name_json, const std::string& dtype, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end) {
  return "\"" + name_json + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

template <class Result>
std::string message_of(const Result& result) {
  return result ? std::string("(no error)") : result.error().message();
}

/// Runs `body` in a child process and gives its exit code (128 + the signal if it was killed).
/// Outside sanitizers the child's address space is limited to what it already has plus
/// `headroom` bytes, so a body that allocates for a size a file merely claims dies instead of
/// passing. The body must not use Catch: it reports through its exit code.
int run_in_child(const std::function<int()>& body, std::size_t headroom) {
  test::child_process child([&] {
    if (!TEST_SANITIZED_ALLOCATOR) {
      unsigned long pages = 0;
      if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(statm, "%lu", &pages) != 1) pages = 0;
        std::fclose(statm);
      }
      const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + headroom;
      const struct rlimit cap = {limit, limit};
      if (pages == 0 || ::setrlimit(RLIMIT_AS, &cap) != 0) return 125;
    }
    return body();
  });
  if (child.pid() < 0) return -1;
  const int status = child.wait();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const std::uint64_t two_to_61 = std::uint64_t{1} << 61;

}  // namespace

TEST_CASE("hostile: the JSON attack: many tensors claim the same bytes", "[hostile]") {
  // The official crate's test_json_attack: ten F32 [2, 2] tensors all at [0, 16].
  std::string header = "{";
  for (int i = 0; i < 10; ++i) header += (i ? "," : "") + entry("weight_" + std::to_string(i), "F32", "[2,2]", 0, 16);
  header += "}";
  auto ten = test::open_header(header, std::string(16, '\0'));
  REQUIRE_FALSE(ten);
  CHECK(ten.error().kind() == st::error_kind::invalid_offset);
  CHECK(ten.error().message() ==
        "tensor \"weight_1\": data_offsets [0, 16] overlap the previous tensor, which ends at 16");

  // Its scaled-up form (the official attacks/ scripts): 10^5 tensors of F32 [200, 200], all at
  // [0, 160000], about 7 MB of header.
  file_builder file;
  file.reserve(7500000);
  file << "{";
  for (int i = 0; i < 100000; ++i)
    file << (i ? ",\"weight_" : "\"weight_") << std::to_string(i)
         << R"(":{"dtype":"F32","shape":[200,200],"data_offsets":[0,160000]})";
  file << "}";
  const std::string bytes = file.done(std::string(160000, '\0'));
  auto attacked = open_bytes(bytes);
  REQUIRE_FALSE(attacked);
  CHECK(attacked.error().kind() == st::error_kind::invalid_offset);
  CHECK(attacked.error().message() ==
        "tensor \"weight_1\": data_offsets [0, 160000] overlap the previous tensor, which ends at 160000");
}

TEST_CASE("hostile: 10^6 tiny tensors open, sort and are all found", "[hostile]") {
  SECTION("10^6 of zero size at [0, 0], in reverse name order") {
    const int count = 1000000;
    file_builder file;
    file.reserve(static_cast<std::size_t>(count) * 56);
    file << "{";
    for (int i = count - 1; i >= 0; --i)
      file << (i != count - 1 ? ",\"t" : "\"t") << std::to_string(i)
           << R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
    file << "}";
    const std::string bytes = file.done();
    auto reader = open_bytes(bytes);
    REQUIRE(reader);
    REQUIRE(reader->size() == static_cast<std::size_t>(count));
    // Ties at one offset are ordered by name, whatever the order of the header.
    const auto tensors = reader->tensors();
    CHECK(std::is_sorted(tensors.begin(), tensors.end(),
                         [](const st::tensor_info& a, const st::tensor_info& b) { return a.name < b.name; }));
    CHECK(tensors[0].name == "t0");
    std::size_t found_self = 0;
    for (const st::tensor_info& t : tensors) found_self += reader->find(t.name) == &t;
    CHECK(found_self == static_cast<std::size_t>(count));
    CHECK(reader->find("t1000000") == nullptr);
    CHECK(reader->view("t999999").bytes.empty());
  }
  SECTION("10^5 of one byte each, tiling the buffer, declared last to first") {
    const int count = 100000;
    file_builder file;
    file.reserve(static_cast<std::size_t>(count) * 64);
    file << "{";
    for (int i = count - 1; i >= 0; --i) {
      const std::string number = std::to_string(i);
      file << (i != count - 1 ? ",\"t" : "\"t") << number << R"(":{"dtype":"U8","shape":[1],"data_offsets":[)" << number
           << "," << std::to_string(i + 1) << "]}";
    }
    file << "}";
    std::string data(static_cast<std::size_t>(count), '\0');
    for (int i = 0; i < count; ++i) data[static_cast<std::size_t>(i)] = static_cast<char>(i % 251);
    const std::string bytes = file.done(data);
    auto reader = open_bytes(bytes);
    REQUIRE(reader);
    REQUIRE(reader->size() == static_cast<std::size_t>(count));
    std::size_t right = 0;
    for (int i = 0; i < count; i += 97) {
      const st::tensor_info& t = reader->tensors()[static_cast<std::size_t>(i)];
      right += t.name == "t" + std::to_string(i) && t.data_offsets[0] == std::uint64_t(i) &&
               reader->find(t.name) == &t && reader->view(t).bytes[0] == static_cast<std::byte>(i % 251);
    }
    CHECK(right == static_cast<std::size_t>((count + 96) / 97));
  }
}

TEST_CASE("hostile: header lengths up to 2^64-1 are refused before anything is read or allocated", "[hostile]") {
  for (std::uint64_t length : {std::uint64_t{0xffffffffffffffffULL}, std::uint64_t{0xfffffffffffffff8ULL},
                               std::uint64_t{1} << 63, std::uint64_t{100000001}}) {
    INFO("header length " << length);
    const std::string bytes = claiming(length);
    auto refused = open_bytes(bytes);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind() == st::error_kind::header_too_large);
    CHECK(refused.error().message() ==
          "header length " + std::to_string(length) + " exceeds the limit of 100000000 bytes");
    test::temp_file file(as_bytes(bytes));
    CHECK(outcome(st::try_open(file.path())) == "HeaderTooLarge");
    CHECK(outcome(st::try_open_pread(file.path())) == "HeaderTooLarge");
  }
  // The largest allowed length, on a file of 10 bytes.
  const std::string bytes = claiming(100000000);
  auto refused = open_bytes(bytes);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind() == st::error_kind::invalid_header_length);
  CHECK(refused.error().message() == "header length 100000000 runs past the end of the file (10 bytes)");
  test::temp_file file(as_bytes(bytes));
  CHECK(outcome(st::try_open(file.path())) == "InvalidHeaderLength");
  CHECK(outcome(st::try_open_pread(file.path())) == "InvalidHeaderLength");
}

TEST_CASE("hostile: a 100 MB header of one huge string", "[hostile]") {
  const std::size_t limit = 100000000;
  SECTION("a tensor name that fills the largest header allowed") {
    const std::string tail = R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
    const std::size_t name_size = limit - 2 - tail.size();
    file_builder file;
    file.reserve(limit);
    file << "{\"" << std::string(name_size, 'n') << tail;
    const std::string bytes = file.done();
    REQUIRE(bytes.size() == 8 + limit);
    auto reader = open_bytes(bytes);
    REQUIRE(reader);
    REQUIRE(reader->size() == 1);
    CHECK(reader->tensors()[0].name.size() == name_size);
    CHECK(reader->find(reader->tensors()[0].name) == &reader->tensors()[0]);
  }
  SECTION("a metadata value of 100 MB") {
    file_builder file;
    file.reserve(limit);
    file << R"({"__metadata__":{"k":")" << std::string(limit - 25, 'v') << "\"}}";
    const std::string bytes = file.done();
    REQUIRE(bytes.size() == 8 + limit);
    auto reader = open_bytes(bytes);
    REQUIRE(reader);
    REQUIRE(reader->metadata().find("k") != nullptr);
    CHECK(reader->metadata().find("k")->size() == limit - 25);
  }
  SECTION("a name of 4 million \\u00e9 escapes, unescaped") {
    const std::size_t escapes = 4000000;
    file_builder file;
    file.reserve(6 * escapes + 64);
    file << "{\"";
    for (std::size_t i = 0; i < escapes; ++i) file << "\\u00e9";
    file << R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
    const std::string bytes = file.done();
    auto reader = open_bytes(bytes);
    REQUIRE(reader);
    const std::string_view name = reader->tensors()[0].name;
    REQUIRE(name.size() == 2 * escapes);
    CHECK(name.substr(0, 4) == "\xc3\xa9\xc3\xa9");
  }
  SECTION("an unterminated string, and a string where the object should be") {
    file_builder unterminated;
    unterminated.reserve(limit);
    unterminated << "{\"" << std::string(limit - 2, 'a');
    auto refused = open_bytes(unterminated.done());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind() == st::error_kind::invalid_header_deserialization);
    CHECK(refused.error().message() == "unterminated string (at header byte 100000000)");

    file_builder root_string;
    root_string.reserve(limit);
    root_string << "\"" << std::string(limit - 2, 'a') << "\"";
    auto not_object = open_bytes(root_string.done());
    REQUIRE_FALSE(not_object);
    CHECK(not_object.error().kind() == st::error_kind::invalid_header_deserialization);
    CHECK(not_object.error().message() == "the header must be a JSON object (at header byte 0)");
  }
}

TEST_CASE("hostile: nesting a million levels deep is refused at level 128, without deep recursion", "[hostile]") {
  const std::size_t depth = 1000000;
  const std::string prefix = R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":)";
  std::string arrays = std::string(depth, '[') + std::string(depth, ']');
  std::string objects;
  for (std::size_t i = 0; i < depth; ++i) objects += R"({"k":)";
  std::string mixed;
  for (std::size_t i = 0; i < depth / 2; ++i) mixed += R"([{"k":)";
  for (const std::string* value : {&arrays, &objects, &mixed}) {
    for (const std::string& closing : {std::string("}}"), std::string()}) {  // closed or cut short
      auto refused = test::open_header(prefix + *value + closing);
      REQUIRE_FALSE(refused);
      CHECK(refused.error().kind() == st::error_kind::invalid_header_deserialization);
      CHECK_THAT(refused.error().message(), Catch::StartsWith("nesting deeper than 127 levels"));
    }
  }
  // Where no nested value is allowed at all, the first bracket is refused.
  const std::string deep(depth, '[');
  CHECK(message_of(test::open_header(deep)) == "the header must be a JSON object (at header byte 0)");
  CHECK_THAT(message_of(test::open_header(R"({"__metadata__":{"k":)" + deep)),
             Catch::StartsWith("__metadata__ value of key \"k\" must be a string"));
  CHECK_THAT(message_of(test::open_header(R"({"__metadata__":)" + deep)),
             Catch::StartsWith("__metadata__ must be an object of strings or null"));
  CHECK_THAT(message_of(test::open_header(R"({"a":{"dtype":"U8","shape":)" + deep)),
             Catch::StartsWith("a shape dimension of tensor \"a\" must be an unsigned integer"));
  CHECK_THAT(message_of(test::open_header(R"({"a":{"data_offsets":)" + deep)),
             Catch::StartsWith("a data offset of tensor \"a\" must be an unsigned integer"));
  CHECK_THAT(message_of(test::open_header(R"({"a":{"dtype":)" + deep)),
             Catch::StartsWith("dtype of tensor \"a\" must be a string"));
  CHECK_THAT(message_of(test::open_header(R"({"a":)" + deep)),
             Catch::StartsWith("entry of tensor \"a\" must be an object"));
}

TEST_CASE("hostile: names with NUL, invalid UTF-8 and lone surrogates", "[hostile]") {
  SECTION("NUL inside names is data, not an end: names differing after it are distinct") {
    auto reader =
        test::open_header("{" + entry("a\\u0000b", "U8", "[0]", 0, 0) + "," + entry("a\\u0000c", "U8", "[0]", 0, 0) +
                          "," + entry("\\u0000", "U8", "[0]", 0, 0) + "}");
    REQUIRE(reader);
    CHECK(reader->size() == 3);
    CHECK(reader->find(std::string_view("a\0b", 3)) != nullptr);
    CHECK(reader->find(std::string_view("a\0c", 3)) != reader->find(std::string_view("a\0b", 3)));
    CHECK(reader->find(std::string_view("\0", 1)) != nullptr);
    CHECK(reader->find("a") == nullptr);
    CHECK(reader->find("") == nullptr);
    // A raw NUL byte is a control character: JSON requires it escaped.
    auto raw = test::open_header(std::string("{\"a\0b\":{}}", 10));
    REQUIRE_FALSE(raw);
    CHECK(raw.error().kind() == st::error_kind::invalid_header_deserialization);
    CHECK(raw.error().message() == "control character in a string must be escaped (at header byte 3)");
  }
  SECTION("an escaped name equal to a plain one is the same name: a duplicate") {
    auto twice =
        test::open_header("{" + entry("\\u0061", "U8", "[0]", 0, 0) + "," + entry("a", "U8", "[0]", 0, 0) + "}");
    REQUIRE_FALSE(twice);
    CHECK(twice.error().kind() == st::error_kind::invalid_header_deserialization);
    CHECK_THAT(twice.error().message(), Catch::Contains("duplicate key \"a\""));
  }
  SECTION("invalid UTF-8 anywhere in the header is InvalidHeader, at its byte") {
    // Not UTF-8: a byte never used, an overlong NUL, an encoded surrogate, past U+10FFFF, a
    // truncated sequence, a lone continuation byte, a 5-byte form.
    for (std::string bad :
         {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80", "\xf8\x88\x80\x80\x80"}) {
      INFO("bytes " << st::detail::quote(bad));
      for (const auto& [header, at] :
           {std::make_pair("{" + entry(bad, "U8", "[0]", 0, 0) + "}", 2),
            std::make_pair(R"({"__metadata__":{")" + bad + R"(":"v"}})", 18),
            std::make_pair(R"({"__metadata__":{"k":")" + bad + R"("}})", 22),
            std::make_pair(R"({"a":{"dtype":")" + bad + R"(","shape":[0],"data_offsets":[0,0]}})", 15),
            std::make_pair(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":")" + bad + R"("}})", 57)}) {
        auto refused = test::open_header(header);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().kind() == st::error_kind::invalid_header);
        CHECK(refused.error().message() == "the header is not valid UTF-8 (at header byte " + std::to_string(at) + ")");
      }
    }
  }
  SECTION("lone surrogates in \\u escapes are refused; pairs become one character") {
    for (const auto& [escaped, why] : {std::make_pair("\\ud800", "lone leading surrogate in \\u escape"),
                                       std::make_pair("\\udbff", "lone leading surrogate in \\u escape"),
                                       std::make_pair("\\ud800x", "lone leading surrogate in \\u escape"),
                                       std::make_pair("\\udc00", "lone trailing surrogate in \\u escape"),
                                       std::make_pair("\\udfff\\ud800", "lone trailing surrogate in \\u escape"),
                                       std::make_pair("\\ud800\\u0041", "invalid surrogate pair in \\u escape"),
                                       std::make_pair("\\ud800\\ud800", "invalid surrogate pair in \\u escape")}) {
      INFO(escaped);
      for (const std::string& header : {"{" + entry(escaped, "U8", "[0]", 0, 0) + "}",
                                        std::string(R"({"__metadata__":{"k":")") + escaped + "\"}}"}) {
        auto refused = test::open_header(header);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().kind() == st::error_kind::invalid_header_deserialization);
        CHECK_THAT(refused.error().message(), Catch::StartsWith(why));
      }
    }
    auto pairs = test::open_header("{" + entry("\\ud83d\\ude00", "U8", "[0]", 0, 0) + "," +
                                   entry("\\udbff\\udfff", "U8", "[0]", 0, 0) + "}");
    REQUIRE(pairs);
    CHECK(pairs->find("\xf0\x9f\x98\x80") != nullptr);
    CHECK(pairs->find("\xf4\x8f\xbf\xbf") != nullptr);
  }
}

TEST_CASE("hostile: offsets near 2^64", "[hostile]") {
  const std::string max = "18446744073709551615";
  auto far = test::open_header("{" + entry("a", "U8", "[0]", UINT64_MAX, UINT64_MAX) + "}");
  REQUIRE_FALSE(far);
  CHECK(far.error().kind() == st::error_kind::invalid_offset);
  CHECK(far.error().message() == "tensor \"a\": data_offsets [" + max + ", " + max +
                                     "] leave a hole after the previous tensor, which ends at 0");

  auto backwards =
      test::open_header("{" + entry("a", "U8", "[0]", 0, 0) + "," + entry("b", "U8", "[0]", UINT64_MAX, 0) + "}");
  REQUIRE_FALSE(backwards);
  CHECK(backwards.error().kind() == st::error_kind::invalid_offset);
  CHECK_THAT(backwards.error().message(), Catch::Contains("end before they begin"));

  // The whole range in one tensor: its bit count overflows first.
  auto whole = test::open_header("{" + entry("a", "U8", "[" + max + "]", 0, UINT64_MAX) + "}");
  REQUIRE_FALSE(whole);
  CHECK(whole.error().kind() == st::error_kind::validation_overflow);

  // Nine tensors tiling [0, 2^64-1] (a U8 tensor holds at most 2^61-1 bytes, or its bit count
  // overflows): valid up to the last rule, which compares them with the buffer.
  std::string header = "{";
  const std::uint64_t largest = two_to_61 - 1;
  for (std::uint64_t k = 0; k < 9; ++k) {
    const std::uint64_t begin = k * largest, end = k == 8 ? UINT64_MAX : begin + largest;
    header +=
        (k ? "," : "") + entry("t" + std::to_string(k), "U8", "[" + std::to_string(end - begin) + "]", begin, end);
  }
  header += "}";
  auto tiled = test::open_header(header, "data");
  REQUIRE_FALSE(tiled);
  CHECK(tiled.error().kind() == st::error_kind::metadata_incomplete_buffer);
  CHECK(tiled.error().message() == "the tensors cover " + max + " bytes but the data buffer holds 4");
  st::read_options lenient;
  lenient.allow_trailing_bytes = true;
  CHECK(outcome(test::open_header(header, "data", lenient)) == "MetadataIncompleteBuffer");

  // One past 2^64-1 is not a 64-bit number at all.
  CHECK_THAT(
      message_of(test::open_header(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,18446744073709551616]}})")),
      Catch::StartsWith("a data offset of tensor \"a\" is larger than 2^64-1"));
}

TEST_CASE("hostile: shapes whose product overflows only after a zero dimension", "[hostile]") {
  const std::string overflow = "tensor \"a\": the element count of its shape overflows 64 bits";
  for (const auto& [shape, expected] : {std::make_pair("[4294967296,4294967296,0]", "ValidationOverflow"),
                                        std::make_pair("[18446744073709551615,2,0]", "ValidationOverflow"),
                                        std::make_pair("[9223372036854775808,2,0]", "ValidationOverflow"),
                                        std::make_pair("[4294967296,2147483648,0]", "ok"),  // 2^63, then 0
                                        std::make_pair("[0,18446744073709551615,18446744073709551615]", "ok"),
                                        std::make_pair("[18446744073709551615,1,0]", "ok")}) {
    for (const char* dtype : {"U8", "F4", "U64"}) {
      INFO(dtype << " " << shape);
      auto opened = test::open_header("{" + entry("a", dtype, shape, 0, 0) + "}");
      CHECK(outcome(opened) == expected);
      if (!opened) CHECK(opened.error().message() == overflow);
    }
  }
}

TEST_CASE("hostile: claimed sizes are checked before anything of that size is allocated", "[hostile]") {
  // Each case claims gigabytes to exabytes in a file of a few bytes. The cases run in a child
  // whose address space is capped at 64 MB above what it already has (outside sanitizers), so a
  // reader or writer that allocated for a claimed size would die there instead of passing.
  const std::string huge_tensor = "{" + entry("a", "U8", "[1099511627776]", 0, 1099511627776ULL) + "}";
  const std::string bits_overflow = "{" + entry("a", "F64", "[1073741824,1073741824]", 0, 0) + "}";
  test::temp_file short_file(as_bytes(claiming(100000000)));
  test::temp_file huge_file(test::file_bytes(huge_tensor, "tiny"));
  test::temp_file target({});
  const std::vector<std::pair<std::string, std::function<bool()>>> cases =
      {
          {"memory, header length 2^64-1",
           [] { return outcome(open_bytes(claiming(UINT64_MAX))) == "HeaderTooLarge"; }},
          {"memory, header length 10^8 in 10 bytes",
           [] { return outcome(open_bytes(claiming(100000000))) == "InvalidHeaderLength"; }},
          {"pread, header length 10^8 in 10 bytes",
           [&] { return outcome(st::try_open_pread(short_file.path())) == "InvalidHeaderLength"; }},
          {"mapped, header length 10^8 in 10 bytes",
           [&] { return outcome(st::try_open(short_file.path())) == "InvalidHeaderLength"; }},
          {"memory, a tensor of 1 TiB",
           [&] { return outcome(test::open_header(huge_tensor, "tiny")) == "MetadataIncompleteBuffer"; }},
          {"pread, a tensor of 1 TiB",
           [&] { return outcome(st::try_open_pread(huge_file.path())) == "MetadataIncompleteBuffer"; }},
          {"mapped, a tensor of 1 TiB",
           [&] { return outcome(st::try_open(huge_file.path())) == "MetadataIncompleteBuffer"; }},
          {"memory, 2^60 F64 elements",
           [&] { return outcome(test::open_header(bits_overflow)) == "ValidationOverflow"; }},
          {"layout of a 2^50-byte tensor",
           [] {
    auto layout = st::file_layout::try_make({{"big", st::dtype::U8, {std::uint64_t{1} << 50}}});
    return layout && layout->data_size() == std::uint64_t{1} << 50;
           }},
          {"stream writer of a 2^50-byte tensor, left empty",
           [] {
    std::ostringstream out;
    auto writer = st::try_make_stream_writer(out, {{"big", st::dtype::U8, {std::uint64_t{1} << 50}}});
    return writer && outcome(writer->try_finish()) == "TensorInvalidInfo" && out.str().size() < 4096;
           }},
                                                                   {"file writer of a 2^50-byte tensor, abandoned",
                                                                    [&] {
    auto writer = st::try_make_file_writer(target.path(), {{"big", st::dtype::U8, {std::uint64_t{1} << 50}}});
    return bool(writer);
                                                                    }},
      };
  REQUIRE(cases.size() < 31);
  if (TEST_SANITIZED_ALLOCATOR) WARN("sanitized build: the address space is not capped; results are still checked");
  const int status = run_in_child(
      [&] {
    for (const auto& one_case : cases)
      if (!one_case.second()) return 1;
    return 0;
      },
      std::size_t{64} << 20);
  INFO("child exit code " << status << " (1: a case gave the wrong result; 128 + signal: it died, e.g. allocating)");
  CHECK(status == 0);
  if (status == 1) {  // a wrong result, not a crash: show which, case by case, in this process
    for (const auto& [name, check] : cases) {
      INFO(name);
      CHECK(check());
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Defects found while writing these tests, each fixed in the header; the tests keep them fixed.
// ------------------------------------------------------------------------------------------------

namespace {

/// The reader's name-table size for `count` names (index_tensors).
std::size_t name_table_size(std::size_t count) {
  std::size_t table = 4;
  while (table < count * 2) table *= 2;
  return table;
}

/// Probes made inserting `names` into a linear-probing table of the reader's size under `seed`,
/// as index_tensors makes them: the cost of opening a file with these names, counted, not timed
/// (timings on a shared machine under sanitizers say nothing reliable).
std::size_t probes_to_insert(const std::vector<std::string>& names, std::uint64_t seed) {
  const std::size_t mask = name_table_size(names.size()) - 1;
  std::vector<bool> taken(mask + 1, false);
  std::size_t probes = 0;
  for (const std::string& name : names) {
    std::size_t slot = st::detail::hash_name(name, seed) & mask;
    for (; taken[slot]; slot = (slot + 1) & mask) ++probes;
    taken[slot] = true;
  }
  return probes;
}

/// Opens a file holding an empty U8 tensor under each name and finds every one of them.
void check_opens_and_finds(const std::vector<std::string>& names) {
  file_builder file;
  file << "{";
  for (std::size_t i = 0; i < names.size(); ++i) file << (i ? "," : "") << entry(names[i], "U8", "[0]", 0, 0);
  file << "}";
  const std::string bytes = file.done();
  auto reader = open_bytes(bytes);
  REQUIRE(reader);
  CHECK(reader->tensors().size() == names.size());
  std::size_t found = 0;
  for (const std::string& name : names) found += reader->find(name) != nullptr;
  CHECK(found == names.size());
}

}  // namespace

TEST_CASE("regression: names chosen to collide in the name table do not make opening quadratic",
          "[hostile][regression]") {
  // The reader's name table is an open-addressing table with linear probing. With a fixed hash,
  // names chosen offline so that their hashes share their low bits all landed in one run of
  // slots: n such names cost O(n^2) probes, hours for the 2 million names a 100 MB header can
  // hold. The hash is seeded anew in every process (detail::hash_seed), and the seed enters
  // every round nonlinearly: names chosen to collide under a seed an author can know (here 0)
  // spread out like any others under the process's.
  const std::size_t count = 1 << 13;
  const std::size_t table = name_table_size(count);
  std::vector<std::string> colliding;
  for (std::size_t i = 0; colliding.size() < count; ++i) {
    std::string name = "t" + std::to_string(i);
    if ((st::detail::hash_name(name, 0) & (table - 1)) < table / 32) colliding.push_back(std::move(name));
  }
  // Under the known seed the names pile into 1/32 of the table: every insertion walks the run.
  CHECK(probes_to_insert(colliding, 0) > count * count / 4);
  // Under the reader's seed they behave as random names at load 1/2: about count / 2 probes in
  // all (Knuth's estimate for linear probing); 4 * count leaves a margin no seed comes near.
  INFO("process seed " << st::detail::hash_seed());
  CHECK(probes_to_insert(colliding, st::detail::hash_seed()) < 4 * count);
  check_opens_and_finds(colliding);
}

TEST_CASE("regression: names that differ only in the high bytes of their last word do not collide under every seed",
          "[hostile][regression]") {
  // The first seeded hash xor-ed the seed in and multiplied in 64 bits. A product's low bits
  // depend only on its operands' low bits, so 7-byte names differing only in bits 44-55 (the
  // high nibble of byte 5 and byte 6) shared their slot under every seed: these 552 names all
  // hashed to one slot in every process, and a file of them was quadratic to open whatever the
  // seed. The hash now folds 128-bit products, whose low bits depend on every bit.
  std::vector<std::string> structured;
  for (char fifth : {'!', '1', 'A', 'Q', 'a', 'q'}) {
    for (char sixth = '!'; sixth <= '~'; ++sixth) {
      if (sixth == '"' || sixth == '\\') continue;
      structured.push_back(std::string("tens") + "o" + fifth + sixth);
    }
  }
  REQUIRE(structured.size() == 552);
  for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{0x0123456789abcdef}, st::detail::hash_seed()}) {
    INFO("seed " << seed);
    CHECK(probes_to_insert(structured, seed) < 4 * structured.size());
  }
  check_opens_and_finds(structured);
}

TEST_CASE("fold_multiply: the 128-bit product's halves xor-ed, with or without a 128-bit integer", "[hostile]") {
  // Expected values from Python's big integers: (a * b) % 2**64 ^ (a * b) >> 64.
  const std::uint64_t all_ones = ~std::uint64_t{0};
  const std::array<std::array<std::uint64_t, 3>, 5> cases{{
      {all_ones, all_ones, all_ones},
      {0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x2317228f48165bb2ULL},
      {0xa0761d6478bd642fULL, 0xe7037ed1a0b428dbULL, 0x1ff5c2923a788d2cULL},
      {std::uint64_t{1} << 63, 2, 1},
      {0xffffffffULL, 0xffffffffULL, 0xfffffffe00000001ULL},
  }};
  for (const auto& [a, b, expected] : cases) {
    INFO(std::hex << a << " * " << b);
    CHECK(st::detail::fold_multiply(a, b) == expected);
    CHECK(st::detail::fold_multiply_by_halves(a, b) == expected);
  }
  std::mt19937_64 random(20261126);
  std::size_t agreeing = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t a = random(), b = random();
    agreeing += st::detail::fold_multiply(a, b) == st::detail::fold_multiply_by_halves(a, b);
  }
  CHECK(agreeing == 10000);
}

TEST_CASE("regression: try_serialize checks the data before it allocates the file", "[hostile][regression]") {
  // try_serialize once sized its output to the declared file before comparing each tensor's
  // bytes with its declaration: 2^50 bytes declared and none given threw std::bad_alloc out of a
  // non-throwing function. The data is now checked first (detail::checked_layout). Found by
  // tests/fuzz/fuzz_writer.cpp; input: tests/fuzz/regressions/writer/oom-try-serialize-allocates-declared-size.
  const int status = run_in_child(
      [] {
    auto written = st::try_serialize({{{"huge", st::dtype::U8, {std::uint64_t{1} << 50}}, {}}});
    return !written && written.error().kind() == st::error_kind::tensor_invalid_info ? 0 : 1;
      },
      std::size_t{64} << 20);
  INFO("child exit code " << status
                          << " (0: refused as it should be; 126: it threw; 128 + signal: it died allocating)");
  CHECK(status == 0);
}

TEST_CASE("regression: a slice step near 2^64 selects the first element", "[hostile][regression]") {
  // tensor_slice::make once counted a range's elements as (stop - start + step - 1) / step, which
  // wraps around 2^64 for such steps: x[0:5:2^64-2] selected nothing where it should select x[0]
  // (as Python's x[0:5:huge] does). Found by tests/fuzz/fuzz_reader.cpp; input:
  // tests/fuzz/regressions/reader/slice-huge-step-selects-nothing.
  const std::string data = "abcde";
  auto reader = test::open_header("{" + entry("t", "U8", "[5]", 0, 5) + "}", data);
  REQUIRE(reader);
  for (std::uint64_t step : {std::uint64_t{1} << 63, UINT64_MAX - 4, UINT64_MAX - 3, UINT64_MAX - 1, UINT64_MAX}) {
    INFO("step " << step);
    auto slice = reader->try_slice("t", {st::range(0, st::to_end, step)});
    REQUIRE(slice);
    CHECK(slice->element_count() == 1);
    std::byte first{0};
    CHECK((slice->try_copy_to(st::span<std::byte>(&first, 1), st::dtype::U8) && first == std::byte{'a'}));
  }
}

TEST_CASE("hostile: threads that cannot start end in an error, every started thread joined", "[hostile][rlimit]") {
  // Under a memory limit that holds a few thread stacks but not 1,023, the pool stops and joins
  // the threads it started and reports the failure; a load that starts its own pool returns it.
  // (Not under sanitizers, whose allocators need more address space than any such limit.)
  if (TEST_SANITIZED_ALLOCATOR) return;
  const std::size_t room_for_a_few_stacks = 64u << 20;
  CHECK(run_in_child(
            [] {
    auto pool = st::thread_pool::try_make(1024);
    if (pool) return 1;
    return pool.error().message().rfind("cannot start thread ", 0) == 0 &&
                   pool.error().message().find(" of 1024: ") != std::string::npos
               ? 0
               : 2;
            },
            room_for_a_few_stacks) == 0);
#if SAFETENSORS_EXCEPTIONS
  CHECK(run_in_child(
            [] {
    try {
      st::thread_pool pool(1024);
      return 1;
    } catch (const st::exception& failed) {
      return failed.kind() == st::error_kind::io_error ? 0 : 2;
    }
            },
            room_for_a_few_stacks) == 0);
#endif
  const std::vector<std::byte> file =
      test::file_bytes(R"({"a":{"dtype":"U8","shape":[262144],"data_offsets":[0,262144]}})", std::string(262144, 'x'));
  CHECK(run_in_child(
            [&] {
    auto reader = st::try_open_buffer(file);
    if (!reader) return 3;
    std::vector<st::load_request> requests;
    std::vector<std::byte> destination(262144);
    requests.push_back({&reader->info("a"), destination});
    st::load_options options;
    options.threads = 64;  // 64 blocks of 4 KiB: 64 threads wanted
    options.block_size = 4096;
    auto loaded = reader->try_load_into(requests, options);
    if (loaded) return 4;
    return loaded.error().message().find("cannot start thread ") != std::string::npos ? 0 : 5;
            },
            room_for_a_few_stacks) == 0);
}

TEST_CASE("hostile: a FIFO, a directory or a device given as a file is refused at once, and named", "[hostile]") {
  // Opening a FIFO for reading waits for a writer: the reader must not. In a child that SIGALRM
  // ends after 20 s, so that a hang is a failed test, not a hung suite.
  test::temp_directory directory;
  const std::string fifo = directory.file("pipe.safetensors");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  test::child_process child([&] {
    ::alarm(20);
    auto mapped = st::try_open(fifo);
    auto pread = st::try_open_pread(fifo);
    const std::string expected = st::detail::quote(fifo) + ": not a regular file (a FIFO)";
    return !mapped && !pread && mapped.error().message() == expected && pread.error().message() == expected ? 0 : 1;
  });
  REQUIRE(child.pid() > 0);
  const int status = child.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  CHECK(st::try_open(directory.path).error().message() ==
        st::detail::quote(directory.path) + ": not a regular file (a directory)");
  CHECK(st::try_open_pread("/dev/null").error().message() == "\"/dev/null\": not a regular file (a character device)");

  // A model's shard that is not a regular file is named for what it is, not "missing".
  test::write_text(directory.file("model.safetensors.index.json"), R"({"weight_map":{"a":"pipe.safetensors"}})");
  auto model = st::try_open_model(directory.file("model.safetensors.index.json"));
  REQUIRE_FALSE(model);
  CHECK(model.error().message() == st::detail::quote(directory.file("model.safetensors.index.json")) +
                                       ": lists shard " + st::detail::quote(fifo) +
                                       ", which is a FIFO, not a regular file");
}

namespace {

// Entries of /proc/self/fd: the descriptors this process has open.
std::size_t open_descriptor_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count;
}

// Loads every tensor of `model` with a plan of two threads and reads each by name: 0 when every
// byte is test::fill_byte's, else a code saying what failed.
template <class Model>
int load_every_tensor(const Model& model) {
  if (auto valid = model.try_validate(); !valid) return 10;
  std::vector<std::vector<std::byte>> destinations;
  std::vector<st::load_request> requests;
  for (const st::model_entry& entry : model.tensor_names()) {
    const st::tensor_info* info = model.find(entry.name);
    if (info == nullptr) return 11;
    destinations.emplace_back(static_cast<std::size_t>(info->byte_size()));
    requests.push_back({info, destinations.back(), {}, entry.shard});
  }
  st::load_options options;
  options.threads = 2;
  if (auto loaded = model.try_load_into(requests, options); !loaded) return 12;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::size_t tensor = std::stoul(std::string(requests[i].tensor->name.substr(1)));
    for (std::size_t k = 0; k < destinations[i].size(); ++k)
      if (destinations[i][k] != test::fill_byte(tensor, k)) return 13;
    auto read = model.try_read(requests[i].tensor->name);
    if (!read || *read != destinations[i]) return 14;
  }
  return 0;
}

}  // namespace

TEST_CASE("hostile: a model of 300 shards loads under a limit of open files far below that", "[hostile]") {
  // Before, every shard kept its descriptor for the model's life: the 25th shard failed with
  // "Too many open files". Mapped shards now keep none, pread shards share a cache that closes
  // idle ones when the system has none left.
  test::temp_directory dir;
  const std::size_t shards = 300;
  std::vector<st::tensor_declaration> tensors;
  for (std::size_t i = 0; i < shards; ++i) tensors.push_back({"t" + std::to_string(i), st::dtype::U8, {8}});
  st::shard_options options;
  options.max_shard_size = 8;
  auto writer = st::make_sharded_writer(dir.path, tensors, options);
  for (std::size_t i = 0; i < shards; ++i) {
    std::vector<std::byte> bytes(8);
    for (std::size_t k = 0; k < bytes.size(); ++k) bytes[k] = test::fill_byte(i, k);
    writer.write("t" + std::to_string(i), bytes);
  }
  writer.finish();
  REQUIRE(std::distance(std::filesystem::directory_iterator(dir.path), {}) == static_cast<std::ptrdiff_t>(shards + 1));
  test::child_process child([&] {
    struct rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 125;
    limit.rlim_cur = static_cast<rlim_t>(open_descriptor_count() + 24);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return 125;
    auto mapped = st::try_open_model(dir.path);
    if (!mapped) return 1;
    if (const int failed = load_every_tensor(*mapped); failed != 0) return failed;
    auto pread = st::try_open_model_pread(dir.path);
    if (!pread) return 2;
    if (const int failed = load_every_tensor(*pread); failed != 0) return 20 + failed;
    // Both models open, every shard read, under the limit.
    return 0;
  });
  const int status = child.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("hostile: a pread file's descriptor, once closed, is opened again only on the same file", "[hostile]") {
  test::temp_directory dir;
  const std::string path = dir.path + "/a.safetensors";
  const std::string other = dir.path + "/b.safetensors";
  const auto write = [](const std::string& where, const std::string& data) {
    const std::vector<std::byte> bytes =
        test::file_bytes(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", data);
    std::ofstream(where, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  write(path, "abcd");
  write(other, "wxyz");
  auto reader = st::try_open_pread(path);
  REQUIRE(reader);
  auto& cache = st::detail::descriptor_cache::instance();
  // More files opened after it than the cache keeps: its descriptor, least recently used, is closed.
  auto crowd = [&] {
    std::vector<st::pread_file> files;
    for (std::size_t i = 0; i < st::detail::descriptor_cache::capacity + 2; ++i)
      files.push_back(st::pread_file::open(other));
    CHECK(cache.open_descriptors() <= st::detail::descriptor_cache::capacity);
    return files;
  };
  auto first_crowd = crowd();
  auto read = reader->try_read("x");
  REQUIRE(read);
  CHECK(std::string(reinterpret_cast<const char*>(read->data()), read->size()) == "abcd");
  auto second_crowd = crowd();
  std::filesystem::rename(other, path);
  auto replaced = reader->try_read("x");
  REQUIRE_FALSE(replaced);
  CHECK(replaced.error().kind() == st::error_kind::io_error);
  CHECK(replaced.error().message() ==
        st::detail::quote(path) +
            ": another file has taken its name since it was opened (its descriptor was closed to stay within the "
            "open-file limit)");
}
