// The library's reading of a file next to the independent one of reference_parser.hpp: used by
// the differential test (tests/test_differential.cpp) and fuzz target (fuzz/fuzz_differential.cpp).
#pragma once

#include "reference_parser.hpp"

#include <safetensors/safetensors.hpp>

#include <map>
#include <string>

namespace differential {

// Compares both readings of `bytes`; returns a description of the first difference, or "".
inline std::string difference(const unsigned char* bytes, std::size_t size) {
  namespace st = safetensors;
  const reference::outcome want = reference::parse(bytes, size);
  auto got = st::try_open_memory(bytes, size);
  const std::string got_kind = got ? "ok" : std::string(st::error_kind_name(got.error().kind()));
  if (got_kind != want.kind) return "library says " + got_kind + ", reference says " + want.kind;
  if (!got) return "";
  if (got->size() != want.tensors.size()) return "tensor counts differ";
  for (std::size_t i = 0; i < want.tensors.size(); ++i) {
    const st::tensor_info& t = got->tensors()[i];
    const reference::tensor& w = want.tensors[i];
    if (t.name != w.name || st::dtype_name(t.dtype) != w.dtype || t.data_offsets[0] != w.begin ||
        t.data_offsets[1] != w.end || !std::equal(t.shape.begin(), t.shape.end(), w.shape.begin(), w.shape.end()))
      return "tensor " + st::detail::quote(w.name) + " differs";
  }
  if (got->has_metadata() != want.metadata.has_value()) return "metadata presence differs";
  if (want.metadata) {
    std::map<std::string, std::string> got_metadata(got->metadata().begin(), got->metadata().end());
    if (got_metadata != *want.metadata) return "metadata differs";
  }
  return "";
}
}  // namespace differential
