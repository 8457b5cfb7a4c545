// A consumer translation unit for tests/warnings/run.sh, which compiles it (never runs it) with
// every warning: it includes every public header as a user's code does, through a plain -I (so
// that no warning is silenced as coming from a system header), and instantiates the API so that
// the bodies of templates are compiled too. Every class template is explicitly instantiated over
// every storage and sink; member and function templates are called in the inline functions below,
// which nothing calls. A new public header is included here (check.py checks that every one is, and compiles each alone); a
// new storage, sink or template gets its line in its section.
#include <safetensors/config.hpp>
#include <safetensors/error.hpp>
#include <safetensors/span.hpp>
#include <safetensors/dtype.hpp>
#include <safetensors/numbers.hpp>
#include <safetensors/tensor.hpp>
#include <safetensors/slice.hpp>
#include <safetensors/json_scanner.hpp>
#include <safetensors/header.hpp>
#include <safetensors/storage.hpp>
#include <safetensors/file.hpp>
#include <safetensors/thread_pool.hpp>
#include <safetensors/load_plan.hpp>
#include <safetensors/arena.hpp>
#include <safetensors/reader.hpp>
#include <safetensors/any_reader.hpp>
#include <safetensors/writer.hpp>
#include <safetensors/tp_plan.hpp>
#include <safetensors/quant.hpp>
#include <safetensors/safetensors.hpp>
#include <safetensors/model.hpp>
#include <safetensors/remote.hpp>
#include <safetensors/safetensors.h>

#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace st = safetensors;

namespace consumer {

// A storage of the user's: no data(), so readers over it copy instead of viewing.
class blob_storage {
 public:
  explicit blob_storage(std::vector<std::byte> blob) : blob_(std::move(blob)) {}
  std::uint64_t size() const { return blob_.size(); }
  st::result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (offset > blob_.size() || count > blob_.size() - offset) return st::error(st::error_kind::io_error, "short");
    std::memcpy(destination, blob_.data() + offset, count);
    return {};
  }

 private:
  std::vector<std::byte> blob_;
};

}  // namespace consumer

// ---------------------------------------------------------------------------------------------
// Class templates: every non-template member, for every storage and sink
// ---------------------------------------------------------------------------------------------

template class st::basic_reader<st::borrowed_bytes>;
template class st::basic_reader<st::owned_bytes>;
template class st::basic_reader<st::mapped_file>;
template class st::basic_reader<st::pread_file>;
template class st::basic_reader<consumer::blob_storage>;
template class st::basic_reader<st::remote_file>;

template class st::basic_writer<st::vector_sink>;
template class st::basic_writer<st::ostream_sink>;
template class st::basic_writer<st::file_sink>;

template class st::basic_model_reader<st::mapped_file>;
template class st::basic_model_reader<st::pread_file>;
template class st::basic_model_reader<consumer::blob_storage>;
template class st::basic_model_reader<st::remote_file>;

template class st::result<st::mapped_reader>;
template class st::result<st::file_writer>;
template class st::result<st::tensor_slice>;
template class st::result<st::load_plan>;

