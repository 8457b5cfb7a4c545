// safetensors-hpp: the C ABI's implementation (safetensors.h) over the C++ library. CMake builds
// it as safetensors_c (a shared and a static library); a project that vendors the headers may
// compile this one file instead. With SAFETENSORS_C_REMOTE defined (and libcurl), URLs open too.
//
// Every entry point converts C++ errors and exceptions into a code and this thread's message,
// checks its pointers, and lets nothing but the functions of safetensors.h out of the library.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#define SAFETENSORS_C_BUILDING 1
#include "safetensors.h"

#include "model.hpp"
#if SAFETENSORS_C_REMOTE
#include "remote.hpp"
#endif

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace st = safetensors;

static_assert(static_cast<int>(st::error_kind::io_error) + 1 == SAFETENSORS_ERROR_IO,
              "the C codes follow error_kind, one apart");

struct safetensors_model {
  st::any_model model;
  // Every tensor's name, NUL-terminated, at its position in model.tensor_names() (name order).
  std::vector<std::string> names;
  // safetensors_tensor_at's order as positions in `names`: a file's data order; empty for a
  // model, which lists by name.
  std::vector<std::size_t> file_order;
  bool direct_io = false;
};

struct safetensors_writer {
  st::file_writer writer;
};

struct safetensors_tp_plan {
  st::tp_plan plan;
};

namespace {

thread_local std::string last_error_message;

int fail(int code, std::string message) {
  last_error_message = std::move(message);
  return code;
}

int fail(const st::error& failure) { return fail(static_cast<int>(failure.kind()) + 1, failure.message()); }

// Runs `body` (which returns a code), turning any exception into a code: nothing C++ escapes.
template <class Body>
int guarded(Body&& body) noexcept {
  try {
    last_error_message.clear();
    return body();
  } catch (const st::exception& failure) {
    return fail(failure.error());
  } catch (const std::bad_alloc&) {
    return fail(SAFETENSORS_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& failure) {
    return fail(SAFETENSORS_ERROR_INTERNAL, std::string("unexpected failure: ") + failure.what());
  } catch (...) {
    return fail(SAFETENSORS_ERROR_INTERNAL, "unexpected failure");
  }
}

int missing(const char* what) { return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, std::string(what) + " is NULL"); }

// The dtype names as NUL-terminated strings, at each dtype's position.
const char* dtype_text(st::dtype type) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (std::string_view name : st::dtype_names) all.emplace_back(name);
    return all;
  }();
  return names[static_cast<std::size_t>(type)].c_str();
}

int parse_dtype(const char* name, const char* tensor, st::dtype& out) {
  if (name == nullptr)
    return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "the dtype of tensor " + st::detail::quote(tensor) + " is NULL");
  const auto type = st::dtype_from_name(name);
  if (!type)
    return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT,
                "tensor " + st::detail::quote(tensor) + ": unknown dtype " + st::detail::quote(name));
  out = *type;
  return SAFETENSORS_OK;
}

// The name's position in model.tensor_names(), or fails with TensorNotFound.
int position_of(const safetensors_model& model, const char* name, std::size_t& position) {
  const st::model_entry* entry = model.model.find_entry(name);
  if (entry == nullptr) {
    auto info = model.model.try_info(name);  // the model's own message, naming it
    return fail(info.error());
  }
  position = static_cast<std::size_t>(entry - model.model.tensor_names().data());
  return SAFETENSORS_OK;
}

int describe(const safetensors_model& model, std::size_t position, safetensors_tensor_info* out) {
  auto info = model.model.try_info(model.names[position]);
  if (!info) return fail(info.error());
  out->name = model.names[position].c_str();
  out->dtype = dtype_text((*info)->dtype);
  out->rank = (*info)->shape.size();
  out->shape = (*info)->shape.data();
  out->byte_size = (*info)->byte_size();
  return SAFETENSORS_OK;
}

int slice_dims(const safetensors_slice_dim* dims, std::size_t count, std::vector<st::slice_dim>& out) {
  if (count > 0 && dims == nullptr) return missing("dims");
  for (std::size_t d = 0; d < count; ++d)
    out.push_back(dims[d].single != 0 ? st::at(dims[d].start) : st::range(dims[d].start, dims[d].stop, dims[d].step));
  return SAFETENSORS_OK;
}

