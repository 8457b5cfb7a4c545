// The commands. Each define_* function adds a command's arguments, help and footer to the
// subcommand main() made for it, and returns what runs once the whole command line has parsed:
// it prints through out() and returns the exit status.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace cli {

using command_runner = std::function<int()>;

command_runner define_inspect(CLI::App& command);
command_runner define_validate(CLI::App& command);
command_runner define_dump(CLI::App& command);
command_runner define_stats(CLI::App& command);
command_runner define_load(CLI::App& command);
command_runner define_hash(CLI::App& command);
command_runner define_verify(CLI::App& command);
command_runner define_diff(CLI::App& command);
command_runner define_rewrite(CLI::App& command);
command_runner define_convert(CLI::App& command);
command_runner define_split(CLI::App& command);
command_runner define_merge(CLI::App& command);
command_runner define_dequantize(CLI::App& command);

// The description of PATH arguments that name a file, standard input, a URL or a model.
inline const std::string path_help =
    "A .safetensors file, - for standard input, or a sharded model: its index (*.json) or directory; or an "
    "http://, https:// or s3:// URL of a file or an index";

}  // namespace cli
