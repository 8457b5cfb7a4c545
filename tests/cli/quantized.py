"""Quantized checkpoints for the dequantize and inspect checks of test_cli_commands.sh: a file and
a sharded model holding one weight of each layout (NVFP4 as compressed-tensors and ModelOpt write
it, gpt-oss's MXFP4, block-scaled FP8), and the check of what dequantize wrote, each value
computed here from the layouts' definitions in float32, in the schemes' order, rounded once.

Usage: quantized.py make DIR       writes DIR/quant.safetensors and DIR/model/ (two shards, an
                                   index, and a config.json with FP8 blocks of 2x2)
       quantized.py check OUT DTYPE SOURCE BLOCK
                                   OUT (a file, or a directory of shards) is SOURCE dequantized to
                                   DTYPE with FP8 blocks of BLOCK (e.g. 2x2); exits 1 naming the
                                   first difference"""
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_file, write_file  # noqa: E402


def f32(value):
    """`value` rounded to float32, as a float32 operation on float32 operands rounds it (the exact
    result fits a double, so rounding it once more to float32 is the operation's own rounding)."""
    return struct.unpack("<f", struct.pack("<f", value))[0] if math.isfinite(value) else value


def e2m1(code):
    magnitude = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0][code & 7]
    return -magnitude if code & 8 else magnitude


def e4m3(byte):
    exponent, mantissa = (byte >> 3) & 15, byte & 7
    if exponent == 15 and mantissa == 7:
        return math.nan
    magnitude = math.ldexp(mantissa, -9) if exponent == 0 else math.ldexp(8 + mantissa, exponent - 10)
    return -magnitude if byte & 128 else magnitude


def nibbles(raw):
    return [(byte >> shift) & 15 for byte in raw for shift in (0, 4)]


def pattern(size, seed, avoid_nan=False):
    out = bytearray((k * 37 + seed * 101 + (k * k) % 13) % 256 for k in range(size))
    if avoid_nan:
        out = bytearray(b ^ 1 if b & 0x7F == 0x7F else b for b in out)
    return bytes(out)


def f32_bytes(values):
    return b"".join(struct.pack("<f", v) for v in values)


# name, dtype, shape, bytes of every tensor; the FP8 weight's scale_inv is for blocks of 2x2.
def tensors():
    return [
        ("model.layers.0.self_attn.q_proj.weight_packed", "U8", [4, 16], pattern(64, 1)),
        ("model.layers.0.self_attn.q_proj.weight_scale", "F8_E4M3", [4, 2], pattern(8, 2, True)),
        ("model.layers.0.self_attn.q_proj.weight_global_scale", "F32", [1], f32_bytes([96.0])),
        ("model.layers.0.self_attn.o_proj.weight", "U8", [4, 16], pattern(64, 3)),
        ("model.layers.0.self_attn.o_proj.weight_scale", "F8_E4M3", [4, 2], pattern(8, 4, True)),
        ("model.layers.0.self_attn.o_proj.weight_scale_2", "F32", [], f32_bytes([0.375])),
        ("model.layers.0.mlp.experts.gate_up_proj_blocks", "U8", [2, 2, 2, 16], pattern(128, 5)),
        ("model.layers.0.mlp.experts.gate_up_proj_scales", "U8", [2, 2, 2], bytes(range(120, 128))),
        ("model.layers.0.mlp.down_proj.weight", "F8_E4M3", [3, 5], pattern(15, 6, True)),
        ("model.layers.0.mlp.down_proj.weight_scale_inv", "F32", [2, 3], f32_bytes([0.5, 2.0, 1 / 3, 3.0, 0.25, 7.0])),
        ("model.norm.weight", "F32", [4], f32_bytes([1.0, 2.0, 3.0, 4.0])),
        ("model.embed_tokens.weight", "BF16", [2, 2], bytes(range(8))),
    ]


def make(directory):
    listed = tensors()
    write_file(os.path.join(directory, "quant.safetensors"), listed, {"format": "pt"})
    model = os.path.join(directory, "model")
    os.makedirs(model, exist_ok=True)
    # Values in the first shard, their scales in the second: a weight's group spans shards.
    first = [t for t in listed if t[0].endswith(("weight_packed", "o_proj.weight", "_blocks", "down_proj.weight"))]
    second = [t for t in listed if t not in first]
    weight_map = {}
    for number, part in ((1, first), (2, second)):
        name = f"model-0000{number}-of-00002.safetensors"
        write_file(os.path.join(model, name), part, {"format": "pt"})
        weight_map.update({t[0]: name for t in part})
    with open(os.path.join(model, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(len(t[3]) for t in listed)}, "weight_map": weight_map}, f)
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump({"model_type": "test", "quantization_config": {"quant_method": "fp8", "weight_block_size": [2, 2]}},
                  f)