namespace consumer {

// ---------------------------------------------------------------------------------------------
// Errors, results, dtypes, number types, conversions
// ---------------------------------------------------------------------------------------------

inline int exercise_errors(st::result<st::mapped_reader> opened, st::result<void> done) {
  const st::error& failure = opened ? done.error() : opened.error();
  const st::exception thrown(failure);
  int sum = static_cast<int>(thrown.kind()) + static_cast<int>(thrown.error().message().size()) +
            static_cast<int>(st::error_kind_name(failure.kind()).size()) + static_cast<int>(failure.to_string().size());
  if (opened.has_value()) sum += static_cast<int>(opened->size() + (*opened).size() + opened.value().size());
  st::mapped_reader moved = std::move(opened).value();
  done.value();
  return sum + static_cast<int>(moved.size());
}

inline std::size_t exercise_dtypes() {
  std::size_t bits = 0;
  for (const st::dtype type : st::all_dtypes) bits += st::dtype_bits(type) + st::dtype_name(type).size();
  for (const std::string_view name : st::dtype_names) bits += st::dtype_from_name(name) ? 1u : 0u;
  return bits + st::dtype_count;
}

template <class Number>
float round_trip(float value) {
  const Number narrow = Number::from_float(value);
  const Number same = Number::from_bits(narrow.bits);
  const Number wide = Number::from_double(static_cast<double>(value));
  return narrow == same && narrow != wide ? narrow.to_float() : static_cast<float>(same.to_double());
}

inline float exercise_number_types(float value) {
  return round_trip<st::bfloat16>(value) + round_trip<st::float16>(value) + round_trip<st::float8_e5m2>(value) +
         round_trip<st::float8_e4m3>(value) + round_trip<st::float8_e4m3fnuz>(value) +
         round_trip<st::float8_e5m2fnuz>(value) + round_trip<st::float8_e8m0>(value);
}

inline st::result<void> exercise_convert(st::span<const std::byte> source, st::span<std::byte> destination) {
  return st::try_convert(source, st::dtype::BF16, destination, st::dtype::F32);
}

inline std::size_t exercise_span(std::vector<float>& values, const std::vector<float>& constant) {
  float array[4] = {};
  st::span<float> whole(values);
  st::span<const float> read_only = whole;
  st::span<const float> from_const(constant);
  st::span<float> from_array(array);
  st::span<float> counted(values.data(), values.size());
  std::size_t total = whole.size_bytes() + read_only.first(1).size() + from_const.subspan(0, 1).size();
  for (float& x : from_array) x = whole.front() + whole.back() + whole[0];
  return total + (counted.empty() ? 0 : 1);
}

// ---------------------------------------------------------------------------------------------
// Views, typed views, copies and slices, for every element type
// ---------------------------------------------------------------------------------------------

template <class T>
bool view_and_copy(const st::tensor_view& view, const st::tensor_slice& slice) {
  std::vector<T> whole(static_cast<std::size_t>(view.info->element_count));
  std::vector<T> part(static_cast<std::size_t>(slice.element_count()));
  const st::result<st::span<const T>> typed = view.try_as<T>();
  return typed && view.as<T>().size() == typed->size() && st::try_copy_to(view, st::span<T>(whole)) &&
         slice.try_copy_to(st::span<T>(part));
}

template <class... T>
bool every_type(const st::tensor_view& view, const st::tensor_slice& slice) {
  return (view_and_copy<T>(view, slice) && ...);
}

inline bool exercise_views(const st::mapped_reader& reader) {
  const st::tensor_view view = reader.view("w");
  const st::tensor_slice slice = reader.slice("w", {st::at(-1), st::range(0, -1, 2), st::all()});
  std::uint64_t groups = 0;
  slice.for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t count) {
    groups += first + stride + count;
    return groups < slice.run_bytes() * slice.run_count();
  });
  std::vector<std::byte> bytes(static_cast<std::size_t>(slice.byte_size()));
  return every_type<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t, std::uint64_t,
                    std::int64_t, float, double, std::complex<float>, st::bfloat16, st::float16, st::float8_e5m2,
                    st::float8_e4m3, st::float8_e8m0, st::float8_e4m3fnuz, st::float8_e5m2fnuz>(view, slice) &&
         view.try_as<std::byte>().has_value() && st::try_copy_to(view, st::span<std::byte>(bytes), st::dtype::F16) &&
         slice.try_bytes().has_value() && slice.contiguous() && slice.shape().size() == groups &&
         st::tensor_slice::try_make(view.info[0], {st::at(0)}).has_value() && view.name() == slice.info().name &&
         view.dtype() == slice.tensor().dtype() && view.shape().size() > 0;
}

// ---------------------------------------------------------------------------------------------
// Readers: every storage, every template member
// ---------------------------------------------------------------------------------------------

template <class Storage>
st::result<void> read_all(const st::basic_reader<Storage>& reader) {
  for (const st::tensor_info& info : reader.tensors()) {
    std::vector<std::byte> bytes(static_cast<std::size_t>(info.byte_size()));
    if (auto read = reader.try_read_part(info, 0, bytes); !read) return read;
  }
  const st::metadata_entries copied = st::metadata_entries::from(reader);
  std::vector<std::byte> slice_bytes = reader.read(reader.slice("w", {st::range(1)}));
  std::vector<std::byte> destination(reader.info("w").byte_size());
  std::vector<st::load_request> requests;
  requests.emplace_back(reader.find("w"), st::span<std::byte>(destination));
  requests.emplace_back(&reader.info("b"), st::span<std::byte>(slice_bytes), std::vector<st::slice_dim>{st::at(0)});
  st::thread_pool pool(2);
  st::load_options options;
  options.pool = &pool;
  options.consumer_thread = copied.present();
  if (auto plan = reader.try_plan(requests, options); !plan || plan->bytes() != plan->bytes_read()) return plan.error();
  std::uint64_t delivered = 0;
  if (auto loaded = reader.try_load(
          requests, [&](const st::load_piece& piece) { delivered += piece.bytes.size(); }, options);
      !loaded || delivered == 0)
    return loaded;
  reader.load(requests, [](const st::load_piece& piece) -> st::result<void> {
    if (piece.offset > piece.request) return st::error(st::error_kind::invalid_argument, "stop");
    return {};
  });
  if (reader.template read_as<float>("w").size() != reader.info("w").element_count)
    return reader.try_info("none").error();
  if (auto converted = reader.template try_read_as<std::int64_t>("b"); !converted) return converted.error();
  return reader.try_load_into(requests, options);
}

