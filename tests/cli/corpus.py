"""Checks that run the CLI many times (one Python process for a whole file's tensors), and
generators of test files, for test_cli.sh. Usage: corpus.py MODE ARGS..."""
import array
import hashlib
import json
import math
import os
import struct
import subprocess
import sys

from common import (SUB_BYTE_FORMATS, fail, file_order, read_file, same_value, sub_byte_value, unique_keys,
                    unpack_sub_byte, write_file)

mode, args = sys.argv[1], sys.argv[2:]


# dump --json --limit LIMIT of tensor INDEX of the file, by name where a command line can
# hold it, else by --index; checks the whole object against `values`.
def check_dump(cli, path, index, tensor, limit, values, options=()):
    name = tensor["name"]
    selector = ["--index", str(index)] if "\0" in name else ["--", name] if name.startswith("-") else [name]
    run = subprocess.run([cli, "dump", "--json", "--limit", str(limit), *options, path] + selector, capture_output=True)
    label = f"tensor {index} {name!r}"
    if run.returncode != 0 or run.stderr:
        fail(f"{label}: exit {run.returncode}, stderr {run.stderr[:300]!r}")
    if not run.stdout.endswith(b"\n") or run.stdout.count(b"\n") != 1:
        fail(f"{label}: stdout is not exactly one line: {run.stdout[:300]!r}")
    got = json.loads(run.stdout.decode("utf-8"), object_pairs_hook=unique_keys)
    want = {"name": name, "dtype": tensor["dtype"], "shape": tensor["shape"], "values": values}
    if list(got) != list(want):
        fail(f"{label}: keys {list(got)}, want {list(want)}")
    for key in want:
        if not same_value(got[key], want[key]):
            fail(f"{label}: {key} {got[key]!r}, want {want[key]!r}")


def load_manifest(ref, relative):
    with open(f"{ref}/{relative}.json", encoding="utf-8") as f:
        return json.load(f)["tensors"]


# Every tensor with first_values (every 50th of many_tensors_5000): dump --json --limit 16
# gives exactly those values, integers as integers, floats as floats with the sign of zero.
def first_values(cli, ref, relative):
    step = 50 if "many_tensors_5000" in relative else 1
    checked = 0
    for index, tensor in enumerate(load_manifest(ref, relative)):
        if index % step == 0 and "first_values" in tensor:
            check_dump(cli, f"{ref}/{relative}", index, tensor, 16, tensor["first_values"])
            checked += 1
    if checked == 0:
        fail("no tensor has first_values")


F8 = {"F8_E5M2": (2, 15, "ieee"), "F8_E4M3": (3, 7, "fn"), "F8_E4M3FNUZ": (3, 8, "fnuz"),
      "F8_E5M2FNUZ": (2, 16, "fnuz")}


# An 8-bit float's value as the CLI's JSON shows it, decoded here from its bits.
def f8_value(byte, dtype):
    if dtype == "F8_E8M0":
        return "nan" if byte == 0xFF else math.ldexp(1.0, byte - 127)
    mantissa_bits, bias, specials = F8[dtype]
    exponent = (byte & 0x7F) >> mantissa_bits
    mantissa = byte & ((1 << mantissa_bits) - 1)
    sign = -1.0 if byte & 0x80 else 1.0
    if specials == "fnuz" and byte == 0x80 or specials == "fn" and byte & 0x7F == 0x7F:
        return "nan"
    if specials == "ieee" and exponent == (0xFF >> (mantissa_bits + 1)):
        return "nan" if mantissa else ("inf" if sign > 0 else "-inf")
    if exponent == 0:
        return math.copysign(math.ldexp(mantissa, 1 - bias - mantissa_bits), sign)
    return math.copysign(math.ldexp((1 << mantissa_bits) + mantissa, exponent - bias - mantissa_bits), sign)


