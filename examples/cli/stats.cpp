// stats: count, min, max, mean, std, NaN and infinities of every tensor, or of one.
#include "arguments.hpp"
#include "commands.hpp"
#include "input.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "values.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <type_traits>

namespace cli {

namespace {

struct stats_options {
  std::string path;
  tensor_choice tensor;
  bool json = false;
  safetensors::packing packing = safetensors::packing::low_first;
  remote_access remote;
};

// A sum with Neumaier's compensation: exact as long as the running sum and the compensation
// hold it, e.g. for a large value, small ones, then the large value negated.
struct compensated_sum {
  double sum = 0;
  double compensation = 0;

  void add(double value) {
    const double total = sum + value;
    compensation += std::fabs(sum) >= std::fabs(value) ? (sum - total) + value : (value - total) + sum;
    sum = total;
  }
  double value() const { return sum + compensation; }
};

// Count, mean and sum of squared deviations from the mean (M2) of finite values. Mean and M2
// are kept scaled by 2^-exponent and 2^-2*exponent, so that no sum overflows, whatever the
// magnitudes (F64 values near 1.8e308 included). Each chunk's mean is a compensated sum over
// the count and its M2 comes from the corrected two-pass formula; chunks are merged with Chan et
// al.'s formula: accurate, and in one pass over the tensor.
struct moments {
  std::uint64_t count = 0;
  double mean = 0;
  double m2 = 0;
  int exponent = 0;

  static moments of(const std::vector<double>& values) {
    moments out;
    if (values.empty()) return out;
    double largest = 0;
    for (double value : values) largest = std::max(largest, std::fabs(value));
    if (largest > 0) std::frexp(largest, &out.exponent);
    // Keeps the scale itself a finite double; values this small lose nothing to it.
    out.exponent = std::max(out.exponent, -1000);
    const double scale = std::ldexp(1.0, -out.exponent);
    const auto n = static_cast<double>(values.size());
    compensated_sum sum;
    for (double value : values) sum.add(value * scale);
    const double mean = sum.value() / n;
    compensated_sum deviations;
    compensated_sum squares;
    for (double value : values) {
      const double deviation = value * scale - mean;
      deviations.add(deviation);
      squares.add(deviation * deviation);
    }
    // The compensated mean is the better one when values cancel; the deviations from it correct M2.
    out.count = values.size();
    out.mean = mean;
    out.m2 = std::max(0.0, squares.value() - deviations.value() * deviations.value() / n);
    return out;
  }

  void merge(moments other) {
    if (other.count == 0) return;
    if (count == 0) {
      *this = other;
      return;
    }
    const int common = std::max(exponent, other.exponent);
    rescale(common);
    other.rescale(common);
    const double weight =
        static_cast<double>(other.count) / (static_cast<double>(count) + static_cast<double>(other.count));
    const double delta = other.mean - mean;
    mean += delta * weight;
    m2 += other.m2 + delta * delta * static_cast<double>(count) * weight;
    count += other.count;
  }

  double value_mean() const { return std::ldexp(mean, exponent); }
  // The population standard deviation: sqrt(M2 / count).
  double deviation() const { return std::ldexp(std::sqrt(m2 / static_cast<double>(count)), exponent); }

 private:
  void rescale(int target) {
    mean = std::ldexp(mean, exponent - target);
    m2 = std::ldexp(m2, 2 * (exponent - target));
    exponent = target;
  }
};

// The exact sum of integers, in 128 bits (two's complement): integers' mean does not depend on
// their order or on values that cancel, e.g. 0, 1, -1, INT64_MAX, INT64_MIN has mean -0.2.
struct integer_sum {
  std::uint64_t low = 0;
  std::uint64_t high = 0;

  void add(std::uint64_t value) {
    low += value;
    high += low < value ? 1 : 0;
  }
  void add(std::int64_t value) {
    add(static_cast<std::uint64_t>(value));
    if (value < 0) high -= 1;  // the sign extension of the upper word
  }
  // The sum as a double, rounded at most twice.
  double value() const {
    const bool negative = (high >> 63) != 0;
    std::uint64_t magnitude_low = negative ? ~low + 1 : low;
    std::uint64_t magnitude_high = negative ? ~high + (magnitude_low == 0 ? 1 : 0) : high;
    const double magnitude =
        static_cast<double>(magnitude_high) * 18446744073709551616.0 + static_cast<double>(magnitude_low);
    return negative ? -magnitude : magnitude;
  }
};

// What stats reports of one tensor. min and max are JSON numbers, exact for integers, or null
// when there is no finite value; mean and std are meaningful when finite.count is not 0.
struct summary {
  std::uint64_t nan = 0;
  std::uint64_t inf = 0;
  moments finite;
  double mean = 0;
  double std = 0;
  json min;
  json max;
  std::string note;  // why the tensor is not summarised, or empty
};

// The least and greatest of `values` so far; -0 counts as less than +0, so the result does not
// depend on their order.
struct float_range {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();

