// safetensors-cli: look inside safetensors files and sharded models, local or remote; load, hash,
// verify and compare them; rewrite, convert, split and merge them.
//
//   safetensors-cli inspect PATH [--json]
//   safetensors-cli dump PATH (TENSOR | --index K) [--slice SLICE] [--json] [--limit N] [--packing ORDER]
//   safetensors-cli stats PATH [TENSOR | --index K] [--json] [--packing ORDER]
//   safetensors-cli validate PATH... [--json]
//   safetensors-cli load PATH [--threads N] [--storage mmap|pread] [--direct] [--budget SIZE]
//                             [--tp-size N --tp-rank R [--tp-dim D]] [--digest] [--json]
//   safetensors-cli hash PATH [--threads N] [--json]
//   safetensors-cli verify PATH [MANIFEST] [--threads N] [--json]
//   safetensors-cli diff A B [--atol X] [--rtol X] [--json]
//   safetensors-cli rewrite IN OUT [--align N] [--embed-hashes]
//   safetensors-cli convert IN OUT --dtype BF16|F16|F32|F4|F6_E2M3|F6_E3M2 [--packing ORDER]
//   safetensors-cli split IN OUTDIR [--max-shard-size SIZE] [--replace]
//   safetensors-cli merge INDEX|DIR OUT
//
// PATH is a file, - (standard input), a directory or an index, or an http://, https:// or s3://
// URL; the commands that read take --connections N and --token TOKEN for URLs.
//
// main() defines the commands from the table below, parses the whole command line, and only
// then runs the one command given: every usage error is found before any work starts.

#include "arguments.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "progress.hpp"

#include <safetensors/safetensors.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace cli;

struct command_entry {
  const char* name;
  const char* description;
  command_runner (*define)(CLI::App& command);
};

const command_entry command_table[] = {
    {"inspect", "Validate a file or a sharded model and list its header, metadata and tensors", define_inspect},
    {"dump", "Print the values of one tensor, or of a slice of it, a row to a line", define_dump},
    {"stats", "Summarise the values of every tensor, or of one: count, min, max, mean, std", define_stats},
    {"validate", "Check that files and sharded models are valid", define_validate},
    {"load", "Read every tensor (or a tensor-parallel rank's slices) through a load plan, and time it", define_load},
    {"hash", "Print the sha256 of every file and tensor, as a manifest", define_hash},
    {"verify", "Check a file or a model against a manifest, or against the hashes in its metadata", define_verify},
    {"diff", "Compare two files or models: tensors, values and metadata", define_diff},
    {"rewrite", "Write the tensors and metadata of IN to OUT with this library's writer, streaming", define_rewrite},
    {"convert", "Write IN to OUT with every float tensor (F8 aside) converted to one dtype, streaming", define_convert},
    {"split", "Write the tensors of IN as a sharded model in OUTDIR, with its model.safetensors.index.json",
     define_split},
    {"merge", "Write every tensor of a sharded model into one .safetensors file, streaming", define_merge},
    {"dequantize", "Write IN to OUT with every quantized weight dequantized to one dtype, streaming",
     define_dequantize},
};

std::string version_text() {
  return std::string(program_name) + " " + std::to_string(SAFETENSORS_VERSION_MAJOR) + "." +
         std::to_string(SAFETENSORS_VERSION_MINOR) + "." + std::to_string(SAFETENSORS_VERSION_PATCH);
}

// Edits (insertions, deletions, substitutions, swaps of neighbours) that turn `a` into `b`.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The name in `names` nearest to `word`, if one is near enough to be a slip: at most two edits,
// and at most one for every three characters.
std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& names) {
  std::optional<std::string> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& name : names) {
    const std::size_t distance = edit_distance(word, name);
    if (distance < best_distance) {
      best_distance = distance;
      best = name;
    }
  }
  if (best_distance > 2 || best_distance * 3 > word.size()) return std::nullopt;
  return best;
}

std::string with_suggestion(std::string message, const std::optional<std::string>& suggestion) {
  if (suggestion) message += "; did you mean '" + *suggestion + "'?";
  return message;
}

// Every spelling of the options of `command`: --long and -s.
std::vector<std::string> option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    for (const std::string& name : option->get_snames()) names.push_back("-" + name);
  }
  return names;
}

// A usage message, and the command whose --help to point to (none for the tool's own).
struct usage_message {
  std::string text;
  const CLI::App* command;
};

