// safetensors-hpp: the version and the configuration macros, which a user may define before
// including any header of the library.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_CONFIG_HPP
#define SAFETENSORS_CONFIG_HPP

#include <cstdint>

#define SAFETENSORS_VERSION_MAJOR 0
#define SAFETENSORS_VERSION_MINOR 2
#define SAFETENSORS_VERSION_PATCH 0

// ---------------------------------------------------------------------------------------------
// Configuration. Each macro may be defined by the user before including this header.
// ---------------------------------------------------------------------------------------------

// The largest header a reader accepts is a run-time option, read_options::max_header_size: as a
// macro, two translation units that set it differently would break the one-definition rule
// without a word from the compiler or the linker.
#ifdef SAFETENSORS_MAX_HEADER_SIZE
#error "SAFETENSORS_MAX_HEADER_SIZE is gone: set read_options::max_header_size (default 100,000,000) instead"
#endif

namespace safetensors {
/// The format's largest header, in bytes (the official reader's limit): what every writer keeps
/// to, and the default of read_options::max_header_size.
inline constexpr std::uint64_t format_max_header_size = 100000000;
}  // namespace safetensors

/// 1 when the throwing API is available. Detected from the compiler's exception support.
#ifndef SAFETENSORS_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || (defined(_MSC_VER) && defined(_CPPUNWIND))
#define SAFETENSORS_EXCEPTIONS 1
#else
#define SAFETENSORS_EXCEPTIONS 0
#endif
#endif

/// 1 to read files with io_uring on Linux: many reads in flight at once (load_options::engine);
/// the program then links liburing (-luring; CMake: the target safetensors::io_uring). 0, the
/// default, leaves it out entirely: no include, no symbol.
#ifndef SAFETENSORS_IO_URING
#define SAFETENSORS_IO_URING 0
#endif
#if SAFETENSORS_IO_URING && (!defined(__linux__) || defined(SAFETENSORS_NO_FILESYSTEM))
#error "SAFETENSORS_IO_URING needs Linux and the file storages"
#endif

/// Define SAFETENSORS_NO_FILESYSTEM to leave out the file storages (mapped_file, pread_file, file_sink)
/// and every operating-system include, e.g. on targets without a file system.

#endif  // SAFETENSORS_CONFIG_HPP
