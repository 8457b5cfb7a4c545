// Shared by the benchmarks: a temporary directory for generated files, removed at exit.
#pragma once

#include <cstdlib>
#include <dirent.h>
#include <string>
#include <unistd.h>

namespace bench {

/// A fresh directory under $SAFETENSORS_BENCH_DIR (default /tmp), emptied and removed at exit.
inline const std::string& temp_directory() {
  struct directory {
    std::string path;
    directory() {
      const char* base = std::getenv("SAFETENSORS_BENCH_DIR");
      std::string pattern = std::string(base ? base : "/tmp") + "/safetensors-bench-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) std::abort();
      path = pattern;
    }
    ~directory() {
      if (DIR* dir = ::opendir(path.c_str())) {
        while (dirent* entry = ::readdir(dir)) {
          std::string name = entry->d_name;
          if (name != "." && name != "..") ::unlink((path + "/" + name).c_str());
        }
        ::closedir(dir);
      }
      ::rmdir(path.c_str());
    }
  };
  static directory instance;
  return instance.path;
}

}  // namespace bench