// The first word CLI11 could not place (the tool allows none), as a usage message: an unknown
// option or command, with the nearest valid one, or an argument too many.
std::optional<usage_message> unplaced_word(const CLI::App& app, const CLI::App* command) {
  std::vector<std::string> words = app.remaining();
  const CLI::App* owner = nullptr;
  if (words.empty() && command != nullptr) {
    words = command->remaining();
    owner = command;
  }
  if (words.empty()) return std::nullopt;
  const std::string& word = words.front();
  if (word.size() > 1 && word[0] == '-') {
    const std::string option = word.substr(0, word.find('='));
    const std::string where = owner == nullptr ? std::string() : " for " + owner->get_name();
    return usage_message{
        with_suggestion("unknown option '" + option + "'" + where, nearest(option, option_names(owner ? *owner : app))),
        owner};
  }
  if (owner != nullptr) return usage_message{"unexpected argument '" + word + "' for " + owner->get_name(), owner};
  std::vector<std::string> names;
  for (const command_entry& entry : command_table) names.emplace_back(entry.name);
  return usage_message{with_suggestion("unknown command '" + word + "'", nearest(word, names)), nullptr};
}

int usage(const std::string& message, const CLI::App* command) {
  progress_bar::finish_current();
  std::cerr << program_name << ": " << message << "\nRun '" << program_name
            << (command != nullptr ? " " + command->get_name() : std::string()) << " --help' for usage.\n";
  return usage_error;
}

int run(int argc, char** argv) {
  CLI::App app{
      "Look inside safetensors files and sharded models, local or remote; load, hash, verify and compare "
      "them; rewrite, convert, split and merge them.",
      std::string(program_name)};
  app.footer(
      "A path of - reads a file from standard input (every command that reads one file). An http://,\n"
      "https:// or s3:// URL reads a remote file, or a model when its path ends in .json (every command\n"
      "that reads; --connections N, --token TOKEN, HF_TOKEN for the Hugging Face hub, AWS_* for S3).\n"
      "Exit status: 0 success, 1 rejected input (an invalid file or index, no such tensor), 2 I/O error (a\n"
      "file, or standard output, that could not be read or written), 64 usage error; diff and verify exit 1\n"
      "too when what they compare differs. A reader of standard output that goes away (| head) ends the\n"
      "tool quietly, as it ends cat.\n"
      "Long work (load, hash, verify, rewrite, convert, split, merge, stats) draws a progress bar on stderr\n"
      "when it is a terminal.");
  app.set_version_flag("--version", version_text(), "Print the version (the library's) and exit");
  app.require_subcommand(0, 1);
  // Paths start with '/' on every system: CLI11 reads /NAME as an option on Windows unless told not to.
  app.allow_windows_style_options(false);
  // Unknown words are collected, not refused, so that the message can name them.
  app.allow_extras();
  std::vector<std::pair<CLI::App*, command_runner>> commands;
  for (const command_entry& entry : command_table) {
    CLI::App* command = app.add_subcommand(entry.name, entry.description);
    command->allow_extras();
    commands.emplace_back(command, entry.define(*command));
  }
  auto chosen = [&]() -> const CLI::App* {
    return app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& request) {
    std::ostringstream text;
    app.exit(request, text, text);
    out() << text.str();
    out().flush();
    return success;
  } catch (const CLI::ParseError& error) {
    // An unknown word explains more than what it made CLI11 stumble on (a missing argument).
    if (const auto unplaced = unplaced_word(app, chosen())) return usage(unplaced->text, unplaced->command);
    return usage(error.what(), chosen());
  }
  if (const auto unplaced = unplaced_word(app, chosen())) return usage(unplaced->text, unplaced->command);
  for (const auto& [command, runner] : commands) {
    if (command->parsed() == 0) continue;
    int status = success;
    try {
      status = runner();
    } catch (const usage_failure& failure) {
      return usage(failure.what(), command);
    }
    out().flush();
    return status;
  }
  return usage(
      "a command is required: " +
          [] {
    std::string names;
    for (const command_entry& entry : command_table) names += (names.empty() ? "" : ", ") + std::string(entry.name);
    return names;
      }(),
      nullptr);
}

}  // namespace

// SIGINT (Ctrl-C) and SIGTERM during a long write: the writers' temporary files go, then the
// tool dies of the signal, as it would have without the handler (the shell sees 130 or 143).
extern "C" void end_on_signal(int signal_number) {
  safetensors::remove_temporary_files();
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

int main(int argc, char** argv) {
  std::signal(SIGINT, end_on_signal);
  std::signal(SIGTERM, end_on_signal);
  try {
    return run(argc, argv);
  } catch (const output_failure& failure) {
    progress_bar::finish_current();
    std::cerr << program_name << ": " << safetensors::error_kind_name(safetensors::error_kind::io_error) << ": "
              << failure.what() << '\n';
    return io_failure;
  }
}
