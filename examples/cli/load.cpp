// load: every tensor of a file or a model read through one plan, as an engine loads it, and what
// it cost; optionally a rank's tensor-parallel slices, and each tensor's sha256.
#include "arguments.hpp"
#include "commands.hpp"
#include "digest.hpp"
#include "input.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "values.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

namespace cli {

namespace {

struct load_command_options {
  std::string path;
  unsigned threads = 0;
  storage_kind storage = storage_kind::mapped;
  bool direct = false;
  std::uint64_t budget = std::uint64_t{256} << 20;
  std::uint64_t tp_size = 0;
  std::uint64_t tp_rank = 0;
  std::uint64_t tp_dim = 0;
  std::string tp_plan;
  bool digest = false;
  bool json = false;
  safetensors::io_engine engine = safetensors::io_engine::automatic;
  unsigned queue_depth = 32;
  bool arena = false;
  bool verbose = false;
  remote_access remote;
};

// The slice of a tensor that tensor-parallel rank `rank` of `size` loads: along dimension `dim`,
// when the tensor has it and it divides by `size`, the rank's equal part; else the whole tensor.
std::vector<safetensors::slice_dim> rank_slice(const safetensors::tensor_info& info,
                                               const load_command_options& options) {
  if (options.tp_size == 0 || info.shape.size() <= options.tp_dim) return {};
  const std::uint64_t extent = info.shape[options.tp_dim];
  if (extent % options.tp_size != 0) return {};
  const std::uint64_t part = extent / options.tp_size;
  std::vector<safetensors::slice_dim> dims(options.tp_dim, safetensors::all());
  dims.push_back(safetensors::range(static_cast<std::int64_t>(options.tp_rank * part),
                                    static_cast<std::int64_t>((options.tp_rank + 1) * part)));
  return dims;
}

// The plan --tp-plan names: a built-in one ("llama"), else a JSON file of pattern to style.
safetensors::result<safetensors::tp_plan> tp_plan_named(const std::string& name) {
  if (auto preset = safetensors::tp_plan::try_preset(name); preset) return preset;
  std::ifstream file(name, std::ios::binary);
  if (!file)
    return safetensors::error(safetensors::error_kind::io_error,
                              display_string(name) + ": neither a built-in tp_plan (\"llama\") nor a file that opens");
  std::ostringstream text;
  text << file.rdbuf();
  auto plan = safetensors::tp_plan::try_parse(text.str());
  if (!plan) return safetensors::detail::about(name, plan.error());
  return plan;
}

// The sha256 of each request's bytes in order, from pieces that arrive in any order: several
// threads read a request's blocks at once. A piece that comes before those ahead of it is copied
// aside until they arrive, within `aside_budget` bytes in all; a request whose pieces would take
// more is given up, to be hashed again from an in-order read (hash_in_order). Safe from many
// threads.
class ordered_digests {
 public:
  ordered_digests(std::size_t requests, std::uint64_t aside_budget) : aside_budget_(aside_budget) {
    for (std::size_t i = 0; i < requests; ++i) states_.push_back(std::make_unique<request_state>());
  }

  void add(const safetensors::load_piece& piece) {
    request_state& state = *states_[piece.request];
    std::lock_guard<std::mutex> lock(state.lock);
    if (state.given_up) return;
    if (piece.offset == state.next) {
      state.hash.update(piece.bytes);
      state.next += piece.bytes.size();
      for (auto first = state.aside.begin(); first != state.aside.end() && first->first == state.next;
           first = state.aside.erase(first)) {
        state.hash.update(first->second);
        state.next += first->second.size();
        aside_bytes_ -= first->second.size();
      }
      return;
    }
    if (aside_bytes_.fetch_add(piece.bytes.size()) + piece.bytes.size() > aside_budget_) {
      aside_bytes_ -= piece.bytes.size();
      for (const auto& [offset, bytes] : state.aside) aside_bytes_ -= bytes.size();
      state.aside.clear();
      state.given_up = true;
      return;
    }
    state.aside.emplace(piece.offset, std::vector<std::byte>(piece.bytes.begin(), piece.bytes.end()));
  }

  std::vector<std::size_t> given_up() const {
    std::vector<std::size_t> requests;
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (states_[i]->given_up) requests.push_back(i);
    }
    return requests;
  }