  void add(double value) {
    if (value < min || (value == min && std::signbit(value))) min = value;
    if (value > max || (value == max && !std::signbit(value))) max = value;
  }
};

template <class T>
struct integer_range {
  T min = std::numeric_limits<T>::max();
  T max = std::numeric_limits<T>::min();

  void add(T value) {
    min = std::min(min, value);
    max = std::max(max, value);
  }
};

// One pass over the tensor's bytes, chunk_elements at a time. Floats are widened to double,
// integers to int64_t or uint64_t (min and max exact, mean and deviation through double); NaN
// and infinities are counted and left out of everything else.
safetensors::result<summary> summarise(const tensor_collection& tensors, const safetensors::tensor_info& info,
                                       safetensors::packing packing, progress_bar& progress) {
  summary stats;
  const value_kind kind = kind_of(info.dtype);
  if (kind == value_kind::complex) {
    stats.note = "complex: not summarised";
    progress.advance(info.byte_size());
    return stats;
  }
  std::vector<double> finite;
  float_range float_bounds;
  integer_range<std::int64_t> signed_bounds;
  integer_range<std::uint64_t> unsigned_bounds;
  integer_sum exact_sum;
  auto add_chunk = [&](auto values) {
    using value_type = std::decay_t<decltype(values[0])>;
    finite.clear();
    for (const value_type value : values) {
      if constexpr (std::is_same_v<value_type, double>) {
        if (std::isnan(value)) {
          ++stats.nan;
        } else if (std::isinf(value)) {
          ++stats.inf;
        } else {
          float_bounds.add(value);
          finite.push_back(value);
        }
      } else if constexpr (std::is_same_v<value_type, std::int64_t>) {
        signed_bounds.add(value);
        exact_sum.add(value);
        finite.push_back(static_cast<double>(value));
      } else if constexpr (std::is_integral_v<value_type>) {
        unsigned_bounds.add(value);
        exact_sum.add(std::uint64_t{value});
        finite.push_back(static_cast<double>(value));
      }
    }
    stats.finite.merge(moments::of(finite));
    progress.advance(bytes_of(info.dtype, values.size()));
  };
  value_decoder decoder(packing);
  auto read_part = [&](std::uint64_t offset, safetensors::span<std::byte> destination) {
    return tensors.read_part(info, offset, destination);
  };
  if (auto decoded = decoder.decode(info, 0, info.element_count, read_part, add_chunk); !decoded)
    return decoded.error();
  if (stats.finite.count > 0) {
    stats.mean = kind == value_kind::floating ? stats.finite.value_mean()
                                              : exact_sum.value() / static_cast<double>(stats.finite.count);
    stats.std = stats.finite.deviation();
    switch (kind) {
      case value_kind::floating:
        stats.min = float_bounds.min;
        stats.max = float_bounds.max;
        break;
      case value_kind::signed_integer:
        stats.min = signed_bounds.min;
        stats.max = signed_bounds.max;
        break;
      default:
        stats.min = unsigned_bounds.min;
        stats.max = unsigned_bounds.max;
        break;
    }
  }
  return stats;
}

json summary_json(const safetensors::tensor_info& info, const summary& stats) {
  const bool summarised = stats.note.empty();
  const bool any = stats.finite.count > 0;
  json out;
  out["name"] = std::string(info.name);
  out["dtype"] = std::string(safetensors::dtype_name(info.dtype));
  out["count"] = info.element_count;
  out["min"] = stats.min;
  out["max"] = stats.max;
  out["mean"] = any ? json(stats.mean) : json(nullptr);
  out["std"] = any ? json(stats.std) : json(nullptr);
  out["nan"] = summarised ? json(stats.nan) : json(nullptr);
  out["inf"] = summarised ? json(stats.inf) : json(nullptr);
  out["note"] = summarised ? json(nullptr) : json(stats.note);
  return out;
}

std::string bound_text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_number_float()) return number_text(value.get<double>());
  return value.dump();
}

