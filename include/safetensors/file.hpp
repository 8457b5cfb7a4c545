// safetensors-hpp: the operating-system layer: files mapped (mapped_file) or read with pread (pread_file), written through a temporary file (file_sink). The only header that includes the system's headers; it knows nothing of the format.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_FILE_HPP
#define SAFETENSORS_FILE_HPP

#include "storage.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#ifndef SAFETENSORS_NO_FILESYSTEM
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif
#endif

namespace safetensors {

namespace detail {

/// Where the file name starts in `location` (a path or a URL): after its last '/', or on Windows
/// its last '/' or '\\'; 0 when it has none.
inline std::size_t file_name_start(std::string_view location) noexcept {
#if defined(_WIN32)
  const std::size_t separator = location.find_last_of("/\\");
#else
  const std::size_t separator = location.rfind('/');
#endif
  return separator == std::string_view::npos ? 0 : separator + 1;
}

/// `directory` joined with `name`: with the separator the directory ends in or already uses,
/// else the platform's ('\\' on Windows, '/' elsewhere).
inline std::string join_path(const std::string& directory, std::string_view name) {
  if (directory.empty()) return std::string(name);
  if (file_name_start(directory) == directory.size()) return directory + std::string(name);
#if defined(_WIN32)
  const char separator = directory.find('/') == std::string::npos ? '\\' : '/';
#else
  const char separator = '/';
#endif
  return directory + separator + std::string(name);
}

}  // namespace detail

#ifndef SAFETENSORS_NO_FILESYSTEM

namespace detail {
/// `"path": what: the system's reason`.
inline std::string system_error_text(const std::string& what, const std::string& path) {
#if defined(_WIN32)
  // The system's own words, as strerror gives them on POSIX, and the code, which is what a
  // search for the failure needs.
  const DWORD code = GetLastError();
  char* text = nullptr;
  const DWORD length =
      FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                     nullptr, code, 0, reinterpret_cast<LPSTR>(&text), 0, nullptr);
  std::string reason = length != 0 && text != nullptr ? std::string(text, length) : std::string();
  if (text != nullptr) LocalFree(text);
  while (!reason.empty() &&
         (reason.back() == '\n' || reason.back() == '\r' || reason.back() == ' ' || reason.back() == '.'))
    reason.pop_back();
  return quote(path) + ": " + what + ": " + (reason.empty() ? std::string() : reason + " ") + "(Windows error " +
         std::to_string(code) + ")";
#else
  return quote(path) + ": " + what + ": " + std::strerror(errno);
#endif
}

/// Makes what was written to `fd` durable: fsync, or on Apple's systems F_FULLFSYNC, since their
/// fsync leaves the data in the drive's cache.
#if !defined(_WIN32)
inline int sync_to_disk(int fd) noexcept {
#if defined(__APPLE__) && defined(F_FULLFSYNC)
  if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
  return ::fsync(fd);
}
#endif

#if !defined(_WIN32)
/// What a file that is not a regular one is, for messages: "a FIFO", "a directory", ...
inline std::string file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}
#endif

inline std::uint64_t page_size() noexcept {
#if defined(_WIN32)
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwPageSize;
#else
  static const long size = ::sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::uint64_t>(size) : 4096;
#endif
}

inline unsigned long process_id() noexcept {
#if defined(_WIN32)
  return GetCurrentProcessId();
#else
  return static_cast<unsigned long>(::getpid());
#endif
}

#if defined(_WIN32)
inline std::wstring widen(const std::string& utf8) {
  int count = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring wide(static_cast<std::size_t>(count), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), wide.data(), count);
  return wide;
}
#endif

/// An open file descriptor (a HANDLE on Windows), closed on destruction.
class file_handle {
 public:
#if defined(_WIN32)
  using native_type = HANDLE;
  static native_type invalid() noexcept { return INVALID_HANDLE_VALUE; }
#else
  using native_type = int;
  static constexpr native_type invalid() noexcept { return -1; }
#endif
  file_handle() noexcept = default;
  explicit file_handle(native_type handle) noexcept : handle_(handle) {}
  file_handle(file_handle&& other) noexcept : handle_(std::exchange(other.handle_, invalid())) {}
  file_handle& operator=(file_handle&& other) noexcept {
    if (this != &other) {
      close();
      handle_ = std::exchange(other.handle_, invalid());
    }
    return *this;
  }
  file_handle(const file_handle&) = delete;
  file_handle& operator=(const file_handle&) = delete;
  ~file_handle() { close(); }

  native_type get() const noexcept { return handle_; }
  /// True when a file is open.
  explicit operator bool() const noexcept { return handle_ != invalid(); }
  /// Gives up ownership: the caller closes the handle.
  native_type release() noexcept { return std::exchange(handle_, invalid()); }