  std::string hex(std::size_t request) { return states_[request]->hash.hex(); }

 private:
  struct request_state {
    std::mutex lock;
    sha256 hash;
    std::uint64_t next = 0;  // the offset the hash has reached
    std::map<std::uint64_t, std::vector<std::byte>> aside;
    bool given_up = false;
  };

  std::vector<std::unique_ptr<request_state>> states_;
  std::atomic<std::uint64_t> aside_bytes_{0};
  std::uint64_t aside_budget_;
};

// The sha256 of the bytes of `info` that `dims` select (all of them when empty), read run by run
// in order, `chunk` bytes at most at a time; `bytes_read` counts them.
safetensors::result<std::string> hash_in_order(const tensor_collection& tensors, const safetensors::tensor_info& info,
                                               std::vector<safetensors::slice_dim> dims, std::size_t chunk,
                                               std::uint64_t& bytes_read) {
  auto slice = tensors.slice(info.name, std::move(dims));
  if (!slice) return slice.error();
  sha256 hash;
  std::vector<std::byte> buffer(chunk);
  safetensors::result<void> read;
  auto hash_run = [&](std::uint64_t first, std::uint64_t size) {
    for (std::uint64_t done = 0; done < size && read;) {
      const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - done));
      const safetensors::span<std::byte> part(buffer.data(), piece);
      read = tensors.read_part(info, first + done, part);
      if (read) hash.update(part);
      done += piece;
      bytes_read += piece;
    }
    return static_cast<bool>(read);
  };
  slice->for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t count) {
    for (std::uint64_t r = 0; r < count; ++r) {
      if (!hash_run(first + r * stride, slice->run_bytes())) return false;
    }
    return true;
  });
  if (!read) return read.error();
  return hash.hex();
}

// What a load did.
struct load_report {
  std::uint64_t bytes = 0;
  std::uint64_t bytes_read = 0;
  double seconds = 0;
};

// Blocks small enough that every reading thread has a staging buffer of its own within
// `staging` bytes, and no larger than the library's default (8 MiB); multiples of 4096, as direct
// I/O needs.
std::size_t block_size_for(std::uint64_t staging, unsigned threads) {
  const std::uint64_t page = safetensors::direct_io_alignment;
  const std::uint64_t share = staging / threads / page * page;
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(share, page, safetensors::load_options{}.block_size));
}

