"""What load, hash, diff and convert to F4/F6 must give, computed here from the files' bytes, and
the files those checks read, for test_cli.sh and test_cli_remote.sh. Usage: expected.py MODE ARGS...
Modes that compute print one JSON object on stdout; the others write files or exit 1 on a
failed check."""
import array
import hashlib
import json
import math
import os
import struct
import sys

from common import (SUB_BYTE_FORMATS, fail, file_order, nearest_sub_byte, pack_sub_byte, read_file, sub_byte_bits,
                    sub_byte_value, unpack_sub_byte, write_file)

DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
              "F8_E5M2FNUZ": 8, "U16": 16, "I16": 16, "F16": 16, "BF16": 16, "U32": 32, "I32": 32, "F32": 32,
              "U64": 64, "I64": 64, "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}
MERGE_GAP = 0  # load_options::merge_gap: adjacent runs are one read, nothing between runs is read


def product(values):
    result = 1
    for value in values:
        result *= value
    return result


# ---------------------------------------------------------------------------------------------
# Files and models as the CLI lists them
# ---------------------------------------------------------------------------------------------

def model_files(path):
    """The files of the model or file at PATH, in path order, and whether it is a model."""
    if os.path.isdir(path):
        index = os.path.join(path, "model.safetensors.index.json")
        if not os.path.exists(index):
            return [os.path.join(path, name) for name in os.listdir(path) if name.endswith(".safetensors")], True
        path = index
    if not path.endswith(".json"):
        return [path], False
    with open(path, encoding="utf-8") as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    return [os.path.join(os.path.dirname(path), shard) for shard in shards], True


def file_tensors(path):
    """(name, dtype, shape, absolute offset, bytes) of each tensor of the file at PATH, in data order."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
    tensors, _ = read_file(path)
    start = 8 + length
    with open(path, "rb") as f:
        header = json.loads(f.read(8 + length)[8:])
    return [(name, tensors[name][0], tensors[name][1], start + header[name]["data_offsets"][0], tensors[name][2])
            for name in file_order(path)]


def listed_tensors(path):
    """Every tensor of the file or model at PATH, with its file, in inspect's order: data order for a
    file, name order for a model."""
    files, is_model = model_files(path)
    tensors = [(name, dtype, shape, offset, raw, file) for file in files
               for name, dtype, shape, offset, raw in file_tensors(file)]
    return sorted(tensors, key=lambda t: t[0]) if is_model else tensors


def model_metadata(path):
    """The metadata of a file, or of a model's first shard, as diff compares it."""
    files, _ = model_files(path)
    return read_file(files[0])[1] or {}


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------