bool is_url(std::string_view path) {
  return path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0 || path.rfind("s3://", 0) == 0;
}

bool names_a_model(const std::string& path) {
  std::error_code ignored;
  const std::string_view without_query = std::string_view(path).substr(0, path.find_first_of("?#"));
  return st::detail::ends_with(is_url(path) ? without_query : std::string_view(path), ".json") ||
         (!is_url(path) && std::filesystem::is_directory(path, ignored));
}

st::result<st::any_model> open_model(const std::string& path, const safetensors_open_options& options) {
  st::read_options reading;
  if (options.max_header_size != 0) reading.max_header_size = options.max_header_size;
  if (is_url(path)) {
#if SAFETENSORS_C_REMOTE
    st::remote_options remote;
    if (options.bearer_token != nullptr) remote.bearer_token = options.bearer_token;
    if (options.connections != 0) remote.connections = options.connections;
    if (options.timeout_seconds != 0) remote.retry.deadline = std::chrono::seconds(options.timeout_seconds);
    auto opened = st::try_open_remote_model(path, remote, reading);
    if (!opened) return opened.error();
    return st::any_model(std::move(*opened));
#else
    return st::error(st::error_kind::io_error, st::detail::quote(st::detail::redact_url(path)) +
                                                   ": this library was built without remote support (libcurl)");
#endif
  }
  if (options.storage == SAFETENSORS_STORAGE_MMAP) {
    auto opened = st::try_open_model(path, reading);
    if (!opened) return opened.error();
    return st::any_model(std::move(*opened));
  }
  if (options.storage == SAFETENSORS_STORAGE_PREAD || options.storage == SAFETENSORS_STORAGE_DIRECT) {
    auto opened = st::try_open_model_pread(path, reading);
    if (!opened) return opened.error();
    return st::any_model(std::move(*opened));
  }
  return st::error(
      st::error_kind::invalid_argument,
      "storage " + std::to_string(options.storage) +
          " is not one of SAFETENSORS_STORAGE_MMAP, SAFETENSORS_STORAGE_PREAD, SAFETENSORS_STORAGE_DIRECT");
}

// The load options a C caller gave, checked against the size of the struct it knows.
int load_options_of(const safetensors_load_options* given, bool direct_io, st::load_options& out) {
  out.direct_io = direct_io;
  if (given == nullptr) return SAFETENSORS_OK;
  if (given->struct_size < sizeof(safetensors_load_options))
    return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "options->struct_size is " + std::to_string(given->struct_size) +
                                                        ": initialise the options with safetensors_load_options_init");
  out.threads = given->threads;
  if (given->block_size != 0) out.block_size = static_cast<std::size_t>(given->block_size);
  if (given->budget != 0) out.budget = given->budget;
  out.consumer_thread = given->consumer_thread != 0;
  return SAFETENSORS_OK;
}

int requests_of(const safetensors_model& model, const safetensors_load_request* requests, std::size_t count,
                bool with_destinations, std::vector<st::load_request>& out) {
  if (count > 0 && requests == nullptr) return missing("requests");
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const safetensors_load_request& r = requests[i];
    if (r.name == nullptr)
      return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "requests[" + std::to_string(i) + "].name is NULL");
    std::vector<st::slice_dim> dims;
    if (int code = slice_dims(r.dims, r.dim_count, dims); code != SAFETENSORS_OK) return code;
    st::span<std::byte> destination;
    if (with_destinations) {
      if (r.dst == nullptr && r.dst_size > 0)
        return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "requests[" + std::to_string(i) + "].dst is NULL");
      destination = {static_cast<std::byte*>(r.dst), static_cast<std::size_t>(r.dst_size)};
    }
    auto request = model.model.try_request(r.name, destination, std::move(dims));
    if (!request) return fail(request.error());
    out.push_back(std::move(*request));
  }
  return SAFETENSORS_OK;
}

std::vector<st::tensor_declaration> declarations_of(const safetensors_tensor_declaration* tensors, std::size_t count,
                                                    int& code) {
  std::vector<st::tensor_declaration> out;
  code = SAFETENSORS_OK;
  for (std::size_t i = 0; i < count && code == SAFETENSORS_OK; ++i) {
    const safetensors_tensor_declaration& t = tensors[i];
    if (t.name == nullptr) {
      code = fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "tensors[" + std::to_string(i) + "].name is NULL");
    } else if (t.rank > 0 && t.shape == nullptr) {
      code = fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "the shape of tensor " + st::detail::quote(t.name) + " is NULL");
    } else {
      st::tensor_declaration declaration;
      declaration.name = t.name;
      code = parse_dtype(t.dtype, t.name, declaration.dtype);
      declaration.shape.assign(t.shape, t.shape + t.rank);
      out.push_back(std::move(declaration));
    }
  }
  return out;
}