  /// Opens `path` read-only and finds its size; refuses anything but a regular file. When the
  /// process or the system has no descriptor left, `out_of_descriptors` (if given) is set.
  static result<file_handle> open_read(const std::string& path, std::uint64_t& size,
                                       bool* out_of_descriptors = nullptr) {
#if defined(_WIN32)
    HANDLE handle = CreateFileW(widen(path).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                                OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (handle == INVALID_HANDLE_VALUE) {
      if (out_of_descriptors != nullptr) *out_of_descriptors = GetLastError() == ERROR_TOO_MANY_OPEN_FILES;
      return error(error_kind::io_error, system_error_text("cannot open", path));
    }
    file_handle file(handle);
    if (GetFileType(handle) != FILE_TYPE_DISK)
      return error(error_kind::io_error, quote(path) + ": not a regular file (a pipe or a device)");
    LARGE_INTEGER length;
    if (!GetFileSizeEx(handle, &length)) return error(error_kind::io_error, system_error_text("cannot stat", path));
    size = static_cast<std::uint64_t>(length.QuadPart);
    return file;
#else
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever; the
    // type is checked before anything is read, and regular files ignore the flag.
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (out_of_descriptors != nullptr) *out_of_descriptors = errno == EMFILE || errno == ENFILE;
      return error(error_kind::io_error, system_error_text("cannot open", path));
    }
    file_handle file(fd);
    struct stat status;
    if (::fstat(fd, &status) != 0) return error(error_kind::io_error, system_error_text("cannot stat", path));
    if (!S_ISREG(status.st_mode))
      return error(error_kind::io_error, quote(path) + ": not a regular file (" + file_type_name(status.st_mode) + ")");
    size = static_cast<std::uint64_t>(status.st_size);
    return file;
#endif
  }

 private:
  void close() noexcept {
    if (handle_ == invalid()) return;
#if defined(_WIN32)
    CloseHandle(handle_);
#else
    ::close(handle_);
#endif
    handle_ = invalid();
  }
  native_type handle_ = invalid();
};

/// Reads `count` bytes at `offset` of `file` into `destination`, with as many positioned reads as
/// it takes. The file ending first is an IoError (it shrank after it was opened), unless
/// `end_ok`, when the bytes up to the end are read and their number returned.
inline result<std::size_t> read_fully(const file_handle& file, const std::string& path, std::uint64_t offset,
                                      std::byte* destination, std::size_t count, bool end_ok = false) {
  std::size_t total = 0;
  while (count > 0) {
#if defined(_WIN32)
    OVERLAPPED position{};
    position.Offset = static_cast<DWORD>(offset);
    position.OffsetHigh = static_cast<DWORD>(offset >> 32);
    DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(count, 1u << 30));
    DWORD got = 0;
    if (!ReadFile(file.get(), destination, chunk, &got, &position) && GetLastError() != ERROR_HANDLE_EOF)
      return error(error_kind::io_error, system_error_text("cannot read", path));
    std::size_t done = got;
#else
    std::size_t chunk = std::min<std::size_t>(count, std::size_t{1} << 30);
    ssize_t got = ::pread(file.get(), destination, chunk, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return error(error_kind::io_error, system_error_text("cannot read", path));
    }
    std::size_t done = static_cast<std::size_t>(got);
#endif
    if (done == 0) {
      if (end_ok) break;
      return error(error_kind::io_error,
                   quote(path) + ": ended at byte " + std::to_string(offset) + ": it shrank after it was opened");
    }
    destination += done;
    offset += done;
    count -= done;
    total += done;
  }
  return total;
}

/// Which file an open handle reads: a path may name another file by the time it is opened again
/// (one renamed over it, say), and a descriptor opened again must be on the first one's file.
struct file_identity {
  std::uint64_t device = 0;
  std::uint64_t number = 0;
  bool operator==(const file_identity& other) const noexcept {
    return device == other.device && number == other.number;
  }
};

/// The identity of the file `file` is open on (device and inode; volume and file index on
/// Windows), or nothing when the system cannot say.
inline std::optional<file_identity> identity_of(const file_handle& file) noexcept {
#if defined(_WIN32)
  BY_HANDLE_FILE_INFORMATION information;
  if (!GetFileInformationByHandle(file.get(), &information)) return std::nullopt;
  return file_identity{information.dwVolumeSerialNumber,
                       (std::uint64_t{information.nFileIndexHigh} << 32) | information.nFileIndexLow};
#else
  struct stat status;
  if (::fstat(file.get(), &status) != 0) return std::nullopt;
  return file_identity{static_cast<std::uint64_t>(status.st_dev), static_cast<std::uint64_t>(status.st_ino)};
#endif
}