inline bool exercise_readers(const std::string& path, std::vector<std::byte> bytes) {
  const st::memory_reader memory = st::open_memory(bytes.data(), bytes.size());
  const st::buffer_reader buffer = st::open_buffer(bytes);
  const st::mapped_reader mapped = st::open(path);
  const st::pread_reader pread = st::open_pread(path);
  const auto blob =
      st::basic_reader<consumer::blob_storage>::try_open(consumer::blob_storage(std::move(bytes))).value();
  const st::tensor_info& first = mapped.tensors()[0];
  return read_all(memory) && read_all(buffer) && read_all(mapped) && read_all(pread) && read_all(blob) &&
         memory.try_view("w").has_value() && buffer.view(first).bytes.size() == first.byte_size() &&
         mapped.try_prefetch(first) && mapped.try_release(first) && exercise_views(mapped);
}

inline bool exercise_plan(const st::load_plan& plan) {
  plan.execute([](const st::load_piece&) {});
  plan.execute_into();
  return plan.try_execute([](const st::load_piece& piece) -> st::result<void> {
    if (piece.bytes.empty()) return st::error(st::error_kind::invalid_argument, "empty");
    return {};
  }) && plan.try_prefetch() &&
         plan.try_release() && plan.size() + plan.read_count() + plan.block_count() + plan.block_size() > 0;
}

inline void exercise_thread_pool(st::thread_pool& pool) {
  std::vector<int> seen(pool.size());
  auto task = [&](unsigned worker) { seen[worker] = 1; };
  pool.run(pool.size(), task);
}

// ---------------------------------------------------------------------------------------------
// Writers: every sink, both kinds of producer
// ---------------------------------------------------------------------------------------------

template <class Sink>
st::result<void> write_all(st::basic_writer<Sink>& writer, const std::vector<std::byte>& chunk) {
  for (const st::file_layout::entry& entry : writer.layout().entries()) {
    if (auto wrote = writer.try_write(entry.declaration.name, chunk); !wrote) return wrote;
  }
  if (auto produced = writer.try_produce(
          "a",
          [](st::span<std::byte> piece, std::uint64_t offset) {
    for (std::byte& b : piece) b = static_cast<std::byte>(offset);
          });
      !produced)
    return produced;
  if (auto produced = writer.try_produce("b",
                                         [](st::span<std::byte> piece, std::uint64_t) -> st::result<void> {
                                           if (piece.empty())
                                             return st::error(st::error_kind::invalid_argument, "empty piece");
                                           return {};
                                         });
      !produced)
    return produced;
  return writer.complete() && !writer.finished() ? writer.try_finish() : st::result<void>();
}

inline bool exercise_writers(const st::mapped_reader& reader, std::ostream& stream, const std::string& path) {
  std::vector<st::tensor_declaration> declarations = {{"a", st::dtype::F32, {2, 3}},
                                                      st::tensor_declaration::from(reader.info("b"))};
  const std::vector<std::byte> chunk(24);
  const std::vector<float> values(6);
  const std::vector<st::tensor_source> sources = {{declarations[0], st::span<const std::byte>(chunk)},
                                                  {"typed", values, {2, 3}},
                                                  {st::tensor_declaration::of<st::bfloat16>("empty", {0}), {}}};
  const st::metadata_entries metadata = std::map<std::string, std::string>{{"format", "pt"}};
  st::write_options options;
  options.alignment = 4096;
  options.sync = metadata.entries().empty();

  st::file_layout layout = st::file_layout::try_make(declarations, metadata, options).value();
  std::vector<std::byte> bytes;
  st::vector_sink vector_sink = st::vector_sink::try_create(bytes, layout.file_size()).value();
  st::vector_writer in_memory = st::vector_writer::try_start(layout, std::move(vector_sink)).value();
  st::stream_writer streamed = st::make_stream_writer(stream, declarations, metadata, options);
  st::file_writer to_file = st::make_file_writer(path, declarations);
  st::file_sink file_sink = st::file_sink::try_create(path, false).value();
  file_sink.discard();

  return write_all(in_memory, chunk) && write_all(streamed, chunk) && write_all(to_file, chunk) &&
         st::try_make_file_writer(path, declarations).has_value() &&
         st::try_make_stream_writer(stream, declarations).has_value() && st::try_serialize(sources).has_value() &&
         st::serialize(sources, metadata).size() == layout.file_size() && st::try_serialize(stream, sources) &&
         st::try_save(path, sources, metadata, options) && layout.find("a").has_value() &&
         layout.header().size() == layout.data_start() && layout.data_size() > 0;
}

