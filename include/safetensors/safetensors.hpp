// safetensors-hpp: read and write the safetensors tensor file format. C++17 or later.
// https://github.com/huggingface/safetensors describes the format; this library follows the
// official Rust crate's behaviour (docs/FORMAT.md lists the rules it enforces).
//
// This is the core's umbrella: it includes every core header, each one concern, in layer order
// (a header includes only headers above it in this list). Internals live in safetensors::detail.
//   config.hpp        SAFETENSORS_VERSION_*, format_max_header_size, SAFETENSORS_EXCEPTIONS,
//                     SAFETENSORS_NO_FILESYSTEM
//   error.hpp         error_kind, error_kind_count, all_error_kinds, error_kind_name, error,
//                     exception, result<T>
//   span.hpp          span<T> (std::span under C++20)
//   dtype.hpp         dtype, dtype_count, all_dtypes, dtype_bits, dtype_names, dtype_name,
//                     dtype_from_name
//   numbers.hpp       bfloat16, float16, float8_e5m2, float8_e4m3, float8_e4m3fnuz, float8_e5m2fnuz,
//                     float8_e8m0; packing; convert
//   tensor.hpp        tensor_info, dtype_for, tensor_view, copy_to
//   slice.hpp         slice_dim, at, range, all, to_end, tensor_slice
//   json_scanner.hpp  detail: UTF-8 validation, json_scanner
//   header.hpp        metadata_map; detail: checked arithmetic, size_of_tensor, name_table,
//                     header_scanner, parse_header
//   storage.hpp       borrowed_bytes, owned_bytes, direct_io_alignment, the storage concept
//   file.hpp          mapped_file, pread_file, file_sink (the OS layer)
//   thread_pool.hpp   thread_pool
//   load_plan.hpp     load_options, load_request, load_piece, load_plan
//   reader.hpp        read_options, basic_reader<Storage>, memory_reader, buffer_reader,
//                     mapped_reader, pread_reader, try_open, try_open_pread, try_open_memory, ...
//   any_reader.hpp    any_reader: a reader of any storage, chosen at run time
//   writer.hpp        tensor_declaration, tensor_source, metadata_entries, write_options,
//                     file_layout, vector_sink, ostream_sink, basic_writer<Sink>, serialize, save,
//                     make_stream_writer, make_file_writer
//   tp_plan.hpp       tp_style, tp_plan (patterns to styles; the "llama" preset), try_tp_slices,
//                     try_tp_requests: a tensor-parallel rank's share of every tensor
//   quant.hpp         quant_scheme, quant_group, try_quant_groups, try_dequantize: NVFP4, MXFP4
//                     and block-scaled FP8 weights recognised and dequantized exactly
// Companions, each with what it needs beyond the core: safetensors/model.hpp (sharded models;
// nothing more) and safetensors/remote.hpp (HTTP, HTTPS and S3; libcurl).
// single_include/safetensors/safetensors.hpp is this core in one generated file, for vendoring.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_HPP
#define SAFETENSORS_HPP

#include "config.hpp"
#include "error.hpp"
#include "span.hpp"
#include "dtype.hpp"
#include "numbers.hpp"
#include "tensor.hpp"
#include "slice.hpp"
#include "json_scanner.hpp"
#include "header.hpp"
#include "storage.hpp"
#include "file.hpp"
#include "thread_pool.hpp"
#include "load_plan.hpp"
#include "arena.hpp"
#include "reader.hpp"
#include "any_reader.hpp"
#include "writer.hpp"
#include "tp_plan.hpp"
#include "quant.hpp"

#endif  // SAFETENSORS_HPP
