// diff: what differs between two files or models: tensors only in one, with another dtype or
// shape, or other values (how many, and by how much), and metadata.
#include "commands.hpp"
#include "input.hpp"
#include "output.hpp"
#include "values.hpp"

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

namespace cli {

namespace {

struct diff_options {
  std::string a;
  std::string b;
  double atol = 0;
  double rtol = 0;
  bool json = false;
  remote_access remote;
};

// One tensor's comparison. The differences are set for float tensors of one shape; the count of
// differing elements for every tensor of one shape whose values compare (floats, or one dtype).
struct tensor_difference {
  std::string name;
  const safetensors::tensor_info* a = nullptr;
  const safetensors::tensor_info* b = nullptr;
  std::string status;  // same, differs, only_a, only_b, dtype, shape
  std::optional<double> max_abs_diff;
  std::optional<double> max_rel_diff;
  std::optional<std::uint64_t> differing;
};

// The largest differences of float values and how many are not close: a pair is equal when the
// values are (-0 equals 0) or both are NaN, close when |a - b| <= atol + rtol * |b| (numpy's
// isclose). A NaN against a number differs and is left out of the largest differences.
struct float_comparison {
  double atol;
  double rtol;
  double max_abs = 0;
  double max_rel = 0;
  std::uint64_t differing = 0;

  void add(double a, double b) {
    if (a == b || (std::isnan(a) && std::isnan(b))) return;
    if (std::isnan(a) || std::isnan(b)) {
      ++differing;
      return;
    }
    const double difference = std::fabs(a - b);
    max_abs = std::max(max_abs, difference);
    max_rel = std::max(max_rel, difference / std::fabs(b));
    if (!(difference <= atol + rtol * std::fabs(b))) ++differing;
  }
};

// Reads both tensors chunk_elements at a time and compares them element by element: floats (of
// any two float dtypes) as doubles, others (of one dtype) by their bytes. Chunks whose bytes are
// the same are not decoded.
safetensors::result<void> compare_values(const tensor_collection& a, const tensor_collection& b,
                                         const diff_options& options, tensor_difference& difference) {
  const safetensors::tensor_info& left = *difference.a;
  const safetensors::tensor_info& right = *difference.b;
  const bool floats = kind_of(left.dtype) == value_kind::floating && kind_of(right.dtype) == value_kind::floating;
  float_comparison comparison{options.atol, options.rtol};
  std::uint64_t differing_bytes = 0;
  value_decoder decoder;
  std::vector<std::byte> left_bytes;
  std::vector<std::byte> right_bytes;
  std::vector<double> left_values;
  std::vector<double> right_values;
  for (std::uint64_t first = 0; first < left.element_count;) {
    const std::uint64_t count = std::min<std::uint64_t>(chunk_elements, left.element_count - first);
    left_bytes.resize(static_cast<std::size_t>(bytes_of(left.dtype, count)));
    right_bytes.resize(static_cast<std::size_t>(bytes_of(right.dtype, count)));
    if (auto read = a.read_part(left, bytes_of(left.dtype, first), left_bytes); !read) return read;
    if (auto read = b.read_part(right, bytes_of(right.dtype, first), right_bytes); !read) return read;
    first += count;
    if (left.dtype == right.dtype && left_bytes == right_bytes) continue;
    if (!floats) {
      const std::size_t width = safetensors::dtype_bits(left.dtype) / 8;
      for (std::size_t at = 0; at < left_bytes.size(); at += width)
        differing_bytes += std::memcmp(left_bytes.data() + at, right_bytes.data() + at, width) != 0 ? 1 : 0;
      continue;
    }
    if (auto decoded = decoder.to_doubles(left, left_bytes, left_values); !decoded) return decoded;
    if (auto decoded = decoder.to_doubles(right, right_bytes, right_values); !decoded) return decoded;
    for (std::size_t i = 0; i < left_values.size(); ++i) comparison.add(left_values[i], right_values[i]);
  }
  if (floats) {
    difference.max_abs_diff = comparison.max_abs;
    difference.max_rel_diff = comparison.max_rel;
    difference.differing = comparison.differing;
  } else {
    difference.differing = differing_bytes;
  }
  return {};
}

// Compares one tensor present in both.
safetensors::result<void> compare(const tensor_collection& a, const tensor_collection& b, const diff_options& options,
                                  tensor_difference& difference) {
  const safetensors::tensor_info& left = *difference.a;
  const safetensors::tensor_info& right = *difference.b;
  if (!std::equal(left.shape.begin(), left.shape.end(), right.shape.begin(), right.shape.end())) {
    difference.status = "shape";
    return {};
  }
  const bool other_dtype = left.dtype != right.dtype;
  const bool floats = kind_of(left.dtype) == value_kind::floating && kind_of(right.dtype) == value_kind::floating;
  if (!other_dtype || floats) {
    if (auto compared = compare_values(a, b, options, difference); !compared) return compared;
  }
  difference.status = other_dtype ? "dtype" : *difference.differing == 0 ? "same" : "differs";
  return {};
}

// Every tensor of `tensors` by name.
safetensors::result<std::map<std::string, const safetensors::tensor_info*>> by_name(const tensor_collection& tensors) {
  std::map<std::string, const safetensors::tensor_info*> named;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto info = tensors.at(i);
    if (!info) return info.error();
    named.emplace(std::string((*info)->name), *info);
  }
  return named;
}

// A difference as JSON: a number, or "inf" (a finite value against an infinity).
json difference_json(const std::optional<double>& value) {
  if (!value) return nullptr;
  if (std::isinf(*value)) return "inf";
  return *value;
}

// The metadata keys whose values differ, or that only one side has.
struct metadata_difference {
  std::map<std::string, std::string> only_a;
  std::map<std::string, std::string> only_b;
  std::map<std::string, std::pair<std::string, std::string>> differs;