int metadata_of(const safetensors_metadata_entry* metadata, std::size_t count, st::metadata_entries& out) {
  if (count == 0) return SAFETENSORS_OK;
  if (metadata == nullptr) return missing("metadata");
  std::map<std::string, std::string> entries;
  for (std::size_t i = 0; i < count; ++i) {
    if (metadata[i].key == nullptr || metadata[i].value == nullptr)
      return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "metadata[" + std::to_string(i) + "] has a NULL key or value");
    entries[metadata[i].key] = metadata[i].value;
  }
  out = st::metadata_entries(std::move(entries));
  return SAFETENSORS_OK;
}

}  // namespace

extern "C" {

#define SAFETENSORS_C_TEXT(x) #x
#define SAFETENSORS_C_VERSION_TEXT(major, minor, patch) \
  SAFETENSORS_C_TEXT(major) "." SAFETENSORS_C_TEXT(minor) "." SAFETENSORS_C_TEXT(patch)

const char* safetensors_version(void) {
  return SAFETENSORS_C_VERSION_TEXT(SAFETENSORS_VERSION_MAJOR, SAFETENSORS_VERSION_MINOR, SAFETENSORS_VERSION_PATCH);
}

const char* safetensors_error_name(int code) {
  if (code == SAFETENSORS_OK) return "Ok";
  if (code >= 1 && code <= SAFETENSORS_ERROR_IO) {
    // error_kind_name gives a view of a literal: NUL-terminated.
    return st::error_kind_name(static_cast<st::error_kind>(code - 1)).data();
  }
  switch (code) {
    case SAFETENSORS_ERROR_OUT_OF_MEMORY: return "OutOfMemory";
    case SAFETENSORS_ERROR_CONSUMER: return "Consumer";
    case SAFETENSORS_ERROR_INTERNAL: return "Internal";
    default: return "Unknown";
  }
}

const char* safetensors_last_error(void) { return last_error_message.c_str(); }

void safetensors_open_options_init(safetensors_open_options* options) {
  if (options == nullptr) return;
  *options = safetensors_open_options{};
  options->struct_size = sizeof(safetensors_open_options);
  options->storage = SAFETENSORS_STORAGE_MMAP;
}

int safetensors_open(const char* path_or_url, safetensors_model** out) {
  return safetensors_open_with(path_or_url, nullptr, out);
}

int safetensors_open_with(const char* path_or_url, const safetensors_open_options* options, safetensors_model** out) {
  return guarded([&]() -> int {
    if (out == nullptr) return missing("out");
    *out = nullptr;
    if (path_or_url == nullptr) return missing("path_or_url");
    safetensors_open_options chosen;
    safetensors_open_options_init(&chosen);
    if (options != nullptr) {
      if (options->struct_size < sizeof(safetensors_open_options))
        return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT,
                    "options->struct_size is " + std::to_string(options->struct_size) +
                        ": initialise the options with safetensors_open_options_init");
      chosen = *options;
    }
    const std::string path = path_or_url;
    auto opened = open_model(path, chosen);
    if (!opened) return fail(opened.error());
    auto model = std::make_unique<safetensors_model>(safetensors_model{std::move(*opened), {}, {}, false});
    model->direct_io = chosen.storage == SAFETENSORS_STORAGE_DIRECT && !is_url(path);
    for (const st::model_entry& entry : model->model.tensor_names()) model->names.emplace_back(entry.name);
    if (!names_a_model(path)) {
      auto file = model->model.try_shard(0);
      if (!file) return fail(file.error());
      for (const st::tensor_info& info : file->tensors())
        model->file_order.push_back(
            static_cast<std::size_t>(model->model.find_entry(info.name) - model->model.tensor_names().data()));
    }
    *out = model.release();
    return SAFETENSORS_OK;
  });
}

void safetensors_close(safetensors_model* model) { delete model; }

