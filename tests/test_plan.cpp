// Load plans: requests (whole tensors and slices) turned into merged, blocked reads and executed
// into destinations or through a consumer, on every storage; every delivered byte is compared
// with the file.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace st = safetensors;

namespace {

// Four tensors whose data bytes are a pattern of their offset in the data buffer, so that a byte
// from the wrong place never passes for the right one.
std::vector<std::byte> pattern_file(std::uint64_t alignment = 8) {
  const std::vector<st::tensor_declaration> declarations = {{"a", st::dtype::F32, {64, 48}},
                                                            {"b", st::dtype::BF16, {33, 17}},
                                                            {"c", st::dtype::U8, {5000}},
                                                            {"d", st::dtype::I64, {7, 3, 5}}};
  st::write_options options;
  options.alignment = alignment;
  auto layout = st::file_layout::try_make(declarations, {}, options);
  REQUIRE(layout);
  std::vector<std::byte> bytes(static_cast<std::size_t>(layout->file_size()));
  std::memcpy(bytes.data(), layout->header().data(), layout->header().size());
  for (std::size_t i = static_cast<std::size_t>(layout->data_start()); i < bytes.size(); ++i)
    bytes[i] = test::pattern_byte(i);
  return bytes;
}

struct wanted {
  std::string name;
  std::vector<st::slice_dim> dims;
};

// Requests covering whole tensors, row blocks, column blocks, strided and single-index slices.
const std::vector<wanted>& mixed_requests() {
  static const std::vector<wanted> requests = {
      {"a", {}},
      {"a", {st::range(16, 32)}},
      {"a", {st::all(), st::range(12, 24)}},
      {"b", {st::range(1, 30, 4), st::range(0, 17, 3)}},
      {"c", {}},
      {"c", {st::range(4000)}},
      {"d", {st::at(3), st::all(), st::range(1, 4)}},
      {"d", {}},
  };
  return requests;
}

// Loads `requests` from `reader` both ways, into destinations and through a consumer, and
// checks every byte against the naive slice of the file.
template <class Reader>
void check_loads(const Reader& reader, const std::vector<std::byte>& file, const std::vector<wanted>& requests,
                 const st::load_options& options) {
  std::vector<std::vector<std::byte>> expected, destinations;
  std::vector<st::load_request> list;
  for (const wanted& w : requests) {
    const st::tensor_info& info = reader.info(w.name);
    const st::span<const std::byte> tensor(file.data() + reader.data_start() + info.data_offsets[0],
                                           static_cast<std::size_t>(info.byte_size()));
    expected.push_back(test::naive_slice(tensor, info, w.dims));
    destinations.emplace_back(expected.back().size(), std::byte{0xee});
  }
  for (std::size_t i = 0; i < requests.size(); ++i)
    list.emplace_back(&reader.info(requests[i].name), destinations[i], requests[i].dims);
  REQUIRE(reader.try_load_into(list, options));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i);
    CHECK(destinations[i] == expected[i]);
  }

  // Through a consumer: every byte arrives once, at its place.
  std::vector<std::vector<std::byte>> consumed;
  std::vector<std::vector<int>> times;
  for (const auto& e : expected) {
    consumed.emplace_back(e.size(), std::byte{0xee});
    times.emplace_back(e.size(), 0);
  }
  std::mutex lock;
  auto consumer = [&](const st::load_piece& piece) {
    std::lock_guard<std::mutex> guard(lock);
    REQUIRE(piece.request < consumed.size());
    REQUIRE(piece.offset + piece.bytes.size() <= consumed[piece.request].size());
    for (std::size_t k = 0; k < piece.bytes.size(); ++k) {
      consumed[piece.request][piece.offset + k] = piece.bytes[k];
      ++times[piece.request][piece.offset + k];
    }
  };
  REQUIRE(reader.try_load(list, consumer, options));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i << " through a consumer");
    CHECK(consumed[i] == expected[i]);
    CHECK(std::all_of(times[i].begin(), times[i].end(), [](int n) { return n == 1; }));
  }
}

}  // namespace

