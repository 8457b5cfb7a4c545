// Loading a sharded model (transformer_model.hpp: 4 shards, about 2 GiB) over pread shards:
// - every tensor into one caller buffer, next to raw pread() of every shard in 8 MiB blocks by
//   as many threads (warm and cold), with each engine (threads, io_uring), buffered and direct;
// - every tensor into a fresh load_arena, next to the load into the reused buffer;
// - rank 1 of 4 of tensor parallelism along dimension 0, warm (against the whole model's time)
//   and cold (with the bytes it reads);
// - through a consumer that costs a fixed time per byte (a simulated upload), next to the same
//   load with a consumer that does nothing and to the consumer's cost alone;
// and opening an index of 500,000 entries, next to nlohmann_json's DOM parse of the same text
// and a plain read() of the file.
#include "bench_support.hpp"
#include "transformer_model.hpp"

#include <safetensors/model.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <thread>

namespace {

constexpr std::size_t block_size = std::size_t{8} << 20;

// The model, written once per process, and what the raw baselines need of it.
struct model_files {
  std::string directory;
  std::string index;
  std::vector<std::string> shards;
  std::vector<std::uint64_t> data_start;  // per shard
  std::vector<std::uint64_t> file_size;   // per shard
  std::uint64_t payload = 0;              // every tensor's bytes
};

const model_files& model() {
  static const model_files files = [] {
    model_files made;
    made.directory = bench::temp_directory() + "/model";
    bench::write_transformer_model(made.directory);
    auto opened = safetensors::open_model_pread(made.directory);
    made.index = opened.index_path();
    for (std::size_t i = 0; i < opened.shard_count(); ++i) {
      struct stat facts {};
      if (::stat(opened.shard_paths()[i].c_str(), &facts) != 0) std::abort();
      made.shards.push_back(opened.shard_paths()[i]);
      made.data_start.push_back(opened.try_shard(i).value()->data_start());
      made.file_size.push_back(static_cast<std::uint64_t>(facts.st_size));
      made.payload += made.file_size.back() - made.data_start.back();
    }
    return made;
  }();
  return files;
}

// One buffer for every tensor, faulted in before timing.
std::vector<std::byte>& destination() {
  static std::vector<std::byte> buffer(model().payload, std::byte{1});
  return buffer;
}

void evict_model() {
  std::vector<std::string> files = model().shards;
  files.push_back(model().index);
  for (const std::string& path : files) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void evict(benchmark::State& state) {
  state.PauseTiming();
  evict_model();
  state.ResumeTiming();
}

void warm_up() {
  std::vector<char> block(block_size);
  std::vector<std::string> files = model().shards;
  files.push_back(model().index);
  for (const std::string& path : files) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (::read(fd, block.data(), block.size()) > 0) {
    }
    ::close(fd);
  }
}

// Bytes this process has had read from the disk (/proc/self/io read_bytes): the kernel's
// read-ahead included, which a plan's own count cannot see.
std::uint64_t disk_read_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "read_bytes:") return value;
  }
  return 0;
}

// Requests for rank `rank` of `ranks` along dimension 0 (every tensor whose dimension 0 divides
// by `ranks` is cut, the others are whole; one rank of one is the whole model), laid out back
// to back in `buffer`, or with no destination for a consumer when `buffer` is null.
safetensors::result<std::vector<safetensors::load_request>> rank_requests(const safetensors::pread_model_reader& opened,
                                                                          std::vector<std::byte>* buffer,
                                                                          std::int64_t ranks, std::int64_t rank) {
  std::vector<safetensors::load_request> requests;
  std::uint64_t offset = 0;
  for (const safetensors::model_entry& entry : opened.tensor_names()) {
    auto info = opened.try_info(entry.name);
    if (!info) return info.error();
    std::vector<safetensors::slice_dim> slice;
    std::uint64_t bytes = (*info)->byte_size();
    const auto shape = (*info)->shape;
    if (ranks > 1 && !shape.empty() && shape[0] % static_cast<std::uint64_t>(ranks) == 0) {
      const auto rows = static_cast<std::int64_t>(shape[0]);
      slice.push_back(safetensors::range(rank * rows / ranks, (rank + 1) * rows / ranks));
      for (std::size_t d = 1; d < shape.size(); ++d) slice.push_back(safetensors::all());
      bytes /= static_cast<std::uint64_t>(ranks);
    }
    safetensors::span<std::byte> into;
    if (buffer != nullptr)
      into = safetensors::span<std::byte>(buffer->data() + offset, static_cast<std::size_t>(bytes));
    offset += bytes;
    auto request = opened.try_request(entry.name, into, std::move(slice));
    if (!request) return request.error();
    requests.push_back(std::move(*request));
  }
  return requests;
}