// Six significant digits: enough to read; --json has every digit.
std::string rounded_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

table_row summary_row(const safetensors::tensor_info& info, const summary& stats) {
  const bool summarised = stats.note.empty();
  const bool any = stats.finite.count > 0;
  return {truncate_to_width(display_string(info.name), max_name_width),
          std::string(safetensors::dtype_name(info.dtype)),
          std::to_string(info.element_count),
          bound_text(stats.min),
          bound_text(stats.max),
          any ? rounded_text(stats.mean) : "-",
          any ? rounded_text(stats.std) : "-",
          summarised ? std::to_string(stats.nan) : "-",
          summarised ? std::to_string(stats.inf) : "-",
          stats.note};
}

// Text form: a table with a heading row and one row per tensor, in inspect's order; the note
// column is there only when some tensor was not summarised. JSON: one array of objects. Output
// is printed once every tensor is read, after the progress bar is gone.
int run_stats(const stats_options& options) {
  open_options opening;
  opening.remote = options.remote;
  auto tensors = tensor_collection::open(options.path, opening);
  if (!tensors) return report_error(tensors.error(), options.json);
  std::vector<const safetensors::tensor_info*> chosen;
  if (options.tensor.any()) {
    auto found = tensors->choose(options.tensor);
    if (!found) return report_error(found.error(), options.json);
    chosen.push_back(*found);
  } else {
    for (std::size_t i = 0; i < tensors->size(); ++i) {
      auto info = tensors->at(i);
      if (!info) return report_error(info.error(), options.json);
      chosen.push_back(*info);
    }
  }
  std::uint64_t total = 0;
  for (const safetensors::tensor_info* info : chosen) total += info->byte_size();

  std::vector<table_row> rows = {{"name", "dtype", "count", "min", "max", "mean", "std", "nan", "inf", "note"}};
  bool any_note = false;
  std::string text = "[";
  progress_bar progress("stats", total);
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    auto stats = summarise(*tensors, *chosen[i], options.packing, progress);
    if (!stats) {
      progress.finish();
      if (options.json) out() << text << "]\n";
      return report_error(stats.error(), false);
    }
    if (options.json) {
      text += (i > 0 ? "," : "") + dump(summary_json(*chosen[i], *stats));
    } else {
      any_note = any_note || !stats->note.empty();
      rows.push_back(summary_row(*chosen[i], *stats));
    }
  }
  progress.finish();
  if (options.json) {
    out() << text << "]\n";
    return exit_status::success;
  }
  std::vector<bool> right_aligned = {false, false, true, true, true, true, true, true, true, false};
  if (!any_note) {
    for (table_row& row : rows) row.pop_back();
    right_aligned.pop_back();
  }
  print_table(rows, right_aligned);
  return exit_status::success;
}

}  // namespace

command_runner define_stats(CLI::App& command) {
  auto options = std::make_shared<stats_options>();
  command.add_option("path", options->path, path_help)->required();
  add_tensor_choice(command, options->tensor,
                    "Only this tensor (put -- before a name that starts with -); default: every tensor");
  command.add_flag("--json", options->json, "Print one JSON array of objects instead of a table");
  add_packing_option(command, options->packing);
  add_remote_options(command, options->remote);
  command.footer(
      "Per tensor: count (elements), min, max, mean, std (population standard deviation) of the finite\n"
      "values, and how many are NaN and how many infinite. Floats (F8_*, and F4 and F6_* unpacked as --packing\n"
      "says, included) are widened to double; integers' min and max are exact, their mean and std computed in\n"
      "double; BOOL counts as its byte. C64 is listed with a note, \"complex: not summarised\".\n"
      "The table shows mean and std to 6 digits; --json gives {\"name\", \"dtype\", \"count\", \"min\", \"max\",\n"
      "\"mean\", \"std\", \"nan\", \"inf\", \"note\"} per tensor, null where there is nothing to report.\n"
      "Rows come in inspect's order: data order for a file, name order for a model. While reading, a progress\n"
      "bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 printed, 1 invalid file or no such tensor, 2 unreadable file or missing shard, 64 usage\n"
      "error.");
  return [options] { return run_stats(*options); };
}

}  // namespace cli