TEST_CASE("plans: every storage, thread count, block size, merge gap and budget delivers exactly the bytes asked for",
          "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto memory = st::try_open_memory(file.data(), file.size());
  auto mapped = st::try_open(path.path());
  auto pread = st::try_open_pread(path.path());
  REQUIRE(memory);
  REQUIRE(mapped);
  REQUIRE(pread);
  // Every block size with every merge gap; threads and the consumer's placement vary along.
  unsigned round = 0;
  for (std::size_t block : {std::size_t{4096}, std::size_t{5000}, std::size_t{8} << 20}) {
    for (std::uint64_t gap : {std::uint64_t{0}, std::uint64_t{4096}, std::uint64_t{1} << 20}) {
      const unsigned threads = std::vector<unsigned>{1, 2, 3, 8}[round % 4];
      const bool consumer_thread = round++ % 2 == 1;
      INFO("threads " << threads << ", block " << block << ", merge gap " << gap << ", consumer thread "
                      << consumer_thread);
      st::load_options options;
      options.threads = threads;
      options.block_size = block;
      options.merge_gap = gap;
      options.budget = 4096;  // one block: readers wait for the consumer
      options.consumer_thread = consumer_thread;
      check_loads(*memory, file, mixed_requests(), options);
      check_loads(*mapped, file, mixed_requests(), options);
      check_loads(*pread, file, mixed_requests(), options);
    }
  }
}

TEST_CASE("plans: io_uring and threads deliver the same bytes, at every queue depth, buffered and direct",
          "[plan][io_uring]") {
  const std::vector<std::byte> file = pattern_file(4096);
  test::temp_file path(file);
  auto pread = st::try_open_pread(path.path());
  REQUIRE(pread);
  std::string why;
  INFO("io_uring available: " << st::io_uring_available(&why) << " " << why);
  CHECK(st::io_engine_name(st::io_engine::automatic) == "automatic");
  CHECK(st::io_engine_name(st::io_engine::threads) == "threads");
  CHECK(st::io_engine_name(st::io_engine::io_uring) == "io_uring");
  CHECK(st::effective_io_engine(st::io_engine::threads) == st::io_engine::threads);
  CHECK(st::effective_io_engine(st::io_engine::threads, true) == st::io_engine::threads);
  CHECK(st::effective_io_engine(st::io_engine::io_uring) ==
        (st::io_uring_available() ? st::io_engine::io_uring : st::io_engine::threads));
  unsigned round = 0;
  for (st::io_engine engine : {st::io_engine::threads, st::io_engine::io_uring}) {
    for (unsigned depth : {1u, 3u, 32u}) {
      for (bool direct : {false, true}) {
        for (std::size_t block : {std::size_t{4096}, std::size_t{8} << 20}) {
          const unsigned threads = std::vector<unsigned>{1, 2, 3}[round % 3];
          const bool consumer_thread = round++ % 2 == 1;
          INFO(st::io_engine_name(engine)
               << ", depth " << depth << (direct ? ", direct" : ", buffered") << ", block " << block << ", threads "
               << threads << ", consumer thread " << consumer_thread);
          st::load_options options;
          options.engine = engine;
          options.queue_depth = depth;
          options.direct_io = direct;
          options.block_size = block;
          options.threads = threads;
          options.budget = 3 * 4096;  // three blocks of 4 KiB: reads wait for the consumer
          options.consumer_thread = consumer_thread;
          if (block > options.budget) options.budget = block;
          check_loads(*pread, file, mixed_requests(), options);
        }
      }
    }
  }
}

// Windows cannot shrink a file that a reader has open.
#if !defined(_WIN32)
TEST_CASE("plans: a file that shrank under an io_uring load is an IoError naming it and the tensor",
          "[plan][io_uring]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto pread = st::try_open_pread(path.path());
  REQUIRE(pread);
  REQUIRE(test::shrink_file(path.path(), pread->data_start() + 100));
  for (st::io_engine engine : {st::io_engine::threads, st::io_engine::io_uring}) {
    INFO(st::io_engine_name(engine));
    st::load_options options;
    options.engine = engine;
    std::vector<std::byte> into(pread->info("d").byte_size());
    const auto loaded = pread->try_load_into(std::vector<st::load_request>{{&pread->info("d"), into}}, options);
    REQUIRE_FALSE(loaded);
    CHECK(test::outcome(loaded) == "IoError");
    CHECK(loaded.error().message().find("shrank after it was opened") != std::string::npos);
    CHECK(loaded.error().message().find("for tensor \"d\"") != std::string::npos);
    const auto consumed = pread->try_load(
        std::vector<st::load_request>{{&pread->info("d")}}, [](const st::load_piece&) {}, options);
    CHECK(test::outcome(consumed) == "IoError");
  }
}
#endif

