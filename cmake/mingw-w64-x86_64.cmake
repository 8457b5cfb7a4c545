# Cross-compiling for 64-bit Windows with Debian's mingw-w64 (g++-mingw-w64-x86-64), the POSIX
# threads flavour (std::thread). Programs are linked statically, so that wine runs them without
# the compiler's DLLs: `wine64 program.exe` (tests/run.sh, "windows").
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
# Unity builds at -O0 hold more sections than a plain COFF object may.
set(CMAKE_CXX_FLAGS_INIT "-Wa,-mbig-obj")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# Header-only dependencies (Catch2, nlohmann_json, CLI11) are the build machine's; libraries are
# not: libcurl and OpenSSL are left out (the tool hashes with Windows' own BCrypt there).
set(CMAKE_DISABLE_FIND_PACKAGE_CURL ON)