// ---------------------------------------------------------------------------------------------
// Models (safetensors/model.hpp): every storage, every template member
// ---------------------------------------------------------------------------------------------

template <class Storage>
bool read_model(const st::basic_model_reader<Storage>& model, std::vector<std::byte>& destination) {
  const std::vector<st::load_request> requests = {model.request("w", st::span<std::byte>(destination)),
                                                  model.try_request("b", {}, {st::at(-1)}).value()};
  std::uint64_t delivered = 0;
  model.load(requests, [&](const st::load_piece& piece) { delivered += piece.bytes.size(); });
  model.load_into(requests);
  const st::tensor_slice slice = model.slice("w", {st::range(0, 1)});
  const st::tensor_info& info = model.info("w");
  std::size_t names = 0;
  for (const st::model_entry& entry : model.tensor_names()) names += entry.name.size() + entry.shard;
  return model.try_load(requests,
                        [](const st::load_piece& piece) -> st::result<void> {
                          if (piece.bytes.empty()) return st::error(st::error_kind::invalid_argument, "empty");
                          return {};
                        }) &&
         model.try_load_into(requests) && model.try_plan(requests).has_value() && model.try_validate() &&
         model.try_read(slice).has_value() && model.try_read_into(slice, st::span<std::byte>(destination)) &&
         model.try_read_into(info, st::span<std::byte>(destination)) &&
         model.try_read_part(info, 0, st::span<std::byte>(destination)) && model.read("w").size() == delivered &&
         model.try_read("b").has_value() && model.try_slice("b", {}).has_value() && model.try_info("w").has_value() &&
         model.try_reader_of("w").has_value() && model.try_shard(0).has_value() && model.contains("w") &&
         model.find("w") != nullptr && model.shard_paths().size() == model.shard_count() && model.size() == names &&
         model.index_path().empty() && model.total_size().has_value();
}

inline bool exercise_models(const std::string& directory, std::vector<std::byte>& destination) {
  const st::model_reader mapped = st::open_model(directory);
  const st::pread_model_reader pread = st::open_model_pread(directory);
  const auto blobs = st::basic_model_reader<blob_storage>::from_index(
      directory + "/model.safetensors.index.json", st::model_index::try_parse("{}").value(),
      [](const std::string&) -> st::result<blob_storage> { return blob_storage({}); });
  return read_model(mapped, destination) && read_model(pread, destination) && read_model(blobs, destination) &&
         mapped.view("w").bytes.size() == mapped.try_view("w")->bytes.size() && st::try_open_model(directory) &&
         st::try_open_model_pread(directory) && st::try_open_model_as<st::mapped_file>(directory);
}

inline bool exercise_sharded_writer(const std::string& directory, const std::vector<std::byte>& chunk) {
  st::shard_options options;
  options.max_shard_size = 1 << 20;
  options.base_name = "part";
  options.metadata = st::metadata_entries();
  options.write.alignment = 64;
  options.replace = true;
  std::vector<st::tensor_declaration> declarations = {{"a", st::dtype::F32, {2, 3}}, {"b", st::dtype::I64, {3}}};
  st::sharded_writer writer = st::make_sharded_writer(directory, declarations, options);
  return st::try_make_sharded_writer(directory, declarations).has_value() && writer.try_write("a", chunk) &&
         writer.try_produce("b", [](st::span<std::byte> piece, std::uint64_t) { piece[0] = std::byte{1}; }) &&
         writer.try_produce("b", [](st::span<std::byte>, std::uint64_t) { return st::result<void>(); }) &&
         writer.file_names().size() > writer.index_path().size() && writer.try_finish();
}

inline bool exercise_remote(const std::string& url, std::vector<std::byte>& destination) {
  st::remote_options options;
  options.connections = 4;
  options.bearer_token = "token";
  const st::remote_reader file = st::open_remote(url, options);
  const st::remote_model_reader model = st::open_remote_model(url + "/model.safetensors.index.json", options);
  const st::remote_statistics cost = file.storage().statistics();
  return read_model(model, destination) && st::try_open_remote(url).has_value() &&
         st::try_open_remote_model(url).has_value() && cost.requests >= cost.retries &&
         !file.storage().etag().empty() && st::remote_file::try_open(url, options).has_value();
}

