// Typed zero-copy views, copies into host order, and slices checked against a naive gather.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <numeric>
#include <random>
#include <tuple>

namespace st = safetensors;

TEST_CASE("views: as<T> is zero-copy for the exact dtype and aligned bytes", "[views]") {
  const std::vector<std::byte> floats = test::le_bytes<float>({1.5f, -2.0f, 0.25f});
  const std::vector<std::byte> halves = test::le_bytes<std::uint16_t>({0x3c00, 0xc000});  // F16 1.0, -2.0
  auto bytes = st::serialize({{{"f", st::dtype::F32, {3}}, floats}, {{"h", st::dtype::F16, {2}}, halves}});
  auto reader = st::try_open_buffer(bytes);
  REQUIRE(reader);
  st::tensor_view f = reader->view("f");
  if (!st::detail::host_is_big_endian) {
    auto as_float = f.try_as<float>();
    REQUIRE(as_float);
    REQUIRE(as_float->size() == 3);
    CHECK(static_cast<const void*>(as_float->data()) == static_cast<const void*>(f.bytes.data()));
    CHECK((*as_float)[0] == 1.5f);
    CHECK((*as_float)[2] == 0.25f);
    auto as_half = reader->view("h").try_as<st::float16>();
    REQUIRE(as_half);
    CHECK((*as_half)[1].to_float() == -2.0f);
  }
  CHECK(f.as<std::byte>().size() == 12);

  auto wrong = f.try_as<double>();
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().kind() == st::error_kind::invalid_tensor_view);
  CHECK(wrong.error().message() == "tensor \"f\" is F32, not F64");
  CHECK(reader->view("h").try_as<st::bfloat16>().error().message() == "tensor \"h\" is F16, not BF16");
}

TEST_CASE("views: a misaligned tensor is refused with a pointer to copy_to", "[views]") {
  const std::string path = std::string(SAFETENSORS_TEST_DATA) + "/reference/invalid/unaligned_f32_data.safetensors";
  auto reader = st::try_open(path);
  REQUIRE(reader);
  const st::tensor_info* unaligned = nullptr;
  for (const auto& info : reader->tensors()) {
    if (info.dtype == st::dtype::F32) unaligned = &info;
  }
  REQUIRE(unaligned != nullptr);
  st::tensor_view view = reader->view(*unaligned);
  auto refused = view.try_as<float>();
  REQUIRE_FALSE(refused);
  if (!st::detail::host_is_big_endian) CHECK_THAT(refused.error().message(), Catch::Contains("not aligned to 4 bytes"));
  CHECK_THAT(refused.error().message(), Catch::Contains("copy_to"));
  float value = 0;
  REQUIRE(st::try_copy_to(view, st::span<float>(&value, 1)));
  CHECK(value == 0.5f);  // the manifest's first value
}

TEST_CASE("copy_to: converts into host order at any alignment", "[views]") {
  const std::vector<std::byte> bf16 = test::le_bytes<std::uint16_t>({0x3fc0, 0xc000, 0x7f80});  // 1.5, -2, inf
  auto bytes = st::serialize({{{"b", st::dtype::BF16, {3}}, bf16}});
  auto reader = st::try_open_buffer(bytes);
  REQUIRE(reader);
  std::vector<std::byte> raw(3 * 8 + 1);
  REQUIRE(st::try_copy_to(reader->view("b"), st::span<std::byte>(raw.data() + 1, 24), st::dtype::F64));
  double values[3];
  std::memcpy(values, raw.data() + 1, sizeof values);
  CHECK(values[0] == 1.5);
  CHECK(values[1] == -2.0);
  CHECK(values[2] == std::numeric_limits<double>::infinity());

  std::int32_t ints[3];
  auto refused = st::try_copy_to(reader->view("b"), st::span<std::int32_t>(ints, 3));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind() == st::error_kind::invalid_conversion);
  CHECK_THAT(refused.error().message(),
             Catch::StartsWith("tensor \"b\": element 0 (1.5) of BF16 has no I32 value: it is not a whole number"));
  float two[2];
  CHECK(st::try_copy_to(reader->view("b"), st::span<float>(two, 2)).error().kind() ==
        st::error_kind::invalid_tensor_view);
}

