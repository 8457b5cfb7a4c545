// A forked child for the tests that need a process of their own: one to kill in the middle of a
// write, or one to die in place of the test when it allocates what a file merely claims.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

/// A forked child, killed and reaped when this goes out of scope if it still runs.
class child_process {
 public:
  /// Forks; the child runs `body` and exits with its result (126 if it threw). It dies with its
  /// parent. The body must not use Catch: it reports through its exit code.
  template <class Body>
  explicit child_process(Body body) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int code = 126;  // never let the child return into Catch
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
      try {
        code = body();
      } catch (...) {
      }
#else
      code = body();
#endif
      ::_exit(code);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (pid_ > 0 && !reaped_) kill_and_wait();
  }

  /// The child's process id; negative if fork failed.
  pid_t pid() const { return pid_; }

  /// Waits for the child to end and reaps it; its status as waitpid gives it, or -1 if fork failed.
  int wait() {
    if (pid_ <= 0) return -1;  // no child: never wait for, or below kill, "any process"
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) break;
    }
    reaped_ = true;
    return status;
  }

  /// Kills the child with SIGKILL (it may have exited already) and reaps it; as wait().
  int kill_and_wait() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGKILL);
    return wait();
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

}  // namespace test
