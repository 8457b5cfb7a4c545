"""Assertions on the last CLI run's output (in WORK: out, err, rc), for test_cli.sh. Each mode
exits 0 when every assertion holds, else prints the first one that failed and exits 1.
Usage: checker.py WORK MODE ARGS..."""
import fractions
import hashlib
import json
import math
import os
import re
import struct
import sys

from common import fail, same_json, same_value, sub_byte_value, unique_keys, unpack_sub_byte

work, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(work + "/out", "rb") as f:
    out = f.read()
with open(work + "/err", "rb") as f:
    err = f.read()
with open(work + "/rc") as f:
    rc = int(f.read())


def expect(label, got, want):
    # type() too: True == 1 and 1 == 1.0 in Python, but not in the JSON the CLI promises.
    if got != want or type(got) is not type(want):
        fail(f"{label}: got {got!r}, want {want!r}")


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


def valid_json(manifest_path, path):
    manifest = load_manifest(manifest_path)
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    got = one_json_object()
    expect("keys", list(got), ["ok", "path", "header_length", "data_start", "metadata", "tensors", "quantized"])
    expect("quantized", got["quantized"], [])
    expect("ok", got["ok"], True)
    expect("path", got["path"], path)
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


def stdout_is(status, expected):
    expect("exit status", rc, int(status))
    expect("stderr", err, b"")
    expect("stdout", out.decode("utf-8"), expected)


# The raw bytes of tensor `name` of the safetensors file at `path`, read without the CLI.
def tensor_bytes(path, name):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    begin, end = json.loads(data[8:8 + length])[name]["data_offsets"]
    return data[8 + length + begin:8 + length + end]


# The elements of a tensor as Python numbers, by struct format ("f", "q", ...), or "sub-byte" for
# F4 and F6 (unpacked low-first).
def tensor_values(path, name, code):
    if code == "sub-byte":
        dtype = read_header(path)[name]["dtype"]
        return [sub_byte_value(bits, dtype) for bits in unpack_sub_byte(tensor_bytes(path, name), dtype)]
    return [value for (value,) in struct.iter_unpack("<" + code, tensor_bytes(path, name))]


# How the CLI's JSON writes a double: a float, or "nan", "inf", "-inf".
def json_number(value):
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


# An F32 value rounded to BF16 (nearest, ties to even; NaN stays NaN) and widened back.
def through_bf16(value):
    if math.isnan(value):
        return value
    (bits,) = struct.unpack("<I", struct.pack("<f", value))
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


# dump --json of F32 tensor NAME of the round-tripped file: every value of the original
# tensor in SOURCE, rounded to BF16.
def bf16_round_trip(source, name):
    expect("exit status", rc, 0)
    got = one_json_object()
    want = [json_number(through_bf16(v)) for v in tensor_values(source, name, "f")]
    if not same_value(got["values"], want):
        fail(f"values {got['values']!r}, want {want!r}")


def close(label, got, want, tolerance=1e-14):
    if type(got) is not float or abs(got - want) > tolerance * abs(want):
        fail(f"{label}: got {got!r}, want {want!r}")


# stats --json of the file at PATH: the object of tensor NAME against statistics computed
# here, exactly (fractions) from the tensor's bytes read with struct format CODE.
def stats_of(path, name, code):
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    if not out.endswith(b"\n") or out.count(b"\n") != 1:
        fail(f"stdout is not exactly one line: {out[:300]!r}")
    objects = {item["name"]: item for item in json.loads(out)}
    got = objects[name]
    expect("keys", list(got), ["name", "dtype", "count", "min", "max", "mean", "std", "nan", "inf", "note"])
    values = tensor_values(path, name, code)
    finite = [v for v in values if not (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))]
    expect("count", got["count"], len(values))
    expect("nan", got["nan"], sum(1 for v in values if isinstance(v, float) and math.isnan(v)))
    expect("inf", got["inf"], sum(1 for v in values if isinstance(v, float) and math.isinf(v)))
    expect("min", got["min"], min(finite))
    expect("max", got["max"], max(finite))
    exact = [fractions.Fraction(v) for v in finite]
    mean = sum(exact) / len(exact)
    variance = sum((v - mean) ** 2 for v in exact) / len(exact)
    close("mean", got["mean"], float(mean))
    close("std", got["std"], math.sqrt(variance))
    expect("note", got["note"], None)