  bool empty() const { return only_a.empty() && only_b.empty() && differs.empty(); }
  std::size_t size() const { return only_a.size() + only_b.size() + differs.size(); }
};

metadata_difference compare_metadata(const safetensors::metadata_map& a, const safetensors::metadata_map& b) {
  metadata_difference difference;
  for (const auto& [key, value] : a) {
    const std::string* other = b.find(key);
    if (other == nullptr) {
      difference.only_a.emplace(key, value);
    } else if (*other != value) {
      difference.differs.emplace(key, std::make_pair(value, *other));
    }
  }
  for (const auto& [key, value] : b) {
    if (a.find(key) == nullptr) difference.only_b.emplace(key, value);
  }
  return difference;
}

std::string difference_text(double value) { return std::isinf(value) ? "inf" : number_text(value); }

// A line per tensor that is not the same, a line per metadata key that differs, then a summary.
void print_text(const std::vector<tensor_difference>& tensors, const metadata_difference& metadata, bool equal) {
  std::size_t unequal = 0;
  for (const tensor_difference& d : tensors) {
    if (d.status == "same") continue;
    ++unequal;
    out() << d.status << ' ' << display_string(d.name);
    if (d.status == "dtype") {
      out() << ": " << safetensors::dtype_name(d.a->dtype) << " in A, " << safetensors::dtype_name(d.b->dtype)
            << " in B";
    } else if (d.status == "shape") {
      out() << ": " << format_shape(d.a->shape) << " in A, " << format_shape(d.b->shape) << " in B";
    }
    if (d.differing) {
      out() << (d.status == "dtype" ? "; " : ": ") << *d.differing << " of " << d.a->element_count
            << " elements differ";
    }
    if (d.max_abs_diff) {
      out() << ", max abs diff " << difference_text(*d.max_abs_diff) << ", max rel diff "
            << difference_text(*d.max_rel_diff);
    }
    out() << '\n';
  }
  for (const auto& [key, value] : metadata.only_a)
    out() << "metadata " << display_string(key) << ": only in A (" << display_string(value) << ")\n";
  for (const auto& [key, value] : metadata.only_b)
    out() << "metadata " << display_string(key) << ": only in B (" << display_string(value) << ")\n";
  for (const auto& [key, values] : metadata.differs)
    out() << "metadata " << display_string(key) << ": " << display_string(values.first) << " in A, "
          << display_string(values.second) << " in B\n";
  if (equal) {
    out() << "equal: " << plural(tensors.size(), "tensor", "tensors") << " and the metadata\n";
  } else {
    out() << "not equal: " << unequal << " of " << plural(tensors.size(), "tensor", "tensors") << ", "
          << plural(metadata.size(), "metadata key", "metadata keys") << '\n';
  }
}

json metadata_json(const metadata_difference& metadata) {
  json object;
  object["only_a"] = json::object();
  for (const auto& [key, value] : metadata.only_a) object["only_a"][key] = value;
  object["only_b"] = json::object();
  for (const auto& [key, value] : metadata.only_b) object["only_b"][key] = value;
  object["differs"] = json::object();
  for (const auto& [key, values] : metadata.differs) object["differs"][key] = {values.first, values.second};
  return object;
}

int run_diff(const diff_options& options) {
  open_options opening;
  opening.storage = storage_kind::pread;
  opening.remote = options.remote;
  auto a = tensor_collection::open(options.a, opening);
  if (!a) return report_error(a.error(), options.json);
  auto b = tensor_collection::open(options.b, opening);
  if (!b) return report_error(b.error(), options.json);
  auto named_a = by_name(*a);
  if (!named_a) return report_error(named_a.error(), options.json);
  auto named_b = by_name(*b);
  if (!named_b) return report_error(named_b.error(), options.json);
  auto metadata_a = a->metadata();
  if (!metadata_a) return report_error(metadata_a.error(), options.json);
  auto metadata_b = b->metadata();
  if (!metadata_b) return report_error(metadata_b.error(), options.json);

  std::map<std::string, tensor_difference> union_of_names;
  for (const auto& [name, info] : *named_a) union_of_names[name].a = info;
  for (const auto& [name, info] : *named_b) union_of_names[name].b = info;
  std::vector<tensor_difference> tensors;
  bool equal = true;
  for (auto& [name, difference] : union_of_names) {
    difference.name = name;
    if (difference.b == nullptr) {
      difference.status = "only_a";
    } else if (difference.a == nullptr) {
      difference.status = "only_b";
    } else if (auto compared = compare(*a, *b, options, difference); !compared) {
      return report_error(compared.error(), options.json);
    }
    equal = equal && difference.status == "same";
    tensors.push_back(std::move(difference));
  }
  const metadata_difference metadata = compare_metadata(*metadata_a, *metadata_b);
  equal = equal && metadata.empty();

  if (options.json) {
    json object;
    object["equal"] = equal;
    object["tensors"] = json::array();
    for (const tensor_difference& d : tensors) {
      json entry;
      entry["name"] = d.name;
      entry["status"] = d.status;
      entry["max_abs_diff"] = difference_json(d.max_abs_diff);
      entry["max_rel_diff"] = difference_json(d.max_rel_diff);
      entry["differing"] = d.differing ? json(*d.differing) : json(nullptr);
      object["tensors"].push_back(std::move(entry));
    }
    object["metadata"] = metadata_json(metadata);
    out() << dump(object) << '\n';
  } else {
    print_text(tensors, metadata, equal);
  }
  return equal ? exit_status::success : exit_status::rejected_input;
}

}  // namespace

