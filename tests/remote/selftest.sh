#!/usr/bin/env bash
# Self-tests of tests/remote: the servers (selftest_servers.py, run under with_servers.py) and the
# runner itself: the command's exit status, every server stopped afterwards (also on SIGTERM and
# SIGINT), a server that dies mid-command, a server that fails or hangs at start.
# Usage: selftest.sh [S3RVER_DIR]   (where npm installs s3rver, once; default build/remote-s3rver)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
s3rver_dir=${1:-$here/../../build/remote-s3rver}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
runner=(/usr/bin/python3 "$here/with_servers.py" --s3rver-dir "$s3rver_dir")
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }

data=$scratch/data
mkdir -p "$data/sub"
/usr/bin/python3 - "$data" <<'EOF'
import random, sys
generator = random.Random(11)
with open(f"{sys.argv[1]}/data.bin", "wb") as file:
    file.write(generator.randbytes(1024 * 1024 + 123))
with open(f"{sys.argv[1]}/sub/nested.bin", "wb") as file:
    file.write(generator.randbytes(3000))
with open(f"{sys.argv[1]}/sub/name with space+plus.bin", "wb") as file:
    file.write(generator.randbytes(100))
EOF

# A command for with_servers.py that writes, into directory $1, its environment and the session
# ids of the runner's children (each server leads a session of its own), then runs the rest.
record='dir=$1; shift; env > "$dir/env"
for stat in /proc/[0-9]*/stat; do
  { read -r line < "$stat"; } 2>/dev/null || continue
  pid=${line%% *}
  set -- ${line##*) }
  [ "$2" = "$PPID" ] && [ "$4" = "$pid" ] && echo "$pid"
done > "$dir/sessions"; echo $$ > "$dir/command.pid"'

# Whether everything the runner started is gone: no process left in the servers' sessions, no
# answer on their ports, no command process.
all_stopped() {
  local dir=$1 stat line fields sessions url
  sessions=" $(tr '\n' ' ' < "$dir/sessions")"
  [[ $(wc -l < "$dir/sessions") -ge 4 ]] || { echo "fewer than 4 servers recorded"; return 1; }
  for stat in /proc/[0-9]*/stat; do
    { read -r line < "$stat"; } 2>/dev/null || continue
    read -ra fields <<< "${line##*) }"
    if [[ $sessions == *" ${fields[3]} "* ]]; then echo "process ${stat//[^0-9]/} is left"; return 1; fi
  done
  for url in SAFETENSORS_REMOTE_HTTP_URL AWS_ENDPOINT_URL SAFETENSORS_REMOTE_FAULT_URL; do
    url=$(grep "^$url=" "$dir/env" | cut -d= -f2-)
    curl -s -o /dev/null --max-time 5 "$url/"
    [[ $? == 7 ]] || { echo "$url still answers"; return 1; }
  done
  [[ ! -e /proc/$(cat "$dir/command.pid") ]] || { echo "the command is left"; return 1; }
}

wait_for_file() {
  local deadline=$((SECONDS + 60))
  until [[ -s $1 ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# 1. Every server, as README.md documents it. The caller's AWS variables and HTTP proxy must not
# reach the command.
if env AWS_SESSION_TOKEN=from-the-caller AWS_PROFILE=from-the-caller http_proxy=http://127.0.0.1:9 \
    "${runner[@]}" "$data" -- /usr/bin/python3 "$here/selftest_servers.py"; then
  pass "servers behave as documented"
else
  fail "servers behave as documented"
fi

# 2. The command's exit status, and nothing left running afterwards.
mkdir "$scratch/exit"
"${runner[@]}" "$data" -- sh -c "$record"'; exit 7' sh "$scratch/exit" 2>/dev/null
status=$?
if [[ $status == 7 ]] && all_stopped "$scratch/exit"; then
  pass "the command's exit status (7) is the runner's; every server stopped"
else
  fail "exit status $status (want 7), or a server left"
fi

"${runner[@]}" "$data" -- sh -c 'kill -TERM $$' 2>/dev/null
status=$?
if [[ $status == 143 ]]; then
  pass "a command killed by SIGTERM: exit status 143"
else
  fail "a command killed by SIGTERM: exit status $status (want 143)"
fi

# 3. Stopped by a signal while the command runs: the command and every server end.
for signal in TERM INT; do
  mkdir "$scratch/$signal"
  "${runner[@]}" "$data" -- sh -c "$record"'; exec sleep 60' sh "$scratch/$signal" 2>/dev/null &
  runner_pid=$!
  if ! wait_for_file "$scratch/$signal/command.pid"; then
    fail "SIG$signal: the command did not start"
    kill -KILL "$runner_pid"
    continue
  fi
  began=$SECONDS
  kill "-$signal" "$runner_pid"
  wait "$runner_pid"
  status=$?
  want=$((128 + $(kill -l "$signal")))
  if [[ $status == "$want" ]] && ((SECONDS - began < 15)) && all_stopped "$scratch/$signal"; then
    pass "SIG$signal stops the command and every server; exit status $want"
  else
    fail "SIG$signal: exit status $status (want $want) after $((SECONDS - began)) s, or something left"
  fi
done

# 4. A server that dies while the command runs stops the command, and the runner says which.
mkdir "$scratch/dies"
began=$SECONDS
"${runner[@]}" "$data" -- sh -c "$record"'; kill $(cat "$(dirname "$SAFETENSORS_REMOTE_NGINX_ACCESS_LOG")/nginx.pid"); exec sleep 60' \
  sh "$scratch/dies" 2> "$scratch/dies/stderr"
status=$?
if [[ $status == 1 ]] && ((SECONDS - began < 20)) && grep -q "nginx exited with status 0 while the command ran" \
    "$scratch/dies/stderr" && all_stopped "$scratch/dies"; then
  pass "a server that dies stops the command; exit status 1, naming nginx"
else
  fail "a server that dies: exit status $status after $((SECONDS - began)) s; stderr: $(cat "$scratch/dies/stderr")"
fi

# 5. A server that cannot start, or never gets ready, is an error naming it, within the timeout.
# A stand-in nginx comes first on PATH.
mkdir -p "$scratch/fake/bin"
printf '#!/bin/sh\necho "this nginx refuses to start" >&2\nexit 1\n' > "$scratch/fake/bin/nginx"
chmod +x "$scratch/fake/bin/nginx"
PATH=$scratch/fake/bin:$PATH "${runner[@]}" "$data" -- touch "$scratch/fake/ran" 2> "$scratch/fake/stderr"
status=$?
if [[ $status == 1 && ! -e $scratch/fake/ran ]] && grep -q "nginx did not start (exited with status 1)" "$scratch/fake/stderr" \
    && grep -q "this nginx refuses to start" "$scratch/fake/stderr"; then
  pass "a server that fails to start: exit status 1 and its own message; the command not run"
else
  fail "a server that fails to start: exit status $status; stderr: $(cat "$scratch/fake/stderr")"
fi

printf '#!/bin/sh\necho $$ > "%s/hung.pid"\nexec sleep 60\n' "$scratch/fake" > "$scratch/fake/bin/nginx"
began=$SECONDS
PATH=$scratch/fake/bin:$PATH "${runner[@]}" --start-timeout 2 "$data" -- touch "$scratch/fake/ran" 2> "$scratch/fake/stderr"
status=$?
if [[ $status == 1 && ! -e $scratch/fake/ran ]] && ((SECONDS - began < 15)) \
    && grep -q "nginx did not start in time (is still running)" "$scratch/fake/stderr" \
    && [[ ! -e /proc/$(cat "$scratch/fake/hung.pid") ]]; then
  pass "a server that never gets ready: exit status 1 after the start timeout, and it is stopped"
else
  fail "a server that hangs: exit status $status after $((SECONDS - began)) s; stderr: $(cat "$scratch/fake/stderr")"
fi

# 6. Files excluded from S3 are not uploaded; the others are.
"${runner[@]}" --s3-exclude 'sub/*' "$data" -- sh -c 'curl -s --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  "$AWS_ENDPOINT_URL/$SAFETENSORS_REMOTE_S3_BUCKET?list-type=2"' > "$scratch/listing" 2>/dev/null
keys=$(grep -o '<Key>[^<]*</Key>' "$scratch/listing" | tr '\n' ' ')
if [[ $keys == "<Key>data.bin</Key> " ]]; then
  pass "--s3-exclude 'sub/*' uploads data.bin alone"
else
  fail "--s3-exclude: the bucket holds $keys"
fi

# 7. The runner killed outright: the kernel's parent-death signal stops its servers. The command,
# orphaned, is ours to stop.
mkdir "$scratch/KILL"
"${runner[@]}" --work-dir "$scratch/KILL/work" "$data" -- sh -c "$record"'; exec sleep 60' sh "$scratch/KILL" 2>/dev/null &
runner_pid=$!
if wait_for_file "$scratch/KILL/command.pid"; then
  kill -KILL "$runner_pid"
  { wait "$runner_pid"; } 2>/dev/null
  kill "$(cat "$scratch/KILL/command.pid")"
  deadline=$((SECONDS + 10))
  until all_stopped "$scratch/KILL" >/dev/null || ((SECONDS > deadline)); do sleep 0.1; done
  if all_stopped "$scratch/KILL"; then
    pass "SIGKILL of the runner stops every server"
  else
    fail "SIGKILL of the runner left a server"
  fi
else
  fail "SIGKILL: the command did not start"
  kill -KILL "$runner_pid"
fi

echo "remote selftest: $passed passed, $failed failed"
[[ $failed == 0 ]]
