#!/usr/bin/env bash
# safetensors-cli over URLs, against the servers of tests/remote started on 127.0.0.1 (nginx, S3
# behind the Signature V4 check) and stopped at the end: every corpus file inspected over HTTP and
# S3 gives what it gives from disk (output, error kind, exit status); inspect of a file costs one
# request (nginx's access log); load, hash, diff, verify, dump and convert of a sharded model and
# of a file over HTTP, S3 and a redirect give what they give locally; a wrong S3 secret and a
# missing file are I/O errors (exit 2) that say why.
#
# Usage: test_cli_remote.sh PATH/TO/safetensors-cli REFERENCE_DIR S3RVER_DIR
# Prints "ok - ..." or "not ok - ..." per check, then "N passed, M failed"; exits 1 on a failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
export PYTHONDONTWRITEBYTECODE=1

if [[ ${1:-} == --against-servers ]]; then
  cli=$2
  data=$SAFETENSORS_REMOTE_DATA_DIR
  http=$SAFETENSORS_REMOTE_HTTP_URL
  s3=s3://$SAFETENSORS_REMOTE_S3_BUCKET
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  passed=0
  failed=0
  record() {
    if [[ $1 == 0 ]]; then
      printf 'ok - %s\n' "$2"
      passed=$((passed + 1))
    else
      printf 'not ok - %s\n' "$2"
      [[ -z ${3:-} ]] || printf '%s\n' "$3" | sed 's/^/#   /'
      failed=$((failed + 1))
    fi
  }
  # same_run DESCRIPTION LOCAL_PATH URL ARGS...: the CLI's output and exit status for URL are those
  # for LOCAL_PATH, with the URL in place of the path and timings left out.
  same_run() {
    local description=$1 local_path=$2 url=$3 difference
    shift 3
    "$cli" "$@" "$local_path" >"$out/local" 2>"$out/local.err"
    echo $? >"$out/local.rc"
    "$cli" "$@" "$url" >"$out/remote" 2>"$out/remote.err"
    echo $? >"$out/remote.rc"
    difference=$(python3 "$here/remote_compare.py" "$out" "$local_path" "$url" 2>&1)
    record $? "$description" "$difference"
  }

  for file in "$data"/reference/*/*.safetensors; do
    relative=${file#"$data"/}
    same_run "inspect --json over HTTP: $relative" "$file" "$http/$relative" inspect --json
  done
  for file in "$data"/reference/valid/*.safetensors; do
    relative=${file#"$data"/}
    same_run "inspect --json over S3: $relative" "$file" "$s3/$relative" inspect --json
  done

  before=$(wc -l <"$SAFETENSORS_REMOTE_NGINX_ACCESS_LOG")
  "$cli" inspect "$http/layers.safetensors" >/dev/null
  requests=$(tail -n +"$((before + 1))" "$SAFETENSORS_REMOTE_NGINX_ACCESS_LOG" | grep -c '"uri":"/layers.safetensors"')
  record $((requests != 1)) "inspect of a remote file: one request ($requests)"

  # A password in a URL is never printed, in text or JSON, in what succeeds or fails.
  secret=${http/http:\/\//http://reader:hunter2@}
  shown=${http/http:\/\//http://reader:***@}
  for run in "inspect $secret/layers.safetensors" "inspect --json $secret/layers.safetensors" \
             "inspect $secret/model/model.safetensors.index.json" \
             "inspect --json $secret/model/model.safetensors.index.json" \
             "validate --json $secret/model/model.safetensors.index.json" \
             "load $secret/model/model.safetensors.index.json" \
             "inspect $secret/missing.safetensors" "inspect --json $secret/missing.safetensors"; do
    read -r -a words <<<"$run"
    "$cli" "${words[@]}" >"$out/secret" 2>&1
    status=$?
    ! grep -q hunter2 "$out/secret" && grep -qF "$shown" "$out/secret"
    record $? "${run/hunter2/***}: the password is not shown (exit $status)" "$(head -c 600 "$out/secret")"
  done

  # --timeout ends a read that a server trickles (200 bytes a second): exit 2, the deadline named.
  "$cli" inspect --timeout 1 "$SAFETENSORS_REMOTE_FAULT_URL/fault/trickle=200/layers.safetensors" >"$out/slow" 2>&1
  status=$?
  [[ $status == 2 ]] && grep -q "deadline of 1000 ms has passed" "$out/slow"
  record $? "inspect --timeout 1 of a file trickled at 200 bytes a second: exit 2 ($status), the deadline named" \
    "$(cat "$out/slow")"

  index=model/model.safetensors.index.json
  for source in "$http/$index" "$s3/$index" "$http/redirect/$index"; do
    same_run "load --json --digest --connections 3: $source" "$data/$index" "$source" load --json --digest --connections 3
    same_run "load --json --digest of rank 1 of 2, dimension 1: $source" "$data/$index" "$source" \
      load --json --digest --tp-size 2 --tp-rank 1 --tp-dim 1
    same_run "hash --json: $source" "$data/$index" "$source" hash --json
    same_run "stats --json: $source" "$data/$index" "$source" stats --json
    same_run "validate --json: $source" "$data/$index" "$source" validate --json
  done
  same_run "dump --json --slice of a file over S3" "$data/layers.safetensors" "$s3/layers.safetensors" \
    dump --json --slice "2:5,-3:" w1

  "$cli" diff "$http/$index" "$data/layers.safetensors" >"$out/diff" 2>&1
  record $? "diff of the model over HTTP and the file it was split from: equal" "$(cat "$out/diff")"
  "$cli" hash --json "$data/layers.safetensors" >"$out/manifest.json"
  "$cli" verify "$s3/layers.safetensors" "$out/manifest.json" >"$out/verify" 2>&1
  record $? "verify of a file over S3 against its local manifest" "$(cat "$out/verify")"
  "$cli" convert "$data/layers.safetensors" "$out/local.safetensors" --dtype F32 >/dev/null 2>&1
  "$cli" convert "$http/layers.safetensors" "$out/remote.safetensors" --dtype F32 >/dev/null 2>&1
  cmp "$out/local.safetensors" "$out/remote.safetensors" >"$out/cmp" 2>&1
  record $? "convert --dtype F32 of a file over HTTP writes the bytes it writes from disk" "$(cat "$out/cmp")"

  AWS_SECRET_ACCESS_KEY=$SAFETENSORS_REMOTE_S3_WRONG_SECRET_ACCESS_KEY "$cli" inspect "$s3/layers.safetensors" \
    >"$out/wrong" 2>&1
  status=$?
  grep -q 'HTTP status 403 (SignatureDoesNotMatch)' "$out/wrong"
  record $((status != 2 || $? != 0)) "a wrong S3 secret: exit 2 ($status), SignatureDoesNotMatch named" \
    "$(cat "$out/wrong")"
  "$cli" inspect --json "$http/missing.safetensors" >"$out/missing" 2>&1
  status=$?
  grep -q '"error":"IoError".*HTTP status 404' "$out/missing"
  record $((status != 2 || $? != 0)) "a missing file over HTTP: exit 2 ($status), IoError, status 404" \
    "$(cat "$out/missing")"

  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit
fi

if [[ $# -ne 3 || ! -x $1 || ! -d $2 ]]; then
  echo "usage: $0 SAFETENSORS_CLI REFERENCE_DIR S3RVER_DIR" >&2
  exit 2
fi
cli=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/reference"
cp -r "$2/valid" "$2/invalid" "$work/data/reference/"
python3 "$here/expected.py" make_load_file "$work/data/layers.safetensors"
"$cli" split "$work/data/layers.safetensors" "$work/data/model" --max-shard-size 100KB >/dev/null
/usr/bin/python3 "$here/../remote/with_servers.py" --s3rver-dir "$3" "$work/data" -- \
  bash "$here/test_cli_remote.sh" --against-servers "$cli"
