// Thread safety: a reader is immutable once open, so any number of threads may look tensors up,
// view, copy and read pieces of them at once through one reader. Run under ThreadSanitizer by
// tests/run.sh (the [concurrency] tests only), and with every other configuration.
//
// Catch's assertions are not thread-safe: worker threads count their mismatches and keep the
// first one's description; the test thread checks them after joining.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <dirent.h>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace st = safetensors;

namespace {

const unsigned thread_count = 8;

/// A file of a few thousand tensors of every dtype, small and large, some empty.
struct generated_file {
  std::vector<st::tensor_declaration> declarations;
  std::vector<std::vector<std::byte>> bytes;  // by declaration
  test::temp_file file{{}};

  generated_file() {
    const std::size_t count = 3000;
    for (std::size_t i = 0; i < count; ++i) {
      const st::dtype type = st::all_dtypes[i % st::dtype_count];
      // Eight elements per row keep sub-byte dtypes whole; every 97th tensor is empty and every
      // 500th is a large one, read in pieces.
      std::vector<std::uint64_t> shape = {i % 97 == 0 ? 0 : 1 + i % 5, 8};
      if (i % 500 == 1) shape = {256, 64};
      declarations.push_back({"layers." + std::to_string(i) + ".weight", type, shape});
      const std::uint64_t size = shape[0] * shape[1] * st::dtype_bits(type) / 8;
      bytes.emplace_back(static_cast<std::size_t>(size));
      for (std::size_t j = 0; j < bytes.back().size(); ++j) bytes.back()[j] = test::fill_byte(i, j);
    }
    std::vector<st::tensor_source> sources;
    for (std::size_t i = 0; i < count; ++i) sources.push_back({declarations[i], bytes[i]});
    auto saved =
        st::try_save(file.path(), sources, std::map<std::string, std::string>{{"format", "pt"}, {"threads", "8"}});
    if (!saved) FAIL(saved.error().to_string());
  }
};

/// What one thread saw.
struct thread_report {
  std::size_t checks = 0;
  std::size_t failures = 0;
  std::string first_failure;

  void check(bool ok, const std::string& what) {
    ++checks;
    if (ok) return;
    if (failures++ == 0) first_failure = what;
  }
};

bool same_bytes(st::span<const std::byte> got, const std::byte* expected, std::size_t size) {
  return got.size() == size && std::equal(got.begin(), got.end(), expected);
}

/// Runs `work(thread_number, report)` on `thread_count` threads released at once, then checks
/// every report on the test thread.
template <class Work>
void run_threads(Work work) {
  std::vector<thread_report> reports(thread_count);
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < thread_count) std::this_thread::yield();  // start together
      work(t, reports[t]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (unsigned t = 0; t < thread_count; ++t) {
    INFO("thread " << t << ": " << reports[t].checks << " checks, first failure: " << reports[t].first_failure);
    CHECK(reports[t].checks > 0);
    CHECK(reports[t].failures == 0);
  }
}

/// Every way of reading one tensor through `reader`, each checked byte for byte.
template <class Reader>
void read_every_way(const Reader& reader, const generated_file& generated, std::size_t index, std::mt19937& random,
                    thread_report& report) {
  const st::tensor_declaration& declaration = generated.declarations[index];
  const std::vector<std::byte>& expected = generated.bytes[index];
  const std::string& name = declaration.name;
  const st::tensor_info* info = reader.find(name);
  report.check(info != nullptr && info->name == name, "find " + name);
  if (info == nullptr) return;
  report.check(
      info->dtype == declaration.dtype && info->byte_size() == expected.size() &&
          std::equal(info->shape.begin(), info->shape.end(), declaration.shape.begin(), declaration.shape.end()),
      "entry of " + name);
  auto by_name = reader.try_info(name);
  report.check(by_name && *by_name == info, "try_info " + name);

  if constexpr (Reader::has_views) {
    report.check(same_bytes(reader.view(*info).bytes, expected.data(), expected.size()), "view " + name);
    auto view = reader.try_view(name);
    report.check(view && same_bytes(view->bytes, expected.data(), expected.size()), "try_view " + name);
    if (st::dtype_bits(declaration.dtype) % 8 == 0 && declaration.shape[0] > 0) {  // slices of whole-byte dtypes
      const std::size_t width = st::dtype_bits(declaration.dtype) / 8;
      const auto rows = static_cast<std::size_t>(declaration.shape[0]);
      const auto columns = static_cast<std::size_t>(declaration.shape[1]);
      // A row: one run of bytes, viewed without a copy.
      const std::size_t row = random() % rows;
      auto one_row = reader.try_slice(name, {st::at(row)});
      report.check(one_row && one_row->contiguous(), "row slice " + name);
      if (one_row) {
        auto run = one_row->try_bytes();
        report.check(run && same_bytes(*run, expected.data() + row * columns * width, columns * width),
                     "row bytes " + name);
      }
      // Every other column: gathered.
      std::vector<std::byte> want;
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 1; c < columns; c += 2)
          want.insert(want.end(), expected.begin() + static_cast<std::ptrdiff_t>((r * columns + c) * width),
                      expected.begin() + static_cast<std::ptrdiff_t>((r * columns + c + 1) * width));
      // copy_to gathers into host byte order; the file's bytes are little-endian.
      st::detail::to_host_order(want, declaration.dtype);
      auto odd_columns = reader.try_slice(name, {st::all(), st::range(1, st::to_end, 2)});
      std::vector<std::byte> gathered(want.size());
      report.check(odd_columns && !odd_columns->contiguous() && odd_columns->try_copy_to(gathered, declaration.dtype) &&
                       gathered == want,
                   "strided slice " + name);
      std::vector<std::byte> copied(expected.size());
      std::vector<std::byte> expected_in_host_order = expected;
      st::detail::to_host_order(expected_in_host_order, declaration.dtype);
      report.check(st::try_copy_to(reader.view(*info), copied, declaration.dtype) && copied == expected_in_host_order,
                   "copy_to " + name);
    }
  } else {
    // Loading in blocks on helper threads, from several threads at once.
    st::load_options options;
    options.threads = 2;
    options.block_size = 4096;
    std::vector<std::byte> loaded(expected.size());
    report.check(reader.try_load_into(*info, loaded, options) && loaded == expected, "try_load_into " + name);
  }
  auto copy = reader.try_read(name);
  report.check(copy && *copy == expected, "try_read " + name);
  std::vector<std::byte> into(expected.size());
  report.check(reader.try_read_into(*info, into) && into == expected, "try_read_into " + name);
  // Pieces at random offsets, and one that does not fit.
  for (int piece = 0; piece < 3 && !expected.empty(); ++piece) {
    const std::size_t offset = random() % expected.size();
    const std::size_t size = 1 + random() % std::min<std::size_t>(expected.size() - offset, 4096);
    std::vector<std::byte> part(size);
    report.check(reader.try_read_part(*info, offset, part) && same_bytes(part, expected.data() + offset, size),
                 "try_read_part " + name + " at " + std::to_string(offset));
  }
  std::vector<std::byte> too_long(expected.size() + 1);
  auto refused = reader.try_read_part(*info, 0, too_long);
  report.check(!refused && refused.error().kind() == st::error_kind::invalid_tensor_view, "oversized part " + name);
}

}  // namespace