void set_disk_counter(benchmark::State& state, std::uint64_t disk_bytes) {
  state.counters["disk_read_fraction"] =
      static_cast<double>(disk_bytes) / static_cast<double>(state.iterations()) / static_cast<double>(model().payload);
}

// ---- The whole model into one buffer ----

void raw_pread_shards(benchmark::State& state, bool cold) {
  const model_files& m = model();
  auto& buffer = destination();
  struct block {
    std::size_t shard;
    std::uint64_t offset;
    std::size_t size;
    std::byte* into;
  };
  // The first block of every shard, then the second, ...: every shard is read at once.
  std::vector<std::vector<block>> per_shard(m.shards.size());
  std::byte* into = buffer.data();
  for (std::size_t s = 0; s < m.shards.size(); ++s) {
    for (std::uint64_t at = m.data_start[s]; at < m.file_size[s];) {
      const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, m.file_size[s] - at));
      per_shard[s].push_back({s, at, size, into});
      at += size;
      into += size;
    }
  }
  std::vector<block> blocks;
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (const auto& shard_blocks : per_shard) {
      if (round < shard_blocks.size()) {
        blocks.push_back(shard_blocks[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  const unsigned threads = safetensors::thread_pool::default_size();
  if (!cold) warm_up();
  const std::uint64_t disk_before = disk_read_bytes();
  for (auto _ : state) {
    if (cold) evict(state);
    std::vector<int> fds;
    for (const std::string& path : m.shards) fds.push_back(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    auto work = [&] {
      for (std::size_t i; (i = next.fetch_add(1)) < blocks.size();) {
        const block& b = blocks[i];
        for (std::size_t done = 0; done < b.size;) {
          const ssize_t got = ::pread(fds[b.shard], b.into + done, b.size - done, static_cast<off_t>(b.offset + done));
          if (got <= 0) {
            failed = true;
            return;
          }
          done += static_cast<std::size_t>(got);
        }
      }
    };
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(work);
    work();
    for (std::thread& helper : helpers) helper.join();
    for (int fd : fds) ::close(fd);
    if (failed) state.SkipWithError("short read");
  }
  set_disk_counter(state, disk_read_bytes() - disk_before);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * m.payload));
}

// How a case reads: the engine, and direct I/O.
struct reading {
  safetensors::io_engine engine;
  bool direct;
  safetensors::load_options options() const {
    safetensors::load_options options;
    options.engine = engine;
    options.direct_io = direct;
    return options;
  }
};
constexpr reading with_threads{safetensors::io_engine::threads, false};
constexpr reading with_io_uring{safetensors::io_engine::io_uring, false};
constexpr reading direct_threads{safetensors::io_engine::threads, true};
constexpr reading direct_io_uring{safetensors::io_engine::io_uring, true};

// The whole model into the reused buffer (staging memory an engine keeps), warm or cold.
void load_model(benchmark::State& state, bool cold, reading how) {
  auto& buffer = destination();
  if (!cold) warm_up();
  const std::uint64_t disk_before = disk_read_bytes();
  for (auto _ : state) {
    if (cold) evict(state);
    auto opened = safetensors::try_open_model_pread(model().directory);
    if (!opened) {
      state.SkipWithError("open failed");
      break;
    }
    auto requests = rank_requests(*opened, &buffer, 1, 0);
    if (!requests || !opened->try_load_into(*requests, how.options())) {
      state.SkipWithError("load failed");
      break;
    }
  }
  set_disk_counter(state, disk_read_bytes() - disk_before);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * model().payload));
}