def dequantized(block):
    """The dequantized weights: name -> (shape, float32 values); the scale tensors' names."""
    t = {name: (shape, raw) for name, _, shape, raw in tensors()}
    out = {}
    for stem, global_name in (("model.layers.0.self_attn.q_proj", "weight_global_scale"),
                              ("model.layers.0.self_attn.o_proj", "weight_scale_2")):
        values = nibbles(t[stem + (".weight_packed" if "q_proj" in stem else ".weight")][1])
        scales = t[stem + ".weight_scale"][1]
        (global_scale,) = struct.unpack("<f", t[stem + "." + global_name][1])
        result = []
        for i, code in enumerate(values):
            scale = e4m3(scales[i // 32 * 2 + i % 32 // 16])
            factor = f32(scale / global_scale) if "q_proj" in stem else f32(scale * global_scale)
            result.append(f32(e2m1(code) * factor))
        out[stem + ".weight"] = ([4, 32], result)
    blocks, exponents = t["model.layers.0.mlp.experts.gate_up_proj_blocks"][1], t[
        "model.layers.0.mlp.experts.gate_up_proj_scales"][1]
    out["model.layers.0.mlp.experts.gate_up_proj"] = (
        [2, 2, 64], [f32(math.ldexp(e2m1(code), exponents[i // 32] - 127)) for i, code in enumerate(nibbles(blocks))])
    fp8 = t["model.layers.0.mlp.down_proj.weight"][1]
    scale_inv = [v for (v,) in struct.iter_unpack("<f", t["model.layers.0.mlp.down_proj.weight_scale_inv"][1])]
    b0, b1 = block
    columns = (5 + b1 - 1) // b1
    out["model.layers.0.mlp.down_proj.weight"] = (
        [3, 5], [f32(e4m3(byte) * scale_inv[i // 5 // b0 * columns + i % 5 // b1]) for i, byte in enumerate(fp8)])
    return out


def encode(values, dtype):
    if dtype == "F32":
        return b"".join(struct.pack("<f", v) for v in values)
    if dtype == "F16":
        return b"".join(struct.pack("<e", v) for v in values)
    words = []
    for v in values:
        (bits,) = struct.unpack("<I", struct.pack("<f", v))
        words.append(0x7FC0 | (bits >> 16) & 0x8000 if math.isnan(v) else (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
    return b"".join(struct.pack("<H", w) for w in words)


def check(out_path, dtype, source, block):
    written = {}
    paths = ([os.path.join(out_path, n) for n in sorted(os.listdir(out_path)) if n.endswith(".safetensors")]
             if os.path.isdir(out_path) else [out_path])
    for path in paths:
        found, metadata = read_file(path)
        if metadata != {"format": "pt"}:
            sys.exit(f"{path}: metadata {metadata}, want the source's")
        written.update(found)
    weights = dequantized([int(b) for b in block.split("x")])
    scales = {n for n, _, _, _ in tensors() if n.endswith(("_scale", "_global_scale", "_scale_2", "_scales", "_inv"))}
    values = {"model.layers.0.self_attn.q_proj.weight_packed", "model.layers.0.self_attn.o_proj.weight",
              "model.layers.0.mlp.experts.gate_up_proj_blocks", "model.layers.0.mlp.down_proj.weight"}
    want = {}
    for name, stored_dtype, shape, raw in tensors():
        if name not in scales and name not in values:
            want[name] = (stored_dtype, shape, raw)
    for name, (shape, result) in weights.items():
        want[name] = (dtype, shape, encode(result, dtype))
    if sorted(written) != sorted(want):
        sys.exit(f"tensors {sorted(written)}, want {sorted(want)}")
    for name in want:
        if written[name] != want[name]:
            got_dtype, got_shape, got_raw = written[name]
            first = next((i for i, (a, b) in enumerate(zip(got_raw, want[name][2])) if a != b), None)
            sys.exit(f"{name}: {got_dtype} {got_shape} ({len(got_raw)} bytes), want {want[name][0]} {want[name][1]} "
                     f"({len(want[name][2])} bytes); first differing byte {first}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(*sys.argv[2:6])