int run_load(const load_command_options& options) {
  if (options.tp_size != 0 && options.tp_rank >= options.tp_size)
    throw usage_failure("--tp-rank " + std::to_string(options.tp_rank) + " is not below --tp-size " +
                        std::to_string(options.tp_size));
  if (options.direct && options.storage != storage_kind::pread) throw usage_failure("--direct needs --storage pread");
  constexpr std::uint64_t page = safetensors::direct_io_alignment;
  if (options.budget < page)
    throw usage_failure("--budget " + std::to_string(options.budget) + " is less than one block of 4KiB");
  open_options opening;
  opening.storage = options.storage;
  opening.remote = options.remote;
  auto tensors = tensor_collection::open(options.path, opening);
  if (!tensors) return report_error(tensors.error(), options.json);

  std::vector<const safetensors::tensor_info*> infos;
  for (std::size_t i = 0; i < tensors->size(); ++i) {
    auto info = tensors->at(i);
    if (!info) return report_error(info.error(), options.json);
    infos.push_back(*info);
  }
  std::vector<std::vector<safetensors::slice_dim>> slices;
  if (!options.tp_plan.empty()) {
    auto plan = tp_plan_named(options.tp_plan);
    if (!plan) return report_error(plan.error(), options.json);
    auto cut = safetensors::try_tp_slices(*plan, infos, options.tp_size, options.tp_rank);
    if (!cut) return report_error(cut.error(), options.json);
    slices = std::move(*cut);
  } else {
    for (const safetensors::tensor_info* info : infos) slices.push_back(rank_slice(*info, options));
  }
  std::vector<safetensors::load_request> requests;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    auto request = tensors->request(*infos[i], std::move(slices[i]));
    if (!request) return report_error(request.error(), options.json);
    requests.push_back(std::move(*request));
    names.emplace_back(infos[i]->name);
  }

  // With --digest, half the budget stages blocks and half holds pieces that arrive early.
  const std::uint64_t staging = options.digest ? std::max(options.budget / 2, page) : options.budget;
  safetensors::load_options loading;
  loading.threads = options.threads;
  loading.direct_io = options.direct;
  loading.budget = staging;
  loading.engine = options.engine;
  loading.queue_depth = options.queue_depth;
  if (options.verbose) {
    std::string why;
    const bool uring =
        safetensors::effective_io_engine(options.engine, options.direct) == safetensors::io_engine::io_uring;
    if (uring)
      std::cerr << program_name << ": load: pread files are read with io_uring, " << options.queue_depth
                << " reads in flight per thread\n";
    else if ((options.engine == safetensors::io_engine::io_uring || options.direct) &&
             options.engine != safetensors::io_engine::threads && !safetensors::io_uring_available(&why))
      std::cerr << program_name << ": load: io_uring is unavailable (" << why
                << "): pread files are read with threads\n";
    else
      std::cerr << program_name << ": load: pread files are read with threads\n";
  }
  const unsigned threads = options.threads != 0 ? options.threads : safetensors::thread_pool::default_size();
  loading.block_size = block_size_for(staging, threads);
  std::optional<ordered_digests> digests;
  if (options.digest) digests.emplace(requests.size(), options.budget - staging);

  const auto started = std::chrono::steady_clock::now();
  // --into arena: every tensor (or slice) into one arena, as a CPU engine holds its weights (its
  // allocation timed with the load); --digest then hashes each from there, in order.
  std::optional<safetensors::load_arena> arena;
  if (options.arena) {
    auto made = safetensors::load_arena::try_make(requests, options.direct ? page : 64);
    if (!made) return report_error(made.error(), options.json);
    arena = std::move(*made);
    loading.populate = true;
  }
  auto plan = tensors->plan(requests, loading);
  if (!plan) return report_error(plan.error(), options.json);
  load_report report;
  report.bytes = plan->bytes();
  report.bytes_read = plan->bytes_read();
  progress_bar progress("load", plan->bytes());
  std::mutex progress_lock;
  // Pieces of a mapped file point into the mapping, which nothing has read yet: each is copied
  // into memory the tool owns, as an engine copies out of a mapping, so that every byte is read
  // (staging pieces already were, by the read into them).
  const bool mapped = options.storage == storage_kind::mapped && !is_url(options.path);
  auto consume = [&](const safetensors::load_piece& piece) {
    if (mapped) {
      thread_local std::vector<std::byte> owned;
      if (owned.size() < piece.bytes.size()) owned.resize(piece.bytes.size());
      std::memcpy(owned.data(), piece.bytes.data(), piece.bytes.size());
    }
    if (digests) digests->add(piece);
    std::lock_guard<std::mutex> lock(progress_lock);
    progress.advance(piece.bytes.size());
  };
  if (arena) {
    if (auto loaded = plan->try_execute_into(loading); !loaded) return report_error(loaded.error(), options.json);
    progress.advance(plan->bytes());
    for (std::size_t i = 0; digests && i < requests.size(); ++i) digests->add({i, 0, arena->at(i)});
  } else if (auto loaded = plan->try_execute(consume, loading); !loaded) {
    return report_error(loaded.error(), options.json);
  }
  std::vector<std::string> hexes;
  if (digests) {
    for (std::size_t i = 0; i < requests.size(); ++i) hexes.push_back(digests->hex(i));
    for (std::size_t i : digests->given_up()) {
      auto rehashed =
          hash_in_order(*tensors, *requests[i].tensor, requests[i].slice, loading.block_size, report.bytes_read);
      if (!rehashed) return report_error(rehashed.error(), options.json);
      hexes[i] = std::move(*rehashed);
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  progress.finish();

  const double gb_per_s = report.seconds > 0 ? static_cast<double>(report.bytes) / report.seconds / 1e9 : 0.0;
  if (options.json) {
    json object;
    object["ok"] = true;
    object["tensors"] = requests.size();
    object["bytes"] = report.bytes;
    object["bytes_read"] = report.bytes_read;
    object["seconds"] = report.seconds;
    object["gb_per_s"] = gb_per_s;
    if (digests) {
      object["digests"] = json::object();
      for (std::size_t i = 0; i < names.size(); ++i) object["digests"][names[i]] = hexes[i];
    }
    out() << dump(object) << '\n';
    return exit_status::success;
  }
  char timing[64];
  std::snprintf(timing, sizeof timing, " in %.3f s: %.2f GB/s", report.seconds, gb_per_s);
  out() << display_string(options.path) << ": loaded " << plural(requests.size(), "tensor", "tensors") << ", "
        << plural(report.bytes, "byte", "bytes") << " (" << report.bytes_read << " read)" << timing << '\n';
  if (digests) {
    for (std::size_t i = 0; i < names.size(); ++i) out() << hexes[i] << "  " << display_string(names[i]) << '\n';
  }
  return exit_status::success;
}

}  // namespace