// The whole model into a fresh load_arena each time (its allocation and page faults timed), as a
// CPU engine loads its weights, warm; its baseline is load_model/warm (reused, faulted memory).
// arena_over_payload: the arena's size over the bytes it holds.
void load_model_arena(benchmark::State& state, reading how) {
  warm_up();
  double over = 0;
  for (auto _ : state) {
    auto opened = safetensors::try_open_model_pread(model().directory);
    if (!opened) return state.SkipWithError("open failed");
    auto requests = rank_requests(*opened, nullptr, 1, 0);
    if (!requests) return state.SkipWithError("request failed");
    auto arena = safetensors::load_arena::try_make(*requests);
    if (!arena || !arena->try_load_into(*opened, *requests, how.options())) return state.SkipWithError("load failed");
    over = static_cast<double>(arena->size()) / static_cast<double>(model().payload);
    state.counters["huge_pages"] = arena->huge_pages() ? 1 : 0;
  }
  state.counters["arena_over_payload"] = over;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * model().payload));
}

// Rank 1 of state.range(0) along dimension 0, warm, into the reused buffer: its time against
// load_model/warm's (the goal: at most 0.30x for 4 ranks).
void load_model_tp_warm(benchmark::State& state, reading how) {
  const std::int64_t ranks = state.range(0);
  auto& buffer = destination();
  warm_up();
  std::uint64_t delivered = 0;
  for (auto _ : state) {
    auto opened = safetensors::try_open_model_pread(model().directory);
    if (!opened) return state.SkipWithError("open failed");
    auto requests = rank_requests(*opened, &buffer, ranks, 1);
    if (!requests) return state.SkipWithError("request failed");
    auto plan = opened->try_plan(*requests, how.options());
    if (!plan || !plan->try_execute_into(how.options())) return state.SkipWithError("load failed");
    delivered += plan->bytes();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
}

// Rank 1 of state.range(0), cold. bytes_read_fraction is the plan's own count over the whole
// payload (the goal: at most 1 / ranks + 1 %), disk_read_fraction what the disk delivered.
void load_model_tp(benchmark::State& state) {
  const std::int64_t ranks = state.range(0);
  auto& buffer = destination();
  const std::uint64_t disk_before = disk_read_bytes();
  std::uint64_t planned_read = 0;
  std::uint64_t delivered = 0;
  for (auto _ : state) {
    evict(state);
    auto opened = safetensors::try_open_model_pread(model().directory);
    if (!opened) {
      state.SkipWithError("open failed");
      break;
    }
    auto requests = rank_requests(*opened, &buffer, ranks, 1);
    if (!requests) {
      state.SkipWithError("request failed");
      break;
    }
    auto plan = opened->try_plan(*requests);
    if (!plan || !plan->try_execute_into()) {
      state.SkipWithError("load failed");
      break;
    }
    planned_read += plan->bytes_read();
    delivered += plan->bytes();
  }
  const auto per_payload = [&](std::uint64_t bytes) {
    return static_cast<double>(bytes) / static_cast<double>(state.iterations()) / static_cast<double>(model().payload);
  };
  state.counters["bytes_read_fraction"] = per_payload(planned_read);
  state.counters["delivered_fraction"] = per_payload(delivered);
  set_disk_counter(state, disk_read_bytes() - disk_before);
  state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
}

// ---- Through a consumer ----

// A link of fixed bandwidth shared by every caller, as a host-to-device copy engine is: each
// piece books the link after the pieces booked before it, then sleeps until its transfer would
// end. Sleeping, as a thread waiting for a DMA does, leaves the cores to the readers; booking
// keeps the bandwidth the same whichever and however many threads call.
class simulated_link {
 public:
  explicit simulated_link(double seconds_per_byte) : seconds_per_byte_(seconds_per_byte) {}

  void upload(std::size_t bytes) {
    std::chrono::steady_clock::time_point done;
    {
      std::lock_guard<std::mutex> lock(lock_);
      const auto cost = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(static_cast<double>(bytes) * seconds_per_byte_));
      done = std::max(free_at_, std::chrono::steady_clock::now()) + cost;
      free_at_ = done;
    }
    std::this_thread::sleep_until(done);
  }

 private:
  double seconds_per_byte_;
  std::mutex lock_;
  std::chrono::steady_clock::time_point free_at_{};
};