# F8 tensors: every value, decoded here from the tensor's bytes (the 256 bit patterns of each
# format in dtype_F8_*'s vector); F4 and F6 tensors: every value, unpacked here in ORDER (low-first,
# the default, or high-first, given as --packing) and decoded. The manifests give no first_values
# for either.
def all_values(cli, ref, relative, order="low-first"):
    checked = 0
    contents, _ = read_file(f"{ref}/{relative}")
    options = () if order == "low-first" else ("--packing", order)
    for index, tensor in enumerate(load_manifest(ref, relative)):
        raw = contents[tensor["name"]][2]
        if tensor["dtype"].startswith("F8_"):
            values = [f8_value(byte, tensor["dtype"]) for byte in raw]
        elif tensor["dtype"] in SUB_BYTE_FORMATS:
            values = [sub_byte_value(code, tensor["dtype"]) for code in unpack_sub_byte(raw, tensor["dtype"], order)]
        else:
            continue
        check_dump(cli, f"{ref}/{relative}", index, tensor, len(values), values, options)
        checked += 1
    if checked == 0:
        fail("no F8 or sub-byte tensor")


# A file larger than the writer's 1 MiB pieces: "w", F16 [3, 200000] cycling through all
# 65,536 bit patterns (NaNs with payloads, infinities, subnormals), and "ids", I32 [5].
def make_f16(path):
    w = array.array("H", (i * 7 % 65536 for i in range(600000)))
    ids = array.array("i", [0, 1, -1, 2**31 - 1, -2**31])
    if sys.byteorder == "big":
        w.byteswap()
        ids.byteswap()
    # In the official writer's layout (I32 before F16), which this library's writer reproduces.
    write_file(path, [("ids", "I32", [5], ids.tobytes()), ("w", "F16", [3, 200000], w.tobytes())], {"k": "v"})


# F16 bits widened to F32 bits exactly, NaN payloads kept.
def widen(bits):
    sign = (bits & 0x8000) << 16
    exponent = (bits >> 10) & 0x1F
    fraction = bits & 0x3FF
    if exponent == 0x1F:
        return sign | 0x7F800000 | fraction << 13
    if exponent:
        return sign | (exponent - 15 + 127) << 23 | fraction << 13
    return sign | struct.unpack("<I", struct.pack("<f", math.ldexp(fraction, -24)))[0]


# The F32 file at WIDE holds "w" of the F16 file at NARROW widened exactly, the other tensors
# and the metadata unchanged.
def widened(narrow, wide):
    (source, source_metadata), (result, result_metadata) = read_file(narrow), read_file(wide)
    if result_metadata != source_metadata:
        fail(f"metadata {result_metadata!r}, want {source_metadata!r}")
    if sorted(result) != sorted(source):
        fail(f"tensors {sorted(result)}, want {sorted(source)}")
    dtype, shape, raw = result["w"]
    if dtype != "F32" or shape != source["w"][1]:
        fail(f"w is {dtype} {shape}")
    want = array.array("I", (widen(bits) for (bits,) in struct.iter_unpack("<H", source["w"][2])))
    got = array.array("I", (bits for (bits,) in struct.iter_unpack("<I", raw)))
    if got != want:
        first = next(i for i in range(len(want)) if i >= len(got) or got[i] != want[i])
        fail(f"w[{first}]: got {got[first] if first < len(got) else None:#x}, want {want[first]:#x}")
    if result["ids"] != source["ids"]:
        fail("ids changed")


# The shards split must make of ORIGINAL with at most MAX tensor bytes each: the tensors in file
# order, a new shard when the next tensor would take the current one's bytes over MAX (unless it
# has none yet, so a larger tensor is alone), named model-0000K-of-0000N.safetensors.
def planned_shards(original, max_size):
    tensors, _ = read_file(original)
    groups, size = [], 0
    for name in file_order(original):
        n = len(tensors[name][2])
        if not groups or (size > 0 and size + n > max_size):
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += n
    count = len(groups)
    return {f"model-{k + 1:05d}-of-{count:05d}.safetensors": names for k, names in enumerate(groups)}