TEST_CASE("concurrency: many threads share one mapped reader and one pread reader", "[concurrency]") {
  const generated_file generated;
  auto mapped = st::try_open(generated.file.path());
  auto pread = st::try_open_pread(generated.file.path());
  REQUIRE(mapped);
  REQUIRE(pread);
  REQUIRE(mapped->size() == generated.declarations.size());

  run_threads([&](unsigned thread, thread_report& report) {
    std::mt19937 random(thread);
    std::vector<std::size_t> order(generated.declarations.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), random);  // each thread its own order
    for (std::size_t index : order) {
      read_every_way(*mapped, generated, index, random, report);
      read_every_way(*pread, generated, index, random, report);
    }
    // The parts shared by every lookup: the data-ordered list, metadata, misses.
    report.check(mapped->tensors().size() == generated.declarations.size(), "tensors()");
    const std::string* format = mapped->metadata().find("format");
    report.check(format != nullptr && *format == "pt", "metadata");
    report.check(pread->metadata().size() == 2, "pread metadata");
    report.check(!mapped->contains("layers.3000.weight") && pread->find("nope") == nullptr, "misses");
    auto missing = pread->try_read("layers.x.weight");
    report.check(!missing && missing.error().kind() == st::error_kind::tensor_not_found, "try_read of a missing name");
  });
}