inline bool exercise_any(const std::string& path, std::vector<std::byte>& destination) {
  const st::any_reader reader = st::open_pread(path);
  const st::memory_reader in_memory = st::open_memory(destination.data(), destination.size());
  const st::any_reader borrowed = st::any_reader::borrowing(in_memory);
  const st::any_model model = st::open_model(path);
  const st::load_request request = model.request("a", destination);
  auto consume = [](const st::load_piece&) { return st::result<void>(); };
  return reader.read_as<float>("a").size() + model.read_as<double>("a").size() > 0 &&
         reader.get<st::pread_file>() != nullptr && borrowed.has_views() &&
         model.try_load(st::span<const st::load_request>(&request, 1), consume) &&
         reader.try_load(st::span<const st::load_request>(&request, 1), consume) && model.shard(0).file_size() > 0 &&
         st::result<int>(1).value_or(2) == 1;
}

inline bool exercise_tp_plan(const std::string& path) {
  const st::tp_plan plan = st::tp_plan::preset("llama");
  const st::any_model model = st::open_model(path);
  const st::pread_reader reader = st::open_pread(path);
  const st::pread_model_reader sharded = st::open_model_pread(path);
  return st::try_tp_requests(model, plan, 2, 0).has_value() && st::try_tp_requests(reader, plan, 2, 1).has_value() &&
         st::try_tp_requests(sharded, st::tp_plan::parse("{}"), 1, 0).has_value() &&
         plan.style_of("lm_head.weight") == st::tp_style::colwise &&
         st::tp_style_name(st::tp_style::rowwise).size() == 7;
}

inline bool exercise_quant(const std::string& path, std::vector<std::byte>& destination) {
  const st::any_model model = st::open_model(path);
  const st::pread_reader reader = st::open_pread(path);
  auto in_model = st::try_quant_groups(model);
  auto in_file = st::try_quant_groups(reader, {64, 64});
  return in_model && in_file && !in_file->empty() &&
         st::try_dequantize(model, (*in_file)[0], st::dtype::BF16, destination).has_value() &&
         st::try_dequantize(reader, (*in_file)[0], st::dtype::F32, destination).has_value() &&
         st::try_dequantize(model, (*in_file)[0], st::dtype::F16, destination, st::tp_plan::preset("llama"), 2, 1)
             .has_value() &&
         !st::quant_scheme_name(st::quant_scheme::mxfp4).empty();
}

inline bool exercise_dequantized_loads(const std::string& path, std::vector<std::byte>& destination) {
  const st::pread_model_reader model = st::open_model_pread(path);
  const st::any_reader reader = st::open(path);
  auto groups = st::try_quant_groups(model, st::read_quant_config(path).fp8_block);
  auto requests = st::try_tp_requests(model, st::tp_plan::preset("llama"), 2, 0);
  if (!groups || !requests || groups->empty()) return false;
  auto part = st::dequantizer::try_make(reader, (*groups)[0], st::dtype::BF16);
  std::uint64_t bytes = 0;
  auto counted = [&](const st::load_piece& piece) { bytes += piece.bytes.size(); };
  return part && part->try_dequantize(0, destination, destination).has_value() &&
         st::try_load_dequantized(model, *requests, *groups, st::dtype::BF16, counted).has_value() &&
         st::try_dequantized_shape((*groups)[0], (*requests)[0]).has_value() &&
         st::quant_config::try_parse("{}").has_value() && bytes > 0;
}

inline bool exercise_arena(const std::string& path) {
  const st::pread_model_reader model = st::open_model_pread(path);
  std::vector<st::load_request> requests;
  for (const st::model_entry& entry : model.tensor_names()) requests.push_back(model.request(entry.name));
  auto arena = st::load_arena::try_make(requests, st::direct_io_alignment);
  st::load_options options;
  options.engine = st::io_engine::io_uring;
  options.queue_depth = 64;
  std::string why;
  return arena && arena->try_load_into(model, requests, options).has_value() && arena->huge_pages() &&
         st::io_uring_available(&why) && st::effective_io_engine(st::io_engine::automatic) == st::io_engine::threads &&
         !st::io_engine_name(options.engine).empty();
}

inline bool exercise_retry_policy(const st::retry_policy& policy) {
  return st::retry_policy::retries_status(503) && !st::retry_policy::retries_transport(CURLE_SSL_CONNECT_ERROR) &&
         policy.delay(1, 1.0, 0).count() > 0;
}

}  // namespace consumer

int main() {}