# DIRECTORY holds exactly the planned shards and the index: each shard the planned tensors with
# the original's dtypes, shapes and bytes, and METADATA (JSON) as its metadata.
def split_layout(original, directory, max_size, metadata):
    plan = planned_shards(original, int(max_size))
    tensors, _ = read_file(original)
    files = sorted(os.listdir(directory))
    want = sorted(list(plan) + ["model.safetensors.index.json"])
    if files != want:
        fail(f"files {files}, want {want}")
    for shard, names in plan.items():
        got, got_metadata = read_file(f"{directory}/{shard}")
        if sorted(got) != sorted(names):
            fail(f"{shard} holds {sorted(got)[:5]}..., want {sorted(names)[:5]}...")
        if got_metadata != json.loads(metadata):
            fail(f"{shard} metadata {got_metadata!r}, want {metadata}")
        for name in names:
            if got[name] != tensors[name]:
                fail(f"{shard}: tensor {name!r} differs")


# The index is the one transformers writes: json.dumps(index, indent=2, sort_keys=True) plus a
# newline, with metadata.total_size the tensors' bytes and weight_map every tensor's shard.
def index_text(original, directory, max_size):
    with open(f"{directory}/model.safetensors.index.json", "rb") as f:
        text = f.read().decode("ascii")
    index = json.loads(text)
    if text != json.dumps(index, indent=2, sort_keys=True) + "\n":
        fail(f"not 2-space indented, sorted, with a final newline: {text[:200]!r}")
    tensors, _ = read_file(original)
    total = sum(len(raw) for _, _, raw in tensors.values())
    weight_map = {name: shard for shard, names in planned_shards(original, int(max_size)).items() for name in names}
    want = {"metadata": {"total_size": total}, "weight_map": weight_map}
    if index != want:
        fail(f"index {str(index)[:300]}, want {str(want)[:300]}")


# Every tensor of ORIGINAL, looked up through the index at INDEX, has the same dtype, shape and
# bytes (by sha256) in its shard; the index lists no other tensor.
def through_index(original, index_path):
    with open(index_path, encoding="utf-8") as f:
        weight_map = json.load(f)["weight_map"]
    tensors, _ = read_file(original)
    if sorted(weight_map) != sorted(tensors):
        fail(f"index lists {len(weight_map)} tensors, the original has {len(tensors)}")
    directory = os.path.dirname(index_path)
    shards = {name: read_file(f"{directory}/{name}")[0] for name in set(weight_map.values())}
    for name, (dtype, shape, raw) in tensors.items():
        got_dtype, got_shape, got_raw = shards[weight_map[name]][name]
        if (got_dtype, got_shape) != (dtype, shape):
            fail(f"{name!r}: {got_dtype} {got_shape}, want {dtype} {shape}")
        if hashlib.sha256(got_raw).digest() != hashlib.sha256(raw).digest():
            fail(f"{name!r}: the bytes differ")


# The files at A and B hold the same tensors (names, dtypes, shapes, bytes); B's metadata is
# METADATA (JSON, null for none).
def same_tensors(a, b, metadata):
    (want, _), (got, got_metadata) = read_file(a), read_file(b)
    if sorted(got) != sorted(want):
        fail(f"tensors {sorted(got)[:5]}..., want {sorted(want)[:5]}...")
    for name in want:
        if got[name] != want[name]:
            fail(f"tensor {name!r} differs")
    if got_metadata != json.loads(metadata):
        fail(f"metadata {got_metadata!r}, want {metadata}")


# A file with a tensor larger than 100 KB between two small ones, and no metadata: "a" F32
# [1000] (4,000 bytes), "big" F32 [250, 400] (400,000 bytes), "c" I32 [10] (40 bytes).
def make_sharded(path):
    a = array.array("f", (i / 8 for i in range(1000)))
    big = array.array("f", (float(i % 977) for i in range(100000)))
    c = array.array("i", range(-5, 5))
    if sys.byteorder == "big":
        for values in (a, big, c):
            values.byteswap()
    write_file(path, [("a", "F32", [1000], a.tobytes()), ("big", "F32", [250, 400], big.tobytes()),
                      ("c", "I32", [10], c.tobytes())], None)


