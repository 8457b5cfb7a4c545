#!/usr/bin/env python3
"""Compiles all_headers.cpp with every warning, as an error, and lists what the headers give.

all_headers.cpp includes every public header through a plain -I, as a consumer's code does (no
warning is silenced as coming from a system header), and instantiates the API. It is compiled
with gcc and clang, C++17 and C++20, -fsyntax-only (nothing to link or run), all four at once.
Each warning is printed once, as FILE:LINE:COLUMN: [-Wflag] message, with the builds that gave
it; the compilers' whole output is in the log directory. Exits 1 if any build fails.

    check.py [--gcc g++] [--clang clang++] [--logs DIR]
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "warnings" / "all_headers.cpp"
INCLUDE = ROOT / "include"

GCC_FLAGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wold-style-cast",
             "-Wnon-virtual-dtor"]
CLANG_FLAGS = [
    "-ferror-limit=0",  # every warning, not the first 20 (-Werror makes each an error)
    "-Weverything",
    # The library is C++17: these report what C++98, C++11 or C++14 would refuse (auto, constexpr
    # if, nested namespaces, ...), which is every line of it.
    "-Wno-c++98-compat", "-Wno-c++98-compat-pedantic", "-Wno-pre-c++14-compat", "-Wno-pre-c++17-compat",
    # Reports every struct whose members leave padding bytes: a fact of layout, not a defect, and
    # reordering members for it would put them out of their reading order.
    "-Wno-padded",
    # A class with virtual functions (safetensors::exception, which std::runtime_error gives some)
    # has its vtable in every translation unit unless one of its functions is defined out of
    # line, which a header-only library cannot do.
    "-Wno-weak-vtables",
    # Wants every enumerator named in a switch even when it has a default label, so that a switch
    # on dtype could not say "every other dtype"; -Wswitch (in -Wall) still reports a switch
    # without a default that misses an enumerator.
    "-Wno-switch-enum",
    # Comparing floats exactly is what a library that converts between float formats must do (is
    # this double a whole number? did the value survive?).
    "-Wno-float-equal",
    # Reports range checks that can only fail where std::size_t is narrower than 64 bits (a
    # std::uint64_t size against SIZE_MAX), i.e. the checks that keep 32-bit targets correct;
    # clang left it out of -Wtautological-compare for that reason.
    "-Wno-tautological-type-limit-compare",
]
STANDARDS = ["c++17", "c++20"]

# "file:line:column: warning: message [-Wflag]"; with -Werror gcc writes [-Werror=flag] and clang
# [-Werror,-Wflag].
DIAGNOSTIC = re.compile(r"^(?P<where>[^:\s][^:]*:\d+:\d+): (?:warning|error): (?P<message>.*) "
                        r"\[(?:-Werror[=,])?-?W?(?P<flag>[^\]]+)\]$")
# An error that no warning flag made: all_headers.cpp no longer compiles against the headers.
HARD_ERROR = re.compile(r": (?:fatal )?error: ")


# The C++20 builds compile the io_uring reader too (SAFETENSORS_IO_URING), where liburing's header is.
IO_URING = ["-DSAFETENSORS_IO_URING=1"] if Path("/usr/include/liburing.h").exists() else []


def compile_one(compiler, flags, standard, logs):
    name = f"{Path(compiler).name} -std={standard}" + (" io_uring" if standard == "c++20" and IO_URING else "")
    # Relative paths, so that messages name include/safetensors/...
    command = [compiler, f"-std={standard}", *flags, *(IO_URING if standard == "c++20" else []), "-Werror",
               "-fsyntax-only", "-I", str(INCLUDE.relative_to(ROOT)), str(SOURCE.relative_to(ROOT))]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "LC_ALL": "C"})
    output = run.stdout + run.stderr
    (logs / f"{Path(compiler).name}-{standard}.log").write_text(" ".join(command) + "\n" + output, encoding="utf-8")
    return name, run.returncode, output


def compile_alone(compiler, header, logs):
    """Compiles a translation unit that includes `header` alone, C++17, every gcc warning an error."""
    command = [compiler, "-std=c++17", "-fsyntax-only", "-Werror", *GCC_FLAGS, "-I", str(INCLUDE), "-x", "c++", "-"]
    done = subprocess.run(command, input=f"#include <safetensors/{header}>\n", capture_output=True, text=True)
    (logs / f"alone-{header}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    return header, done.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gcc", default="g++")
    parser.add_argument("--clang", default="clang++")
    parser.add_argument("--logs", type=Path, default=ROOT / "build" / "warnings")
    arguments = parser.parse_args()

    text = SOURCE.read_text(encoding="utf-8")
    headers = sorted(header.name for header in (INCLUDE / "safetensors").glob("*.hpp"))
    missing = [header.name for header in sorted((INCLUDE / "safetensors").glob("*.hpp"))
               if f"#include <safetensors/{header.name}>" not in text]
    if missing:
        print(f"{SOURCE.relative_to(ROOT)} does not include the public headers {', '.join(missing)}")
        return 1

    arguments.logs.mkdir(parents=True, exist_ok=True)
    builds = [(arguments.gcc, GCC_FLAGS, standard) for standard in STANDARDS]
    builds += [(arguments.clang, CLANG_FLAGS, standard) for standard in STANDARDS]
    with concurrent.futures.ThreadPoolExecutor(len(builds)) as pool:
        results = list(pool.map(lambda build: compile_one(*build, arguments.logs), builds))
        # Each header alone, with gcc's warnings: every one must include what it uses.
        alone = list(pool.map(lambda header: compile_alone(arguments.gcc, header, arguments.logs), headers))
    not_alone = [name for name, returncode in alone if returncode != 0]
    if not_alone:
        print(f"headers that do not compile alone: {', '.join(not_alone)} (output in {arguments.logs})")
        return 1

    found = {}  # (where, flag, message) -> builds that gave it
    failed = []
    for name, returncode, output in results:
        hard_error = False
        for line in output.splitlines():
            diagnostic = DIAGNOSTIC.match(line)
            if diagnostic:
                key = (diagnostic["where"], "-W" + diagnostic["flag"], diagnostic["message"])
                found.setdefault(key, []).append(name)
            elif HARD_ERROR.search(line):
                hard_error = True
        if returncode != 0:
            failed.append(name)
        if hard_error:
            print(f"{name} gives errors that are not warnings:\n{output}")
    def by_place(item):
        file, line, column = item[0][0].rsplit(":", 2)
        return file, int(line), int(column), item[0][1]

    for (where, flag, message), names in sorted(found.items(), key=by_place):
        print(f"{where}: [{flag}] {message} ({', '.join(names)})")
    if failed:
        print(f"{len(found)} warnings; failed: {', '.join(failed)}; the compilers' output is in {arguments.logs}")
        return 1
    print(f"no warnings: {', '.join(name for name, _, _ in results)} (flags in {Path(__file__).relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
