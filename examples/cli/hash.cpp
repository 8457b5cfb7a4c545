// hash and verify: the sha256 of every file and tensor as a manifest, and a file or model checked
// against one (or against the hashes rewrite --embed-hashes put in its metadata).
#include "arguments.hpp"
#include "commands.hpp"
#include "digest.hpp"
#include "input.hpp"
#include "output.hpp"
#include "progress.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

namespace cli {

namespace {

using safetensors::error;
using safetensors::error_kind;
using safetensors::result;

// Opens PATH for hashing: read with pread, never mapped, so that memory stays bounded.
result<tensor_collection> open_for_hashing(const std::string& path, const remote_access& remote) {
  open_options opening;
  opening.storage = storage_kind::pread;
  opening.remote = remote;
  return tensor_collection::open(path, opening);
}

// The bytes compute_digests reads: every file whole when `with_files`, and every tensor.
std::uint64_t bytes_to_hash(const tensor_collection& tensors, bool with_files) {
  const safetensors::any_model& model = tensors.model();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < model.shard_count(); ++i) {
    auto shard = model.try_shard(i);
    if (!shard) continue;
    total += shard->data_size() + (with_files ? shard->file_size() : 0);
  }
  return total;
}

result<digests> hash_all(const tensor_collection& tensors, bool with_files, unsigned threads) {
  progress_bar progress("hash", bytes_to_hash(tensors, with_files));
  return compute_digests(tensors, with_files, threads != 0 ? threads : default_threads(), progress);
}

// The tensors' names in inspect's order.
result<std::vector<std::string>> listed_names(const tensor_collection& tensors) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto info = tensors.at(i);
    if (!info) return info.error();
    names.emplace_back((*info)->name);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// hash
// ---------------------------------------------------------------------------------------------

struct hash_options {
  std::string path;
  unsigned threads = 0;
  bool json = false;
  remote_access remote;
};

int run_hash(const hash_options& options) {
  auto tensors = open_for_hashing(options.path, options.remote);
  if (!tensors) return report_error(tensors.error(), options.json);
  auto names = listed_names(*tensors);
  if (!names) return report_error(names.error(), options.json);
  auto computed = hash_all(*tensors, true, options.threads);
  if (!computed) return report_error(computed.error(), options.json);
  if (options.json) {
    json object;
    object["files"] = json::object();
    for (const auto& [name, hex] : computed->files) object["files"][name] = hex;
    object["tensors"] = json::object();
    for (const std::string& name : *names) object["tensors"][name] = computed->tensors.find(name)->second;
    out() << dump(object) << '\n';
    return exit_status::success;
  }
  for (const auto& [name, hex] : computed->files) out() << hex << "  file " << display_string(name) << '\n';
  for (const std::string& name : *names)
    out() << computed->tensors.find(name)->second << "  tensor " << display_string(name) << '\n';
  return exit_status::success;
}

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

struct verify_options {
  std::string path;
  std::optional<std::string> manifest;
  unsigned threads = 0;
  bool json = false;
  remote_access remote;
};

// What a file or model should hash to: files (absent from an embedded manifest) and tensors.
struct manifest {
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> tensors;
};

bool is_digest(const std::string& text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A manifest as hash --json prints it: {"files": {NAME: HEX}, "tensors": {NAME: HEX}}.
result<manifest> parse_json_manifest(const std::string& text, const std::string& named) {
  const auto parsed = nlohmann::json::parse(text, nullptr, false);
  auto refuse = [&](const std::string& why) { return error(error_kind::invalid_argument, named + why); };
  if (!parsed.is_object()) return refuse("not a JSON object");
  manifest listed;
  for (const auto& [key, target] : {std::pair{"files", &listed.files}, std::pair{"tensors", &listed.tensors}}) {
    const auto member = parsed.find(key);
    if (member == parsed.end()) continue;
    if (!member->is_object()) return refuse(std::string("\"") + key + "\" is not an object");
    for (const auto& [name, hex] : member->items()) {
      if (!hex.is_string() || !is_digest(hex.get<std::string>()))
        return refuse(std::string(key) + " " + display_string(name) + ": not a sha256 in lower-case hex");
      (*target)[name] = hex.get<std::string>();
    }
  }
  return listed;
}

// A manifest as hash prints it: lines `HEX  file "NAME"` and `HEX  tensor "NAME"`, the names as
// JSON string literals.
result<manifest> parse_text_manifest(const std::string& text, const std::string& named) {
  manifest listed;
  std::istringstream lines(text);
  std::string line;
  for (std::size_t number = 1; std::getline(lines, line); ++number) {
    auto refuse = [&](const std::string& why) {
      return error(error_kind::invalid_argument, named + "line " + std::to_string(number) + ": " + why);
    };
    const std::string hex = line.substr(0, 64);
    const std::size_t kind_end = line.find(' ', 66);
    const std::string kind = line.size() > 66 ? line.substr(66, kind_end - 66) : std::string();
    if (!is_digest(hex) || line.compare(64, 2, "  ") != 0 || (kind != "file" && kind != "tensor") ||
        kind_end == std::string::npos)
      return refuse("not HEX  file \"NAME\" or HEX  tensor \"NAME\"");
    const auto name = nlohmann::json::parse(line.substr(kind_end + 1), nullptr, false);
    if (!name.is_string()) return refuse("the name is not a JSON string");
    (kind == "file" ? listed.files : listed.tensors)[name.get<std::string>()] = hex;
  }
  return listed;
}

result<manifest> read_manifest(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return error(error_kind::io_error, display_string(path) + ": cannot open the manifest: " + std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return error(error_kind::io_error, display_string(path) + ": cannot read the manifest");
  const std::string named = display_string(path) + ": ";
  const std::string contents = text.str();
  const std::size_t first = contents.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && contents[first] == '{') return parse_json_manifest(contents, named);
  return parse_text_manifest(contents, named);
}

// The hashes rewrite --embed-hashes wrote: every shard's metadata keys sha256:NAME.
result<manifest> embedded_manifest(const tensor_collection& tensors) {
  manifest listed;
  const safetensors::any_model& model = tensors.model();
  auto gathered = [&]() -> result<void> {
    for (std::size_t i = 0; i < model.shard_count(); ++i) {
      auto shard = model.try_shard(i);
      if (!shard) return shard.error();
      for (const auto& [key, value] : shard->metadata()) {
        if (key.compare(0, embedded_hash_prefix.size(), embedded_hash_prefix) != 0) continue;
        const std::string name = key.substr(embedded_hash_prefix.size());
        const auto [entry, added] = listed.tensors.emplace(name, value);
        if (!added && entry->second != value)
          return error(error_kind::invalid_argument, display_string(model.shard_paths()[i]) + ": metadata key " +
                                                         display_string(key) + " disagrees with another shard's");
      }
    }
    return {};
  }();
  if (!gathered) return gathered.error();
  if (listed.tensors.empty())
    return error(error_kind::invalid_argument, display_string(tensors.path()) +
                                                   ": its metadata holds no sha256:NAME key (rewrite --embed-hashes "
                                                   "writes them): give a MANIFEST");
  return listed;
}

// A name and how it compares: same, differs, missing (in the manifest only) or unlisted (in PATH
// only).
struct checked_entry {
  std::string name;
  std::string status;
};

// Compares `computed` (in PATH's order) with `expected`; the manifest's other names are missing.
std::vector<checked_entry> check_entries(const std::vector<std::pair<std::string, std::string>>& computed,
                                         const std::map<std::string, std::string>& expected) {
  std::vector<checked_entry> entries;
  std::map<std::string, std::string> left = expected;
  for (const auto& [name, hex] : computed) {
    const auto want = left.find(name);
    if (want == left.end()) {
      entries.push_back({name, "unlisted"});
      continue;
    }
    entries.push_back({name, want->second == hex ? "same" : "differs"});
    left.erase(want);
  }
  for (const auto& [name, hex] : left) entries.push_back({name, "missing"});
  return entries;
}

std::size_t mismatches(const std::vector<checked_entry>& entries) {
  return static_cast<std::size_t>(
      std::count_if(entries.begin(), entries.end(), [](const checked_entry& e) { return e.status != "same"; }));
}

int run_verify(const verify_options& options) {
  auto tensors = open_for_hashing(options.path, options.remote);
  if (!tensors) return report_error(tensors.error(), options.json);
  auto expected = options.manifest ? read_manifest(*options.manifest) : embedded_manifest(*tensors);
  if (!expected) return report_error(expected.error(), options.json);
  auto names = listed_names(*tensors);
  if (!names) return report_error(names.error(), options.json);
  const bool with_files = !expected->files.empty();
  auto computed = hash_all(*tensors, with_files, options.threads);
  if (!computed) return report_error(computed.error(), options.json);

  std::vector<std::pair<std::string, std::string>> tensor_hexes;
  for (const std::string& name : *names) tensor_hexes.emplace_back(name, computed->tensors.find(name)->second);
  // A copy of a file has the digest of the file it copies, whatever its name.
  if (!tensors->is_model() && expected->files.size() == 1 && computed->files.size() == 1)
    computed->files.front().first = expected->files.begin()->first;
  const std::vector<checked_entry> files =
      with_files ? check_entries(computed->files, expected->files) : std::vector<checked_entry>();
  const std::vector<checked_entry> checked_tensors = check_entries(tensor_hexes, expected->tensors);
  const bool verified = mismatches(files) == 0 && mismatches(checked_tensors) == 0;

  if (options.json) {
    auto entries_json = [](const std::vector<checked_entry>& entries) {
      json list = json::array();
      for (const checked_entry& e : entries) list.push_back({{"name", e.name}, {"status", e.status}});
      return list;
    };
    json object;
    object["verified"] = verified;
    object["files"] = entries_json(files);
    object["tensors"] = entries_json(checked_tensors);
    out() << dump(object) << '\n';
  } else {
    for (const auto& [kind, entries] : {std::pair{"tensor", &checked_tensors}, std::pair{"file", &files}}) {
      for (const checked_entry& e : *entries) {
        if (e.status != "same") out() << e.status << ' ' << kind << ' ' << display_string(e.name) << '\n';
      }
    }
    out() << (verified ? "ok " : "FAIL ") << display_string(options.path) << ": ";
    if (verified) {
      out() << plural(checked_tensors.size(), "tensor", "tensors");
      if (with_files) out() << " and " << plural(files.size(), "file", "files");
      out() << " match\n";
    } else {
      out() << mismatches(checked_tensors) << " of " << plural(checked_tensors.size(), "tensor", "tensors");
      if (with_files) out() << " and " << mismatches(files) << " of " << plural(files.size(), "file", "files");
      out() << " do not match\n";
    }
  }
  return verified ? exit_status::success : exit_status::rejected_input;
}

void add_threads_option(CLI::App& command, unsigned& threads) {
  command.add_option("--threads", threads, "Hashing threads (default: the machine's cores)")
      ->type_name("N")
      ->check(counted("the number of threads", 1, 1024));
}

}  // namespace

command_runner define_hash(CLI::App& command) {
  auto options = std::make_shared<hash_options>();
  command.add_option("path", options->path, path_help)->required();
  add_threads_option(command, options->threads);
  command.add_flag("--json", options->json, "Print one JSON object {\"files\": {FILE: HEX}, \"tensors\": {NAME: HEX}}");
  add_remote_options(command, options->remote);
  command.footer(
      "The sha256 of each file (a model's shards, in path order, by file name) and of each tensor's bytes (in\n"
      "inspect's order), as a manifest that verify reads: lines HEX  file \"NAME\" and HEX  tensor \"NAME\", names\n"
      "as JSON string literals. Every file is read front to back for its digest and its data, cut into runs\n"
      "of whole tensors, for theirs, all at once on --threads threads (a file's digest is one thread's work;\n"
      "several files and runs go on together), 4 MiB a thread at a time. A progress bar is drawn on stderr\n"
      "if it is a terminal.\n"
      "Errors: one line on stderr, or with --json {\"ok\": false, \"error\": KIND, \"message\"} on stdout.\n"
      "Exit status: 0 hashed, 1 invalid file or index, 2 unreadable file or missing shard, 64 usage error.");
  return [options] { return run_hash(*options); };
}

command_runner define_verify(CLI::App& command) {
  auto options = std::make_shared<verify_options>();
  command.add_option("path", options->path, path_help)->required();
  command.add_option("manifest", options->manifest,
                     "What hash printed (text or --json); without it, the sha256:NAME keys rewrite --embed-hashes "
                     "put in PATH's metadata");
  add_threads_option(command, options->threads);
  command.add_flag("--json", options->json,
                   "Print one JSON object {\"verified\", \"files\": [{\"name\", \"status\"}], \"tensors\": [..]}");
  add_remote_options(command, options->remote);
  command.footer(
      "Hashes PATH as hash does and compares it with the manifest: a line per tensor (and file) that differs\n"
      "(differs), that the manifest lists and PATH lacks (missing) or that PATH has and the manifest does\n"
      "not list (unlisted), then ok \"PATH\": N tensors and K files match, or FAIL \"PATH\": .. do not match.\n"
      "Files are compared when the manifest lists them, by name; a single file against a manifest of one\n"
      "file whatever their names. Without MANIFEST the hashes come from PATH's metadata (every shard's),\n"
      "and only tensors are compared. --json: {\"verified\": bool, \"files\": [{\"name\", \"status\"}],\n"
      "\"tensors\": [{\"name\", \"status\"}]}, status same, differs, missing or unlisted.\n"
      "Exit status: 0 every entry matches, 1 some does not (or an invalid file, index or manifest), 2\n"
      "unreadable file, shard or manifest, 64 usage error.");
  return [options] { return run_verify(*options); };
}

}  // namespace cli