/// The descriptors of every pread_file in the process: opened on demand, kept while no more than
/// `capacity` are open, closed least recently used first. So a model of thousands of shards
/// loads under a low limit of open files (`ulimit -n 256`). A descriptor is never closed while a
/// read uses it; when the system has none left (EMFILE, ENFILE), every idle one is closed and
/// the open tried once more. A file opened again must be the same file (device and inode): one
/// renamed over its path since is an IoError, never read.
class descriptor_cache {
 public:
  /// Descriptors kept open at most, beyond those that reads use at the moment.
  static constexpr std::size_t capacity = 128;

  /// One file's descriptors, shared by a pread_file and its moves. Guarded by the cache's lock.
  struct file_entry {
    std::string path;
    std::optional<file_identity> identity;
    file_handle buffered;
    file_handle direct;           // O_DIRECT, opened by the first direct read
    bool direct_refused = false;  // the file system does not take O_DIRECT
    unsigned readers = 0;         // reads using a descriptor of it now
    std::uint64_t last_used = 0;

    file_entry() = default;
    file_entry(const file_entry&) = delete;
    file_entry& operator=(const file_entry&) = delete;
    ~file_entry() { instance().forget(*this); }
  };

  /// A descriptor lent to one read, kept open until the lease ends.
  class lease {
   public:
    lease(file_entry& entry, const file_handle* handle) noexcept : entry_(&entry), handle_(handle) {}
    lease(lease&& other) noexcept
        : entry_(std::exchange(other.entry_, nullptr)), handle_(std::exchange(other.handle_, nullptr)) {}
    lease& operator=(lease&&) = delete;
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      if (entry_ != nullptr) instance().give_back(*entry_);
    }
    /// The descriptor; nullptr for a direct read the file system refuses (read buffered instead).
    const file_handle* get() const noexcept { return handle_; }

   private:
    file_entry* entry_;
    const file_handle* handle_;
  };

  /// The process's cache. Never destroyed: a file may close after static destructors ran.
  static descriptor_cache& instance() {
    static descriptor_cache* cache = new descriptor_cache;
    return *cache;
  }

  /// The file at `path`, open now (a regular file only), and its size.
  result<std::shared_ptr<file_entry>> open(const std::string& path, std::uint64_t& size) {
    auto entry = std::make_shared<file_entry>();
    entry->path = path;
    std::lock_guard<std::mutex> guard(lock_);
    auto handle = open_buffered(path, size);
    if (!handle) return handle.error();
    entry->identity = identity_of(*handle);
    adopt(*entry, entry->buffered, std::move(*handle));
    return entry;
  }

  /// The file's buffered descriptor, or its O_DIRECT one (`direct`), for one read: opened again
  /// if it was closed.
  result<lease> borrow(file_entry& entry, bool direct) {
    std::lock_guard<std::mutex> guard(lock_);
    file_handle& handle = direct ? entry.direct : entry.buffered;
    if (!handle && !(direct && entry.direct_refused)) {
      auto opened = direct ? open_direct(entry.path) : open_buffered(entry.path);
      if (!opened) return opened.error();
      if (!*opened) {
        entry.direct_refused = true;
      } else {
        const auto identity = identity_of(*opened);
        if (entry.identity && identity && !(*identity == *entry.identity))
          return error(error_kind::io_error, quote(entry.path) +
                                                 ": another file has taken its name since it was opened (its "
                                                 "descriptor was closed to stay within the open-file limit)");
        adopt(entry, handle, std::move(*opened));
      }
    }
    ++entry.readers;
    entry.last_used = ++clock_;
    return lease(entry, handle ? &handle : nullptr);
  }

  /// Descriptors open now (for tests and reports).
  std::size_t open_descriptors() {
    std::lock_guard<std::mutex> guard(lock_);
    return descriptors_;
  }

 private:
  descriptor_cache() = default;

  static std::size_t count_open(const file_entry& entry) noexcept {
    return (entry.buffered ? 1u : 0u) + (entry.direct ? 1u : 0u);
  }

  // `handle` joins `entry`'s descriptors (its slot), making room first.
  void adopt(file_entry& entry, file_handle& slot, file_handle handle) {
    close_idle(capacity - 1);
    if (count_open(entry) == 0) open_.push_back(&entry);
    slot = std::move(handle);
    ++descriptors_;
    entry.last_used = ++clock_;
  }

  result<file_handle> open_buffered(const std::string& path) {
    std::uint64_t size = 0;
    return open_buffered(path, size);
  }
  result<file_handle> open_buffered(const std::string& path, std::uint64_t& size) {
    bool exhausted = false;
    auto handle = file_handle::open_read(path, size, &exhausted);
    if (handle || !exhausted) return handle;
    close_idle(0);
    return file_handle::open_read(path, size);
  }

  // The O_DIRECT descriptor, or none (an empty handle) where the file system or the system
  // refuses the flag: direct reads then go through the cache.
  result<file_handle> open_direct([[maybe_unused]] const std::string& path) {
#if defined(O_DIRECT)
    for (int attempt = 0; attempt < 2; ++attempt) {
      int fd;
      do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT | O_NONBLOCK);
      } while (fd < 0 && errno == EINTR);
      if (fd >= 0) return file_handle(fd);
      if (errno != EMFILE && errno != ENFILE) break;
      close_idle(0);
    }
