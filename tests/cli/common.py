"""Helpers shared by checker.py and corpus.py, the Python halves of test_cli.sh."""
import json
import math
import struct
import sys


def fail(message):
    """Prints `message` and exits 1: the check it stands for failed."""
    print(message)
    sys.exit(1)


def same_value(got, want):
    """Equal values of the same JSON type, recursively; floats also by the sign of zero."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_value, got, want))
    if isinstance(want, float):
        return type(got) is float and got == want and math.copysign(1, got) == math.copysign(1, want)
    return type(got) is type(want) and got == want


def unique_keys(pairs):
    """object_pairs_hook for json.loads: a dict, or a failed check if a key repeats."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        fail(f"duplicate key in {keys}")
    return dict(pairs)


# The OCP MX sub-byte float formats: exponent bits, mantissa bits, exponent bias. No infinity, no NaN.
SUB_BYTE_FORMATS = {"F4": (2, 1, 1), "F6_E2M3": (2, 3, 1), "F6_E3M2": (3, 2, 3)}


def sub_byte_value(code, dtype):
    """The value of the sub-byte float with bit pattern `code`, -0.0 for the negative zero."""
    exponent_bits, mantissa_bits, bias = SUB_BYTE_FORMATS[dtype]
    exponent = (code >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = code & ((1 << mantissa_bits) - 1)
    if exponent == 0:
        magnitude = math.ldexp(mantissa, 1 - bias - mantissa_bits)
    else:
        magnitude = math.ldexp((1 << mantissa_bits) + mantissa, exponent - bias - mantissa_bits)
    return -magnitude if code >> (exponent_bits + mantissa_bits) else magnitude


def sub_byte_bits(dtype):
    exponent_bits, mantissa_bits, _ = SUB_BYTE_FORMATS[dtype]
    return 1 + exponent_bits + mantissa_bits


def sub_byte_group(dtype):
    """The fewest whole bytes that hold whole elements (F4: 1 byte, 2 elements; F6: 3 bytes, 4 elements):
    packing works a group at a time, since shifting one number of a whole tensor's bits per element
    takes time quadratic in its size."""
    bits = sub_byte_bits(dtype)
    group = bits // math.gcd(bits, 8)
    return group, group * 8 // bits


def unpack_sub_byte(raw, dtype, order="low-first"):
    """The bit patterns packed in `raw`: low-first, element i in bits [b*i, b*i + b) of the bytes as one
    little-endian number (F4: element 2i in the low nibble of byte i); high-first, counted from the most
    significant bit of the bytes as one big-endian number."""
    bits = sub_byte_bits(dtype)
    mask = (1 << bits) - 1
    group, _ = sub_byte_group(dtype)
    codes = []
    for start in range(0, len(raw), group):
        chunk = raw[start:start + group]
        count, total = len(chunk) * 8 // bits, len(chunk) * 8
        if order == "low-first":
            number = int.from_bytes(chunk, "little")
            codes.extend((number >> (bits * i)) & mask for i in range(count))
        else:
            number = int.from_bytes(chunk, "big")
            codes.extend((number >> (total - bits * (i + 1))) & mask for i in range(count))
    return codes


def pack_sub_byte(codes, dtype):
    """Bit patterns packed low-first (the inverse of unpack_sub_byte's default)."""
    bits = sub_byte_bits(dtype)
    group, per_group = sub_byte_group(dtype)
    packed = bytearray()
    for start in range(0, len(codes), per_group):
        chunk = codes[start:start + per_group]
        number = sum(code << (bits * i) for i, code in enumerate(chunk))
        packed += number.to_bytes(len(chunk) * bits // 8, "little")
    return bytes(packed)


def nearest_sub_byte(value, dtype):
    """The bit pattern `value` rounds to: to nearest, ties to the even pattern, saturating at the largest
    magnitude (infinities included), the sign kept (-0.0 too)."""
    bits = sub_byte_bits(dtype)
    sign = 1 << (bits - 1) if math.copysign(1.0, value) < 0 else 0
    codes = range(1 << (bits - 1))  # the non-negative patterns, in increasing value
    magnitude = abs(value)
    if magnitude >= sub_byte_value(codes[-1], dtype):
        return sign | codes[-1]
    return sign | min(codes, key=lambda code: (abs(sub_byte_value(code, dtype) - magnitude), code % 2))


# Writes a safetensors file; metadata None writes no __metadata__.
def write_file(path, tensors, metadata):
    header, data = ({} if metadata is None else {"__metadata__": metadata}), b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", None)
    tensors = {name: (entry["dtype"], entry["shape"],
                      data[8 + length + entry["data_offsets"][0]:8 + length + entry["data_offsets"][1]])
               for name, entry in header.items()}
    return tensors, metadata


# The names of the file at PATH in data order (by data_offsets, ties by name).
def file_order(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return sorted(header, key=lambda name: (header[name]["data_offsets"], name.encode()))


def same_json(got, want):
    """Equal JSON values: objects with the same keys in the same order, and same_value's rule for the rest."""
    if isinstance(want, dict):
        return (isinstance(got, dict) and list(got) == list(want) and
                all(same_json(got[key], want[key]) for key in want))
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_json, got, want))
    return same_value(got, want)