TEST_CASE("plans: ranges are merged when adjacent or a gap apart, and every byte read is counted", "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  auto reader = st::try_open_memory(file.data(), file.size());
  REQUIRE(reader);
  auto plan_of = [&](std::vector<st::load_request> requests, std::uint64_t gap) {
    st::load_options options;
    options.merge_gap = gap;
    auto plan = reader->try_plan(requests, options);
    REQUIRE(plan);
    return std::make_tuple(plan->bytes(), plan->bytes_read(), plan->read_count());
  };
  const st::tensor_info* a = &reader->info("a");
  const st::tensor_info* b = &reader->info("b");
  using counts = std::tuple<std::uint64_t, std::uint64_t, std::size_t>;
  // One tensor: its bytes, read once.
  CHECK(plan_of({{a}}, 4096) == counts{12288, 12288, 1});
  // "a" (F32, first in the file) and "b" (BF16, right after it): adjacent, one read.
  CHECK(plan_of({{a}, {b}}, 0) == counts{12288 + 1122, 12288 + 1122, 1});
  // Rows 16 to 31 of "a": those 16 rows of 192 bytes and nothing else.
  CHECK(plan_of({{a, {}, {st::range(16, 32)}}}, 4096) == counts{3072, 3072, 1});
  // Columns 12 to 23 of "a": 64 runs of 48 bytes, 144 bytes apart. Merged, the read spans the
  // first run's start to the last one's end; with a gap smaller than 144, every run is a read.
  CHECK(plan_of({{a, {}, {st::all(), st::range(12, 24)}}}, 4096) == counts{3072, 63 * 192 + 48, 1});
  CHECK(plan_of({{a, {}, {st::all(), st::range(12, 24)}}}, 143) == counts{3072, 3072, 64});
  CHECK(plan_of({{a, {}, {st::all(), st::range(12, 24)}}}, 144) == counts{3072, 63 * 192 + 48, 1});
  // The same rows twice: delivered twice, read once.
  CHECK(plan_of({{a, {}, {st::range(0, 2)}}, {a, {}, {st::range(0, 2)}}}, 0) == counts{768, 384, 1});
}

TEST_CASE("plans: a plan for one tensor of a pread file reads that tensor alone", "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto reader = st::try_open_pread(path.path());
  REQUIRE(reader);
  for (const st::tensor_info& info : reader->tensors()) {
    auto plan = reader->try_plan(std::vector<st::load_request>{{&info}});
    REQUIRE(plan);
    CHECK(plan->bytes_read() == info.byte_size());
    CHECK(plan->read_count() == 1);
  }
  // A rank's rows (tensor parallelism along dimension 0): its quarter of the bytes exactly.
  const st::tensor_info& a = reader->info("a");
  auto rank = reader->try_plan(std::vector<st::load_request>{{&a, {}, {st::range(16, 32)}}});
  REQUIRE(rank);
  CHECK(rank->bytes_read() == a.byte_size() / 4);
}

TEST_CASE("plans: slices are read from every storage, and from pread readers without a view", "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto reader = st::try_open_pread(path.path());
  REQUIRE(reader);
  const st::tensor_info& a = reader->info("a");
  const st::span<const std::byte> tensor(file.data() + reader->data_start() + a.data_offsets[0],
                                         static_cast<std::size_t>(a.byte_size()));
  const std::vector<st::slice_dim> dims = {st::range(1, 60, 7), st::range(-10)};
  auto slice = reader->try_slice("a", dims);
  REQUIRE(slice);
  CHECK(slice->shape() == std::vector<std::uint64_t>{9, 10});
  auto bytes = reader->try_read(*slice);
  REQUIRE(bytes);
  CHECK(*bytes == test::naive_slice(tensor, a, {st::range(1, 60, 7), st::range(38)}));
  std::vector<std::byte> small(10);
  auto mismatch = reader->try_read_into(*slice, small);
  REQUIRE_FALSE(mismatch);
  CHECK(test::outcome(mismatch) + ": " + mismatch.error().message() ==
        "InvalidTensorView: " + st::detail::quote(path.path()) +
            ": slice of tensor \"a\" has 360 bytes but the destination holds 10");
}