#endif
    return file_handle();
  }

  // Closes the idle descriptors least recently used first until at most `keep` are open.
  void close_idle(std::size_t keep) {
    while (descriptors_ > keep) {
      file_entry* oldest = nullptr;
      for (file_entry* entry : open_)
        if (entry->readers == 0 && (oldest == nullptr || entry->last_used < oldest->last_used)) oldest = entry;
      if (oldest == nullptr) return;
      descriptors_ -= count_open(*oldest);
      oldest->buffered = file_handle();
      oldest->direct = file_handle();
      open_.erase(std::find(open_.begin(), open_.end(), oldest));
    }
  }

  void give_back(file_entry& entry) {
    std::lock_guard<std::mutex> guard(lock_);
    --entry.readers;
    if (descriptors_ > capacity) close_idle(capacity);
  }

  void forget(file_entry& entry) {
    std::lock_guard<std::mutex> guard(lock_);
    if (count_open(entry) == 0) return;
    descriptors_ -= count_open(entry);
    entry.buffered = file_handle();
    entry.direct = file_handle();
    open_.erase(std::find(open_.begin(), open_.end(), &entry));
  }

  std::mutex lock_;
  std::vector<file_entry*> open_;  // the entries with a descriptor open
  std::size_t descriptors_ = 0;
  std::uint64_t clock_ = 0;
};
}  // namespace detail

/// A file mapped read-only into memory: opening costs O(1), pages load when first touched.
///
/// Risk: if another process truncates the file while it is mapped, touching the lost pages
/// raises SIGBUS. Use pread_file for files that may change under the reader.
class mapped_file {
 public:
  /// Maps the file at `path`. An IoError names the path and the system's reason.
  static result<mapped_file> try_open(const std::string& path) {
    std::uint64_t size = 0;
    auto file = detail::file_handle::open_read(path, size);
    if (!file) return file.error();
    mapped_file mapped;
    mapped.path_ = path;
    if (size == 0) return mapped;
    if (size > std::numeric_limits<std::size_t>::max())
      return error(error_kind::io_error, detail::quote(path) + ": too large to map");
#if defined(_WIN32)
    HANDLE mapping = CreateFileMappingW(file->get(), nullptr, PAGE_READONLY, 0, 0, nullptr);
    if (mapping == nullptr) return error(error_kind::io_error, detail::system_error_text("cannot map", path));
    void* address = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    CloseHandle(mapping);
    if (address == nullptr) return error(error_kind::io_error, detail::system_error_text("cannot map", path));
#else
    void* address = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, file->get(), 0);
    if (address == MAP_FAILED) return error(error_kind::io_error, detail::system_error_text("cannot map", path));
#endif
    mapped.data_ = static_cast<const std::byte*>(address);
    mapped.size_ = static_cast<std::size_t>(size);
    // The mapping outlives the descriptor, which is closed now: a model of thousands of mapped
    // shards holds none.
    mapped.identity_ = detail::identity_of(*file);
    return mapped;
  }
  /// Maps the file at `path`; throws safetensors::exception (aborts without exceptions) on failure.
  static mapped_file open(const std::string& path) { return try_open(path).value(); }

  mapped_file(mapped_file&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        identity_(other.identity_),
        path_(std::move(other.path_)) {}
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      identity_ = other.identity_;
      path_ = std::move(other.path_);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  /// First byte of the mapping (nullptr for an empty file).
  const std::byte* data() const noexcept { return data_; }
  /// Number of bytes.
  std::uint64_t size() const noexcept { return size_; }
  /// The file's path.
  const std::string& path() const noexcept { return path_; }
  /// Copies `count` bytes at `offset` to `destination`.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (auto read = borrowed_bytes(data_, size_).read_at(offset, destination, count); !read)
      return detail::about(path_, read.error());
    return {};
  }

  /// Turns the kernel's read-around of touched pages off (random) or back on (madvise RANDOM or
  /// NORMAL over the whole mapping). A hint: failures are ignored.
  void set_random_access(bool random) const noexcept {
#if !defined(_WIN32)
    if (data_ != nullptr) ::madvise(const_cast<std::byte*>(data_), size_, random ? MADV_RANDOM : MADV_NORMAL);
#else
    (void)random;
#endif
  }

  /// Asks the kernel to start reading bytes [offset, offset + count) in, so that touching them
  /// later does not wait (madvise WILLNEED). A hint: returns before the reads complete.
  result<void> prefetch(std::uint64_t offset, std::uint64_t count) const {
    auto [start, length] = page_range(offset, count);
    if (length == 0) return {};
#if defined(_WIN32)
#if defined(_WIN32_WINNT) && _WIN32_WINNT >= 0x0602
    WIN32_MEMORY_RANGE_ENTRY range{const_cast<std::byte*>(data_) + start, length};
    PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0);