namespace {

// The naive gather: every element of the selection, one at a time, as the flat index it had.
std::vector<std::int32_t> naive_gather(const std::vector<std::uint64_t>& shape,
                                       const std::vector<st::slice_dim>& dims) {
  std::vector<std::int32_t> out;
  std::uint64_t total = 1;
  for (std::uint64_t d : shape) total *= d;
  for (std::uint64_t flat = 0; flat < total; ++flat) {
    std::uint64_t rest = flat;
    bool taken = true;
    for (std::size_t d = shape.size(); d-- > 0;) {
      const std::uint64_t i = rest % shape[d];
      rest /= shape[d];
      const st::slice_dim want = d < dims.size() ? dims[d] : st::all();
      // The random selections have no negative bounds.
      const auto start = static_cast<std::uint64_t>(want.start);
      const std::uint64_t stop = want.single               ? start + 1
                                 : want.stop == st::to_end ? shape[d]
                                                           : static_cast<std::uint64_t>(want.stop);
      taken = taken && i >= start && i < stop && (i - start) % want.step == 0;
    }
    if (taken) out.push_back(static_cast<std::int32_t>(flat));
  }
  return out;
}

}  // namespace

TEST_CASE("slices: random shapes and selections agree with a naive gather", "[views][slices]") {
  std::mt19937 random(7);
  auto pick = [&](std::uint64_t n) { return static_cast<std::uint64_t>(random() % n); };
  for (int round = 0; round < 400; ++round) {
    std::vector<std::uint64_t> shape(pick(5));
    std::uint64_t total = 1;
    for (auto& d : shape) total *= (d = pick(6));
    std::vector<std::int32_t> values(static_cast<std::size_t>(total));
    std::iota(values.begin(), values.end(), 0);
    auto bytes = st::serialize({{"t", values, shape}});
    auto reader = st::try_open_buffer(bytes);
    REQUIRE(reader);

    std::vector<st::slice_dim> dims(pick(shape.size() + 1));
    for (std::size_t d = 0; d < dims.size(); ++d) {
      if (shape[d] > 0 && pick(4) == 0) {
        dims[d] = st::at(pick(shape[d]));
      } else {
        const std::uint64_t start = pick(shape[d] + 1);
        const std::uint64_t stop = start + pick(shape[d] - start + 1);
        dims[d] = pick(3) == 0 ? st::range(start) : st::range(start, stop, 1 + pick(3));
      }
    }
    INFO("round " << round);
    auto slice = reader->try_slice("t", dims);
    REQUIRE(slice);
    const std::vector<std::int32_t> want = naive_gather(shape, dims);
    REQUIRE(slice->element_count() == want.size());
    std::vector<std::int32_t> got(want.size());
    REQUIRE(slice->try_copy_to(st::span<std::int32_t>(got)));
    CHECK(got == want);
    std::vector<double> as_double(want.size());
    REQUIRE(slice->try_copy_to(st::span<double>(as_double)));
    CHECK(std::equal(as_double.begin(), as_double.end(), want.begin()));

    // A contiguous selection is a view of exactly those bytes; the claim is checked by position.
    bool consecutive = true;
    for (std::size_t i = 1; i < want.size(); ++i) consecutive = consecutive && want[i] == want[i - 1] + 1;
    CHECK(slice->contiguous() == consecutive);
    if (slice->contiguous() && !want.empty()) {
      auto run = slice->try_bytes();
      REQUIRE(run);
      CHECK(run->data() == reader->view("t").bytes.data() + 4 * static_cast<std::size_t>(want[0]));
      CHECK(run->size() == 4 * want.size());
    }
  }
}

TEST_CASE("slices: the row block of one rank under tensor parallelism is a zero-copy view", "[views][slices]") {
  std::vector<std::int32_t> values(8 * 6);
  std::iota(values.begin(), values.end(), 0);
  auto bytes = st::serialize({{"w", values, {8, 6}}});
  auto reader = st::try_open_buffer(bytes);
  REQUIRE(reader);
  st::tensor_slice rows = reader->slice("w", {st::range(2, 4)});
  CHECK(rows.shape() == std::vector<std::uint64_t>{2, 6});
  CHECK(rows.contiguous());
  CHECK(rows.try_bytes()->data() == reader->view("w").bytes.data() + 2 * 6 * 4);

  st::tensor_slice columns = reader->slice("w", {st::all(), st::range(0, 3)});
  CHECK(columns.shape() == std::vector<std::uint64_t>{8, 3});
  CHECK_FALSE(columns.contiguous());
  auto not_contiguous = columns.try_bytes();
  REQUIRE_FALSE(not_contiguous);
  CHECK_THAT(not_contiguous.error().message(), Catch::Contains("use copy_to"));

  st::tensor_slice element = reader->slice("w", {st::at(7), st::at(5)});
  CHECK(element.shape().empty());
  CHECK(element.element_count() == 1);
  CHECK(element.contiguous());
}

