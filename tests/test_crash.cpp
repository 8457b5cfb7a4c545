// Crash safety for real: a process writing over an existing file is killed with SIGKILL in the
// middle of the write. No destructor, no handler runs, so this is what a crash, an OOM kill or a
// power cut (less the page cache) leaves behind.
//
// The guarantee: the target is untouched (the old file, byte for byte, still opens), because the
// writer only ever writes a temporary file beside it (`<target>.tmp.<pid>.<n>.<stamp>`) and
// renames that over the target in finish(). A killed writer cannot remove its temporary file:
// it is left behind, named after the dead process, and nothing else cleans it up.
#include "child_process.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <dirent.h>
#include <random>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace st = safetensors;

namespace {

/// A small valid file: the target's contents before any write.
std::vector<std::byte> old_file() {
  const std::string text = "old contents";
  auto bytes = st::try_serialize(
      {{{"old", st::dtype::U8, {text.size()}}, {reinterpret_cast<const std::byte*>(text.data()), text.size()}}},
      std::map<std::string, std::string>{{"version", "1"}});
  REQUIRE(bytes);
  return *bytes;
}

void check_old_file_intact(const std::string& path, const std::vector<std::byte>& old_bytes) {
  CHECK(test::read_file(path) == old_bytes);
  auto mapped = st::try_open(path);
  REQUIRE(mapped);
  CHECK(*mapped->metadata().find("version") == "1");
  const st::span<const std::byte> bytes = mapped->view("old").bytes;
  CHECK(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()) == "old contents");
  auto pread = st::try_open_pread(path);
  REQUIRE(pread);
  CHECK(pread->try_read("old"));
}

std::uint64_t file_size(const std::string& path) {
  struct stat status;
  return ::stat(path.c_str(), &status) == 0 ? static_cast<std::uint64_t>(status.st_size) : 0;
}

const std::size_t mib = std::size_t{1} << 20;

}  // namespace

TEST_CASE("crash: a writer killed mid-write leaves the old file intact and its temporary file behind",
          "[crash][files]") {
  const std::vector<std::byte> old_bytes = old_file();
  test::temp_file target(old_bytes);
  REQUIRE(test::temp_files_beside(target.path()).empty());

  // The child streams a 256 MiB tensor in 1 MiB chunks (each goes straight to the temporary
  // file) and tells the parent through a pipe once the first one is written; it never finishes.
  int pipe_ends[2];
  REQUIRE(::pipe(pipe_ends) == 0);
  const std::size_t chunks = 256;
  test::child_process child([&] {
    ::close(pipe_ends[0]);
    auto writer = st::try_make_file_writer(target.path(),
                                           {{"big", st::dtype::U8, {chunks * mib}}, {"small", st::dtype::F32, {4}}});
    if (!writer) return 2;
    std::vector<std::byte> chunk(mib, std::byte{0x5a});
    for (std::size_t i = 0; i < chunks; ++i) {
      if (!writer->try_write("big", chunk)) return 3;
      if (i == 0 && ::write(pipe_ends[1], "w", 1) != 1) return 4;
    }
    for (;;) ::pause();  // all written but never finished: wait for the kill
  });
  REQUIRE(child.pid() > 0);
  ::close(pipe_ends[1]);
  char signal_byte = 0;
  REQUIRE(::read(pipe_ends[0], &signal_byte, 1) == 1);  // a chunk has reached the temporary file
  ::close(pipe_ends[0]);
  const std::vector<std::string> during = test::temp_files_beside(target.path());
  REQUIRE(during.size() == 1);
  CHECK(file_size(during[0]) > mib);  // the header and at least one chunk

  const int status = child.kill_and_wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  // The target is the old file, byte for byte, and opens.
  check_old_file_intact(target.path(), old_bytes);

  // The killed writer's temporary file is still there, named after the dead process.
  const std::vector<std::string> leftovers = test::temp_files_beside(target.path());
  REQUIRE(leftovers.size() == 1);
  CHECK(leftovers[0] == during[0]);
  const std::string expected_prefix = target.path() + ".tmp." + std::to_string(child.pid()) + ".";
  CHECK(leftovers[0].rfind(expected_prefix, 0) == 0);
  WARN("a killed writer leaves its temporary file behind (here " << file_size(leftovers[0])
                                                                 << " bytes): " << leftovers[0]);

  // It does not get in the way of the next write, which replaces the target and cleans up only
  // its own temporary file.
  const std::string text = "new";
  REQUIRE(st::try_save(target.path(),
                       {{{"new", st::dtype::U8, {3}}, {reinterpret_cast<const std::byte*>(text.data()), 3}}}));
  auto replaced = st::try_open(target.path());
  REQUIRE(replaced);
  CHECK(replaced->contains("new"));
  CHECK(test::temp_files_beside(target.path()) == leftovers);
  for (const std::string& leftover : leftovers) std::remove(leftover.c_str());
}

TEST_CASE("crash: killed at any moment of a write, the target is the old file or the new one, whole",
          "[crash][files]") {
  // A child writes a 2 MiB file over the target and finishes (renames); the parent kills it after
  // a random delay, anywhere from before the first byte to after the rename.
  const std::vector<std::byte> old_bytes = old_file();
  test::temp_file target(old_bytes);
  const std::size_t size = 2 * mib;
  std::vector<std::byte> new_data(size);
  for (std::size_t i = 0; i < size; ++i) new_data[i] = static_cast<std::byte>(i % 253);
  auto new_bytes = st::try_serialize({{{"new", st::dtype::U8, {size}}, new_data}});
  REQUIRE(new_bytes);

  std::mt19937 random(2024);
  const int attempts = 8;
  int saw_old = 0, saw_new = 0;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    {  // each attempt starts from the old file, put back through the library itself
      auto reader = st::try_open_memory(old_bytes.data(), old_bytes.size());
      REQUIRE(reader);
      std::vector<st::tensor_source> sources;
      for (const st::tensor_info& info : reader->tensors())
        sources.push_back({st::tensor_declaration::from(info), reader->view(info).bytes});
      REQUIRE(st::try_save(target.path(), sources, st::metadata_entries::from(*reader)));
      REQUIRE(test::read_file(target.path()) == old_bytes);
    }
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    test::child_process child([&] {
      ::close(pipe_ends[0]);
      if (::write(pipe_ends[1], "s", 1) != 1) return 4;
      auto writer = st::try_make_file_writer(target.path(), {{"new", st::dtype::U8, {size}}});
      if (!writer) return 2;
      for (std::size_t done = 0; done < size; done += 64 * 1024)
        if (!writer->try_write("new", st::span<const std::byte>(new_data.data() + done, 64 * 1024))) return 3;
      return writer->try_finish() ? 0 : 5;
    });
    ::close(pipe_ends[1]);
    char started = 0;
    REQUIRE(::read(pipe_ends[0], &started, 1) == 1);
    ::close(pipe_ends[0]);
    ::usleep(static_cast<useconds_t>(random() % 6000));
    const int status = child.kill_and_wait();
    INFO("attempt " << attempt);
    CHECK((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));

    const std::vector<std::byte> now = test::read_file(target.path());
    const bool is_old = now == old_bytes, is_new = now == *new_bytes;
    CHECK((is_old || is_new));
    saw_old += is_old;
    saw_new += is_new;
    CHECK(st::try_open(target.path()));
    for (const std::string& leftover : test::temp_files_beside(target.path())) std::remove(leftover.c_str());
  }
  INFO("old file seen " << saw_old << " times, new file " << saw_new << " times");
  CHECK(saw_old + saw_new == attempts);
}