safetensors::load_options consumer_options(bool consumer_thread) {
  safetensors::load_options options;
  options.budget = std::uint64_t{256} << 20;
  options.consumer_thread = consumer_thread;
  return options;
}

// Loads the whole model through `consume(bytes)`; false on any failure.
template <class Consume>
bool load_through(bool consumer_thread, Consume&& consume) {
  auto opened = safetensors::try_open_model_pread(model().directory);
  if (!opened) return false;
  auto requests = rank_requests(*opened, nullptr, 1, 0);
  if (!requests) return false;
  std::atomic<std::uint64_t> received{0};
  auto loaded = opened->try_load(
      *requests,
      [&](const safetensors::load_piece& piece) {
    consume(piece.bytes.size());
    received += piece.bytes.size();
      },
      consumer_options(consumer_thread));
  return loaded && received == model().payload;
}

// The upload's cost per byte: that of a cold read of the model through a consumer that does
// nothing (the median of three, timed once per process), so that reading and uploading take
// about as long.
double upload_seconds_per_byte() {
  static const double seconds = [] {
    std::vector<double> reads;
    for (int i = 0; i < 3; ++i) {
      evict_model();
      const auto start = std::chrono::steady_clock::now();
      if (!load_through(false, [](std::size_t) {})) std::abort();
      reads.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(reads.begin(), reads.end());
    return reads[1] / static_cast<double>(model().payload);
  }();
  return seconds;
}

enum class consumption { read_only, overlap, consume_only };

void consume_model(benchmark::State& state, consumption what, bool consumer_thread) {
  const std::uint64_t payload = model().payload;
  simulated_link link(upload_seconds_per_byte());
  for (auto _ : state) {
    if (what == consumption::consume_only) {
      for (std::uint64_t left = payload; left > 0;) {
        const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, left));
        link.upload(piece);
        left -= piece;
      }
      continue;
    }
    evict(state);
    const bool loaded = what == consumption::overlap
                            ? load_through(consumer_thread, [&](std::size_t bytes) { link.upload(bytes); })
                            : load_through(consumer_thread, [](std::size_t) {});
    if (!loaded) {
      state.SkipWithError("load failed");
      break;
    }
  }
  state.counters["upload_GBps"] = 1e-9 / upload_seconds_per_byte();
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload));
}

// ---- Opening a large index ----

// An index of `count` entries as transformers writes it (2-space indentation, sorted keys), for
// a mixture-of-experts model: model.layers.{L}.mlp.experts.{E}.{gate,up,down}_proj.{weight,
// weight_scale_inv}, 384 experts a layer, over 160 shards filled in layer order; written to a
// directory of its own with an empty file for every shard, so that a model opens through it.
struct large_index {
  std::string text;
  std::string path;
};

const large_index& index_of(std::size_t count) {
  static std::map<std::size_t, large_index> made;
  auto found = made.find(count);
  if (found != made.end()) return found->second;
  constexpr std::size_t shard_count = 160, experts = 384;
  const char* projections[] = {"gate_proj", "up_proj", "down_proj"};
  const char* suffixes[] = {"weight", "weight_scale_inv"};
  auto shard_name = [](std::size_t number) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", number, shard_count);
    return std::string(name);
  };
  std::vector<std::pair<std::string, std::size_t>> entries;
  entries.reserve(count);
  for (std::size_t layer = 0; entries.size() < count; ++layer) {
    for (std::size_t expert = 0; expert < experts && entries.size() < count; ++expert) {
      for (const char* projection : projections) {
        for (const char* suffix : suffixes) {
          if (entries.size() == count) break;
          entries.emplace_back("model.layers." + std::to_string(layer) + ".mlp.experts." + std::to_string(expert) +
                                   "." + projection + "." + suffix,
                               entries.size() * shard_count / count + 1);
        }
      }
    }
  }
  std::sort(entries.begin(), entries.end());
  large_index index;
  index.text = "{\n  \"metadata\": {\n    \"total_size\": " + std::to_string(count * (std::uint64_t{3} << 20)) +
               "\n  },\n  \"weight_map\": {";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    index.text += i == 0 ? "\n    \"" : ",\n    \"";
    index.text += entries[i].first;
    index.text += "\": \"";
    index.text += shard_name(entries[i].second);
    index.text += '"';
  }
  index.text += "\n  }\n}\n";

  const std::string directory = bench::temp_directory() + "/index-" + std::to_string(count);
  ::mkdir(directory.c_str(), 0755);
  for (std::size_t number = 1; number <= shard_count; ++number) std::ofstream(directory + "/" + shard_name(number));
  index.path = directory + "/model.safetensors.index.json";
  std::ofstream(index.path, std::ios::binary) << index.text;
  return made.emplace(count, std::move(index)).first->second;
}