command_runner define_diff(CLI::App& command) {
  auto options = std::make_shared<diff_options>();
  command.add_option("a", options->a, path_help)->required();
  command.add_option("b", options->b, path_help)->required();
  command
      .add_option("--atol", options->atol, "Float values count as equal when |a - b| <= ATOL + RTOL * |b| (default 0)")
      ->type_name("ATOL")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--rtol", options->rtol, "See --atol (default 0)")
      ->type_name("RTOL")
      ->check(CLI::NonNegativeNumber);
  command.add_flag("--json", options->json,
                   "Print one JSON object {\"equal\", \"tensors\": [{\"name\", \"status\", \"max_abs_diff\", "
                   "\"max_rel_diff\", \"differing\"}], \"metadata\"}");
  add_remote_options(command, options->remote);
  command.footer(
      "Compares the tensors of A and B by name (files or models, local or URLs), streaming, in bounded memory.\n"
      "A tensor's status: only_a or only_b; shape (other shapes: nothing more compared); dtype (other dtypes:\n"
      "when both are floats, their values are compared as below); else same or differs. Values are compared\n"
      "element by element: floats (F64, F32, F16, BF16, F8_*, F4, F6_*) widened to double, where -0 equals 0,\n"
      "NaN equals NaN and a NaN against a number differs; any other dtype by each element's bytes. A float\n"
      "pair differs unless |a - b| <= ATOL + RTOL * |b|, so --atol and --rtol make close values equal.\n"
      "For floats, max_abs_diff is the largest |a - b| and max_rel_diff the largest |a - b| / |b| (inf where\n"
      "b is 0), NaNs left out; differing counts the elements that differ. The metadata (a model's: its\n"
      "first shard's) differs by key: only_a, only_b, or differs ([A's value, B's value]).\n"
      "Text: a line per tensor that is not the same and per metadata key that differs, then \"equal: N\n"
      "tensors and the metadata\" or \"not equal: K of N tensors, M metadata keys\". --json: {\"equal\": bool,\n"
      "\"tensors\": [{\"name\", \"status\", \"max_abs_diff\", \"max_rel_diff\" (numbers, or null where not\n"
      "floats of one shape), \"differing\" (null where not compared)}, ..] by name, \"metadata\": {\"only_a\":\n"
      "{KEY: VALUE}, \"only_b\": {..}, \"differs\": {KEY: [A, B]}}}.\n"
      "Exit status: 0 equal, 1 not equal (or an invalid file or index), 2 unreadable file or missing shard,\n"
      "64 usage error.");
  return [options] { return run_diff(*options); };
}

}  // namespace cli
