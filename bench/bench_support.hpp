// Shared by the benchmarks: a temporary directory for generated files, removed at exit.
#pragma once

#include <cstdlib>
#include <dirent.h>
#include <string>
#include <unistd.h>

namespace bench {

/// A fresh directory under $SAFETENSORS_BENCH_DIR (default /tmp), removed with its contents at exit.
inline const std::string& temp_directory() {
  struct directory {
    std::string path;
    directory() {
      const char* base = std::getenv("SAFETENSORS_BENCH_DIR");
      std::string pattern = std::string(base ? base : "/tmp") + "/safetensors-bench-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) std::abort();
      path = pattern;
    }
    ~directory() { remove_tree(path); }
    // Models are written in subdirectories of their own.
    static void remove_tree(const std::string& at) {
      if (DIR* dir = ::opendir(at.c_str())) {
        while (dirent* entry = ::readdir(dir)) {
          const std::string name = entry->d_name;
          if (name == "." || name == "..") continue;
          if (entry->d_type == DT_DIR) {
            remove_tree(at + "/" + name);
          } else {
            ::unlink((at + "/" + name).c_str());
          }
        }
        ::closedir(dir);
      }
      ::rmdir(at.c_str());
    }
  };
  static directory instance;
  return instance.path;
}

}  // namespace bench
