// The header rules of docs/FORMAT.md, each at its boundary, from hand-written bytes.
#include "test_support.hpp"

#include <catch2/catch.hpp>

namespace st = safetensors;
using test::open_header;
using test::outcome;

namespace {
// A valid one-tensor header for `name` (raw JSON spelling) with the given body fields.
std::string entry(const std::string& name_json, const std::string& body) {
  return "{" + name_json + ":{" + body + "}}";
}
const std::string f32x2 = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
const std::string eight_bytes(8, '\0');

// `depth` nested arrays inside an unknown field of a tensor entry: the root object is level 1,
// the entry level 2, so the outermost array is level 3 and the innermost is level depth + 2.
std::string nested_arrays(int depth) {
  return R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":)" + std::string(depth, '[') +
         std::string(depth, ']') + "}}";
}
}  // namespace

TEST_CASE("framing: fewer than 8 bytes is HeaderTooSmall", "[parse]") {
  for (std::size_t size = 0; size < 8; ++size) {
    std::vector<std::byte> bytes(size, std::byte{0});
    CHECK(outcome(st::try_open_buffer(bytes)) == "HeaderTooSmall");
  }
}

TEST_CASE("framing: a header length of exactly 100,000,000 is allowed, one more is HeaderTooLarge", "[parse]") {
  std::string header = "{}" + std::string(100000000 - 2, ' ');
  auto accepted = open_header(header);
  REQUIRE(accepted);
  CHECK(accepted->header_length() == 100000000);
  CHECK(accepted->size() == 0);

  auto refused = open_header(header + " ");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind() == st::error_kind::header_too_large);
  CHECK_THAT(refused.error().message(), Catch::Contains("100000001"));
}

TEST_CASE("framing: header lengths past the end of the file, up to 2^64-1", "[parse]") {
  for (std::uint64_t length : {std::uint64_t{3}, std::uint64_t{100000000}, std::uint64_t{0xffffffffffffffffULL},
                               std::uint64_t{0xfffffffffffffff8ULL}}) {
    std::vector<std::byte> bytes = test::file_bytes("{}");
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
    INFO("header length " << length);
    std::string want = length > 100000000 ? "HeaderTooLarge" : "InvalidHeaderLength";
    CHECK(outcome(st::try_open_buffer(bytes)) == want);
  }
  // The header length uses all the bytes: the data buffer is empty.
  CHECK(outcome(open_header("{}")) == "ok");
}

TEST_CASE("JSON: whitespace around the object is allowed, anything else is not", "[parse]") {
  CHECK(outcome(open_header(" \t\r\n{}\n\t\r ")) == "ok");
  CHECK(outcome(open_header("{ }")) == "ok");
  CHECK(outcome(open_header(std::string("{}\0", 3))) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("{}x")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("\f{}")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("\xEF\xBB\xBF{}")) == "InvalidHeaderDeserialization");  // a UTF-8 byte order mark
  CHECK(outcome(open_header("")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("   ")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("{")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("[]")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header("\"{}\"")) == "InvalidHeaderDeserialization");
}

TEST_CASE("JSON: an embedded NUL ends nothing: the whole header is parsed", "[parse]") {
  // A C-string parse would stop at the NUL and accept the first object.
  std::string header = entry(R"("a")", f32x2) + std::string("\0", 1) + "garbage";
  auto opened = open_header(header, eight_bytes);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().kind() == st::error_kind::invalid_header_deserialization);
  CHECK_THAT(opened.error().message(), Catch::Contains("after the header's closing"));
}

TEST_CASE("UTF-8: the header is checked as a whole before JSON", "[parse]") {
  CHECK(outcome(open_header(entry("\"\xff\"", f32x2), eight_bytes)) == "InvalidHeader");
  CHECK(outcome(open_header(entry("\"\xc0\xaf\"", f32x2), eight_bytes)) == "InvalidHeader");          // overlong '/'
  CHECK(outcome(open_header(entry("\"\xed\xa0\x80\"", f32x2), eight_bytes)) == "InvalidHeader");      // U+D800 encoded
  CHECK(outcome(open_header(entry("\"\xf4\x90\x80\x80\"", f32x2), eight_bytes)) == "InvalidHeader");  // > U+10FFFF
  CHECK(outcome(open_header(entry("\"\xe2\x82\"", f32x2), eight_bytes)) == "InvalidHeader");          // truncated
  // Invalid UTF-8 after a JSON error is still InvalidHeader: rule 4 comes before rule 5.
  CHECK(outcome(open_header("[\xff")) == "InvalidHeader");
  // The largest code point and the highest three-byte one are valid.
  CHECK(outcome(open_header(entry("\"\xf4\x8f\xbf\xbf \xef\xbf\xbf\"", f32x2), eight_bytes)) == "ok");
}

