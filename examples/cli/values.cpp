#include "values.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace cli {

void add_packing_option(CLI::App& command, safetensors::packing& order) {
  const std::map<std::string, safetensors::packing> orders = {{"low-first", safetensors::packing::low_first},
                                                              {"high-first", safetensors::packing::high_first}};
  command
      .add_option("--packing", order,
                  "F4 and F6: low-first (the default: element 2i in the low nibble of byte i, as PyTorch's "
                  "float4_e2m1fn_x2; F6 a little-endian bit stream) or high-first (the other way round)")
      ->type_name("ORDER")
      ->transform(CLI::CheckedTransformer(orders).description(""))
      ->default_str("low-first");
}

std::uint64_t elements_per_byte_group(safetensors::dtype type) {
  switch (safetensors::dtype_bits(type)) {
    case 4: return 2;
    case 6: return 4;
    default: return 1;
  }
}

safetensors::result<void> value_decoder::to_doubles(const safetensors::tensor_info& info,
                                                    safetensors::span<const std::byte> bytes,
                                                    std::vector<double>& values) const {
  values.resize(static_cast<std::size_t>(bytes.size() * 8 / safetensors::dtype_bits(info.dtype)));
  return safetensors::try_copy_to(safetensors::tensor_view{&info, bytes}, safetensors::span<double>(values), order_);
}

namespace {

// The shortest decimal text that reads back (with strtod) as the finite `value`, e.g. "0.1",
// "1", "-0", "1e+16".
std::string shortest_text(double value) {
  char text[32];
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  const auto converted = std::to_chars(text, text + sizeof text, value);
  return std::string(text, converted.ptr);
#else
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) return text;
  }
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
#endif
}

}  // namespace

std::string number_text(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  return shortest_text(value);
}

std::string number_json(double value) {
  if (std::isnan(value)) return "\"nan\"";
  if (std::isinf(value)) return value < 0 ? "\"-inf\"" : "\"inf\"";
  std::string text = shortest_text(value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

}  // namespace cli
