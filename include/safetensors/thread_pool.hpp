// safetensors-hpp: thread_pool, the threads that run loads.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_THREAD_POOL_HPP
#define SAFETENSORS_THREAD_POOL_HPP

#include "error.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Loading: plans of reads over one file or many shards, run by a pool of threads
// ---------------------------------------------------------------------------------------------

/// Threads that load plans run on. A load without a pool starts its threads and joins them
/// before it returns; an engine that loads often keeps one pool and passes it in
/// load_options::pool. Its threads wait on a condition variable between jobs.
class thread_pool {
 public:
  /// The size a pool gets by default: the machine's cores, at least 2.
  static unsigned default_size() noexcept {
    const unsigned cores = std::thread::hardware_concurrency();
    return cores < 2 ? 2 : cores;
  }

  /// A pool in which `size` threads work on each job, the calling thread included: size - 1
  /// threads are started now. When one cannot be started (the system's thread or memory limits),
  /// those already started are stopped and joined, and safetensors::exception is thrown (abort
  /// without exceptions); try_make returns the error instead.
  explicit thread_pool(unsigned size = default_size()) : thread_pool(size, starting{}) {
    // The object is whole here: the destructor stops and joins what was started.
    if (failure_) detail::raise(*failure_);
  }
  /// A pool of `size` threads (see the constructor), or the error that kept a thread from
  /// starting, every thread already started then stopped and joined.
  static result<std::unique_ptr<thread_pool>> try_make(unsigned size = default_size()) {
    std::unique_ptr<thread_pool> pool(new thread_pool(size, starting{}));
    if (pool->failure_) return *pool->failure_;
    return pool;
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  /// Waits for the pool's threads to end.
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(lock_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  /// Threads that work on a job, the caller included.
  /// (Fewer than asked for only in a pool that failed to start, which no caller ever sees.)
  unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()) + 1; }

  /// Calls task(worker) for every worker from 0 to workers - 1 at once (worker 0 on the calling
  /// thread; `workers` is capped at size()) and returns when every call has returned. One job at
  /// a time: a second caller waits for the first job to end. `task` must not throw.
  template <class Task>
  void run(unsigned workers, Task& task) {
    std::lock_guard<std::mutex> one_job(job_lock_);
    workers = std::max(1u, std::min(workers, size()));
    {
      std::lock_guard<std::mutex> lock(lock_);
      job_ = &task;
      call_ = [](void* job, unsigned worker) { (*static_cast<Task*>(job))(worker); };
      job_workers_ = workers;
      pending_ = workers - 1;
      ++generation_;
    }
    wake_.notify_all();
    task(0u);
    std::unique_lock<std::mutex> lock(lock_);
    done_.wait(lock, [&] { return pending_ == 0; });
  }

 private:
  struct starting {};
  thread_pool(unsigned size, starting) {
    const unsigned helpers = size > 1 ? size - 1 : 0;
#if SAFETENSORS_EXCEPTIONS
    try {
      threads_.reserve(helpers);
      for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this, i] { serve(i + 1); });
    } catch (const std::exception& failed) {
      failure_ = error(error_kind::io_error, "cannot start thread " + std::to_string(threads_.size() + 2) + " of " +
                                                 std::to_string(size) + ": " + failed.what());
    }
#else
    threads_.reserve(helpers);
    for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this, i] { serve(i + 1); });
#endif
  }

  void serve(unsigned worker) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(lock_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (worker >= job_workers_) continue;
      void* job = job_;
      void (*call)(void*, unsigned) = call_;
      lock.unlock();
      call(job, worker);
      lock.lock();
      if (--pending_ == 0) done_.notify_all();
    }
  }

  std::mutex job_lock_;  // held by run() for a whole job
  std::mutex lock_;      // guards the fields below
  std::condition_variable wake_;
  std::condition_variable done_;
  void* job_ = nullptr;
  void (*call_)(void*, unsigned) = nullptr;
  unsigned job_workers_ = 0;
  unsigned pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::optional<error> failure_;
};

}  // namespace safetensors

#endif  // SAFETENSORS_THREAD_POOL_HPP