#endif
#else
    if (::madvise(const_cast<std::byte*>(data_) + start, length, MADV_WILLNEED) != 0)
      return error(error_kind::io_error, detail::system_error_text("madvise WILLNEED failed", path_));
#endif
    return {};
  }

  /// Gives back the memory of bytes [offset, offset + count): drops them from this process
  /// (madvise DONTNEED) and, being clean file pages, from the page cache (fadvise DONTNEED).
  /// Reading them again later reads the file again. For weights already copied elsewhere.
  result<void> release(std::uint64_t offset, std::uint64_t count) const {
    auto [start, length] = page_range(offset, count);
    if (length == 0) return {};
#if defined(_WIN32)
    // Unlocking pages that are not locked removes them from the working set.
    VirtualUnlock(const_cast<std::byte*>(data_) + start, length);
#else
    if (::madvise(const_cast<std::byte*>(data_) + start, length, MADV_DONTNEED) != 0)
      return error(error_kind::io_error, detail::system_error_text("madvise DONTNEED failed", path_));
#if defined(POSIX_FADV_DONTNEED)
    // The page cache is told through a descriptor, opened for it: the file's own was closed once
    // mapped. Only when the path still names the mapped file.
    std::uint64_t ignored_size = 0;
    if (auto file = detail::file_handle::open_read(path_, ignored_size); file) {
      const auto identity = detail::identity_of(*file);
      if (identity && identity_ && *identity == *identity_)
        ::posix_fadvise(file->get(), static_cast<off_t>(start), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
    }
#endif
#endif
    return {};
  }

 private:
  mapped_file() = default;

  // The whole pages covering [offset, offset + count), clipped to the file: madvise wants a
  // page-aligned start.
  std::pair<std::size_t, std::size_t> page_range(std::uint64_t offset, std::uint64_t count) const noexcept {
    if (offset >= size_ || count == 0) return {0, 0};
    const std::uint64_t end = offset + std::min<std::uint64_t>(count, size_ - offset);
    const std::uint64_t page = detail::page_size();
    const std::uint64_t start = offset / page * page;
    return {static_cast<std::size_t>(start), static_cast<std::size_t>(end - start)};
  }

  void unmap() noexcept {
    if (data_ == nullptr) return;
#if defined(_WIN32)
    UnmapViewOfFile(data_);
#else
    ::munmap(const_cast<std::byte*>(data_), size_);
#endif
    data_ = nullptr;
  }
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::optional<detail::file_identity> identity_;
  std::string path_;
};

/// A file read with positioned reads (pread) on demand: only the header is read at open; tensor
/// bytes are copied into memory the caller provides. The choice for network file systems where
/// mapping is slow, for loads into the engine's own memory (a mapped file's pages would count
/// twice in the process's memory), and for files that may change while open (a file that shrank
/// is an IoError, never a crash).
class pread_file;
namespace detail {
/// The descriptors of `file`, for a load that issues its own reads (io_uring).
inline descriptor_cache::file_entry& file_entry_of(const pread_file& file) noexcept;
}  // namespace detail

class pread_file {
 public:
  /// Opens the file at `path`. An IoError names the path and the system's reason.
  static result<pread_file> try_open(const std::string& path) {
    pread_file file;
    auto entry = detail::descriptor_cache::instance().open(path, file.size_);
    if (!entry) return entry.error();
    file.entry_ = std::move(*entry);
    return file;
  }
  /// Opens the file at `path`; throws safetensors::exception (aborts without exceptions) on failure.
  static pread_file open(const std::string& path) { return try_open(path).value(); }

  /// The file's size when it was opened.
  std::uint64_t size() const noexcept { return size_; }
  /// The file's path.
  const std::string& path() const noexcept { return entry_->path; }
  /// Opening reads this much at once: the length prefix and, in most files, the whole header, in
  /// one read instead of two.
  static constexpr std::size_t first_read_size() noexcept { return 64 * 1024; }

