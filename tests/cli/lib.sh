# The shared half of test_cli.sh and test_cli_commands.sh, sourced by both: arguments, a scratch
# directory, the check/run/assert helpers and the corpus files both use.

if [[ $# -ne 2 || ! -x $1 || ! -d $2 ]]; then
  echo "usage: $0 SAFETENSORS_CLI REFERENCE_DIR" >&2
  exit 2
fi
cli=$1
ref=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The Python halves: checker.py (assertions on one run's output), corpus.py (checks over many
# runs, and test-file generators), common.py (what both use).
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

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

assert() { python3 "$here/checker.py" "$work" "$@"; }

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
  check "inspect --json $file matches its manifest" assert valid_json "$ref/$file.json" "$ref/$file"
}

# The JSON and text forms of one error: kind and exit status, then the exact stderr line, which
# carries the same message whole (the message names the file).
check_error() {
  local path=$1 label=$2 kind=$3 status=$4 needle=$5 message
  run inspect --json "$path"
  check "inspect --json $label: exit $status, $kind" assert error_json "$kind" "$status" "$needle"
  message=$(assert message)
  run inspect "$path"
  check "inspect $label: exit $status, one line on stderr" \
    assert error_text "$status" "safetensors-cli: $kind: $message"
}

check_table() {
  local file=$1
  run inspect "$ref/$file"
  check "inspect $file: table of tensor_count + 3 + metadata entries lines" \
    assert table "$ref/$file.json" "$ref/$file"
}


f32=$ref/valid/dtype_F32.safetensors
mixed=$ref/valid/mixed_all_dtypes.safetensors
many=$ref/valid/many_tensors_5000.safetensors
many_metadata='{"count": "5000"}'
ordering=$ref/valid/ordering.safetensors
expected() { python3 "$here/expected.py" "$@"; }

# Prints the count of checks passed and failed; fails if any did.
summary() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