size_t safetensors_shard_count(const safetensors_model* model) {
  return model == nullptr ? 0 : model->model.shard_count();
}

int safetensors_validate(const safetensors_model* model) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (auto valid = model->model.try_validate(); !valid) return fail(valid.error());
    return SAFETENSORS_OK;
  });
}

size_t safetensors_tensor_count(const safetensors_model* model) { return model == nullptr ? 0 : model->names.size(); }

int safetensors_tensor_at(const safetensors_model* model, size_t i, safetensors_tensor_info* out) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (out == nullptr) return missing("out");
    if (i >= model->names.size())
      return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT,
                  "there are " + std::to_string(model->names.size()) + " tensors: no tensor " + std::to_string(i));
    return describe(*model, model->file_order.empty() ? i : model->file_order[i], out);
  });
}

int safetensors_tensor_find(const safetensors_model* model, const char* name, safetensors_tensor_info* out) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (name == nullptr) return missing("name");
    if (out == nullptr) return missing("out");
    std::size_t position = 0;
    if (int code = position_of(*model, name, position); code != SAFETENSORS_OK) return code;
    return describe(*model, position, out);
  });
}

int safetensors_read(const safetensors_model* model, const char* name, void* dst, uint64_t dst_size) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (name == nullptr) return missing("name");
    if (dst == nullptr && dst_size > 0) return missing("dst");
    auto info = model->model.try_info(name);
    if (!info) return fail(info.error());
    if (dst_size != (*info)->byte_size())
      return fail(SAFETENSORS_ERROR_INVALID_TENSOR_VIEW, "tensor " + st::detail::quote(name) + " has " +
                                                             std::to_string((*info)->byte_size()) +
                                                             " bytes; dst_size is " + std::to_string(dst_size));
    auto read = model->model.try_read_into(**info, {static_cast<std::byte*>(dst), static_cast<std::size_t>(dst_size)});
    if (!read) return fail(read.error());
    return SAFETENSORS_OK;
  });
}

int safetensors_tensor_data(const safetensors_model* model, const char* name, const void** data, uint64_t* size) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (name == nullptr) return missing("name");
    if (data == nullptr) return missing("data");
    if (size == nullptr) return missing("size");
    auto view = model->model.try_view(name);
    if (!view) return fail(view.error());
    *data = view->bytes.data();
    *size = view->bytes.size();
    return SAFETENSORS_OK;
  });
}

size_t safetensors_metadata_count(const safetensors_model* model) {
  if (model == nullptr) return 0;
  try {
    auto metadata = model->model.try_metadata();
    return metadata ? (*metadata)->size() : 0;
  } catch (...) {
    return 0;
  }
}

int safetensors_metadata_at(const safetensors_model* model, size_t i, const char** key, const char** value) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (key == nullptr) return missing("key");
    if (value == nullptr) return missing("value");
    auto metadata = model->model.try_metadata();
    if (!metadata) return fail(metadata.error());
    if (i >= (*metadata)->size())
      return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "there are " + std::to_string((*metadata)->size()) +
                                                          " metadata entries: no entry " + std::to_string(i));
    const auto& entry = *((*metadata)->begin() + static_cast<std::ptrdiff_t>(i));
    *key = entry.first.c_str();
    *value = entry.second.c_str();
    return SAFETENSORS_OK;
  });
}

const char* safetensors_metadata_get(const safetensors_model* model, const char* key) {
  if (model == nullptr || key == nullptr) return nullptr;
  try {
    auto metadata = model->model.try_metadata();
    if (!metadata) return nullptr;
    const std::string* value = (*metadata)->find(key);
    return value == nullptr ? nullptr : value->c_str();
  } catch (...) {
    return nullptr;
  }
}

int safetensors_slice_size(const safetensors_model* model, const char* name, const safetensors_slice_dim* dims,
                           size_t dim_count, uint64_t* size) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (name == nullptr) return missing("name");
    if (size == nullptr) return missing("size");
    std::vector<st::slice_dim> selection;
    if (int code = slice_dims(dims, dim_count, selection); code != SAFETENSORS_OK) return code;
    auto slice = model->model.try_slice(name, std::move(selection));
    if (!slice) return fail(slice.error());
    *size = slice->byte_size();
    return SAFETENSORS_OK;
  });
}