  /// Reads `count` bytes at `offset` into `destination`; an IoError when the file has fewer.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    auto descriptor = detail::descriptor_cache::instance().borrow(*entry_, false);
    if (!descriptor) return descriptor.error();
    if (auto read = detail::read_fully(*descriptor->get(), entry_->path, offset, destination, count); !read)
      return read.error();
    return {};
  }

  /// Reads `count` bytes at `offset` past the page cache (O_DIRECT, Linux), into `destination`:
  /// all three multiples of direct_io_alignment. Fewer bytes only where the file ends. The
  /// direct descriptor is opened on first use; where the file system refuses O_DIRECT, or on
  /// other systems, the read goes through the cache instead.
  result<void> read_direct_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    const std::size_t wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(count, size_ > offset ? size_ - offset : 0));
#if defined(O_DIRECT)
    auto descriptor = detail::descriptor_cache::instance().borrow(*entry_, true);
    if (!descriptor) return descriptor.error();
    if (descriptor->get() != nullptr) {
      auto read = detail::read_fully(*descriptor->get(), entry_->path, offset, destination, count, true);
      if (!read) return read.error();
      if (*read < wanted)
        return error(error_kind::io_error, detail::quote(entry_->path) + ": ended at byte " +
                                               std::to_string(offset + *read) + ": it shrank after it was opened");
      return {};
    }
#endif
    return read_at(offset, destination, wanted);
  }

 private:
  friend detail::descriptor_cache::file_entry& detail::file_entry_of(const pread_file& file) noexcept;
  pread_file() = default;
  // Its descriptors live in the process's descriptor_cache, which closes idle ones past a limit.
  std::shared_ptr<detail::descriptor_cache::file_entry> entry_;
  std::uint64_t size_ = 0;
};

namespace detail {
inline descriptor_cache::file_entry& file_entry_of(const pread_file& file) noexcept { return *file.entry_; }
}  // namespace detail

#endif  // SAFETENSORS_NO_FILESYSTEM

#ifndef SAFETENSORS_NO_FILESYSTEM
namespace detail {

/// The temporary files that writers have open, in fixed slots that a signal handler may read:
/// no allocation, no lock. Each holds a path while its sink lives uncommitted.
class temporary_files {
 public:
  static constexpr std::size_t capacity = 64;
  static constexpr std::size_t path_capacity = 4096;

  /// Records `path`; the slot's number, or capacity when every slot is taken or the path is
  /// too long (the file is then not removed by remove_temporary_files, only by its sink).
  static std::size_t add(const std::string& path) noexcept {
    if (path.size() >= path_capacity) return capacity;
    for (std::size_t i = 0; i < capacity; ++i) {
      bool expected = false;
      if (slots()[i].taken.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        std::memcpy(slots()[i].path, path.c_str(), path.size() + 1);
        slots()[i].live.store(true, std::memory_order_release);
        return i;
      }
    }
    return capacity;
  }
  /// Forgets slot `slot` (from add).
  static void remove(std::size_t slot) noexcept {
    if (slot >= capacity) return;
    slots()[slot].live.store(false, std::memory_order_release);
    slots()[slot].taken.store(false, std::memory_order_release);
  }
  /// Unlinks every recorded file: async-signal-safe.
  static void unlink_all() noexcept {
    for (std::size_t i = 0; i < capacity; ++i) {
      if (!slots()[i].live.load(std::memory_order_acquire)) continue;
#if defined(_WIN32)
      std::remove(slots()[i].path);
#else
      ::unlink(slots()[i].path);
#endif
    }
  }

 private:
  struct slot {
    std::atomic<bool> taken{false};
    std::atomic<bool> live{false};
    char path[path_capacity];
  };
  static slot* slots() noexcept {
    static slot table[capacity];
    return table;
  }
};

}  // namespace detail

/// Removes the temporary files of every writer still writing, in this process. Safe to call
/// from a signal handler (async-signal-safe: no allocation, no lock): a program that ends on
/// SIGINT or SIGTERM calls it from its handler so that no large half-written file stays behind,
/// as safetensors-cli does. The writers then fail when they go on; their targets are untouched.
///
/// ```cpp
/// std::signal(SIGINT, [](int signal) { safetensors::remove_temporary_files(); std::_Exit(128 + signal); });
/// ```
inline void remove_temporary_files() noexcept { detail::temporary_files::unlink_all(); }

/// A sink that writes a temporary file beside `path` and renames it over `path` at commit, so no
/// reader ever sees a half-written file under the final name and existing mappings of the old
/// file stay valid. Abandoned (destroyed before commit), it removes the temporary file.
class file_sink {
 public:
  static constexpr bool positioned = true;

