#!/usr/bin/env python3
"""Compiles the C++ code of the documentation that is a complete program.

A block is a Markdown fence whose info string is cpp (or c++, cxx, cc); it is a complete program
when it defines `int main`. The other blocks are fragments (declarations, a few calls) and are not
compiled. Each program is checked with -fsyntax-only, warnings as errors, against include/; a
`#line` directive makes the compiler's messages name the Markdown file and line. Exits 1 when a
program fails, naming its file and line.

    check_snippets.py [--compiler CXX] [--include DIR] [MARKDOWN...]

Defaults: $CXX or c++, the repository's include/, README.md and docs/API.md.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CPP_FENCES = {"cpp", "c++", "cxx", "cc"}
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only"]
MAIN = re.compile(r"\bint\s+main\s*\(")


def cpp_blocks(path):
    """(line of the block's first code line, code) for every C++ fenced block of `path`."""
    blocks = []
    fence = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if fence is None:
            if stripped.startswith("```"):
                fence = {"cpp": stripped[3:].strip().lower() in CPP_FENCES, "first": number + 1, "lines": []}
        elif stripped.startswith("```"):
            if fence["cpp"]:
                blocks.append((fence["first"], "\n".join(fence["lines"]) + "\n"))
            fence = None
        else:
            fence["lines"].append(line)
    if fence is not None:
        raise SystemExit(f"{path}: the block at line {fence['first'] - 1} is not closed")
    return blocks


def compile_program(compiler, include, shown_path, first_line, code, scratch):
    source = Path(scratch) / f"{shown_path.replace('/', '_')}_{first_line}.cpp"
    source.write_text(f'#line {first_line} "{shown_path}"\n{code}', encoding="utf-8")
    run = subprocess.run([compiler, *FLAGS, "-I", str(include), str(source)], capture_output=True, text=True)
    return run.returncode == 0, run.stdout + run.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiler", default=os.environ.get("CXX", "c++"))
    parser.add_argument("--include", type=Path, default=ROOT / "include")
    parser.add_argument("markdown", nargs="*", type=Path, default=[ROOT / "README.md", ROOT / "docs" / "API.md"])
    arguments = parser.parse_args()

    programs = []
    fragments = 0
    for path in arguments.markdown:
        path = path.resolve()
        shown = os.path.relpath(path, ROOT) if path.is_relative_to(ROOT) else str(path)
        for first_line, code in cpp_blocks(path):
            if MAIN.search(code):
                programs.append((shown, first_line, code))
            else:
                fragments += 1
    if not programs:
        print("no C++ block of the documentation is a complete program (none defines int main)")
        return 1

    with tempfile.TemporaryDirectory() as scratch, concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        outcomes = pool.map(
            lambda program: compile_program(arguments.compiler, arguments.include, *program, scratch), programs)
        failed = 0
        for (shown, first_line, _), (ok, output) in zip(programs, outcomes):
            if ok:
                print(f"ok - {shown}:{first_line}")
            else:
                failed += 1
                print(f"FAIL - {shown}:{first_line}: the program there does not compile cleanly:\n{output}")
    print(f"{len(programs) - failed} of {len(programs)} complete programs compile cleanly "
          f"({arguments.compiler} {' '.join(FLAGS)}); {fragments} fragments not compiled")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
