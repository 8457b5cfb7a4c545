#!/usr/bin/env bash
# Checks safetensors-cli against the reference corpus: JSON output field by field against the
# manifests, error kinds and exit codes, and the layout of the human-readable table.
#
# Usage: test_cli.sh PATH/TO/safetensors-cli PATH/TO/tests/data/reference
# Prints "ok - ..." or "not ok - ..." per check, then "N passed, M failed"; exits 1 on a failure.

set -u

if [[ $# -ne 2 || ! -x $1 || ! -d $2 ]]; then
  echo "usage: $0 SAFETENSORS_CLI REFERENCE_DIR" >&2
  exit 2
fi
cli=$1
ref=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Assertions on the last run's output (in $work: out, err, rc). Each mode exits 0 when every
# assertion holds, else prints the first one that failed and exits 1.
checker=$(
  cat <<'PYTHON'
import json
import sys

work, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(work + "/out", "rb") as f:
    out = f.read()
with open(work + "/err", "rb") as f:
    err = f.read()
with open(work + "/rc") as f:
    rc = int(f.read())


def fail(message):
    print(message)
    sys.exit(1)


def expect(label, got, want):
    # type() too: True == 1 and 1 == 1.0 in Python, but not in the JSON the CLI promises.
    if got != want or type(got) is not type(want):
        fail(f"{label}: got {got!r}, want {want!r}")


def unique_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        fail(f"duplicate key in {keys}")
    return dict(pairs)


def one_json_object():
    if not out.endswith(b"\n") or out.count(b"\n") != 1:
        fail(f"stdout is not exactly one line: {out[:300]!r}")
    value = json.loads(out.decode("utf-8"), object_pairs_hook=unique_keys)
    if not isinstance(value, dict):
        fail(f"stdout is not a JSON object: {value!r}")
    return value


def load_manifest(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def valid_json(manifest_path):
    manifest = load_manifest(manifest_path)
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    got = one_json_object()
    expect("keys", list(got), ["ok", "header_length", "data_start", "metadata", "tensors"])
    expect("ok", got["ok"], True)
    expect("header_length", got["header_length"], manifest["header_length"])
    expect("data_start", got["data_start"], manifest["data_start"])
    expect("metadata", got["metadata"], manifest["metadata"])
    expect("tensor count", len(got["tensors"]), manifest["tensor_count"])
    for i, (tensor, want) in enumerate(zip(got["tensors"], manifest["tensors"])):
        expect(f"tensors[{i}] keys", list(tensor), ["name", "dtype", "shape", "data_offsets"])
        for field in ("name", "dtype", "shape", "data_offsets"):
            expect(f"tensors[{i}].{field}", tensor[field], want[field])


def error_json(kind, status, needle):
    expect("exit status", rc, int(status))
    expect("stderr", err, b"")
    got = one_json_object()
    expect("keys", list(got), ["ok", "error", "message"])
    expect("ok", got["ok"], False)
    expect("error", got["error"], kind)
    if not isinstance(got["message"], str) or needle not in got["message"]:
        fail(f"message {got['message']!r} does not contain {needle!r}")


def print_message():
    print(one_json_object()["message"], end="")


def error_text(status, expected):
    expect("exit status", rc, int(status))
    expect("stdout", out, b"")
    expect("stderr", err.decode("utf-8"), expected + "\n")


# Layout: summary line, "metadata: ..." line, one line per metadata entry, heading row, one
# row per tensor. Names are JSON string literals, cut to 60 columns with "...".
def table(manifest_path, shown_path):
    manifest = load_manifest(manifest_path)
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    text = out.decode("utf-8")
    if any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F for c in text):
        fail("the table holds a raw control character")
    if not text.endswith("\n"):
        fail("the table does not end with a newline")
    lines = text[:-1].split("\n")
    metadata = manifest["metadata"]
    count = manifest["tensor_count"]
    expect("line count", len(lines), count + 3 + len(metadata or {}))
    plural = "tensor" if count == 1 else "tensors"
    summary = (f"{json.dumps(shown_path)}: header_length {manifest['header_length']}, "
               f"data_start {manifest['data_start']}, {count} {plural}")
    expect("summary line", lines[0], summary)
    if metadata is None:
        expect("metadata line", lines[1], "metadata: none")
    rows = lines[2 + len(metadata or {}):]
    expect("heading", rows[0].split(), ["name", "dtype", "shape", "bytes", "offsets"])
    for row, want in zip(rows[1:], manifest["tensors"]):
        check_row(row, want)


def check_row(row, want):
    try:
        name, end = json.JSONDecoder().raw_decode(row)
    except json.JSONDecodeError:
        name, end = None, 60
    if name is not None:
        expect("name", name, want["name"])
    else:
        cell = row[:end]
        if not cell.endswith("..."):
            fail(f"row {row!r} starts with neither a name nor a name cut to 60 columns")
        prefix = json.loads(cell[:-3] + '"')
        if not want["name"].startswith(prefix):
            fail(f"cut name {cell!r} is not a prefix of {want['name']!r}")
    if end > 60 or row[end:end + 2] != "  ":
        fail(f"name column of {row!r} is wider than 60 columns")
    shape = "[" + ", ".join(str(d) for d in want["shape"]) + "]"
    start, stop = want["data_offsets"]
    tail = f"{want['byte_length']}  [{start}, {stop})"
    if not row.endswith(tail) or f"  {want['dtype']} " not in row or f"  {shape} " not in row:
        fail(f"row {row!r} does not show {want['dtype']} {shape} {tail}")


modes = {"valid_json": valid_json, "error_json": error_json, "message": print_message,
         "error_text": error_text, "table": table}
modes[mode](*args)
PYTHON
)

passed=0
failed=0

# check DESCRIPTION COMMAND...: runs COMMAND and records "ok" or "not ok" with its output.
check() {
  local description=$1 output
  shift
  if output=$("$@" 2>&1); then
    printf 'ok - %s\n' "$description"
    passed=$((passed + 1))
  else
    printf 'not ok - %s\n' "$description"
    [[ -z $output ]] || printf '%s\n' "$output" | sed 's/^/#   /'
    failed=$((failed + 1))
  fi
}

# Runs the CLI, keeping stdout, stderr and the exit status for the assertions.
run() {
  "$cli" "$@" >"$work/out" 2>"$work/err"
  echo $? >"$work/rc"
}

assert() { python3 -c "$checker" "$work" "$@"; }

# exit_status LOW [HIGH]: the last run's exit status is LOW, or within LOW..HIGH.
exit_status() {
  local status
  status=$(<"$work/rc")
  if ((status < $1 || status > ${2:-$1})); then
    echo "exit status $status, want $1${2:+..$2}"
    return 1
  fi
}

check_valid_json() {
  local file=$1
  run inspect --json "$ref/$file"
  check "inspect --json $file matches its manifest" assert valid_json "$ref/$file.json"
}

# The JSON and text forms of one error: kind and exit status, then the exact stderr line, which
# must carry the same message.
check_error() {
  local path=$1 label=$2 kind=$3 status=$4 needle=$5 message
  run inspect --json "$path"
  check "inspect --json $label: exit $status, $kind" assert error_json "$kind" "$status" "$needle"
  message=$(assert message)
  run inspect "$path"
  check "inspect $label: exit $status, one line on stderr" \
    assert error_text "$status" "safetensors-cli: \"$path\": $kind: $message"
}

check_table() {
  local file=$1
  run inspect "$ref/$file"
  check "inspect $file: table of tensor_count + 3 + metadata entries lines" \
    assert table "$ref/$file.json" "$ref/$file"
}

check_valid_json valid/ordering.safetensors
check_valid_json valid/empty.safetensors
check_valid_json valid/mixed_all_dtypes.safetensors
check_valid_json valid/odd_names.safetensors

check_error "$ref/invalid/offsets_overlap.safetensors" invalid/offsets_overlap.safetensors \
  InvalidOffset 1 '"b"'
check_error "$work/missing.safetensors" "a missing file" IoError 2 "$work/missing.safetensors"
check_error "$ref/valid" "a directory" IoError 2 "$ref/valid"

check_table valid/odd_names.safetensors
check_table valid/mixed_all_dtypes.safetensors
check_table valid/empty.safetensors

# rewrite: byte-identical for files with at most one metadata key; --align moves the data start.
for file in valid/ordering.safetensors valid/odd_names.safetensors valid/many_tensors_5000.safetensors; do
  run rewrite "$ref/$file" "$work/rewritten.safetensors"
  check "rewrite $file: exit 0" exit_status 0
  check "rewrite $file: the same bytes as the official writer's" cmp "$ref/$file" "$work/rewritten.safetensors"
done
run rewrite "$ref/valid/ordering.safetensors" "$work/aligned.safetensors" --align 4096
check "rewrite --align 4096: exit 0" exit_status 0
run inspect --json "$work/aligned.safetensors"
check "rewrite --align 4096: data starts at 4096" python3 -c \
  'import json,sys; sys.exit(json.load(open(sys.argv[1]))["data_start"] != 4096)' "$work/out"
run rewrite "$ref/valid/ordering.safetensors" "$work/bad.safetensors" --align 12
check "rewrite --align 12: exit 1" exit_status 1
check "rewrite --align 12: nothing written" test ! -e "$work/bad.safetensors"
run rewrite "$ref/invalid/offsets_overlap.safetensors" "$work/bad.safetensors"
check "rewrite of an invalid file: exit 1" exit_status 1
check "rewrite of an invalid file: nothing written" test ! -e "$work/bad.safetensors"
run rewrite "$work/missing.safetensors" "$work/bad.safetensors"
check "rewrite of a missing file: exit 2" exit_status 2

run --help
check "--help: exit 0" exit_status 0
check "--help lists inspect" grep -q '^ *inspect ' "$work/out"
run inspect --help
check "inspect --help: exit 0" exit_status 0
check "inspect --help lists --json" grep -q -- '--json' "$work/out"
run
check "no subcommand: a usage error, exit 100 or more (CLI11's codes)" exit_status 100 255

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