# validate's lines for PATHS (relative to REF, in order): "ok" or the kind index.json expects.
def validate_lines(ref, status, *paths):
    expect("exit status", rc, int(status))
    expect("stderr", err, b"")
    with open(ref + "/index.json", encoding="utf-8") as f:
        index = json.load(f)
    expected = {case["file"]: case for group in ("valid", "invalid", "foreign") for case in index[group]}
    lines = out.decode("utf-8").split("\n")
    expect("last line", lines.pop(), "")
    expect("line count", len(lines), len(paths))
    for line, path in zip(lines, paths):
        shown = json.dumps(ref + "/" + path)
        case = expected.get(path, {"expect": "IoError"})
        if case["expect"] != "ok":
            # The message names the file.
            prefix = f"FAIL {case['expect']}: {shown}: "
            if not line.startswith(prefix):
                fail(f"line {line!r} does not start with {prefix!r}")
        elif "tensor_count" in case:
            count = case["tensor_count"]
            expect("line", line, f"ok {shown} ({count} {'tensor' if count == 1 else 'tensors'})")
        elif not line.startswith(f"ok {shown} ("):
            fail(f"line {line!r} is not ok {shown}")


# The dtypes convert converts: the IEEE-style floats and the sub-byte ones, not F8.
CONVERTED = ("F16", "BF16", "F32", "F64", "F4", "F6_E2M3", "F6_E3M2")


# inspect --json of a file converted to TARGET from the file with MANIFEST: the same names,
# shapes and metadata; F16, BF16, F32, F64, F4 and F6 tensors now TARGET, every other dtype
# unchanged.
def converted_header(manifest_path, target):
    manifest = load_manifest(manifest_path)
    expect("exit status", rc, 0)
    got = one_json_object()
    expect("metadata", got["metadata"], manifest["metadata"])
    tensors = {t["name"]: t for t in got["tensors"]}
    expect("names", sorted(tensors), sorted(t["name"] for t in manifest["tensors"]))
    for want in manifest["tensors"]:
        tensor = tensors[want["name"]]
        dtype = target if want["dtype"] in CONVERTED else want["dtype"]
        expect(f"{want['name']} dtype", tensor["dtype"], dtype)
        expect(f"{want['name']} shape", tensor["shape"], want["shape"])


# Every tensor of MANIFEST not converted (integers, BOOL, C64, F8) has the same bytes in the file
# at PATH.
def unchanged_bytes(manifest_path, path):
    for want in load_manifest(manifest_path)["tensors"]:
        if want["dtype"] in CONVERTED:
            continue
        digest = hashlib.sha256(tensor_bytes(path, want["name"])).hexdigest()
        expect(f"sha256 of {want['name']}", digest, want["sha256"])


# The header of the safetensors file at PATH, as a dict.
def read_header(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))


def read_index(directory):
    with open(directory + "/model.safetensors.index.json", encoding="utf-8") as f:
        return json.load(f)