  /// Creates the temporary file beside the target. What the target is decides how:
  /// - absent: the new file gets mode 0666 less the umask, as any new file;
  /// - a regular file: the new one keeps its mode (and, for root, its owner and group), as
  ///   rsync and editors that save through a temporary file do;
  /// - a symbolic link: written through, as cp does: the file it leads to is replaced and the
  ///   link stays (a link that leads nowhere is refused);
  /// - anything else (a device such as /dev/null, a FIFO, a directory, a socket): refused with
  ///   an IoError that says what it is; it is never replaced.
  /// The temporary name fits the file system's 255-byte name limit whatever the target's length.
  static result<file_sink> try_create(const std::string& path, bool sync) {
    file_sink sink;
    sink.path_ = path;
    sink.target_ = path;
    sink.sync_ = sync;
#if !defined(_WIN32)
    struct stat link_status;
    bool replacing = false;
    struct stat status;
    if (::lstat(path.c_str(), &link_status) == 0) {
      if (S_ISLNK(link_status.st_mode)) {
        char* resolved = ::realpath(path.c_str(), nullptr);
        if (resolved == nullptr)
          return error(error_kind::io_error, detail::system_error_text("is a symbolic link that leads nowhere", path));
        sink.target_ = resolved;
        std::free(resolved);
      }
      if (::stat(sink.target_.c_str(), &status) == 0) {
        if (!S_ISREG(status.st_mode))
          return error(error_kind::io_error, detail::quote(path) + ": is " + detail::file_type_name(status.st_mode) +
                                                 ", not a regular file: it is not replaced");
        replacing = true;
      }
    }
#else
    const DWORD attributes = GetFileAttributesW(detail::widen(path).c_str());
    if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0)
      return error(error_kind::io_error,
                   detail::quote(path) + ": is a directory, not a regular file: it is not replaced");
#endif
    static std::atomic<unsigned> counter{0};
    const std::size_t name_start = detail::file_name_start(sink.target_);
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto stamp = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
      const std::string suffix = ".tmp." + std::to_string(detail::process_id()) + "." +
                                 std::to_string(counter.fetch_add(1)) + "." + std::to_string(stamp % 1000000007ULL);
      // NAME_MAX is 255 bytes on every common file system: a long name is cut to leave room.
      const std::size_t name_room = suffix.size() < 255 ? 255 - suffix.size() : 0;
      sink.temp_path_ = sink.target_.substr(0, name_start) +
                        sink.target_.substr(name_start, std::min(name_room, sink.target_.size() - name_start)) + suffix;
#if defined(_WIN32)
      HANDLE handle = CreateFileW(detail::widen(sink.temp_path_).c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW,
                                  FILE_ATTRIBUTE_NORMAL, nullptr);
      if (handle != INVALID_HANDLE_VALUE) {
        sink.file_ = detail::file_handle(handle);
        sink.registered_ = detail::temporary_files::add(sink.temp_path_);
        return sink;
      }
      if (GetLastError() != ERROR_FILE_EXISTS)
        return error(error_kind::io_error, detail::system_error_text("cannot create", sink.temp_path_));
#else
      int fd = ::open(sink.temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        sink.file_ = detail::file_handle(fd);
        sink.registered_ = detail::temporary_files::add(sink.temp_path_);
        if (replacing) {
          // The owner first: a change of owner may clear the set-user-ID and set-group-ID bits.
          if (::geteuid() == 0 && ::fchown(fd, status.st_uid, status.st_gid) != 0)
            return error(error_kind::io_error, detail::system_error_text("cannot give it the owner of", path));
          if (::fchmod(fd, status.st_mode & 07777) != 0)
            return error(error_kind::io_error, detail::system_error_text("cannot give it the mode of", path));
        }
        return sink;
      }
      if (errno != EEXIST)
        return error(error_kind::io_error, detail::system_error_text("cannot create", sink.temp_path_));
#endif
    }
    return error(error_kind::io_error, "cannot find a free temporary name beside " + detail::quote(path));
  }
  /// As try_create; throws safetensors::exception (aborts without exceptions) on failure.
  static file_sink create(const std::string& path, bool sync) { return try_create(path, sync).value(); }

  file_sink(file_sink&& other) noexcept
      : file_(std::move(other.file_)),
        path_(std::move(other.path_)),
        target_(std::move(other.target_)),
        temp_path_(std::exchange(other.temp_path_, std::string())),
        registered_(std::exchange(other.registered_, detail::temporary_files::capacity)),
        sync_(other.sync_) {}
  file_sink& operator=(file_sink&& other) noexcept {
    if (this != &other) {
      discard();
      file_ = std::move(other.file_);
      path_ = std::move(other.path_);
      target_ = std::move(other.target_);
      temp_path_ = std::exchange(other.temp_path_, std::string());
      registered_ = std::exchange(other.registered_, detail::temporary_files::capacity);
      sync_ = other.sync_;
    }
    return *this;
  }
  file_sink(const file_sink&) = delete;
  file_sink& operator=(const file_sink&) = delete;
  ~file_sink() { discard(); }

  result<void> write_at(std::uint64_t offset, const std::byte* data, std::size_t count) {
    while (count > 0) {
#if defined(_WIN32)
      OVERLAPPED position{};
      position.Offset = static_cast<DWORD>(offset);
      position.OffsetHigh = static_cast<DWORD>(offset >> 32);
      DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(count, 1u << 30));
      DWORD done = 0;
      if (!WriteFile(file_.get(), data, chunk, &done, &position))
        return error(error_kind::io_error, detail::system_error_text("cannot write", temp_path_));
#else
      ssize_t done =
          ::pwrite(file_.get(), data, std::min<std::size_t>(count, std::size_t{1} << 30), static_cast<off_t>(offset));
      if (done < 0) {
        if (errno == EINTR) continue;
        return error(error_kind::io_error, detail::system_error_text("cannot write", temp_path_));
      }
#endif
      data += done;
      offset += static_cast<std::uint64_t>(done);
      count -= static_cast<std::size_t>(done);
    }
    return {};
  }

  /// Flushes (with `sync`) and closes the temporary file, which stays under its temporary name:
  /// commit() then only renames it. A set of files (a sharded model's) can so be completed one at
  /// a time, with one file open, and renamed together.
  result<void> close() {
    if (!file_) return {};
#if defined(_WIN32)
    if (sync_ && !FlushFileBuffers(file_.get()))
      return error(error_kind::io_error, detail::system_error_text("cannot flush", temp_path_));
    file_ = detail::file_handle();
#else
    if (sync_ && detail::sync_to_disk(file_.get()) != 0)
      return error(error_kind::io_error, detail::system_error_text("cannot sync", temp_path_));
    if (::close(file_.release()) != 0)
      return error(error_kind::io_error, detail::system_error_text("cannot close", temp_path_));
#endif
    return {};
  }

  /// Closes the temporary file (flushed with `sync`) and renames it over the target.
  result<void> commit() {
    if (auto closed = close(); !closed) return closed;
    const std::string renaming = "cannot rename " + detail::quote(temp_path_) + " over it";
#if defined(_WIN32)
    if (!MoveFileExW(detail::widen(temp_path_).c_str(), detail::widen(target_).c_str(),
                     MOVEFILE_REPLACE_EXISTING | (sync_ ? MOVEFILE_WRITE_THROUGH : 0)))
      return error(error_kind::io_error, detail::system_error_text(renaming, path_));
#else
    if (::rename(temp_path_.c_str(), target_.c_str()) != 0)
      return error(error_kind::io_error, detail::system_error_text(renaming, path_));
    if (sync_) {
      std::string::size_type slash = target_.rfind('/');
      std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : target_.substr(0, slash));
      int fd = ::open(directory.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        detail::sync_to_disk(fd);
        ::close(fd);
      }
    }