TEST_CASE("concurrency: threads open readers of one file while others replace it", "[concurrency]") {
  // Readers opened at any moment see a whole file, the old one or a new one, never a mix: the
  // writer renames a complete temporary file into place. Each writer thread's temporary name is
  // its own (process id, a shared atomic counter, a clock stamp).
  const generated_file generated;
  test::temp_file target(test::read_file(generated.file.path()));
  const std::size_t replacement_size = 4096;

  run_threads([&](unsigned thread, thread_report& report) {
    if (thread % 2 == 0) {  // writers: replace the file with one tensor full of the thread's number
      std::vector<std::byte> data(replacement_size, static_cast<std::byte>(thread));
      for (int i = 0; i < 10; ++i) {
        auto saved = st::try_save(target.path(), {{{"writer", st::dtype::U8, {replacement_size}}, data}});
#if defined(_WIN32)
        // Windows refuses to replace a file that a reader has mapped: a clean IoError.
        report.check(saved || saved.error().message().find("cannot rename") != std::string::npos,
                     saved ? "" : saved.error().to_string());
#else
        report.check(bool(saved), saved ? "" : saved.error().to_string());
#endif
      }
      return;
    }
    for (int i = 0; i < 20; ++i) {  // readers: whatever they open is whole
      auto mapped = st::try_open(target.path());
      report.check(bool(mapped), "open");
      if (mapped) {
        if (const st::tensor_info* info = mapped->find("writer")) {
          st::span<const std::byte> bytes = mapped->view(*info).bytes;
          report.check(bytes.size() == replacement_size &&
                           std::all_of(bytes.begin(), bytes.end(), [&](std::byte b) { return b == bytes[0]; }),
                       "a replacement file, whole");
        } else {
          report.check(mapped->size() == generated.declarations.size(), "the original file, whole");
        }
      }
      auto pread = st::try_open_pread(target.path());
      report.check(bool(pread), "open with pread");
      if (pread && pread->contains("writer")) {
        auto copy = pread->try_read("writer");
        report.check(copy && copy->size() == replacement_size, "pread of a replacement");
      }
    }
  });

  // The last rename won; nothing is left beside the target.
  auto final_file = st::try_open(target.path());
  REQUIRE(final_file);
#if defined(_WIN32)
  CHECK((final_file->contains("writer") || final_file->size() == generated.declarations.size()));
#else
  CHECK(final_file->contains("writer"));
#endif
  const std::string directory = target.path().substr(0, target.path().rfind('/'));
  const std::string prefix = target.path().substr(target.path().rfind('/') + 1) + ".tmp.";
  std::vector<std::string> leftovers;
  if (DIR* dir = ::opendir(directory.c_str())) {
    while (dirent* entry = ::readdir(dir))
      if (std::string(entry->d_name).rfind(prefix, 0) == 0) leftovers.push_back(entry->d_name);
    ::closedir(dir);
  }
  CHECK(leftovers.empty());
}

TEST_CASE("concurrency: load plans share staging buffers, a consumer thread and a pool without a race",
          "[concurrency]") {
  const generated_file generated;
  auto reader = st::try_open_pread(generated.file.path());
  REQUIRE(reader);
  std::vector<st::load_request> requests;
  std::vector<std::size_t> declaration_of;
  for (std::size_t i = 0; i < generated.declarations.size(); ++i) {
    const st::tensor_info& info = reader->info(generated.declarations[i].name);
    if (info.byte_size() == 0) continue;
    requests.emplace_back(&info);
    declaration_of.push_back(i);
  }
  st::thread_pool pool(thread_count);
  for (bool consumer_thread : {false, true}) {
    for (bool own_pool : {false, true}) {
      INFO("consumer thread " << consumer_thread << ", pool " << own_pool);
      st::load_options options;
      options.threads = thread_count;
      options.block_size = 4096;
      options.budget = 3 * 4096;  // fewer buffers than readers: they wait for each other
      options.consumer_thread = consumer_thread;
      options.pool = own_pool ? &pool : nullptr;
      // Every byte checked against the pattern as it arrives; counters only (Catch is not thread-safe).
      std::atomic<std::size_t> wrong{0}, delivered{0};
      auto consumer = [&](const st::load_piece& piece) {
        const std::size_t declaration = declaration_of[piece.request];
        for (std::size_t k = 0; k < piece.bytes.size(); ++k) {
          if (piece.bytes[k] != test::fill_byte(declaration, static_cast<std::size_t>(piece.offset) + k)) ++wrong;
        }
        delivered += piece.bytes.size();
      };
      auto plan = reader->try_plan(requests, options);
      REQUIRE(plan);
      REQUIRE(plan->try_execute(consumer, options));
      CHECK(wrong == 0);
      CHECK(delivered == plan->bytes());

      // A consumer that fails halfway stops every reader; the next plan on the pool runs.
      std::atomic<std::size_t> calls{0};
      auto failing = [&](const st::load_piece&) -> st::result<void> {
        if (++calls == 200) return st::error(st::error_kind::io_error, "the device went away");
        return {};
      };
      auto stopped = plan->try_execute(failing, options);
      REQUIRE_FALSE(stopped);
      CHECK_THAT(stopped.error().message(), Catch::Contains("the device went away"));
    }
  }
  // Into destinations, from eight threads at once.
  std::vector<std::vector<std::byte>> destinations;
  for (const st::load_request& r : requests) destinations.emplace_back(static_cast<std::size_t>(r.tensor->byte_size()));
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].destination = destinations[i];
  st::load_options options;
  options.threads = thread_count;
  options.block_size = 4096;
  options.pool = &pool;
  REQUIRE(reader->try_load_into(requests, options));
  std::size_t mismatched = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) mismatched += destinations[i] != generated.bytes[declaration_of[i]];
  CHECK(mismatched == 0);
}