# Python's subscript for SLICE ("1:3,-1" is x[1:3, -1]): per dimension an int or a slice object.
def python_subscript(slice_text):
    def bound(text):
        return int(text) if text.strip() else None
    dims = []
    for part in slice_text.split(","):
        if ":" in part:
            dims.append(slice(*(bound(b) for b in part.split(":"))))
        else:
            dims.append(int(part))
    return dims


# x[dims] for x nested lists of `shape`, as numpy indexes: an int drops its dimension, a slice keeps
# it, dimensions not given are taken whole.
def subscript(values, dims):
    if not dims:
        return values
    head, rest = dims[0], dims[1:]
    if isinstance(head, int):
        return subscript(values[head], rest)
    return [subscript(v, rest) for v in values[head]]


def nest(flat, shape):
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def sliced_shape(shape, dims):
    kept = [len(range(*d.indices(size))) for d, size in zip(dims, shape) if isinstance(d, slice)]
    return kept + shape[len(dims):]


def flatten(nested, rank):
    return [nested] if rank == 0 else [v for inner in nested for v in flatten(inner, rank - 1)]


FORMATS = {"F32": "f", "F64": "d", "I64": "q", "I32": "i", "U8": "B"}


# dump --json --slice SLICE of tensor NAME of the file at PATH: slice_shape and values as Python
# computes them from the tensor's bytes (x[SLICE] of the nested lists); and dump --slice's text:
# a row of the last dimension to a line.
def dump_slice(cli, path, name, slice_text):
    tensors, _ = read_file(path)
    dtype, shape, raw = tensors[name]
    flat = [v for (v,) in struct.iter_unpack("<" + FORMATS[dtype], raw)]
    dims = python_subscript(slice_text)
    want_shape = sliced_shape(shape, dims)
    want_values = flatten(subscript(nest(flat, shape), dims), len(want_shape))
    as_json = [v if not isinstance(v, float) or math.isfinite(v) else
               "nan" if math.isnan(v) else "inf" if v > 0 else "-inf" for v in want_values]
    run = subprocess.run([cli, "dump", "--json", path, name, "--slice", slice_text], capture_output=True)
    if run.returncode != 0 or run.stderr:
        fail(f"exit {run.returncode}, stderr {run.stderr[:300]!r}")
    got = json.loads(run.stdout, object_pairs_hook=unique_keys)
    want = {"name": name, "dtype": dtype, "shape": shape, "slice": slice_text, "slice_shape": want_shape,
            "values": [float(v) if dtype.startswith("F") and not isinstance(v, str) else v for v in as_json]}
    if list(got) != list(want):
        fail(f"keys {list(got)}, want {list(want)}")
    for key in want:
        if not same_value(got[key], want[key]):
            fail(f"{key} {got[key]!r}, want {want[key]!r}")
    run = subprocess.run([cli, "dump", path, name, "--slice", slice_text], capture_output=True)
    lines = run.stdout.decode("utf-8").split("\n")
    if lines.pop() != "" or run.returncode != 0:
        fail(f"text form: exit {run.returncode}, {run.stdout[-100:]!r}")
    rows = lines[1:]
    row_length = want_shape[-1] if want_shape else 1
    want_rows = 0 if row_length == 0 else len(want_values) // row_length
    if len(rows) != want_rows or any(len(row.split(" ")) != row_length for row in rows):
        fail(f"text form: {len(rows)} rows {rows[:3]!r}, want {want_rows} of {row_length} values")


modes = {"dump_slice": dump_slice, "first_values": first_values, "all_values": all_values, "make_f16": make_f16, "widened": widened,
         "split_layout": split_layout, "index_text": index_text, "through_index": through_index,
         "same_tensors": same_tensors, "make_sharded": make_sharded}
modes[mode](*args)
