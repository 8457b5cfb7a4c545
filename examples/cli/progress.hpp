// The progress bar of long work.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cli {

// A one-line bar on stderr for long work: "LABEL [#####-----]  12.3 MB / 45.6 MB  27%", drawn
// when it starts and then at most ten times a second, erased by finish() or the destructor.
// When stderr is not a terminal it does nothing at all, so redirected output and logs never see
// it. At most one bar is on screen; report_error() erases it before writing a message.
class progress_bar {
 public:
  progress_bar(std::string label, std::uint64_t total);
  ~progress_bar() { finish(); }
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;

  // Counts `bytes` more as done, and redraws if the last drawing is 100 ms old.
  void advance(std::uint64_t bytes);

  // Erases the bar for good; the line is left empty, the cursor at its start.
  void finish();

  // Erases the bar on screen, if there is one: before anything else is written to stderr.
  static void finish_current();

 private:
  static progress_bar*& current();
  void draw();

  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool shown_;
  std::chrono::steady_clock::time_point drawn_at_;
};

}  // namespace cli