# inspect --json of a sharded model given as PATH whose index is in DIRECTORY: the index path
# shown as INDEX, shards as PREFIX/NAME in path order, each the object inspect --json gives for
# that file (in SHARD_OBJECTS, a file of one JSON object a line), every tensor by name with its
# shard and its entry in that shard's header.
def model_json(path, directory, index, prefix, shard_objects):
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    got = one_json_object()
    weight_map = read_index(directory)["weight_map"]
    total_size = read_index(directory)["metadata"]["total_size"]
    expect("keys", list(got), ["ok", "path", "index", "total_size", "shards", "tensors", "quantized"])
    expect("quantized", got["quantized"], [])
    expect("ok", got["ok"], True)
    expect("path", got["path"], path)
    expect("index", got["index"], index)
    expect("total_size", got["total_size"], total_size)
    shard_paths = [prefix + "/" + name for name in sorted(set(weight_map.values()))]
    expect("shard paths", [shard["path"] for shard in got["shards"]], shard_paths)
    with open(shard_objects, encoding="utf-8") as f:
        files = [json.loads(line) for line in f]
    for shard, file in zip(got["shards"], files):
        del file["ok"]
        del file["quantized"]  # of the whole model, not of each shard
        if shard != file:
            fail(f"shard object {str(shard)[:200]} is not inspect --json of the file, {str(file)[:200]}")
    expect("names", [t["name"] for t in got["tensors"]], sorted(weight_map))
    headers = {name: read_header(directory + "/" + name) for name in set(weight_map.values())}
    for tensor in got["tensors"]:
        name = tensor["name"]
        expect(f"{name!r} keys", list(tensor), ["name", "dtype", "shape", "data_offsets", "shard"])
        expect(f"{name!r} shard", tensor["shard"], prefix + "/" + weight_map[name])
        entry = headers[weight_map[name]][name]
        for field in ("dtype", "shape", "data_offsets"):
            expect(f"{name!r} {field}", tensor[field], entry[field])


# inspect of the model in DIRECTORY shown as SHOWN (shards under PREFIX): a summary line, the
# index line, "shards: N", one line per shard, then the table by name with a shard column.
def model_table(shown, directory, prefix):
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    index = read_index(directory)
    weight_map, total_size = index["weight_map"], index["metadata"]["total_size"]
    shards = sorted(set(weight_map.values()))
    headers = {name: read_header(directory + "/" + name) for name in shards}
    lines = out.decode("utf-8").split("\n")
    expect("last line", lines.pop(), "")
    expect("line count", len(lines), 3 + len(shards) + 1 + len(weight_map))
    expect("summary line", lines[0],
           f"{json.dumps(shown)}: {len(weight_map)} tensors in {len(shards)} shards, {total_size} bytes")
    expect("index line", lines[1],
           f"index: {json.dumps(prefix + '/model.safetensors.index.json')}, total_size {total_size}")
    expect("shards line", lines[2], f"shards: {len(shards)}")
    for line, name in zip(lines[3:], shards):
        entries = [e for key, e in headers[name].items() if key != "__metadata__"]
        size = sum(e["data_offsets"][1] - e["data_offsets"][0] for e in entries)
        expect("shard line", line, f"  {json.dumps(prefix + '/' + name)}: {len(entries)} tensors, {size} bytes")
    rows = lines[3 + len(shards):]
    expect("heading", rows[0].split(), ["name", "dtype", "shape", "bytes", "offsets", "shard"])
    for row, name in zip(rows[1:], sorted(weight_map)):
        shard = json.dumps(weight_map[name])
        if not row.endswith("  " + shard):
            fail(f"row {row!r} does not end with its shard {shard}")
        entry = headers[weight_map[name]][name]
        start, stop = entry["data_offsets"]
        want = {"name": name, "dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [start, stop],
                "byte_length": stop - start}
        check_row(row[:-len(shard)].rstrip(" "), want)