int safetensors_read_slice(const safetensors_model* model, const char* name, const safetensors_slice_dim* dims,
                           size_t dim_count, void* dst, uint64_t dst_size) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (name == nullptr) return missing("name");
    if (dst == nullptr && dst_size > 0) return missing("dst");
    std::vector<st::slice_dim> selection;
    if (int code = slice_dims(dims, dim_count, selection); code != SAFETENSORS_OK) return code;
    auto slice = model->model.try_slice(name, std::move(selection));
    if (!slice) return fail(slice.error());
    if (dst_size != slice->byte_size())
      return fail(SAFETENSORS_ERROR_INVALID_TENSOR_VIEW, "the slice of tensor " + st::detail::quote(name) + " has " +
                                                             std::to_string(slice->byte_size()) +
                                                             " bytes; dst_size is " + std::to_string(dst_size));
    auto read = model->model.try_read_into(*slice, {static_cast<std::byte*>(dst), static_cast<std::size_t>(dst_size)});
    if (!read) return fail(read.error());
    return SAFETENSORS_OK;
  });
}

void safetensors_load_options_init(safetensors_load_options* options) {
  if (options == nullptr) return;
  *options = safetensors_load_options{};
  options->struct_size = sizeof(safetensors_load_options);
}

int safetensors_load_into(const safetensors_model* model, const safetensors_load_request* requests, size_t count,
                          const safetensors_load_options* options) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    st::load_options loading;
    if (int code = load_options_of(options, model->direct_io, loading); code != SAFETENSORS_OK) return code;
    std::vector<st::load_request> planned;
    if (int code = requests_of(*model, requests, count, true, planned); code != SAFETENSORS_OK) return code;
    if (auto loaded = model->model.try_load_into(planned, loading); !loaded) return fail(loaded.error());
    return SAFETENSORS_OK;
  });
}

int safetensors_load(const safetensors_model* model, const safetensors_load_request* requests, size_t count,
                     safetensors_consumer consumer, void* user, const safetensors_load_options* options) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (consumer == nullptr) return missing("consumer");
    st::load_options loading;
    if (int code = load_options_of(options, model->direct_io, loading); code != SAFETENSORS_OK) return code;
    std::vector<st::load_request> planned;
    if (int code = requests_of(*model, requests, count, false, planned); code != SAFETENSORS_OK) return code;
    std::atomic<bool> stopped{false};
    auto loaded = model->model.try_load(
        planned,
        [&](const st::load_piece& piece) -> st::result<void> {
          const int answer = consumer(user, piece.request, piece.offset, piece.bytes.data(), piece.bytes.size());
          if (answer == 0) return {};
          stopped = true;
          return st::error(st::error_kind::invalid_argument,
                           "the consumer returned " + std::to_string(answer) + " for request " +
                               std::to_string(piece.request) + " (tensor " +
                               st::detail::quote(planned[piece.request].tensor->name) + "): the load stopped");
        },
        loading);
    if (!loaded) {
      if (stopped) return fail(SAFETENSORS_ERROR_CONSUMER, loaded.error().message());
      return fail(loaded.error());
    }
    return SAFETENSORS_OK;
  });
}

int safetensors_tp_plan_parse(const char* preset_or_json, safetensors_tp_plan** out) {
  return guarded([&]() -> int {
    if (out == nullptr) return missing("out");
    *out = nullptr;
    if (preset_or_json == nullptr) return missing("preset_or_json");
    auto plan = st::tp_plan::try_preset(preset_or_json);
    if (!plan) plan = st::tp_plan::try_parse(preset_or_json);
    if (!plan) return fail(plan.error());
    *out = new safetensors_tp_plan{std::move(*plan)};
    return SAFETENSORS_OK;
  });
}

void safetensors_tp_plan_close(safetensors_tp_plan* plan) { delete plan; }

