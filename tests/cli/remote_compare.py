"""For test_cli_remote.sh: one command's run on a local path and on its URL gave the same result.
Usage: remote_compare.py DIR LOCAL_PATH URL, where DIR holds local, local.rc, local.err, remote,
remote.rc and remote.err. Exit statuses must be equal, and so must the JSON on standard output once
timings are left out and paths are reduced to what lies under the local directory or the URL's: a
successful run's output whole, a failed run's error kind (the message names a path or a URL and may
say what a server answered)."""
import json
import os
import sys

from common import fail

TIMINGS = ("seconds", "gb_per_s")


def base(path):
    """The directory that paths in the output start from: a model's directory, a file's or an index's."""
    if path.endswith(".safetensors") or path.endswith(".json"):
        path = path.rsplit("/", 1)[0]
    return path.rstrip("/") + "/"


def reduced(value, prefixes):
    if isinstance(value, dict):
        return {key: reduced(item, prefixes) for key, item in value.items() if key not in TIMINGS}
    if isinstance(value, list):
        return [reduced(item, prefixes) for item in value]
    if isinstance(value, str):
        for prefix in prefixes:
            value = value.replace(prefix, "")
    return value


def main():
    directory, local_path, url = sys.argv[1:]
    read = lambda name: open(os.path.join(directory, name), encoding="utf-8").read()
    if read("local.rc") != read("remote.rc"):
        fail(f"exit {read('remote.rc').strip()} over the network, {read('local.rc').strip()} from disk; "
             f"stderr: {read('remote.err')!r}")
    try:
        local, remote = json.loads(read("local")), json.loads(read("remote"))
    except ValueError as error:
        fail(f"not JSON: {error}: {read('remote')[:300]!r}")
    if isinstance(local, dict) and not local.get("ok", True):
        if remote.get("error") != local.get("error"):
            fail(f"error {remote.get('error')} ({remote.get('message')}), want {local.get('error')}")
        return
    prefixes = [base(local_path), os.path.abspath(local_path), base(url), url]
    local, remote = reduced(local, prefixes), reduced(remote, prefixes)
    if local != remote:
        fail(f"over the network:\n{json.dumps(remote)[:600]}\nfrom disk:\n{json.dumps(local)[:600]}")


main()