void report_index(benchmark::State& state, const large_index& index) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * index.text.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["index_MB"] = static_cast<double>(index.text.size()) / 1e6;
}

void open_index(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const large_index& index = index_of(count);
  for (auto _ : state) {
    state.PauseTiming();
    std::string text = index.text;  // parse() keeps the text it is given
    state.ResumeTiming();
    auto parsed = safetensors::model_index::try_parse(std::move(text));
    if (!parsed || parsed->size() != count) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed);
  }
  report_index(state, index);
}

// Opening the model through its index file: read, parse, and a check that every shard exists.
void open_index_file(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const large_index& index = index_of(count);
  for (auto _ : state) {
    auto opened = safetensors::try_open_model_pread(index.path);
    if (!opened || opened->size() != count) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(opened);
  }
  report_index(state, index);
}

void nlohmann_index_dom(benchmark::State& state) {
  const large_index& index = index_of(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    nlohmann::json root = nlohmann::json::parse(index.text);
    if (root.at("weight_map").size() != static_cast<std::size_t>(state.range(0))) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(root);
  }
  report_index(state, index);
}

// The file read() whole into a buffer already faulted in, from the page cache.
void read_index_file(benchmark::State& state) {
  const large_index& index = index_of(static_cast<std::size_t>(state.range(0)));
  std::string buffer(index.text.size(), '\0');
  for (auto _ : state) {
    int fd = ::open(index.path.c_str(), O_RDONLY | O_CLOEXEC);
    std::size_t done = 0;
    for (ssize_t got; done < buffer.size() && (got = ::read(fd, buffer.data() + done, buffer.size() - done)) > 0;)
      done += static_cast<std::size_t>(got);
    ::close(fd);
    if (done != buffer.size()) state.SkipWithError("short read");
    benchmark::DoNotOptimize(buffer.data());
  }
  report_index(state, index);
}

void register_consumer_cases() {
  struct named {
    const char* name;
    consumption what;
    bool consumer_thread;
  };
  const named cases[] = {
      {"consume_model/read_only/reading_threads", consumption::read_only, false},
      {"consume_model/read_only/consumer_thread", consumption::read_only, true},
      {"consume_model/overlap/reading_threads", consumption::overlap, false},
      {"consume_model/overlap/consumer_thread", consumption::overlap, true},
      {"consume_model/consume_only", consumption::consume_only, false},
  };
  for (const named& c : cases) {
    benchmark::RegisterBenchmark(c.name, consume_model, c.what, c.consumer_thread)
        ->Iterations(2)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

const bool consumer_cases_registered = (register_consumer_cases(), true);

}  // namespace

BENCHMARK_CAPTURE(raw_pread_shards, warm, false)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model, warm, false, with_threads)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model, warm_io_uring, false, with_io_uring)
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model_arena, warm, with_threads)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model_arena, warm_io_uring, with_io_uring)
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model_tp_warm, threads, with_threads)
    ->Arg(4)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model_tp_warm, io_uring, with_io_uring)
    ->Arg(4)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(raw_pread_shards, cold, true)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model, cold, true, with_threads)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model, cold_io_uring, true, with_io_uring)
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model, cold_direct, true, direct_threads)
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_model, cold_direct_io_uring, true, direct_io_uring)
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(load_model_tp)->Arg(4)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(open_index)->Arg(500000)->Unit(benchmark::kMillisecond);
BENCHMARK(open_index_file)->Arg(500000)->Unit(benchmark::kMillisecond);
BENCHMARK(nlohmann_index_dom)->Arg(500000)->Unit(benchmark::kMillisecond);
BENCHMARK(read_index_file)->Arg(500000)->Unit(benchmark::kMillisecond);