int safetensors_tp_shares(const safetensors_model* model, const safetensors_tp_plan* plan, uint64_t size, uint64_t rank,
                          safetensors_tp_share* shares, size_t count) {
  return guarded([&]() -> int {
    if (model == nullptr) return missing("model");
    if (plan == nullptr) return missing("plan");
    if (shares == nullptr && count > 0) return missing("shares");
    if (count != model->names.size())
      return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT, "count is " + std::to_string(count) + "; the model has " +
                                                          std::to_string(model->names.size()) + " tensors");
    std::vector<const st::tensor_info*> infos;
    for (std::size_t i = 0; i < count; ++i) {
      auto info = model->model.try_info(model->names[model->file_order.empty() ? i : model->file_order[i]]);
      if (!info) return fail(info.error());
      infos.push_back(*info);
    }
    auto slices = st::try_tp_slices(plan->plan, infos, size, rank);
    if (!slices) return fail(slices.error());
    for (std::size_t i = 0; i < count; ++i) {
      const std::vector<st::slice_dim>& dims = (*slices)[i];
      shares[i] = dims.empty() ? safetensors_tp_share{-1, 0, 0}
                               : safetensors_tp_share{static_cast<int>(dims.size() - 1),
                                                      static_cast<std::uint64_t>(dims.back().start),
                                                      static_cast<std::uint64_t>(dims.back().stop)};
    }
    return SAFETENSORS_OK;
  });
}

int safetensors_save(const char* path, const safetensors_tensor* tensors, size_t count,
                     const safetensors_metadata_entry* metadata, size_t metadata_count) {
  return guarded([&]() -> int {
    if (path == nullptr) return missing("path");
    if (count > 0 && tensors == nullptr) return missing("tensors");
    std::vector<safetensors_tensor_declaration> declared;
    for (std::size_t i = 0; i < count; ++i)
      declared.push_back({tensors[i].name, tensors[i].dtype, tensors[i].rank, tensors[i].shape});
    int code = SAFETENSORS_OK;
    std::vector<st::tensor_declaration> declarations = declarations_of(declared.data(), count, code);
    if (code != SAFETENSORS_OK) return code;
    std::vector<st::tensor_source> sources;
    for (std::size_t i = 0; i < count; ++i) {
      if (tensors[i].data == nullptr && tensors[i].size > 0)
        return fail(SAFETENSORS_ERROR_INVALID_ARGUMENT,
                    "the data of tensor " + st::detail::quote(tensors[i].name) + " is NULL");
      sources.emplace_back(std::move(declarations[i]),
                           st::span<const std::byte>(static_cast<const std::byte*>(tensors[i].data),
                                                     static_cast<std::size_t>(tensors[i].size)));
    }
    st::metadata_entries entries;
    code = metadata_of(metadata, metadata_count, entries);
    if (code != SAFETENSORS_OK) return code;
    if (auto saved = st::try_save(path, sources, entries); !saved) return fail(saved.error());
    return SAFETENSORS_OK;
  });
}

int safetensors_writer_open(const char* path, const safetensors_tensor_declaration* tensors, size_t count,
                            const safetensors_metadata_entry* metadata, size_t metadata_count,
                            safetensors_writer** out) {
  return guarded([&]() -> int {
    if (out == nullptr) return missing("out");
    *out = nullptr;
    if (path == nullptr) return missing("path");
    if (count > 0 && tensors == nullptr) return missing("tensors");
    int code = SAFETENSORS_OK;
    std::vector<st::tensor_declaration> declarations = declarations_of(tensors, count, code);
    if (code != SAFETENSORS_OK) return code;
    st::metadata_entries entries;
    code = metadata_of(metadata, metadata_count, entries);
    if (code != SAFETENSORS_OK) return code;
    auto writer = st::try_make_file_writer(path, std::move(declarations), entries);
    if (!writer) return fail(writer.error());
    *out = new safetensors_writer{std::move(*writer)};
    return SAFETENSORS_OK;
  });
}

int safetensors_writer_write(safetensors_writer* writer, const char* name, const void* bytes, uint64_t size) {
  return guarded([&]() -> int {
    if (writer == nullptr) return missing("writer");
    if (name == nullptr) return missing("name");
    if (bytes == nullptr && size > 0) return missing("bytes");
    auto wrote = writer->writer.try_write(
        name, st::span<const std::byte>(static_cast<const std::byte*>(bytes), static_cast<std::size_t>(size)));
    if (!wrote) return fail(wrote.error());
    return SAFETENSORS_OK;
  });
}

int safetensors_writer_finish(safetensors_writer* writer) {
  return guarded([&]() -> int {
    if (writer == nullptr) return missing("writer");
    if (auto finished = writer->writer.try_finish(); !finished) return fail(finished.error());
    return SAFETENSORS_OK;
  });
}

void safetensors_writer_close(safetensors_writer* writer) { delete writer; }

}  // extern "C"
