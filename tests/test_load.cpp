// load_into (threads, blocks, direct I/O) and the residency of mapped files, checked with mincore.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <fcntl.h>
#include <sys/mman.h>
#include <thread>

namespace st = safetensors;

namespace {

// A file of `count` U8 tensors of `size` bytes each, tensor i filled with test::fill_byte(i, j).
std::vector<std::byte> patterned_file(std::size_t count, std::size_t size, std::uint64_t alignment) {
  std::vector<std::string> data(count);
  std::vector<st::tensor_source> tensors;
  for (std::size_t i = 0; i < count; ++i) {
    data[i].resize(size);
    for (std::size_t j = 0; j < size; ++j) data[i][j] = static_cast<char>(test::fill_byte(i, j));
    tensors.push_back({{"t" + std::to_string(100 + i), st::dtype::U8, {size}},
                       {reinterpret_cast<const std::byte*>(data[i].data()), size}});
  }
  st::write_options options;
  options.alignment = alignment;
  return st::serialize(tensors, {}, options);
}

bool holds_pattern(st::span<const std::byte> bytes, std::size_t tensor) {
  for (std::size_t j = 0; j < bytes.size(); ++j) {
    if (bytes[j] != test::fill_byte(tensor, j)) return false;
  }
  return true;
}

// Memory aligned for direct I/O.
struct aligned_buffer {
  explicit aligned_buffer(std::size_t size)
      : bytes(static_cast<std::byte*>(std::aligned_alloc(st::direct_io_alignment, (size + 4095) / 4096 * 4096))),
        size(size) {}
  ~aligned_buffer() { std::free(bytes); }
  aligned_buffer(const aligned_buffer&) = delete;
  aligned_buffer& operator=(const aligned_buffer&) = delete;
  st::span<std::byte> span() { return {bytes, size}; }
  std::byte* bytes;
  std::size_t size;
};

}  // namespace

TEST_CASE("load_into: every storage, threads and block sizes give the same bytes", "[load]") {
  const std::size_t count = 12, size = 300001;
  test::temp_file file(patterned_file(count, size, 8));
  auto mapped = st::try_open(file.path());
  auto pread = st::try_open_pread(file.path());
  REQUIRE(mapped);
  REQUIRE(pread);
  for (unsigned threads : {1u, 2u, 7u}) {
    for (std::size_t block : {std::size_t{4096}, std::size_t{65536}, std::size_t{8} << 20}) {
      INFO("threads " << threads << ", block " << block);
      st::load_options options;
      options.threads = threads;
      options.block_size = block;
      std::vector<std::vector<std::byte>> destinations(count, std::vector<std::byte>(size));
      std::vector<st::load_request> requests;
      for (std::size_t i = 0; i < count; ++i) requests.push_back({&pread->tensors()[i], destinations[i]});
      REQUIRE(pread->try_load_into(requests, options));
      for (std::size_t i = 0; i < count; ++i) CHECK(holds_pattern(destinations[i], i));

      std::vector<std::byte> one(size);
      REQUIRE(mapped->try_load_into(mapped->tensors()[3], one, options));
      CHECK(holds_pattern(one, 3));
    }
  }
}

TEST_CASE("load_into: direct I/O for aligned blocks, normal reads for the rest", "[load]") {
  const std::size_t size = 3 * 4096 + 100;  // the last block of each tensor is not a multiple of 4096
  test::temp_file file(patterned_file(4, size, 4096));
  auto reader = st::try_open_pread(file.path());
  REQUIRE(reader);
  REQUIRE(reader->data_start() == 4096);
  st::load_options options;
  options.direct_io = true;
  options.block_size = 4096;
  options.threads = 2;
  for (std::size_t i = 0; i < 4; ++i) {
    aligned_buffer aligned(size);
    REQUIRE(reader->try_load_into(reader->tensors()[i], aligned.span(), options));
    CHECK(holds_pattern(aligned.span(), i));
    std::vector<std::byte> unaligned(size + 1);
    REQUIRE(reader->try_load_into(reader->tensors()[i], st::span<std::byte>(unaligned.data() + 1, size), options));
    CHECK(holds_pattern(st::span<const std::byte>(unaligned.data() + 1, size), i));
  }
}

TEST_CASE("load_into: size mismatches and a file that shrank are errors", "[load]") {
  test::temp_file file(patterned_file(3, 50000, 8));
  auto reader = st::try_open_pread(file.path());
  REQUIRE(reader);
  std::vector<std::byte> small(10);
  auto mismatch = reader->try_load_into(reader->tensors()[0], small);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().kind() == st::error_kind::invalid_tensor_view);
  CHECK(mismatch.error().message() ==
        st::detail::quote(file.path()) + ": tensor \"t100\" has 50000 bytes but the destination holds 10");
  const st::load_request no_tensor{nullptr, small};
  CHECK(test::outcome(reader->try_load_into(st::span<const st::load_request>(&no_tensor, 1))) == "InvalidTensorView");

  REQUIRE(::truncate(file.path().c_str(), static_cast<off_t>(reader->data_start() + 60000)) == 0);
  std::vector<std::vector<std::byte>> destinations(3, std::vector<std::byte>(50000));
  std::vector<st::load_request> requests;
  for (std::size_t i = 0; i < 3; ++i) requests.push_back({&reader->tensors()[i], destinations[i]});
  st::load_options options;
  options.threads = 3;
  options.block_size = 4096;
  auto shrank = reader->try_load_into(requests, options);
  REQUIRE_FALSE(shrank);
  CHECK(shrank.error().kind() == st::error_kind::io_error);
  CHECK_THAT(shrank.error().message(), Catch::Contains("shrank"));
}