# What a pseudo-terminal showed while a command ran for SECONDS: the bar "\rLABEL [###---]  DONE /
# TOTAL  P%" erased with ESC [K, drawn at most 10 times a second (plus the first drawing), and
# erased at the end ("\r" ESC [K), with AFTER (a file, or "" for nothing) printed after it.
def terminal_bar(label, seconds, after):
    expect("exit status", rc, 0)
    text = out.decode("utf-8", "replace")
    size = r"[0-9.]+ [KMGTPE]?B"
    bar = re.compile("\r" + re.escape(label) + r" \[[#-]{10,40}\]  " + size + " / " + size + r" +\d+%\x1b\[K")
    draws = bar.findall(text)
    if not draws:
        fail(f"no progress bar in {text[:300]!r}")
    if len(draws) > 2 + 10 * float(seconds):
        fail(f"{len(draws)} drawings in {seconds} s: more than 10 a second")
    erased = text.rfind("\r\x1b[K")
    if erased < 0 or bar.search(text, erased):
        fail(f"the bar is not erased at the end: {text[-200:]!r}")
    rest = text[erased + 4:]
    want = "" if not after else open(after, encoding="utf-8").read().replace("\n", "\r\n")
    expect("after the bar", rest, want)


# One JSON object a line on stdout, each the object on the same line of EXPECTED (a file), keys
# in the same order.
def json_lines(status, expected):
    expect("exit status", rc, int(status))
    expect("stderr", err, b"")
    with open(expected, encoding="utf-8") as f:
        want = [json.loads(line, object_pairs_hook=list) for line in f]
    got = [json.loads(line, object_pairs_hook=list) for line in out.decode("utf-8").splitlines()]
    expect("line count", len(got), len(want))
    for number, (got_object, want_object) in enumerate(zip(got, want)):
        if got_object != want_object:
            fail(f"line {number}: got {got_object!r}, want {want_object!r}")


# Exactly one JSON object on stdout, the one in the file EXPECTED (keys in order, numbers of the same
# JSON type), with exit status STATUS and nothing on stderr.
def json_is(status, expected):
    expect("exit status", rc, int(status))
    expect("stderr", err, b"")
    got = one_json_object()
    with open(expected, encoding="utf-8") as f:
        want = json.load(f)
    if not same_json(got, want):
        fail(f"got {json.dumps(got)[:1500]}, want {json.dumps(want)[:1500]}")


# load --json: the object in EXPECTED, with "seconds" and "gb_per_s" (floats, not negative) after
# "bytes_read", and gb_per_s = bytes / seconds / 10^9; bytes_read as EXPECTED's, or with RULE
# "at-least", at least that.
def load_json(expected, rule="exact"):
    expect("exit status", rc, 0)
    expect("stderr", err, b"")
    got = one_json_object()
    with open(expected, encoding="utf-8") as f:
        want = json.load(f)
    for key in ("seconds", "gb_per_s"):
        if type(got.get(key)) is not float or got[key] < 0:
            fail(f"{key}: {got.get(key)!r} is not a float at least 0")
    if got["seconds"] > 0 and not math.isclose(got["gb_per_s"], got["bytes"] / got["seconds"] / 1e9, rel_tol=1e-9):
        fail(f"gb_per_s {got['gb_per_s']} is not bytes / seconds / 10^9")
    keys = list(want)
    keys[4:4] = ["seconds", "gb_per_s"]
    expect("keys", list(got), keys)
    del got["seconds"], got["gb_per_s"]
    if rule == "at-least" and type(got["bytes_read"]) is int and got["bytes_read"] >= want["bytes_read"]:
        got["bytes_read"] = want["bytes_read"]
    if not same_json(got, want):
        fail(f"got {json.dumps(got)[:1500]}, want {json.dumps(want)[:1500]}")


modes = {"json_is": json_is, "load_json": load_json, "json_lines": json_lines, "valid_json": valid_json, "error_json": error_json, "message": print_message,
         "error_text": error_text, "table": table, "stdout_is": stdout_is,
         "bf16_round_trip": bf16_round_trip, "stats_of": stats_of, "validate_lines": validate_lines,
         "converted_header": converted_header, "unchanged_bytes": unchanged_bytes, "model_json": model_json,
         "model_table": model_table, "terminal_bar": terminal_bar}
modes[mode](*args)