TEST_CASE("plans: requests that do not fit, and failures, stop the plan with the file and tensor named", "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto reader = st::try_open_pread(path.path());
  auto other = st::try_open_memory(file.data(), file.size());
  REQUIRE(reader);
  REQUIRE(other);
  const std::string named = st::detail::quote(path.path());
  const st::tensor_info& a = reader->info("a");
  auto message = [](const auto& outcome) {
    REQUIRE_FALSE(outcome);
    return test::outcome(outcome) + ": " + outcome.error().message();
  };
  std::vector<std::byte> small(10);
  CHECK(message(reader->try_load_into(std::vector<st::load_request>{{&a, small}})) ==
        "InvalidTensorView: " + named + ": tensor \"a\" has 12288 bytes but the destination holds 10");
  CHECK(message(reader->try_load_into(std::vector<st::load_request>{{&other->info("a"), small}})) ==
        "InvalidArgument: " + named + ": load request 0: tensor \"a\" is not one of this file's tensors");
  CHECK(message(reader->try_load_into(std::vector<st::load_request>{{nullptr, small}})) ==
        "InvalidTensorView: load request 0 names no tensor");
  CHECK(message(reader->try_load_into(std::vector<st::load_request>{{&a, small, {}, 1}})) ==
        "InvalidArgument: load request 0 names shard 1 of 1");
  CHECK(message(reader->try_plan(std::vector<st::load_request>{{&a, {}, {st::at(64)}}})) ==
        "InvalidArgument: " + named + ": slice of tensor \"a\", dimension 0 (size 64): index 64 is out of range");

  // A consumer's error keeps its kind and names the tensor, the byte and the file.
  // Blocks arrive in no set order: only the piece at byte 4096 is refused, so that the first
  // error is always that one.
  auto refusing = [](const st::load_piece& piece) -> st::result<void> {
    if (piece.offset == 4096) return st::error(st::error_kind::invalid_argument, "device full");
    return {};
  };
  st::load_options options;
  options.block_size = 4096;
  options.threads = 2;
  CHECK(message(reader->try_load(std::vector<st::load_request>{{&a}}, refusing, options)) ==
        "InvalidArgument: " + named + ": tensor \"a\": the consumer failed at byte 4096: device full");
  options.consumer_thread = true;
  CHECK(message(reader->try_load(std::vector<st::load_request>{{&a}}, refusing, options)) ==
        "InvalidArgument: " + named + ": tensor \"a\": the consumer failed at byte 4096: device full");

  // A budget that holds no block of the plan.
  auto plan = reader->try_plan(std::vector<st::load_request>{{&a}}, options);
  REQUIRE(plan);
  st::load_options tight;
  tight.budget = 100;
  CHECK(message(plan->try_execute([](const st::load_piece&) {}, tight)) ==
        "InvalidArgument: a budget of 100 bytes holds no block of 4096 bytes: plan with a smaller block_size");

#if SAFETENSORS_EXCEPTIONS
  // An exception from the consumer reaches the caller, after every thread is joined.
  auto throwing = [](const st::load_piece& piece) {
    if (piece.offset != 0) throw std::runtime_error("upload failed");
  };
  for (bool consumer_thread : {false, true}) {
    options.consumer_thread = consumer_thread;
    CHECK_THROWS_WITH(reader->try_load(std::vector<st::load_request>{{&a}}, throwing, options), "upload failed");
  }
#endif

  // A file that shrank: the read's error, with the tensor it was for (see test::shrink_file).
#if !defined(_WIN32)
  const std::uint64_t a_begin = reader->data_start() + a.data_offsets[0];
  REQUIRE(test::shrink_file(path.path(), a_begin + 100));
  std::vector<std::byte> destination(static_cast<std::size_t>(a.byte_size()));
  CHECK(message(reader->try_load_into(std::vector<st::load_request>{{&a, destination}})) ==
        "IoError: " + named + ": ended at byte " + std::to_string(a_begin + 100) +
            ": it shrank after it was opened (reading bytes [" + std::to_string(a_begin) + ", " +
            std::to_string(a_begin + 12288) + ") for tensor \"a\")");
#endif
}

