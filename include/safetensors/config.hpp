// safetensors-hpp: the version and the configuration macros, which a user may define before
// including any header of the library.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_CONFIG_HPP
#define SAFETENSORS_CONFIG_HPP

#define SAFETENSORS_VERSION_MAJOR 0
#define SAFETENSORS_VERSION_MINOR 2
#define SAFETENSORS_VERSION_PATCH 0

// ---------------------------------------------------------------------------------------------
// Configuration. Each macro may be defined by the user before including this header.
// ---------------------------------------------------------------------------------------------

/// Largest header length accepted, in bytes. The format's limit is 100,000,000; an engine that
/// only opens small files may lower it to bound the memory a hostile file can ask for.
#ifndef SAFETENSORS_MAX_HEADER_SIZE
#define SAFETENSORS_MAX_HEADER_SIZE 100000000ULL
#endif

/// 1 when the throwing API is available. Detected from the compiler's exception support.
#ifndef SAFETENSORS_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || (defined(_MSC_VER) && defined(_CPPUNWIND))
#define SAFETENSORS_EXCEPTIONS 1
#else
#define SAFETENSORS_EXCEPTIONS 0
#endif
#endif

/// Define SAFETENSORS_NO_FILESYSTEM to leave out the file storages (mapped_file, pread_file, file_sink)
/// and every operating-system include, e.g. on targets without a file system.

#endif  // SAFETENSORS_CONFIG_HPP