def rank_runs(dtype, shape, offset, tp_size, tp_rank, tp_dim):
    """The file's byte runs (offset, length) that rank TP_RANK of TP_SIZE loads of a tensor, in order:
    its part of dimension TP_DIM when it has that dimension and it divides by TP_SIZE, else all of it."""
    bits = DTYPE_BITS[dtype]
    size = product(shape) * bits // 8
    if tp_size == 0 or len(shape) <= tp_dim or shape[tp_dim] % tp_size != 0:
        return [(offset, size)] if size else []
    part = shape[tp_dim] // tp_size
    inner = product(shape[tp_dim + 1:])
    runs = []
    for outer in range(product(shape[:tp_dim])):
        first = (outer * shape[tp_dim] + tp_rank * part) * inner
        runs.append((offset + first * bits // 8, part * inner * bits // 8))
    return [run for run in runs if run[1] > 0]


def merged_size(runs):
    """The bytes a plan reads for RUNS of one file: sorted, merged when at most MERGE_GAP apart, the gaps
    between merged runs read too."""
    total, low, high = 0, None, None
    for start, length in sorted(runs):
        if low is not None and start <= high + MERGE_GAP:
            high = max(high, start + length)
            continue
        if low is not None:
            total += high - low
        low, high = start, start + length
    return total + (high - low if low is not None else 0)


def load(path, tp_size, tp_rank, tp_dim, digest):
    """load --json of PATH, less "seconds" and "gb_per_s"."""
    tp_size, tp_rank, tp_dim = int(tp_size), int(tp_rank), int(tp_dim)
    delivered, runs_by_file, digests = 0, {}, {}
    for name, dtype, shape, offset, raw, file in listed_tensors(path):
        runs = rank_runs(dtype, shape, offset, tp_size, tp_rank, tp_dim)
        with open(file, "rb") as f:
            data = f.read()
        selected = b"".join(data[start:start + length] for start, length in runs)
        delivered += len(selected)
        runs_by_file.setdefault(file, []).extend(runs)
        digests[name] = hashlib.sha256(selected).hexdigest()
    result = {"ok": True, "tensors": len(digests), "bytes": delivered,
              "bytes_read": sum(merged_size(runs) for runs in runs_by_file.values())}
    if digest == "digest":
        result["digests"] = digests
    print(json.dumps(result))


def pattern(size, seed):
    return bytes((i * 131 + seed * 29 + (i >> 9)) & 0xFF for i in range(size))


def make_load_file(path):
    """Tensors as a model's layers, in several dtypes: rows that split into 2, 3 or 4 ranks or not, a row
    wider than the plan's merge gap, a scalar and a vector of 7."""
    shapes = [("embed", "BF16", [1000, 96]), ("w1", "F32", [96, 640]), ("b1", "F32", [640]),
              ("w2", "F32", [640, 96]), ("head", "F16", [96, 1002]), ("wide", "F32", [4, 4096]),
              ("scalar", "F32", []), ("ids", "I64", [7])]
    write_file(path, [(name, dtype, shape, pattern(product(shape) * DTYPE_BITS[dtype] // 8, seed))
                      for seed, (name, dtype, shape) in enumerate(shapes)], {"format": "pt"})


def make_sparse(path, size):
    """A file of SIZE bytes (sparse on disk): one U8 tensor of zeros after its header."""
    data = int(size) - 8 - 64
    header = json.dumps({"__metadata__": {"sparse": "yes"},
                         "zeros": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}}).encode()
    header += b" " * (64 - len(header))
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(int(size))


# ---------------------------------------------------------------------------------------------
# hash
# ---------------------------------------------------------------------------------------------

def hash_manifest(path):
    """hash --json of PATH: each file's sha256 by file name, in path order, and each tensor's."""
    files, _ = model_files(path)
    digests = {}
    for file in files:
        with open(file, "rb") as f:
            digests[os.path.basename(file)] = hashlib.sha256(f.read()).hexdigest()
    tensors = {name: hashlib.sha256(raw).hexdigest() for name, _, _, _, raw, _ in listed_tensors(path)}
    print(json.dumps({"files": digests, "tensors": tensors}))


def flip(path, out, name):
    """A copy of the file at PATH with the last byte of tensor NAME inverted."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    for tensor, _, _, offset, raw, _ in listed_tensors(path):
        if tensor == name:
            data[offset + len(raw) - 1] ^= 0xFF
    with open(out, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------------------------

F8 = {"F8_E5M2": (2, 15, "ieee"), "F8_E4M3": (3, 7, "fn"), "F8_E4M3FNUZ": (3, 8, "fnuz"),
      "F8_E5M2FNUZ": (2, 16, "fnuz")}


def f8_value(byte, dtype):
    if dtype == "F8_E8M0":
        return math.nan if byte == 0xFF else math.ldexp(1.0, byte - 127)
    mantissa_bits, bias, specials = F8[dtype]
    exponent = (byte & 0x7F) >> mantissa_bits
    mantissa = byte & ((1 << mantissa_bits) - 1)
    sign = -1.0 if byte & 0x80 else 1.0
    if specials == "fnuz" and byte == 0x80 or specials == "fn" and byte & 0x7F == 0x7F:
        return math.nan
    if specials == "ieee" and exponent == (0xFF >> (mantissa_bits + 1)):
        return math.nan if mantissa else math.copysign(math.inf, sign)
    if exponent == 0:
        return math.copysign(math.ldexp(mantissa, 1 - bias - mantissa_bits), sign)
    return math.copysign(math.ldexp((1 << mantissa_bits) + mantissa, exponent - bias - mantissa_bits), sign)


def float_values(raw, dtype):
    """The values of a float tensor's bytes, or None for a dtype that is not a float."""
    if dtype in ("F64", "F32", "F16"):
        return [v for (v,) in struct.iter_unpack("<" + {"F64": "d", "F32": "f", "F16": "e"}[dtype], raw)]
    if dtype == "BF16":
        return [struct.unpack("<f", struct.pack("<I", bits << 16))[0] for (bits,) in struct.iter_unpack("<H", raw)]
    if dtype in F8 or dtype == "F8_E8M0":
        return [f8_value(byte, dtype) for byte in raw]
    if dtype in SUB_BYTE_FORMATS:
        table = [sub_byte_value(code, dtype) for code in range(1 << sub_byte_bits(dtype))]
        return [table[code] for code in unpack_sub_byte(raw, dtype)]
    return None


def number(value):
    return "inf" if math.isinf(value) else value


def compare_tensors(a, b, atol, rtol):
    """A tensor's entry in diff --json: A and B are (dtype, shape, bytes) or None."""
    entry = {"status": None, "max_abs_diff": None, "max_rel_diff": None, "differing": None}
    if b is None or a is None:
        entry["status"] = "only_a" if b is None else "only_b"
        return entry
    if a[1] != b[1]:
        entry["status"] = "shape"
        return entry
    left, right = float_values(a[2], a[0]), float_values(b[2], b[0])
    if left is not None and right is not None:
        largest_abs, largest_rel, differing = 0.0, 0.0, 0
        for x, y in zip(left, right):
            if x == y or (math.isnan(x) and math.isnan(y)):
                continue
            if math.isnan(x) or math.isnan(y):
                differing += 1
                continue
            difference = abs(x - y)
            largest_abs = max(largest_abs, difference)
            largest_rel = max(largest_rel, difference / abs(y) if y != 0 else math.inf)
            differing += 0 if difference <= atol + rtol * abs(y) else 1
        entry.update(max_abs_diff=number(largest_abs), max_rel_diff=number(largest_rel), differing=differing)
    elif a[0] == b[0]:
        width = DTYPE_BITS[a[0]] // 8
        entry["differing"] = sum(a[2][i:i + width] != b[2][i:i + width] for i in range(0, len(a[2]), width))
    if a[0] != b[0]:
        entry["status"] = "dtype"
    else:
        entry["status"] = "same" if entry["differing"] == 0 else "differs"
    return entry


def diff(path_a, path_b, atol, rtol):
    """diff --json of A and B."""
    a = {name: (dtype, shape, raw) for name, dtype, shape, _, raw, _ in listed_tensors(path_a)}
    b = {name: (dtype, shape, raw) for name, dtype, shape, _, raw, _ in listed_tensors(path_b)}
    tensors = [dict(name=name, **compare_tensors(a.get(name), b.get(name), float(atol), float(rtol)))
               for name in sorted(set(a) | set(b))]
    meta_a, meta_b = model_metadata(path_a), model_metadata(path_b)
    metadata = {"only_a": {k: meta_a[k] for k in sorted(meta_a) if k not in meta_b},
                "only_b": {k: meta_b[k] for k in sorted(meta_b) if k not in meta_a},
                "differs": {k: [meta_a[k], meta_b[k]] for k in sorted(meta_a) if k in meta_b and meta_a[k] != meta_b[k]}}
    equal = all(t["status"] == "same" for t in tensors) and not any(metadata.values())
    print(json.dumps({"equal": equal, "tensors": tensors, "metadata": metadata}))


# ---------------------------------------------------------------------------------------------
# convert to and from F4 and F6
# ---------------------------------------------------------------------------------------------

def cycle_values():
    """Values that try every rounding of F4 and F6: each format's values, the points halfway between
    neighbours (ties), a little on either side of them, values past the largest, infinities, zeros of
    both signs; both signs of each. 4k of them, so that a cycle fills whole bytes of F6."""
    values = {0.0, math.inf, 1e30, 100.0}
    for dtype in SUB_BYTE_FORMATS:
        grid = [sub_byte_value(code, dtype) for code in range(1 << (sub_byte_bits(dtype) - 1))]
        for low, high in zip(grid, grid[1:]):
            middle = (low + high) / 2
            values.update({low, middle, middle * (1 + 2 ** -10), middle * (1 - 2 ** -10)})
    ordered = sorted(values)
    signed = [float(struct.unpack("<f", struct.pack("<f", v))[0]) for v in ordered] + [-v for v in ordered]
    signed.append(-0.0)
    return signed + [0.0] * (-len(signed) % 4)


def make_sub_byte_source(path):
    """"wide": F32, the cycle of values repeated past 1,398,101 elements, so that its F6 form is more
    than one 1 MiB piece of the writer and a piece ends inside a 3-byte group; "half": BF16 [8]; "ids":
    I32 [4] and "f8": F8_E4M3 [4], which convert leaves alone."""
    cycle = cycle_values()
    repeats = 1398101 // len(cycle) + 1
    wide = array.array("f", cycle * repeats)
    half = array.array("H", [0x3F80, 0xBF40, 0x40A0, 0x7F80, 0xFF80, 0x0000, 0x8000, 0x3E80])
    ids = array.array("i", [1, -2, 3, -4])
    if sys.byteorder == "big":
        for values in (wide, half, ids):
            values.byteswap()
    write_file(path, [("wide", "F32", [len(wide)], wide.tobytes()), ("half", "BF16", [8], half.tobytes()),
                      ("ids", "I32", [4], ids.tobytes()), ("f8", "F8_E4M3", [4], bytes([1, 2, 0x7E, 0xFE]))],
               {"source": "F32"})


def narrowed(source, result, dtype):
    """RESULT is SOURCE converted to DTYPE: "wide" and "half" each value rounded to nearest even and
    saturating, packed low-first; the other tensors and the metadata unchanged."""
    (wide, metadata), (got, got_metadata) = read_file(source), read_file(result)
    if got_metadata != metadata:
        fail(f"metadata {got_metadata!r}, want {metadata!r}")
    for name in ("ids", "f8"):
        if got[name] != wide[name]:
            fail(f"{name} changed")
    for name in ("wide", "half"):
        source_dtype, shape, raw = wide[name]
        values = float_values(raw, source_dtype)
        if got[name][:2] != (dtype, shape):
            fail(f"{name} is {got[name][:2]}, want {dtype} {shape}")
        # "wide" repeats the cycle of values (as written), so its bytes repeat those of a cycle.
        cycle = len(cycle_values()) if name == "wide" else len(values)
        want = pack_sub_byte([nearest_sub_byte(v, dtype) for v in values[:cycle]], dtype) * (len(values) // cycle)
        if got[name][2] != want:
            first = next(i for i in range(len(want)) if got[name][2][i:i + 1] != want[i:i + 1])
            fail(f"{name}: byte {first} is {got[name][2][first]:#x}, want {want[first]:#x}")


def widened_back(narrow, result):
    """RESULT is NARROW converted to F32: the values of "wide" and "half", exactly."""
    (source, _), (got, _) = read_file(narrow), read_file(result)
    for name in ("wide", "half"):
        dtype, shape, raw = source[name]
        want = array.array("f", float_values(raw, dtype))
        if sys.byteorder == "big":
            want.byteswap()
        if got[name] != ("F32", shape, want.tobytes()):
            fail(f"{name}: not the values of {dtype} widened to F32")


modes = {"load": load, "make_load_file": make_load_file, "make_sparse": make_sparse, "hash": hash_manifest,
         "flip": flip, "diff": diff, "make_sub_byte_source": make_sub_byte_source, "narrowed": narrowed,
         "widened_back": widened_back}
modes[sys.argv[1]](*sys.argv[2:])