#endif
    detail::temporary_files::remove(std::exchange(registered_, detail::temporary_files::capacity));
    temp_path_.clear();
    return {};
  }

  /// Closes and removes the temporary file, unless it was committed.
  void discard() noexcept {
    if (temp_path_.empty()) return;
    detail::temporary_files::remove(std::exchange(registered_, detail::temporary_files::capacity));
    file_ = detail::file_handle();
#if defined(_WIN32)
    DeleteFileW(detail::widen(temp_path_).c_str());
#else
    ::unlink(temp_path_.c_str());
#endif
    temp_path_.clear();
  }

 private:
  file_sink() = default;

  detail::file_handle file_;
  std::string path_;
  std::string target_;     // the file replaced: path_, or where the symbolic link path_ leads
  std::string temp_path_;  // empty once committed or discarded
  std::size_t registered_ = detail::temporary_files::capacity;  // its slot in temporary_files
  bool sync_ = false;
};
namespace detail {
static_assert(is_storage<mapped_file>::value && has_data<mapped_file>::value &&
                  has_residency_control<mapped_file>::value && has_access_advice<mapped_file>::value,
              "mapped_file: a storage with views and residency control");
static_assert(is_storage<pread_file>::value && !has_data<pread_file>::value && has_direct_io<pread_file>::value,
              "pread_file: a storage read on demand, with direct I/O");
}  // namespace detail
#if defined(SAFETENSORS_DETAIL_HAS_CONCEPTS)
static_assert(storage<mapped_file> && storage<pread_file>);
#endif

#endif  // SAFETENSORS_NO_FILESYSTEM

}  // namespace safetensors

#endif  // SAFETENSORS_FILE_HPP