namespace {

// Resident pages of [offset, offset + count) of a mapping, by mincore.
std::size_t resident_pages(const std::byte* base, std::uint64_t offset, std::uint64_t count) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t first = offset / page, last = (offset + count + page - 1) / page;
  std::vector<unsigned char> flags(last - first);
  if (::mincore(const_cast<std::byte*>(base) + first * page, (last - first) * page, flags.data()) != 0) return SIZE_MAX;
  std::size_t resident = 0;
  for (unsigned char flag : flags) resident += flag & 1;
  return resident;
}

// Writes a file and drops it from the page cache; false where the file system keeps it (tmpfs).
bool write_cold_file(const std::string& path, const std::vector<std::byte>& bytes) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) && ::fsync(fd) == 0 &&
            ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  void* probe = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (!ok || probe == MAP_FAILED) return false;
  const bool evicted = resident_pages(static_cast<std::byte*>(probe), 0, bytes.size()) == 0;
  ::munmap(probe, bytes.size());
  return evicted;
}

std::uint64_t sum_of(st::span<const std::byte> bytes) {
  std::uint64_t sum = 0;
  for (std::byte b : bytes) sum += std::to_integer<unsigned>(b);
  return sum;
}

}  // namespace

TEST_CASE("residency: opening reads only the header; with random access a tensor loads only its pages", "[residency]") {
  const std::size_t count = 16, size = std::size_t{4} << 20;
  const std::string path = std::string(::getenv("TMPDIR") ? ::getenv("TMPDIR") : "/tmp") + "/safetensors_residency_" +
                           std::to_string(::getpid()) + ".safetensors";
  const std::vector<std::byte> bytes = patterned_file(count, size, 4096);
  if (!write_cold_file(path, bytes)) {
    ::unlink(path.c_str());
    WARN("this file system keeps files in memory (tmpfs?): residency cannot be observed here");
    return;
  }
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  {
    st::read_options options;
    options.random_access = true;
    auto reader = st::try_open(path, options);
    REQUIRE(reader);
    const std::byte* base = reader->storage().data();
    const std::size_t header_pages = (reader->data_start() + page - 1) / page;
    CHECK(resident_pages(base, 0, bytes.size()) <= header_pages + (std::size_t{1} << 20) / page);
    CHECK(resident_pages(base, reader->data_start(), bytes.size() - reader->data_start()) == 0);

    const st::tensor_info& touched = reader->tensors()[5];
    CHECK(sum_of(reader->view(touched).bytes) > 0);
    const std::uint64_t touched_start = reader->data_start() + touched.data_offsets[0];
    CHECK(resident_pages(base, touched_start, touched.byte_size()) == touched.byte_size() / page);
    for (std::size_t i = 0; i < count; ++i) {
      if (i == 5) continue;
      INFO("tensor " << i);
      CHECK(resident_pages(base, reader->data_start() + reader->tensors()[i].data_offsets[0], size) == 0);
    }

    // prefetch reads a tensor in ahead of use; the reads complete in the background.
    const st::tensor_info& wanted = reader->tensors()[9];
    const std::uint64_t wanted_start = reader->data_start() + wanted.data_offsets[0];
    REQUIRE(reader->try_prefetch(wanted));
    for (int wait = 0; wait < 500 && resident_pages(base, wanted_start, size) < size / page; ++wait)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(resident_pages(base, wanted_start, size) == size / page);

    // release gives the pages back; touching them again reads them from the file.
    REQUIRE(reader->try_release(touched));
    CHECK(resident_pages(base, touched_start, touched.byte_size()) == 0);
    CHECK(holds_pattern(reader->view(touched).bytes, 5));
  }
  {
    REQUIRE(write_cold_file(path, bytes));
    auto reader = st::try_open(path);  // default: the kernel reads around touched pages
    REQUIRE(reader);
    const std::byte* base = reader->storage().data();
    const std::size_t header_pages = (reader->data_start() + page - 1) / page;
    CHECK(resident_pages(base, 0, bytes.size()) <= header_pages + (std::size_t{1} << 20) / page);
    const st::tensor_info& touched = reader->tensors()[5];
    CHECK(holds_pattern(reader->view(touched).bytes, 5));
    CHECK(resident_pages(base, reader->data_start() + touched.data_offsets[0], size) == size / page);
  }
  ::unlink(path.c_str());
}