TEST_CASE("strings: names come back unescaped", "[parse]") {
  auto opened = open_header(entry(R"("a\"b\u00e9\\\/\b\f\n\r\t\u0000\ud83e\udd80")", f32x2), eight_bytes);
  REQUIRE(opened);
  const std::string want = std::string("a\"b\xc3\xa9\\/\b\f\n\r\t") + std::string(1, '\0') + "\xf0\x9f\xa6\x80";
  REQUIRE(opened->size() == 1);
  CHECK(opened->tensors()[0].name == want);
  CHECK(opened->find(want) != nullptr);
  CHECK(opened->find("a\"b") == nullptr);
}

TEST_CASE("strings: malformed escapes and raw control characters are refused", "[parse]") {
  for (std::string name : {R"("\ud800")", R"("\udc00")", R"("\ud800\u0041")", R"("\x41")", R"("\u12")", R"("\u12G4")",
                           "\"a\x01\"", "\"tab\there\"", R"("unterminated)"}) {
    INFO(name);
    CHECK(outcome(open_header(entry(name, f32x2), eight_bytes)) == "InvalidHeaderDeserialization");
  }
}

TEST_CASE("numbers: only plain unsigned integers up to 2^64-1 in shape and data_offsets", "[parse]") {
  auto with_shape = [](const std::string& shape) {
    return open_header(entry(R"("a")", R"("dtype":"U8","shape":[)" + shape + R"(],"data_offsets":[0,2])"),
                       std::string(2, 'x'));
  };
  CHECK(outcome(with_shape("2")) == "ok");
  CHECK(outcome(with_shape(" 2 ")) == "ok");
  for (std::string bad : {"2.0", "2e0", "2E0", "-2", "-0", "02", "+2", "\"2\"", "null", "true", "0x2", "2."}) {
    INFO(bad);
    CHECK(outcome(with_shape(bad)) == "InvalidHeaderDeserialization");
  }
  CHECK_THAT(with_shape("1.0").error().message(), Catch::Contains("shape dimension of tensor \"a\""));
  CHECK_THAT(with_shape("-1").error().message(), Catch::Contains("negative"));

  // 2^64-1 is a number; its size in bits overflows.
  auto at_max = open_header(
      entry(R"("a")", R"("dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,18446744073709551615])"));
  CHECK(outcome(at_max) == "ValidationOverflow");
  // 2^64 is not.
  auto past_max = open_header(entry(R"("a")", R"("dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616])"));
  CHECK(outcome(past_max) == "InvalidHeaderDeserialization");
  CHECK_THAT(past_max.error().message(), Catch::Contains("larger than 2^64-1"));
  // Offsets at 2^64-1 that do not start the buffer.
  CHECK(outcome(open_header(entry(
            R"("a")", R"("dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615])"))) ==
        "InvalidOffset");
  // Offsets that describe more data than the file holds: MetadataIncompleteBuffer, never a read.
  CHECK(outcome(open_header(
            entry(R"("a")", R"("dtype":"U8","shape":[2305843009213693951],"data_offsets":[0,2305843009213693951])"))) ==
        "MetadataIncompleteBuffer");
}

TEST_CASE("numbers: the element count overflows left to right, before a zero is reached", "[parse]") {
  CHECK(
      outcome(open_header(entry(R"("a")", R"("dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0])"))) ==
      "ValidationOverflow");
  CHECK(outcome(open_header(
            entry(R"("a")", R"("dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0])"))) == "ok");
  CHECK(outcome(open_header(entry(R"("a")", R"("dtype":"U64","shape":[288230376151711743],"data_offsets":[0,0])"))) ==
        "TensorInvalidInfo");
  CHECK(outcome(open_header(entry(R"("a")", R"("dtype":"U64","shape":[288230376151711744],"data_offsets":[0,0])"))) ==
        "ValidationOverflow");
}

TEST_CASE("nesting: 127 levels are accepted, 128 are refused", "[parse]") {
  CHECK(outcome(open_header(nested_arrays(125))) == "ok");  // innermost array at level 127
  auto deep = open_header(nested_arrays(126));              // innermost array at level 128
  REQUIRE_FALSE(deep);
  CHECK(deep.error().kind() == st::error_kind::invalid_header_deserialization);
  CHECK_THAT(deep.error().message(), Catch::Contains("127"));
  CHECK(outcome(open_header(nested_arrays(100000))) == "InvalidHeaderDeserialization");
  // Objects count like arrays.
  std::string objects = R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":)";
  for (int i = 0; i < 125; ++i) objects += R"({"k":)";
  objects += "1" + std::string(125, '}') + "}}";
  CHECK(outcome(open_header(objects)) == "ok");
}

TEST_CASE("entries: fields, types and unknown fields", "[parse]") {
  CHECK(outcome(open_header(entry(R"("a")", f32x2 + R"(,"extra":{"x":[1,2.5e-3,"s",true,false,null]})"),
                            eight_bytes)) == "ok");
  // Field names are compared after unescaping.
  CHECK(outcome(open_header(entry(R"("a")", R"("\u0064type":"F32","shape":[2],"data_offsets":[0,8])"), eight_bytes)) ==
        "ok");
  // Field order does not matter.
  CHECK(outcome(open_header(entry(R"("a")", R"("data_offsets":[0,8],"shape":[2],"dtype":"F32")"), eight_bytes)) ==
        "ok");
  for (std::string body :
       {R"("dtype":7,"shape":[2],"data_offsets":[0,8])", R"("dtype":["F32"],"shape":[2],"data_offsets":[0,8])",
        R"("dtype":"F32","shape":{},"data_offsets":[0,8])", R"("dtype":"F32","shape":[2],"data_offsets":{"0":0})",
        R"("dtype":"F32","shape":[2],"data_offsets":[0,8],)", R"("dtype":"F32","shape":[2,],"data_offsets":[0,8])",
        R"("dtype":"F32" "shape":[2],"data_offsets":[0,8])",
        R"("dtype":"F32","shape":[2],"data_offsets":[0,8],"x":tru)",
        R"("dtype":"F32","shape":[2],"data_offsets":[0,8],"x":01)",
        R"("dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1.)"}) {
    INFO(body);
    CHECK(outcome(open_header(entry(R"("a")", body), eight_bytes)) == "InvalidHeaderDeserialization");
  }
  auto missing = open_header(entry(R"("w")", R"("dtype":"F32","data_offsets":[0,8])"), eight_bytes);
  CHECK_THAT(missing.error().message(), Catch::Contains("tensor \"w\" has no shape"));
}

TEST_CASE("dtypes: exact spellings only", "[parse]") {
  for (st::dtype type : st::all_dtypes) {
    std::string body = R"("dtype":")" + std::string(st::dtype_name(type)) + R"(","shape":[0],"data_offsets":[0,0])";
    CHECK(outcome(open_header(entry(R"("a")", body))) == "ok");
  }
  for (std::string spelled : {"f32", "F32 ", "FLOAT32", "", "BF16\\u0000", "F8_E4M3FN"}) {
    INFO(spelled);
    std::string body = R"("dtype":")" + spelled + R"(","shape":[0],"data_offsets":[0,0])";
    CHECK(outcome(open_header(entry(R"("a")", body))) == "InvalidHeaderDeserialization");
  }
}

TEST_CASE("duplicates: keys repeated anywhere are refused", "[parse]") {
  auto twice_in_metadata = open_header(R"({"__metadata__":{"k":"1","k":"2"}})");
  REQUIRE_FALSE(twice_in_metadata);
  CHECK(twice_in_metadata.error().kind() == st::error_kind::invalid_header_deserialization);
  CHECK_THAT(twice_in_metadata.error().message(), Catch::Contains("duplicate key \"k\""));

  CHECK(outcome(open_header(R"({"__metadata__":{},"__metadata__":{}})")) == "InvalidHeaderDeserialization");
  CHECK(outcome(open_header(entry(R"("a")", f32x2 + R"(,"shape":[2])"), eight_bytes)) ==
        "InvalidHeaderDeserialization");
  CHECK(outcome(open_header(entry(R"("a")", f32x2 + R"(,"x":1,"x":1)"), eight_bytes)) ==
        "InvalidHeaderDeserialization");
  CHECK(outcome(open_header(entry(R"("a")", f32x2 + R"(,"x":{"y":{"z":1,"z":2}})"), eight_bytes)) ==
        "InvalidHeaderDeserialization");
  // Same key text, different escapes: still one key.
  CHECK(outcome(open_header(R"({"__metadata__":{"k":"1","\u006b":"2"}})")) == "InvalidHeaderDeserialization");

  // Two tensors of one name: the repetition is named when the kept (last) entry is otherwise valid.
  auto same = open_header(
      R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
      "xy");
  REQUIRE_FALSE(same);
  CHECK(same.error().kind() == st::error_kind::invalid_header_deserialization);
  CHECK_THAT(same.error().message(), Catch::Contains("duplicate key \"t\""));
  // ... and the official kind, with the repetition in the message, when the kept entry breaks a later rule.
  auto moved = open_header(
      R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"t":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
      "wxyz");
  REQUIRE_FALSE(moved);
  CHECK(moved.error().kind() == st::error_kind::invalid_offset);
  CHECK_THAT(moved.error().message(), Catch::Contains("appears twice"));
}

TEST_CASE("metadata: an object of strings, or null", "[parse]") {
  auto some = open_header(R"({"__metadata__":{"b":"2","a":"1","":"empty key","e":""}})");
  REQUIRE(some);
  CHECK(some->has_metadata());
  REQUIRE(some->metadata().size() == 4);
  std::vector<std::string> keys;
  for (const auto& [key, value] : some->metadata()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"", "a", "b", "e"});
  CHECK(*some->metadata().find("a") == "1");
  CHECK(*some->metadata().find("") == "empty key");
  CHECK(some->metadata().find("c") == nullptr);

  auto null = open_header(R"({"__metadata__":null})");
  REQUIRE(null);
  CHECK_FALSE(null->has_metadata());
  CHECK(null->metadata().empty());

  auto empty = open_header(R"({"__metadata__":{}})");
  REQUIRE(empty);
  CHECK(empty->has_metadata());
  CHECK(empty->metadata().empty());

  for (std::string bad : {R"({"__metadata__":{"k":1}})", R"({"__metadata__":{"k":null}})", R"({"__metadata__":"x"})",
                          R"({"__metadata__":[]})", R"({"__metadata__":{"k":["v"]}})", R"({"__metadata__":nul})"}) {
    INFO(bad);
    CHECK(outcome(open_header(bad)) == "InvalidHeaderDeserialization");
  }
}

TEST_CASE("offsets: the tensors tile the data buffer exactly", "[parse]") {
  const std::string two =
      R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  auto tiled = open_header(two, "abcd");
  REQUIRE(tiled);
  REQUIRE(tiled->size() == 2);
  CHECK(tiled->tensors()[0].name == "a");  // data order, not key order
  CHECK(tiled->tensors()[1].name == "b");

  auto hole = open_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "abc");
  REQUIRE_FALSE(hole);
  CHECK(hole.error().kind() == st::error_kind::invalid_offset);
  CHECK_THAT(hole.error().message(), Catch::Contains("tensor \"a\"") && Catch::Contains("hole"));

  // Zero-length tensors may share an offset, anywhere in the buffer; ties are ordered by name.
  auto zeros = open_header(
      R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"y":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
      R"("x":{"dtype":"F32","shape":[3,0],"data_offsets":[2,2]},"s":{"dtype":"U8","shape":[],"data_offsets":[2,3]}})",
      "abc");
  REQUIRE(zeros);
  std::vector<std::string_view> order;
  for (const auto& info : zeros->tensors()) order.push_back(info.name);
  CHECK(order == std::vector<std::string_view>{"y", "x", "z", "s"});
  CHECK(zeros->info("s").element_count == 1);
  CHECK(zeros->info("s").shape.empty());
  CHECK(zeros->info("x").element_count == 0);

  // Two non-empty tensors at one offset overlap.
  CHECK(
      outcome(open_header(
          R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
          "ab")) == "InvalidOffset");
}

TEST_CASE("offsets: the order of checks decides the kind", "[parse]") {
  // An offset error in the first tensor wins over a size error in a later one.
  CHECK(
      outcome(open_header(
          R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"b":{"dtype":"U8","shape":[9],"data_offsets":[3,4]}})",
          "abcd")) == "InvalidOffset");
  // A size error in the first wins over an offset error in the next.
  CHECK(
      outcome(open_header(
          R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})",
          "abcd")) == "TensorInvalidInfo");
  // A sub-byte count is MisalignedSlice before any size comparison.
  CHECK(outcome(open_header(entry(R"("a")", R"("dtype":"F4","shape":[3],"data_offsets":[0,9])"),
                            std::string(9, 'x'))) == "MisalignedSlice");
  CHECK(outcome(open_header(entry(R"("a")", R"("dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3])"), "abc")) == "ok");
  // Rule 11 is checked last, against the real buffer.
  CHECK(outcome(open_header(entry(R"("a")", R"("dtype":"U8","shape":[4],"data_offsets":[0,4])"), "abc")) ==
        "MetadataIncompleteBuffer");
}

TEST_CASE("offsets: trailing bytes are refused unless explicitly allowed", "[parse]") {
  const std::string header = entry(R"("a")", f32x2);
  const std::string data = eight_bytes + "tail";
  CHECK(outcome(open_header(header, data)) == "MetadataIncompleteBuffer");
  st::read_options lenient;
  lenient.allow_trailing_bytes = true;
  auto accepted = open_header(header, data, lenient);
  REQUIRE(accepted);
  CHECK(accepted->data_size() == 12);
  CHECK(accepted->info("a").byte_size() == 8);
  // Leniency never covers missing bytes.
  CHECK(outcome(open_header(header, "1234", lenient)) == "MetadataIncompleteBuffer");
}