TEST_CASE("slices: out-of-range and sub-byte selections name the dimension", "[views][slices]") {
  const std::vector<std::byte> data(8 * 6 * 4);
  auto bytes = st::serialize(
      {{{"w", st::dtype::I32, {8, 6}}, data}, {{"q", st::dtype::F4, {4}}, st::span<const std::byte>(data.data(), 2)}});
  auto reader = st::try_open_buffer(bytes);
  REQUIRE(reader);
  auto message = [&](std::string name, std::vector<st::slice_dim> dims) {
    auto slice = reader->try_slice(name, std::move(dims));
    REQUIRE_FALSE(slice);
    return test::outcome(slice) + ": " + slice.error().message();
  };
  CHECK(message("w", {st::at(8)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): index 8 is out of range");
  CHECK(message("w", {st::all(), st::range(2, 7)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 1 (size 6): stop 7 is past the end");
  CHECK(message("w", {st::range(5, 3)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): start 5 is after stop 3");
  CHECK(message("w", {st::range(9)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): start 9 is after the end");
  CHECK(message("w", {st::range(0, 2, 0)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): the step must be at least 1");
  CHECK(message("w", {st::all(), st::all(), st::all()}) ==
        "InvalidArgument: slice of tensor \"w\": 3 dimensions given for a tensor of rank 2");
  CHECK(
      message("q", {st::range(1, 3)}) ==
      "MisalignedSlice: slice of tensor \"q\": its runs of F4 elements do not start and end on byte boundaries (a run "
      "of 2 elements from element 1)");
  CHECK(message("x", {}) == "TensorNotFound: no tensor named \"x\"");
}

TEST_CASE("slices: negative indices and bounds count from the end, as in Python", "[views][slices]") {
  std::vector<std::int32_t> numbers(8 * 6);
  std::iota(numbers.begin(), numbers.end(), 0);
  auto bytes = st::serialize({{"w", numbers, {8, 6}}});
  auto reader = st::try_open_buffer(bytes);
  REQUIRE(reader);
  auto values = [&](std::vector<st::slice_dim> dims) {
    st::tensor_slice slice = reader->slice("w", std::move(dims));
    std::vector<std::int32_t> out(static_cast<std::size_t>(slice.element_count()));
    REQUIRE(slice.try_copy_to(st::span<std::int32_t>(out)));
    return out;
  };
  CHECK(values({st::at(-1), st::at(-6)}) == std::vector<std::int32_t>{42});
  CHECK(values({st::range(-2), st::range(-2)}) == std::vector<std::int32_t>{40, 41, 46, 47});
  CHECK(values({st::range(1, -5), st::range(0, -4)}) == std::vector<std::int32_t>{6, 7, 12, 13});
  CHECK(values({st::range(-8, -7), st::range(-6, st::to_end, 4)}) == std::vector<std::int32_t>{0, 4});
  CHECK(reader->slice("w", {st::range(-1, -1)}).element_count() == 0);

  auto message = [&](std::vector<st::slice_dim> dims) {
    auto slice = reader->try_slice("w", std::move(dims));
    REQUIRE_FALSE(slice);
    return test::outcome(slice) + ": " + slice.error().message();
  };
  CHECK(message({st::at(-9)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): index -9 is out of range");
  CHECK(message({st::all(), st::range(-7)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 1 (size 6): start -7 is out of range");
  CHECK(message({st::range(0, -9)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): stop -9 is out of range");
  CHECK(message({st::range(-1, -2)}) ==
        "InvalidArgument: slice of tensor \"w\", dimension 0 (size 8): start -1 is after stop -2");
}

TEST_CASE("slices: made from a description, a slice knows the byte runs of the tensor it covers", "[views][slices]") {
  const std::uint64_t shape[] = {8, 6};
  st::tensor_info info;
  info.name = "w";
  info.dtype = st::dtype::F32;
  info.shape = st::span<const std::uint64_t>(shape, 2);
  info.data_offsets = {0, 8 * 6 * 4};
  info.element_count = 48;
  auto groups = [&](std::vector<st::slice_dim> dims) {
    auto slice = st::tensor_slice::try_make(info, std::move(dims));
    REQUIRE(slice);
    std::vector<std::array<std::uint64_t, 3>> out;
    slice->for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t count) {
      out.push_back({first, stride, count});
      return true;
    });
    return std::make_tuple(slice->run_bytes(), slice->run_count(), out);
  };
  using runs = std::vector<std::array<std::uint64_t, 3>>;
  // Whole tensor and row blocks: one run.
  CHECK(groups({}) == std::make_tuple(std::uint64_t{192}, std::uint64_t{1}, runs{{0, 192, 1}}));
  CHECK(groups({st::range(2, 4)}) == std::make_tuple(std::uint64_t{48}, std::uint64_t{1}, runs{{48, 48, 1}}));
  // A column block: 8 runs of 3 elements, a row (24 bytes) apart.
  CHECK(groups({st::all(), st::range(1, 4)}) == std::make_tuple(std::uint64_t{12}, std::uint64_t{8}, runs{{4, 24, 8}}));
  // Every other column of rows 6 and 7: single elements 8 bytes apart, a group per row.
  CHECK(groups({st::range(6), st::range(1, st::to_end, 2)}) ==
        std::make_tuple(std::uint64_t{4}, std::uint64_t{6}, runs{{148, 8, 3}, {172, 8, 3}}));
  CHECK(groups({st::at(3), st::at(-1)}) == std::make_tuple(std::uint64_t{4}, std::uint64_t{1}, runs{{92, 24, 1}}));
  CHECK(groups({st::range(3, 3)}) == std::make_tuple(std::uint64_t{0}, std::uint64_t{0}, runs{}));

  auto slice = st::tensor_slice::try_make(info, {st::range(2, 4)});
  REQUIRE(slice);
  CHECK(slice->byte_size() == 48);
  std::uint64_t visited = 0;
  slice->for_each_run_group(
      [&](std::uint64_t, std::uint64_t, std::uint64_t count) { visited += count; });  // void: every group
  CHECK(visited == 1);
  CHECK(&slice->info() == &info);
  auto bytes = slice->try_bytes();
  REQUIRE_FALSE(bytes);
  CHECK(test::outcome(bytes) + ": " + bytes.error().message() ==
        "InvalidTensorView: slice of tensor \"w\" was made from its description, without its bytes: read it through "
        "its reader");
  std::vector<float> out(12);
  CHECK(test::outcome(slice->try_copy_to(st::span<float>(out))) == "InvalidTensorView");
}

TEST_CASE("slices: steps near 2^63 take one element, and every byte stride stays in range", "[views]") {
  // A step past the dimension took its first element, but step x stride x element size wrapped
  // to 0 and the plan builder divided by it (SIGFPE).
  const std::vector<float> values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  auto file = st::try_serialize({{"m", values, {4, 4}}});
  REQUIRE(file);
  auto reader = st::try_open_buffer(*file);
  REQUIRE(reader);
  for (const std::uint64_t step :
       {std::uint64_t{1} << 62, (std::uint64_t{1} << 62) + 1, std::uint64_t{1} << 63, ~std::uint64_t{0}}) {
    INFO(step);
    auto slice = reader->try_slice("m", {st::range(1, st::to_end, step), st::range(0, st::to_end, step)});
    REQUIRE(slice);
    CHECK(slice->element_count() == 1);
    std::vector<std::byte> one(4);
    REQUIRE(reader->try_read_into(*slice, one));
    CHECK(one == test::le_bytes<float>({4.0f}));
    std::vector<std::byte> row(16);
    const st::load_request request{&reader->info("m"), row, {st::range(1, st::to_end, step), st::all()}};
    REQUIRE(reader->try_load_into(st::span<const st::load_request>(&request, 1)));
    CHECK(row == test::le_bytes<float>({4.0f, 5.0f, 6.0f, 7.0f}));
    std::vector<std::byte> column(16);
    const st::load_request strided{&reader->info("m"), column, {st::all(), st::range(2, st::to_end, step)}};
    REQUIRE(reader->try_load_into(st::span<const st::load_request>(&strided, 1)));
    CHECK(column == test::le_bytes<float>({2.0f, 6.0f, 10.0f, 14.0f}));
  }
}
