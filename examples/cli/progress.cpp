#include "progress.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <utility>

#if defined(_WIN32)
#include <io.h>
#else
#include <sys/ioctl.h>
#include <unistd.h>
#endif

namespace cli {

namespace {

bool stderr_is_terminal() {
#if defined(_WIN32)
  return _isatty(_fileno(stderr)) != 0;
#else
  return isatty(STDERR_FILENO) == 1;
#endif
}

// The width of the terminal on stderr, or 80 when it does not say (a pseudo-terminal that was
// never sized reports 0).
std::size_t terminal_columns() {
#if !defined(_WIN32) && defined(TIOCGWINSZ)
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
#endif
  return 80;
}

// "999 B", "1.5 KB", "12.3 MB", "4.9 GB": decimal units, as sizes are given.
std::string byte_text(std::uint64_t bytes) {
  static constexpr const char* units[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 1000) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1000;
  std::size_t unit = 0;
  while (value >= 999.95 && unit + 1 < std::size(units)) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

}  // namespace

progress_bar::progress_bar(std::string label, std::uint64_t total)
    : label_(std::move(label)), total_(total), shown_(stderr_is_terminal()) {
  if (!shown_) return;
  current() = this;
  draw();
}

void progress_bar::advance(std::uint64_t bytes) {
  done_ += bytes;
  if (!shown_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - drawn_at_ >= std::chrono::milliseconds(100)) draw();
}

void progress_bar::finish() {
  if (!shown_) return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  shown_ = false;
  if (current() == this) current() = nullptr;
}

void progress_bar::finish_current() {
  if (current() != nullptr) current()->finish();
}

progress_bar*& progress_bar::current() {
  static progress_bar* bar = nullptr;
  return bar;
}

void progress_bar::draw() {
  const double fraction = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  char percent[8];
  std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100));
  const std::string counts = "  " + byte_text(done_) + " / " + byte_text(total_) + "  " + percent;
  // The line stays one column short of the width, so that it never wraps.
  const std::size_t columns = terminal_columns();
  const std::size_t fixed = label_.size() + 3 + counts.size();
  const std::size_t width = columns > fixed + 1 ? std::min<std::size_t>(40, columns - fixed - 1) : 0;
  std::string line = "\r" + label_;
  if (width >= 10) {
    const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(width));
    line += " [" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
  }
  line += counts;
  // Only on a terminal narrower than the counts: cut rather than wrap ("\r" takes no column).
  if (line.size() > columns) line.resize(columns);
  line += "\x1b[K";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  drawn_at_ = std::chrono::steady_clock::now();
}

}  // namespace cli