command_runner define_load(CLI::App& command) {
  auto options = std::make_shared<load_command_options>();
  command.add_option("path", options->path, path_help)->required();
  command.add_option("--threads", options->threads, "Reading threads (default: the machine's cores, at least 2)")
      ->type_name("N")
      ->check(counted("the number of threads", 1, 1024));
  const std::map<std::string, storage_kind> storages = {{"mmap", storage_kind::mapped}, {"pread", storage_kind::pread}};
  command.add_option("--storage", options->storage, "Local files: mapped (mmap, the default) or read with pread")
      ->type_name("mmap|pread")
      ->transform(CLI::CheckedTransformer(storages).description(""))
      ->default_str("mmap");
  command.add_flag("--direct", options->direct, "With --storage pread: read past the page cache (O_DIRECT)");
  command
      .add_option("--budget", options->budget,
                  "Staging memory, at most (default 256MiB): a size as --max-shard-size takes it (B, KB, MB, GB, TB; "
                  "KiB, MiB, GiB, TiB)")
      ->type_name("SIZE")
      ->transform(byte_size)
      ->default_str("256MiB");
  CLI::Option* tp_size = command.add_option("--tp-size", options->tp_size, "Tensor parallelism: the number of ranks")
                             ->type_name("N")
                             ->check(counted("the number of ranks", 1));
  CLI::Option* tp_rank =
      command.add_option("--tp-rank", options->tp_rank, "Tensor parallelism: the rank to load, from 0 to N - 1")
          ->type_name("R")
          ->check(unsigned_decimal);
  CLI::Option* tp_dim =
      command.add_option("--tp-dim", options->tp_dim, "Tensor parallelism: the dimension cut into ranks (default 0)")
          ->type_name("D")
          ->check(unsigned_decimal);
  CLI::Option* tp_plan =
      command
          .add_option("--tp-plan", options->tp_plan,
                      "Tensor parallelism by module: a built-in plan (llama) or a JSON file of module pattern to "
                      "colwise, rowwise or replicate")
          ->type_name("PLAN");
  tp_size->needs(tp_rank);
  tp_rank->needs(tp_size);
  tp_dim->needs(tp_size);
  tp_plan->needs(tp_size);
  tp_plan->excludes(tp_dim);
  command.add_flag("--digest", options->digest, "Print the sha256 of each tensor's (or slice's) bytes, row-major");
  const std::map<std::string, bool> intos = {{"staging", false}, {"arena", true}};
  command
      .add_option("--into", options->arena,
                  "Where the bytes go: staging memory of --budget bytes handed on piece by piece (the default), or "
                  "one arena holding every tensor, as a CPU engine holds its weights")
      ->type_name("staging|arena")
      ->transform(CLI::CheckedTransformer(intos).description(""))
      ->default_str("staging");
  const std::map<std::string, safetensors::io_engine> engines = {{"auto", safetensors::io_engine::automatic},
                                                                 {"threads", safetensors::io_engine::threads},
                                                                 {"io_uring", safetensors::io_engine::io_uring}};
  command
      .add_option("--io-engine", options->engine,
                  "How files read with pread are read: auto (the default: io_uring for --direct, else threads), "
                  "threads (one pread at a time each), or io_uring")
      ->type_name("auto|threads|io_uring")
      ->transform(CLI::CheckedTransformer(engines).description(""))
      ->default_str("auto");
  command.add_option("--queue-depth", options->queue_depth, "io_uring: reads in flight per thread (default 32)")
      ->type_name("N")
      ->check(counted("the reads in flight per thread", 1, 4096));
  command.add_flag("--verbose", options->verbose,
                   "Say on stderr how the files are read (io_uring or threads, and why)");
  command.add_flag("--json", options->json,
                   "Print one JSON object {\"ok\", \"tensors\", \"bytes\", \"bytes_read\", \"seconds\", \"gb_per_s\", "
                   "\"digests\"}");
  add_remote_options(command, options->remote);
  command.footer(
      "Reads every tensor through one load plan across every shard at once: byte ranges sorted and merged\n"
      "when adjacent (nothing between them is read), cut into blocks that --threads threads read into staging memory "
      "of at\n"
      "most --budget bytes (blocks of up to 8 MiB, small enough for a block per thread), handed on as they\n"
      "arrive, as an engine loads a model; memory stays at the budget whatever the model's size. With\n"
      "--storage mmap the blocks are copied out of the mapping into memory the tool owns, as an engine\n"
      "copies them, a block at a time per thread (every byte read, none staged). URLs are read over\n"
      "--connections connections (--storage does not apply).\n"
      "--tp-size N --tp-rank R [--tp-dim D]: every tensor with more than D dimensions whose dimension D\n"
      "divides by N is loaded as rank R's slice [R*s/N, (R+1)*s/N) of that dimension (s its size) and all\n"
      "of the others, reading only those bytes; every other tensor is loaded whole.\n"
      "--tp-size N --tp-rank R --tp-plan PLAN: each tensor as its module's style says, as transformers'\n"
      "tp_plan writes it (a module is the name less its last dotted part; a pattern matches the module or a\n"
      "dotted suffix of it, * any one part; the first match wins; unmatched tensors are whole): colwise cuts\n"
      "dimension 0 of the module's tensors (scalar scales whole), rowwise dimension 1 of those of rank 2 or\n"
      "more; weights and their block scales are cut together. PLAN is llama (q/k/v/gate/up_proj and lm_head\n"
      "colwise, o/down_proj rowwise) or a JSON file {\"PATTERN\": \"colwise\", ...}. A cut dimension that does\n"
      "not divide by N, or a cut that would split a scale block, is an error naming the tensor (exit 1).\n"
      "--into arena: every tensor (or slice) goes into one block of memory the size of the load (2 MiB pages\n"
      "where the system allows, each tensor at a multiple of 64 bytes, 4096 with --direct), faulted in by the\n"
      "reading threads as they read, instead of staging memory; --budget does not apply.\n"
      "Files read with pread (--storage pread) are read with one pread at a time per thread, or with io_uring\n"
      "(--queue-depth reads in flight per thread) where this build and the system have it: by default for\n"
      "--direct, where the device wants many reads in flight, threads otherwise, which read the page cache\n"
      "faster (--io-engine chooses; so does SAFETENSORS_IO_ENGINE=threads|io_uring in the environment).\n"
      "--verbose says on stderr which, and why io_uring is not used when it is not.\n"
      "--digest: the sha256 of the bytes each tensor (or slice) delivered, in row-major order; then half the\n"
      "budget stages blocks and half holds pieces that arrive before those ahead of them (several threads\n"
      "read one tensor); a tensor that would take more is hashed again from an in-order read, which\n"
      "bytes_read counts.\n"
      "Prints \"PATH\": loaded T tensors, B bytes (R read) in S s: G GB/s, then with --digest a line\n"
      "HEX  \"NAME\" per tensor in inspect's order. --json: {\"ok\": true, \"tensors\": T, \"bytes\": B (delivered),\n"
      "\"bytes_read\": R (read from the files), \"seconds\": S,\n"
      "\"gb_per_s\": G (B / S / 10^9), \"digests\": {NAME: HEX, ..} (with --digest only)}. A progress bar is\n"
      "drawn on stderr if it is a terminal.\n"
      "Errors: one line on stderr, or with --json {\"ok\": false, \"error\": KIND, \"message\"} on stdout.\n"
      "Exit status: 0 loaded, 1 invalid file or index (or a slice a sub-byte tensor cannot take:\n"
      "MisalignedSlice), 2 unreadable file or missing shard, 64 usage error.");
  return [options] { return run_load(*options); };
}

}  // namespace cli