TEST_CASE("plans: one pool serves many loads", "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto reader = st::try_open_pread(path.path());
  REQUIRE(reader);
  st::thread_pool pool(3);
  CHECK(pool.size() == 3);
  st::load_options options;
  options.pool = &pool;
  options.block_size = 4096;
  for (int round = 0; round < 20; ++round) check_loads(*reader, file, mixed_requests(), options);
  options.threads = 1;  // fewer threads than the pool has
  check_loads(*reader, file, mixed_requests(), options);
}

namespace {
// A storage of the caller's own: bytes in memory, seen only through read_at, which it counts.
class counting_storage {
 public:
  explicit counting_storage(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}
  std::uint64_t size() const noexcept { return bytes_.size(); }
  st::result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    ++*reads_;
    if (offset > bytes_.size() || count > bytes_.size() - offset)
      return st::error(st::error_kind::io_error, st::detail::quote(path_) + ": no bytes there");
    std::memcpy(destination, bytes_.data() + offset, count);
    return {};
  }
  const std::string& path() const noexcept { return path_; }
  std::size_t first_read_size() const noexcept { return 4096; }
  std::size_t reads() const noexcept { return reads_->load(); }

 private:
  std::vector<std::byte> bytes_;
  std::string path_ = "memory://counted";
  std::shared_ptr<std::atomic<std::size_t>> reads_ = std::make_shared<std::atomic<std::size_t>>(0);
};
}  // namespace

TEST_CASE("plans: a storage of the user's own reads its header in one go, loads and names itself", "[plan]") {
  // A small header fits in the first read of 4096 bytes: opening reads once.
  const std::vector<std::byte> file = pattern_file();
  REQUIRE(file.size() > 4096);
  counting_storage storage(file);
  auto reader = st::basic_reader<counting_storage>::try_open(storage);
  REQUIRE(reader);
  CHECK(storage.reads() == 1);
  check_loads(*reader, file, mixed_requests(), {});

  // A header of 5,000 tensors does not: the prefix, then the header.
  std::vector<st::tensor_declaration> many;
  for (int i = 0; i < 5000; ++i) many.push_back({"t" + std::to_string(i), st::dtype::U8, {1}});
  auto large = st::file_layout::try_make(many);
  REQUIRE(large);
  std::vector<std::byte> large_file(static_cast<std::size_t>(large->file_size()));
  std::memcpy(large_file.data(), large->header().data(), large->header().size());
  counting_storage two_reads(large_file);
  REQUIRE(st::basic_reader<counting_storage>::try_open(two_reads));
  CHECK(two_reads.reads() == 2);

  // Its errors name it, as a file's do.
  std::vector<std::byte> truncated(file.begin(), file.end() - 1);
  auto bad = st::basic_reader<counting_storage>::try_open(counting_storage(truncated));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message() ==
        "\"memory://counted\": the tensors cover " + std::to_string(file.size() - reader->data_start()) +
            " bytes but the data buffer holds " + std::to_string(file.size() - reader->data_start() - 1));
}

TEST_CASE("plans: direct I/O through a consumer reads aligned blocks and delivers the same bytes", "[plan]") {
  const std::vector<std::byte> file = pattern_file(4096);
  test::temp_file path(file);
  auto reader = st::try_open_pread(path.path());
  REQUIRE(reader);
  for (std::size_t block : {std::size_t{4096}, std::size_t{1} << 20}) {
    st::load_options options;
    options.direct_io = true;
    options.block_size = block;
    options.threads = 2;
    check_loads(*reader, file, mixed_requests(), options);
    auto plan = reader->try_plan(std::vector<st::load_request>{{&reader->info("c")}}, options);
    REQUIRE(plan);
    // "c" (5000 bytes, last in the file) read as whole aligned pages: its start is rounded down and
    // its end up, to the end of the file.
    const std::uint64_t begin = reader->data_start() + reader->info("c").data_offsets[0];
    CHECK(plan->bytes_read() ==
          std::min<std::uint64_t>((begin + 5000 + 4095) / 4096 * 4096, file.size()) - begin / 4096 * 4096);
  }
}

TEST_CASE("plans: with a consumer thread, every piece reaches the consumer on the calling thread", "[plan]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto memory = st::try_open_memory(file.data(), file.size());
  auto mapped = st::try_open(path.path());
  auto pread = st::try_open_pread(path.path());
  REQUIRE(memory);
  REQUIRE(mapped);
  REQUIRE(pread);
  auto pieces_off_thread = [](const auto& reader) {
    std::vector<st::load_request> requests;
    for (const st::tensor_info& info : reader.tensors()) requests.emplace_back(&info);
    st::load_options options;
    options.threads = 4;
    options.block_size = 4096;
    options.consumer_thread = true;
    const std::thread::id caller = std::this_thread::get_id();
    std::atomic<std::size_t> elsewhere{0}, pieces{0};
    REQUIRE(reader.try_load(
        requests,
        [&](const st::load_piece&) {
      ++pieces;
      if (std::this_thread::get_id() != caller) ++elsewhere;
        },
        options));
    REQUIRE(pieces > 4);
    return elsewhere.load();
  };
  CHECK(pieces_off_thread(*memory) == 0);
  CHECK(pieces_off_thread(*mapped) == 0);
  CHECK(pieces_off_thread(*pread) == 0);
}

TEST_CASE("plans: a load_arena lays out every request aligned in one block and loads into it", "[plan][arena]") {
  const std::vector<std::byte> file = pattern_file();
  test::temp_file path(file);
  auto pread = st::try_open_pread(path.path());
  auto mapped = st::try_open(path.path());
  REQUIRE(pread);
  REQUIRE(mapped);
  for (std::size_t alignment : {std::size_t{64}, st::direct_io_alignment}) {
    for (st::io_engine engine : {st::io_engine::threads, st::io_engine::io_uring}) {
      INFO("alignment " << alignment << ", " << st::io_engine_name(engine));
      std::vector<st::load_request> requests;
      std::vector<std::vector<std::byte>> expected;
      for (const wanted& w : mixed_requests()) {
        const st::tensor_info& info = pread->info(w.name);
        requests.emplace_back(&info, st::span<std::byte>{}, w.dims);
        expected.push_back(test::naive_slice(
            {file.data() + pread->data_start() + info.data_offsets[0], static_cast<std::size_t>(info.byte_size())},
            info, w.dims));
      }
      auto arena = st::load_arena::try_make(requests, alignment);
      REQUIRE(arena);
      std::size_t end = 0;
      for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto offset = static_cast<std::size_t>(requests[i].destination.data() - arena->bytes().data());
        CHECK(offset % alignment == 0);
        CHECK(offset >= end);
        CHECK(offset - end < alignment);
        CHECK(requests[i].destination.size() == expected[i].size());
        CHECK(arena->at(i).data() == requests[i].destination.data());
        end = offset + expected[i].size();
      }
      CHECK(arena->size() == end);
      CHECK(reinterpret_cast<std::uintptr_t>(arena->bytes().data()) % 4096 == 0);
      st::load_options options;
      options.engine = engine;
      options.block_size = 4096;
      REQUIRE(arena->try_load_into(*pread, requests, options));
      for (std::size_t i = 0; i < requests.size(); ++i)
        CHECK(std::equal(expected[i].begin(), expected[i].end(), arena->at(i).begin()));
      // Again from the mapping, into a second arena.
      for (auto& r : requests) r.tensor = &mapped->info(std::string(r.tensor->name));
      auto again = st::load_arena::try_make(requests, alignment);
      REQUIRE(again);
      REQUIRE(again->try_load_into(*mapped, requests, options));
      for (std::size_t i = 0; i < requests.size(); ++i)
        CHECK(std::equal(expected[i].begin(), expected[i].end(), again->at(i).begin()));
    }
  }
  std::vector<st::load_request> none;
  auto empty = st::load_arena::try_make(none);
  REQUIRE(empty);
  CHECK(empty->size() == 0);
  std::vector<st::load_request> one = {{&pread->info("a")}};
  CHECK(test::outcome(st::load_arena::try_make(one, 48)) == "InvalidArgument");
  std::vector<st::load_request> unnamed(1);
  CHECK(test::outcome(st::load_arena::try_make(unnamed)) == "InvalidArgument");
  std::vector<st::load_request> outside = {{&pread->info("a"), {}, {st::range(0, 65)}}};
  CHECK(test::outcome(st::load_arena::try_make(outside)) == "InvalidArgument");
}
