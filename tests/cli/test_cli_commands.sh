#!/usr/bin/env bash
# Checks safetensors-cli's later commands against results computed in Python from the files'
# bytes (expected.py): convert to and from F4 and F6; load (bytes, bytes_read and each tensor's
# sha256, files and models, mapped and pread, threads, budgets, tensor-parallel ranks, peak RSS);
# hash; verify against manifests and embedded hashes; diff; then, for every command, usage errors
# (exit 64), standard output that cannot be written (/dev/full) or whose reader goes away, and
# the help texts.
#
# Usage: test_cli_commands.sh PATH/TO/safetensors-cli PATH/TO/tests/data/reference
# Prints "ok - ..." or "not ok - ..." per check, then "N passed, M failed"; exits 1 on a failure.

set -u
source "$(dirname "$0")/lib.sh"

# What test_cli.sh makes on its way and these checks read: a split model (two shard sizes) and
# its merge, and conversions through BF16, F16 and F32.
"$cli" split "$many" "$work/split_10KB" --max-shard-size 10KB >/dev/null
"$cli" split "$many" "$work/split_4KiB" --max-shard-size 4KiB >/dev/null
"$cli" merge "$work/split_4KiB" "$work/merged.safetensors" >/dev/null
"$cli" convert "$f32" "$work/bf16.safetensors" --dtype BF16 >/dev/null
"$cli" convert "$work/bf16.safetensors" "$work/f32.safetensors" --dtype F32 >/dev/null
"$cli" convert "$mixed" "$work/f16.safetensors" --dtype F16 >/dev/null
python3 "$here/corpus.py" make_f16 "$work/big_f16.safetensors"

# convert to F4 and F6 and back: every value rounded to nearest, ties to even, saturating, as
# computed here; a piece of the writer that ends inside a 3-byte group of F6; NaN refused.
expected make_sub_byte_source "$work/wide.safetensors"
for dtype in F4 F6_E2M3 F6_E3M2; do
  run convert "$work/wide.safetensors" "$work/narrow_$dtype.safetensors" --dtype "$dtype"
  check "convert --dtype $dtype of 1.4M F32 values and 8 BF16: exit 0" exit_status 0
  check "convert --dtype $dtype: each value rounded to nearest even, saturating, packed low-first; I32, F8 and \
metadata unchanged" expected narrowed "$work/wide.safetensors" "$work/narrow_$dtype.safetensors" "$dtype"
  run convert "$work/narrow_$dtype.safetensors" "$work/back_$dtype.safetensors" --dtype F32
  check "convert the $dtype file --dtype F32: its values exactly" \
    expected widened_back "$work/narrow_$dtype.safetensors" "$work/back_$dtype.safetensors"
done
run convert "$work/wide.safetensors" "$work/high.safetensors" --dtype F6_E2M3 --packing high-first
run dump --json "$work/high.safetensors" half --packing high-first
cp "$work/out" "$work/high_values"
run dump --json "$work/narrow_F6_E2M3.safetensors" half
check "convert --packing high-first: read back high-first, the values convert gives low-first" \
  assert json_lines 0 "$work/high_values"
python3 -c 'import struct, sys; sys.path.insert(0, sys.argv[2]); from common import write_file
write_file(sys.argv[1], [("n", "F32", [2], struct.pack("<2f", 1, float("nan")))], None)' "$work/nan.safetensors" "$here"
run convert "$work/nan.safetensors" "$work/bad.safetensors" --dtype F4
check "convert --dtype F4 of a tensor holding NaN: exit 1, InvalidConversion naming the file, tensor and element" \
  assert error_text 1 "safetensors-cli: InvalidConversion: \"$work/nan.safetensors\": tensor \"n\": element 1 (nan) of F32 \
has no F4 value: F4 has no NaN"
check "convert --dtype F4 of a tensor holding NaN: nothing written" test ! -e "$work/bad.safetensors"
run convert "$f32" "$work/bad.safetensors" --dtype F4
check "convert --dtype F4 of a tensor of 1 element (4 bits): exit 1, MisalignedSlice naming it" assert error_text 1 \
  'safetensors-cli: MisalignedSlice: tensor "scalar": 1 F4 elements fill 4 bits, not a whole number of bytes'

# load: every tensor through one plan; bytes, bytes_read and each tensor's sha256 as computed here,
# for a file and a model, mapped and pread, 1 to 4 threads, budgets down to one 4 KiB block;
# tensor-parallel ranks along dimensions 0 and 1.
expected make_load_file "$work/layers.safetensors"
"$cli" split "$work/layers.safetensors" "$work/layers" --max-shard-size 300KB
for path in "$work/layers.safetensors" "$work/layers" "$work/layers/model.safetensors.index.json" "$many" \
  "$work/split_10KB"; do
  expected load "$path" 0 0 0 digest >"$work/expected"
  shown=${path#"$work"/}
  shown=${shown#"$ref"/}
  # With --digest, a tensor whose early pieces outgrow half the budget is read again, in order:
  # bytes_read is then more than the plan's.
  for options in ":exact" "--storage pread:exact" "--threads 1 --budget 4KiB:at-least" \
    "--storage pread --threads 4 --budget 64KiB:at-least" "--storage pread --threads 3 --budget 12KiB:at-least"; do
    flags=${options%:*}
    # shellcheck disable=SC2086  # the options
    run load --json --digest $flags "$path"
    check "load --json --digest ${flags:+$flags }$shown: tensors, bytes, every sha256, bytes_read ${options#*:}" \
      assert load_json "$work/expected" "${options#*:}"
  done
done
expected load "$work/layers" 0 0 0 "" >"$work/expected"
run load --json "$work/layers"
check "load --json without --digest: no digests member" assert load_json "$work/expected"
for tp in "4 1 0" "4 3 0" "2 1 1" "3 2 1" "2 0 2"; do
  read -r size rank dim <<<"$tp"
  for path in "$work/layers.safetensors" "$work/layers"; do
    expected load "$path" "$size" "$rank" "$dim" digest >"$work/expected"
    run load --json --digest --tp-size "$size" --tp-rank "$rank" --tp-dim "$dim" "$path"
    check "load --tp-size $size --tp-rank $rank --tp-dim $dim ${path#"$work"/}: the rank's slices' bytes, sha256 and \
bytes_read (adjacent runs merged, nothing between runs read)" assert load_json "$work/expected"
  done
done
expected load "$work/layers.safetensors" 4 1 0 digest >"$work/expected"
run load --json --digest --tp-size 4 --tp-rank 1 --storage pread --budget 8KiB --threads 4 "$work/layers.safetensors"
check "load --tp-size 4 --tp-rank 1 --storage pread --budget 8KiB --threads 4: the same digests" \
  python3 -c 'import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); sys.exit(a["digests"] != b["digests"])' \
  "$work/out" "$work/expected"
run load --json --digest --storage pread --direct --threads 3 --budget 12KiB "$work/layers"
check "load --storage pread --direct: the same digests, bytes_read widened to 4096-byte multiples" python3 -c '
import json, sys
got, want = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(got["digests"] != want["digests"] or got["bytes"] != want["bytes"] or got["bytes_read"] < want["bytes_read"])' \
  "$work/out" <(expected load "$work/layers" 0 0 0 digest)
run load "$work/layers.safetensors" --digest --threads 2
check "load --digest: a line \"PATH\": loaded T tensors, B bytes (R read) in S s: G GB/s, then HEX  \"NAME\" each" \
  python3 -c '
import json, re, sys
lines = open(sys.argv[1]).read().split("\n")
want = json.load(open(sys.argv[2]))
summary = re.fullmatch(r"(\".*\"): loaded 8 tensors, (\d+) bytes \((\d+) read\) in \d+\.\d{3} s: \d+\.\d\d GB/s", lines[0])
digests = [f"{h}  {json.dumps(n)}" for n, h in want["digests"].items()]
sys.exit(not summary or json.loads(summary[1]) != sys.argv[3] or int(summary[2]) != want["bytes"] or
         int(summary[3]) != want["bytes_read"] or lines[1:] != digests + [""])' "$work/out" \
  <(expected load "$work/layers.safetensors" 0 0 0 digest) "$work/layers.safetensors"
# load --tp-plan: a Llama-like layer (F32 rows of 4-byte elements), each rank's share as the plan
# says, its sha256 computed here from the file's bytes; a JSON plan; refusals.
python3 - "$work/llama.safetensors" "$work/llama_expected.json" "$here" <<'PYTHON'
import hashlib, json, sys
sys.path.insert(0, sys.argv[3])
from common import write_file
layer = [("model.embed_tokens.weight", [8, 4], None), ("model.layers.0.self_attn.q_proj.weight", [8, 4], 0),
         ("model.layers.0.self_attn.q_proj.bias", [8], 0), ("model.layers.0.self_attn.o_proj.weight", [4, 8], 1),
         ("model.layers.0.mlp.down_proj.weight", [4, 8], 1), ("model.layers.0.mlp.down_proj.bias", [4], None),
         ("model.norm.weight", [4], None), ("lm_head.weight", [8, 4], 0)]
tensors, expected = [], {}
for number, (name, shape, dim) in enumerate(layer):
    count = shape[0] * (shape[1] if len(shape) > 1 else 1)
    raw = bytes((number * 37 + k * 11) % 256 for k in range(count * 4))
    tensors.append((name, "F32", shape, raw))
    for size, rank in ((2, 0), (2, 1), (4, 3)):
        if dim is None or (dim == 1 and len(shape) < 2):
            part = raw
        elif dim == 0:
            row = len(raw) // shape[0]
            part = raw[rank * shape[0] // size * row:(rank + 1) * shape[0] // size * row]
        else:
            columns, row = shape[1] // size, shape[1] * 4
            part = b"".join(raw[r * row + rank * columns * 4:r * row + (rank + 1) * columns * 4] for r in range(shape[0]))
        expected.setdefault(f"{size} {rank}", {})[name] = hashlib.sha256(part).hexdigest()
write_file(sys.argv[1], tensors, None)
json.dump(expected, open(sys.argv[2], "w"))
PYTHON
for tp in "2 0" "2 1" "4 3"; do
  read -r size rank <<<"$tp"
  run load --json --digest --tp-size "$size" --tp-rank "$rank" --tp-plan llama "$work/llama.safetensors"
  check "load --tp-plan llama --tp-size $size --tp-rank $rank: q and lm_head cut in rows, o and down in columns, \
biases as their weights' outputs, norms and embeddings whole: each sha256" python3 -c '
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))[sys.argv[3]]
sys.exit(got["digests"] != want)' "$work/out" "$work/llama_expected.json" "$size $rank"
done
printf '{"q_proj": "colwise", "lm_head": "colwise", "layers.*.self_attn.o_proj": "rowwise", "down_proj": "rowwise"}' \
  >"$work/plan.json"
run load --json --digest --tp-size 2 --tp-rank 1 --tp-plan "$work/plan.json" "$work/llama.safetensors"
check "load --tp-plan FILE.json: the same shares as llama" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["digests"] != json.load(open(sys.argv[2]))["2 1"])' \
  "$work/out" "$work/llama_expected.json"
run load --json --tp-size 3 --tp-rank 0 --tp-plan llama "$work/llama.safetensors"
check "load --tp-plan llama --tp-size 3: exit 1, InvalidArgument naming the tensor that does not divide" \
  assert error_json InvalidArgument 1 \
  'tensor "model.layers.0.self_attn.q_proj.weight" (colwise by the pattern "q_proj"): dimension 0 of size 8 does not divide into 3 ranks'
printf '{"q_proj": "sideways"}' >"$work/bad_plan.json"
run load --json --tp-size 2 --tp-rank 0 --tp-plan "$work/bad_plan.json" "$work/llama.safetensors"
check "load --tp-plan of a plan with an unknown style: exit 1, InvalidArgument naming the file" \
  assert error_json InvalidArgument 1 "$work/bad_plan.json"
run load --tp-size 2 --tp-rank 0 --tp-plan llama --tp-dim 1 "$work/llama.safetensors"
check "load --tp-plan with --tp-dim: a usage error, exit 64" test "$(<"$work/rc")" = 64

# dequantize and inspect's groups: a file and a two-shard model (each weight's values in one shard,
# its scales in the other) holding one weight of each layout; every value computed in
# quantized.py from the layouts' definitions. FP8's block (2x2) comes from config.json.
quantized() { python3 "$here/quantized.py" "$@"; }
mkdir -p "$work/quant"
quantized make "$work/quant"
run inspect --json "$work/quant/quant.safetensors"
check "inspect --json of FP8 scales that do not fit 128x128 blocks: exit 0, quantized null and the error" python3 -c '
import json, sys
got = json.load(open(sys.argv[1]))
sys.exit(got["ok"] is not True or got["quantized"] is not None or got["quantized_error"] != {"error": "InvalidArgument",
    "message": "tensor \"model.layers.0.mlp.down_proj.weight_scale_inv\": an FP8 weight\x27s scale_inv must be F32 "
    "[ceil(rows/128), ceil(columns/128)] for the weight [3, 5], not F32 [2, 3]"})' "$work/out"
run dequantize "$work/quant/quant.safetensors" "$work/quant/out.safetensors" --dtype F32
check "dequantize of a file whose FP8 scales do not fit: exit 1, InvalidArgument naming the tensor, nothing written" \
  test "$(<"$work/rc"):$(grep -c '^safetensors-cli: InvalidArgument: tensor "model.layers.0.mlp.down_proj.weight_scale_inv"' \
    "$work/err"):$(ls "$work/quant" | grep -c out)" = 1:1:0
cp "$work/quant/model/config.json" "$work/quant/config.json"
for dtype in F32 BF16 F16; do
  run dequantize "$work/quant/quant.safetensors" "$work/quant/out_$dtype.safetensors" --dtype "$dtype"
  check "dequantize --dtype $dtype of a file (config.json beside it): every weight exact, scales dropped, the rest \
copied" quantized check "$work/quant/out_$dtype.safetensors" "$dtype" file 2x2
  run dequantize "$work/quant/model" "$work/quant/model_$dtype" --dtype "$dtype" --max-shard-size 600B
  check "dequantize --dtype $dtype of a two-shard model into a directory: the same tensors, re-sharded" \
    quantized check "$work/quant/model_$dtype" "$dtype" model 2x2
done
check "dequantize of a model: shards of at most 600 bytes and an index" \
  test "$(find "$work/quant/model_F32" -name 'model-*-of-*.safetensors' | wc -l):$(ls "$work/quant/model_F32" | grep -c index)" = 4:1
check "dequantize prints what it did" \
  grep -qx '"'"$work/quant/model_F16"'": 4 weights dequantized to F16, 2 tensors copied, 6 scale tensors dropped' "$work/out"
run dequantize "$work/quant/model" "$work/quant/model_F32" --dtype F32
check "dequantize into a directory holding a model, without --replace: exit 1" test "$(<"$work/rc")" = 1
run dequantize "$work/quant/model" "$work/quant/model_bad" --dtype F8_E4M3
check "dequantize --dtype F8_E4M3: a usage error, exit 64" test "$(<"$work/rc")" = 64
run inspect --json "$work/quant/model"
check "inspect --json of a model lists its four groups: scheme, shape, block and tensors" python3 -c '
import json, sys
groups = {g["weight"]: g for g in json.load(open(sys.argv[1]))["quantized"]}
want = {"model.layers.0.self_attn.q_proj.weight": ["nvfp4-compressed-tensors", [4, 32], [1, 16], "weight_packed", "weight_scale", "weight_global_scale"],
        "model.layers.0.self_attn.o_proj.weight": ["nvfp4-modelopt", [4, 32], [1, 16], "weight", "weight_scale", "weight_scale_2"],
        "model.layers.0.mlp.experts.gate_up_proj": ["mxfp4", [2, 2, 64], [1, 32], "_blocks", "_scales", None],
        "model.layers.0.mlp.down_proj.weight": ["fp8-block", [3, 5], [2, 2], "weight", "weight_scale_inv", None]}
def stem(weight, tail):
    return weight.rsplit(".", 1)[0] + "." + tail if not tail.startswith("_") else weight + tail
sys.exit(sorted(groups) != sorted(want) or any(
    [g["scheme"], g["shape"], g["block"], g["values"], g["scales"], g["global_scale"]] !=
    [w[0], w[1], w[2], stem(name, w[3]), stem(name, w[4]), w[5] and stem(name, w[5])]
    for name, w in want.items() for g in [groups[name]]))' "$work/out"
run inspect "$work/quant/model"
check "inspect of a model: a line per group after the table" test "$(grep -c '^"model.layers.0.*  \(nvfp4\|mxfp4\|fp8\)' "$work/out"):$(grep -c '^quantized: 4 groups$' "$work/out")" = 4:1

# load's engines and arena: the same bytes whichever reads them and wherever they go.
run load --json --digest --storage pread "$work/llama.safetensors"
cp "$work/out" "$work/load_staging.json"
same_digests() {
  python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["digests"] != json.load(open(sys.argv[2]))["digests"])' \
    "$work/out" "$work/load_staging.json"
}
for how in "--storage pread --io-engine threads" "--storage pread --io-engine io_uring --queue-depth 1" \
  "--storage pread --into arena" "--storage pread --into arena --io-engine threads" \
  "--storage pread --into arena --direct" "--into arena"; do
  # shellcheck disable=SC2086  # the options
  run load --json --digest $how "$work/llama.safetensors"
  check "load $how: every tensor's sha256 as through staging" same_digests
done
run load --verbose --storage pread --io-engine threads "$work/llama.safetensors"
check "load --verbose --io-engine threads: says so on stderr" \
  grep -qx 'safetensors-cli: load: pread files are read with threads' "$work/err"
SAFETENSORS_IO_ENGINE=threads run load --verbose --storage pread "$work/llama.safetensors"
check "load --verbose with SAFETENSORS_IO_ENGINE=threads: threads" \
  grep -qx 'safetensors-cli: load: pread files are read with threads' "$work/err"
# (The environment's SAFETENSORS_IO_ENGINE, which tests/run.sh sets, emptied: the defaults.)
SAFETENSORS_IO_ENGINE= run load --verbose --storage pread "$work/llama.safetensors"
check "load --verbose, buffered: threads" \
  grep -qx 'safetensors-cli: load: pread files are read with threads' "$work/err"
SAFETENSORS_IO_ENGINE= run load --verbose --storage pread --direct "$work/llama.safetensors"
check "load --verbose --direct: io_uring, or why not" \
  grep -Eqx 'safetensors-cli: load: (pread files are read with io_uring, 32 reads in flight per thread|io_uring is unavailable \(.*\): pread files are read with threads)' \
  "$work/err"
for usage in "--queue-depth 0:--queue-depth" "--into disk:--into" "--io-engine aio:--io-engine"; do
  # shellcheck disable=SC2086  # the options
  run load ${usage%%:*} "$work/llama.safetensors"
  check "load ${usage%%:*}: a usage error naming ${usage#*:}, exit 64" \
    test "$(<"$work/rc"):$(grep -c -- "${usage#*:}" "$work/err")" = 64:1
done

run load --json --tp-size 2 --tp-rank 0 "$mixed"
check "load --tp-size 2 of F6 [4]: half of it is 12 bits, exit 1, MisalignedSlice" \
  assert error_json MisalignedSlice 1 t_F6
run load --json "$work/missing.safetensors"
check "load --json of a missing file: exit 2, IoError" assert error_json IoError 2 "$work/missing.safetensors"
run load "$ref/invalid/offsets_overlap.safetensors"
check "load of an invalid file: exit 1, one line on stderr" \
  test "$(<"$work/rc"):$(grep -c '^safetensors-cli: InvalidOffset: ' "$work/err")" = 1:1
for usage in "--tp-size 2:--tp-size requires --tp-rank" "--tp-rank 1:--tp-rank requires --tp-size" \
  "--tp-size 2 --tp-rank 2:--tp-rank 2 is not below --tp-size 2" \
  "--tp-size 0 --tp-rank 0:--tp-size: '0': the number of ranks must be at least 1" \
  "--direct:--direct needs --storage pread" "--storage disk:--storage" "--budget 1.5GB:--budget" \
  "--budget 4095:--budget 4095 is less than one block of 4KiB" \
  "--threads 0:--threads: '0': the number of threads must be from 1 to 1024"; do
  # shellcheck disable=SC2086  # the options
  run load ${usage%%:*} "$work/layers.safetensors"
  check "load ${usage%%:*}: a usage error saying '${usage#*:}', exit 64" \
    test "$(<"$work/rc"):$(grep -c -- "${usage#*:}" "$work/err")" = 64:1
done
if [[ -x /usr/bin/time ]] && ! grep -q __asan_init "$cli"; then
  expected make_sparse "$work/sparse.safetensors" 268435456
  /usr/bin/time -f %M "$cli" load --storage pread --budget 8MiB "$work/sparse.safetensors" >"$work/out" 2>"$work/err"
  check "load --storage pread --budget 8MiB of a 256 MiB file: peak RSS under 40 MB ($(tail -1 "$work/err") KiB)" \
    test "$(tail -1 "$work/err")" -lt 40000
else
  echo "ok - # SKIP peak RSS of load: no /usr/bin/time, or AddressSanitizer"
fi

# hash: each file's and each tensor's sha256, as computed here, for files and models, on 1 to 4
# threads; the text form is the same manifest.
for path in "$many" "$work/split_10KB" "$work/layers" "$work/wide.safetensors" "$mixed"; do
  expected hash "$path" >"$work/expected"
  for threads in 1 4; do
    run hash --json --threads "$threads" "$path"
    check "hash --json --threads $threads ${path##*/}: every file's and tensor's sha256, in inspect's order" \
      assert json_is 0 "$work/expected"
  done
done
run hash "$work/layers"
check "hash: lines HEX  file \"NAME\", then HEX  tensor \"NAME\", as --json has them" python3 -c '
import json, sys
want = json.load(open(sys.argv[2]))
lines = [f"{h}  file {json.dumps(n)}" for n, h in want["files"].items()]
lines += [f"{h}  tensor {json.dumps(n)}" for n, h in want["tensors"].items()]
sys.exit(open(sys.argv[1]).read() != "\n".join(lines) + "\n")' "$work/out" <(expected hash "$work/layers")

# verify: against hash's manifest (text and JSON) and against hashes embedded by rewrite
# --embed-hashes; a changed tensor is named.
"$cli" hash "$many" >"$work/manifest.txt"
"$cli" hash --json "$many" >"$work/manifest.json"
for manifest in manifest.txt manifest.json; do
  run verify "$many" "$work/$manifest"
  check "verify many_tensors_5000 $manifest: exit 0, ok" assert stdout_is 0 \
    "ok \"$many\": 5000 tensors and 1 file match"$'\n'
done
name='#1759'
expected flip "$many" "$work/flipped.safetensors" "$name"
run verify "$work/flipped.safetensors" "$work/manifest.txt"
check "verify of a copy with one byte of \"$name\" changed: exit 1, the tensor and the file named" assert stdout_is 1 \
  "differs tensor \"$name\""$'\n'"differs file \"many_tensors_5000.safetensors\""$'\n'"FAIL \"$work/flipped.safetensors\": \
1 of 5000 tensors and 1 of 1 file do not match"$'\n'
run verify --json "$work/flipped.safetensors" "$work/manifest.json"
check "verify --json of it: verified false, that tensor differs, the others the same" python3 -c '
import json, sys
got = json.load(open(sys.argv[1]))
sys.exit(got["verified"] is not False or got["files"] != [{"name": "many_tensors_5000.safetensors", "status": "differs"}] or
         [t["name"] for t in got["tensors"] if t["status"] != "same"] != [sys.argv[2]] or len(got["tensors"]) != 5000)' \
  "$work/out" "$name"
"$cli" hash --json "$work/split_10KB" >"$work/model_manifest.json"
run verify "$work/split_10KB/model.safetensors.index.json" "$work/model_manifest.json"
check "verify of a model through its index, against its manifest: exit 0" assert stdout_is 0 \
  "ok \"$work/split_10KB/model.safetensors.index.json\": 5000 tensors and 6 files match"$'\n'
run verify "$work/split_10KB" "$work/manifest.txt"
check "verify of the model against the file's manifest: the tensors match, the files are missing and unlisted" \
  test "$(<"$work/rc"):$(grep -c '^unlisted file "model-0000[1-6]-of-00006.safetensors"$' "$work/out"):$(
    grep -c '^missing file "many_tensors_5000.safetensors"$' "$work/out"):$(grep -c '^[a-z]* tensor ' "$work/out")" = 1:6:1:0
run rewrite "$many" "$work/embedded.safetensors" --embed-hashes
check "rewrite --embed-hashes: exit 0" exit_status 0
check "rewrite --embed-hashes: the metadata gains sha256:NAME, each tensor's sha256, for all 5000" python3 -c '
import json, sys
sys.path.insert(0, sys.argv[3])
from common import read_file
(original, metadata), (got, got_metadata) = read_file(sys.argv[1]), read_file(sys.argv[2])
want = dict(metadata, **{"sha256:" + n: t["sha256"] for n, t in ((t["name"], t) for t in json.load(open(sys.argv[1] + ".json"))["tensors"])})
sys.exit(got != original or got_metadata != want)' "$many" "$work/embedded.safetensors" "$here"
run verify "$work/embedded.safetensors"
check "verify without a manifest: the embedded hashes, exit 0" assert stdout_is 0 \
  "ok \"$work/embedded.safetensors\": 5000 tensors match"$'\n'
expected flip "$work/embedded.safetensors" "$work/embedded_flipped.safetensors" "$name"
run verify "$work/embedded_flipped.safetensors"
check "verify without a manifest of a changed tensor: exit 1, naming it" assert stdout_is 1 \
  "differs tensor \"$name\""$'\n'"FAIL \"$work/embedded_flipped.safetensors\": 1 of 5000 tensors do not match"$'\n'
run split "$work/embedded.safetensors" "$work/embedded_model" --max-shard-size 10KB
run verify "$work/embedded_model"
check "verify without a manifest of a model split from it: every shard's hashes, exit 0" assert stdout_is 0 \
  "ok \"$work/embedded_model\": 5000 tensors match"$'\n'
run verify "$many"
check "verify without a manifest of a file without hashes: exit 1, InvalidArgument saying so" assert error_text 1 \
  "safetensors-cli: InvalidArgument: \"$many\": its metadata holds no sha256:NAME key (rewrite --embed-hashes writes \
them): give a MANIFEST"
printf '%s  tensor "a"\nnot a line\n' "$(printf '0%.0s' {1..64})" >"$work/bad_manifest"
run verify "$ref/valid/ordering.safetensors" "$work/bad_manifest"
check "verify with a malformed manifest: exit 1, the line named" \
  test "$(<"$work/rc"):$(grep -c "InvalidArgument: \"$work/bad_manifest\": line 2: " "$work/err")" = 1:1
run verify "$ref/valid/ordering.safetensors" "$work/missing_manifest"
check "verify with a missing manifest: exit 2, IoError" \
  test "$(<"$work/rc"):$(grep -c "IoError: \"$work/missing_manifest\": cannot open the manifest" "$work/err")" = 2:1

# diff: against diff computed here (status, largest absolute and relative differences, differing
# elements, metadata): a file and its rewrite, its split, its split merged back, its round trip
# through BF16, a changed byte, and files that differ in every way.
run rewrite "$many" "$work/many_rewritten.safetensors"
for other in "$work/many_rewritten.safetensors" "$work/split_10KB" "$work/split_4KiB/model.safetensors.index.json" \
  "$work/merged.safetensors" "$work/embedded.safetensors" "$work/flipped.safetensors"; do
  expected diff "$many" "$other" 0 0 >"$work/expected"
  status=$(python3 -c 'import json, sys; print(0 if json.load(open(sys.argv[1]))["equal"] else 1)' "$work/expected")
  run diff --json "$many" "$other"
  check "diff --json many_tensors_5000 ${other#"$work"/}: exit $status, each tensor and the metadata as computed here" \
    assert json_is "$status" "$work/expected"
done
run diff "$many" "$work/split_10KB"
check "diff of the file and its split: exit 0, equal" assert stdout_is 0 $'equal: 5000 tensors and the metadata\n'
run diff "$many" "$work/flipped.safetensors"
check "diff of a changed byte: exit 1, that tensor named, 1 element, by how much" \
  test "$(<"$work/rc"):$(grep -c '^differs "#1759": 1 of [0-9]* elements differ' "$work/out"):$(tail -1 "$work/out")" = \
  "1:1:not equal: 1 of 5000 tensors, 0 metadata keys"
for tolerance in "0 0" "0 0.01" "1e30 0"; do
  read -r atol rtol <<<"$tolerance"
  expected diff "$f32" "$work/f32.safetensors" "$atol" "$rtol" >"$work/expected"
  status=$(python3 -c 'import json, sys; print(0 if json.load(open(sys.argv[1]))["equal"] else 1)' "$work/expected")
  run diff --json --atol "$atol" --rtol "$rtol" "$f32" "$work/f32.safetensors"
  check "diff --json --atol $atol --rtol $rtol of dtype_F32 and its round trip through BF16: exit $status, the \
rounding's largest differences" assert json_is "$status" "$work/expected"
done
for pair in "$f32 $work/bf16.safetensors" "$mixed $work/f16.safetensors" "$work/wide.safetensors $work/narrow_F4.safetensors"; do
  read -r a b <<<"$pair"
  expected diff "$a" "$b" 0 0 >"$work/expected"
  run diff --json "$a" "$b"
  check "diff --json ${a##*/} ${b##*/}: exit 1, status dtype, floats compared across dtypes" assert json_is 1 "$work/expected"
done
python3 - "$work/diff_a.safetensors" "$work/diff_b.safetensors" "$here" <<'PYTHON'
import struct, sys
sys.path.insert(0, sys.argv[3])
from common import write_file
f32 = lambda *values: struct.pack(f"<{len(values)}f", *values)
write_file(sys.argv[1], [("x", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), ("y", "I32", [2], struct.pack("<2i", 7, 8)),
                         ("z", "F32", [2], f32(1, float("nan"))), ("a", "U8", [1], b"\x01"), ("c", "F32", [1], f32(1))],
           {"k": "1", "only": "a"})
write_file(sys.argv[2], [("x", "F32", [3, 2], f32(1, 2, 3, 4, 5, 6)), ("y", "I32", [2], struct.pack("<2i", 7, 9)),
                         ("z", "F32", [2], f32(0, 2)), ("b", "U8", [1], b"\x01"), ("c", "F16", [1], b"\x00\x3c")],
           {"k": "2", "other": "b"})
PYTHON
run diff --json "$work/diff_a.safetensors" "$work/diff_b.safetensors"
check "diff --json of files differing in every way: only_a, only_b, dtype, shape, differs, metadata, exactly" \
  assert stdout_is 1 '{"equal":false,"tensors":[{"name":"a","status":"only_a","max_abs_diff":null,"max_rel_diff":null,'\
'"differing":null},{"name":"b","status":"only_b","max_abs_diff":null,"max_rel_diff":null,"differing":null},'\
'{"name":"c","status":"dtype","max_abs_diff":0.0,"max_rel_diff":0.0,"differing":0},{"name":"x","status":"shape",'\
'"max_abs_diff":null,"max_rel_diff":null,"differing":null},{"name":"y","status":"differs","max_abs_diff":null,'\
'"max_rel_diff":null,"differing":1},{"name":"z","status":"differs","max_abs_diff":1.0,"max_rel_diff":"inf",'\
'"differing":2}],"metadata":{"only_a":{"only":"a"},"only_b":{"other":"b"},"differs":{"k":["1","2"]}}}'$'\n'
run diff "$work/diff_a.safetensors" "$work/diff_b.safetensors"
check "diff of them: a line each, then the count" assert stdout_is 1 'only_a "a"
only_b "b"
dtype "c": F32 in A, F16 in B; 0 of 1 elements differ, max abs diff 0, max rel diff 0
shape "x": [2, 3] in A, [3, 2] in B
differs "y": 1 of 2 elements differ
differs "z": 2 of 2 elements differ, max abs diff 1, max rel diff inf
metadata "only": only in A ("a")
metadata "other": only in B ("b")
metadata "k": "1" in A, "2" in B
not equal: 6 of 6 tensors, 3 metadata keys
'
run diff --json "$work/missing.safetensors" "$many"
check "diff --json with a missing file: exit 2, IoError" assert error_json IoError 2 "$work/missing.safetensors"
run diff "$many" "$many" --atol -1
check "diff --atol -1: a usage error, exit 64" exit_status 64

# Usage errors: exit 64, naming the unknown word and the nearest valid one.
usage_check() {
  local description=$1 message=$2 command=$3
  shift 3
  run "$@"
  check "$description" assert error_text 64 \
    "safetensors-cli: $message"$'\n'"Run 'safetensors-cli${command:+ $command} --help' for usage."
}
usage_check "a misspelt command: named, with the nearest one" \
  "unknown command 'inpsect'; did you mean 'inspect'?" "" inpsect "$f32"
usage_check "an unknown command far from any: named alone" "unknown command 'frobnicate'" "" frobnicate
usage_check "a misspelt option: named, with the nearest of its command's" \
  "unknown option '--jsno' for inspect; did you mean '--json'?" inspect inspect "$f32" --jsno
usage_check "a misspelt option with a value: the option named" \
  "unknown option '--limt' for dump; did you mean '--limit'?" dump dump "$f32" matrix --limt=3
usage_check "an unknown option far from any: named alone" \
  "unknown option '--frobnicate' for stats" stats stats "$f32" --frobnicate
usage_check "an option before the command: named" "unknown option '--json'" "" --json inspect "$f32"
usage_check "an argument too many" "unexpected argument 'extra' for inspect" inspect inspect "$f32" extra
version=$(sed -n 's/^#define SAFETENSORS_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
  "$here/../../include/safetensors/config.hpp" | paste -sd.)
run --version
check "--version: the library's version, $version" assert stdout_is 0 "safetensors-cli $version"$'\n'

# Standard output that cannot be written is an IoError (exit 2) for every command that prints; a
# reader that goes away ends the tool as SIGPIPE ends cat: quietly.
if [[ -w /dev/full ]]; then
  for command in "inspect $f32" "inspect --json $f32" "inspect $work/split_10KB" "inspect --json $work/split_10KB" \
    "dump $f32 matrix" "dump --json $f32 matrix" "stats $f32" "stats --json $f32" "validate $f32" \
    "validate --json $f32" "inspect --json $work/missing.safetensors" "--help" "dump --help" "--version"; do
    # shellcheck disable=SC2086  # the words of the command
    "$cli" $command >/dev/full 2>"$work/err"
    echo $? >"$work/rc"
    : >"$work/out"
    check "$command >/dev/full: exit 2, IoError on stderr" assert error_text 2 \
      'safetensors-cli: IoError: cannot write to standard output: No space left on device'
  done
else
  echo "ok - # SKIP writes to /dev/full: there is no /dev/full"
fi
for command in "inspect $many" "stats $many" "dump $work/big_f16.safetensors w" \
  "validate --json $(printf "$f32 %.0s" {1..2000})"; do
  # shellcheck disable=SC2086  # the words of the command
  "$cli" $command >"$work/whole"
  for pipe in default ignored; do
    # shellcheck disable=SC2086  # the words of the command
    if [[ $pipe == default ]]; then
      "$cli" $command 2>"$work/err" | head -1 >"$work/head"
      status=${PIPESTATUS[0]}
    else
      status=$(trap '' PIPE && { "$cli" $command 2>"$work/err" | head -1 >"$work/head"; echo "${PIPESTATUS[0]}"; })
    fi
    check "${command:0:40}... | head -1 (SIGPIPE $pipe): the first line, then ended by SIGPIPE (141), nothing on stderr" \
      test "$status:$(wc -c <"$work/err"):$(head -1 "$work/whole" | cmp - "$work/head" && echo same)" = 141:0:same
  done
done

# merge refuses to write over one of the model's own files, by inode (a hard link too), and
# leaves the model as it was.
cp -r "$work/split_4KiB" "$work/merge_into_self"
first_shard=$(ls "$work/merge_into_self"/model-00001-of-*.safetensors)
ln "$first_shard" "$work/hard_link.safetensors"
cp "$first_shard" "$work/first_shard_before"
for output in "$first_shard" "$work/hard_link.safetensors" "$work/merge_into_self/model.safetensors.index.json"; do
  run merge "$work/merge_into_self" "$output"
  check "merge into ${output##*/}, a file of the model: exit 1" exit_status 1
  check "merge into ${output##*/}: the error says it is a file of the model" \
    grep -q "is .*, a file of the model being merged: write elsewhere" "$work/err"
done
check "merge into its own shard: the shard is unchanged" cmp -s "$first_shard" "$work/first_shard_before"

# SIGTERM in the middle of a long write: the temporary file goes with the tool, which dies of
# the signal (143), and nothing is written under the output's name. The input is sparse: 1 GiB of
# zeros that take no disk.
big=$work/big.safetensors
python3 - "$big" <<'PY'
import struct, sys
header = b'{"zeros":{"dtype":"U8","shape":[1073741824],"data_offsets":[0,1073741824]}}'
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<Q", len(header)) + header)
    out.truncate(8 + len(header) + 1073741824)
PY
"$cli" rewrite "$big" "$work/big-out.safetensors" 2>/dev/null &
writer=$!
for _ in $(seq 200); do
  compgen -G "$work/big-out.safetensors.tmp.*" >/dev/null && break
  sleep 0.05
done
kill -TERM "$writer"
status=0
wait "$writer" || status=$?
check "SIGTERM during rewrite: the tool dies of it (143)" test "$status" = 143
check "SIGTERM during rewrite: no temporary file is left" test -z "$(compgen -G "$work/big-out.safetensors.tmp.*")"
check "SIGTERM during rewrite: nothing under the output's name" test ! -e "$work/big-out.safetensors"
rm -f "$big"

run --help
check "--help: exit 0" exit_status 0
check "--help documents the exit statuses" grep -q '^Exit status: 0 success, 1 rejected input .*, 2 I/O error' "$work/out"
for command in inspect dump stats validate load hash verify diff rewrite convert split merge; do
  run --help
  check "--help lists $command" grep -q "^ *$command " "$work/out"
  run "$command" --help
  check "$command --help: exit 0" exit_status 0
done
run inspect --help
check "inspect --help lists --json" grep -q -- '--json' "$work/out"
run dump --help
check "dump --help says F4 and F6 print values, unpacked as --packing says" grep -q 'unpacked as --packing says' "$work/out"
for command in inspect dump stats validate load hash verify diff rewrite convert split merge; do
  run "$command" --help
  check "$command --help lists --connections, --token and --timeout" \
    test "$(grep -c -- '--connections N' "$work/out"):$(grep -c -- '--token TOKEN' "$work/out"):$(grep -c -- \
      '--timeout SECONDS' "$work/out")" = 1:1:1
done
run split --help
check "split --help: one file open at a time, no longer every shard open until the end" \
  test "$(grep -c 'one file is open at a time' "$work/out"):$(grep -c 'stays open' "$work/out")" = 1:0
check "split --help lists --max-shard-size and its units" \
  grep -q -- '--max-shard-size SIZE=5GB .*KiB, MiB, GiB, TiB' "$work/out"
run merge --help
check "merge --help says whose metadata the file gets" grep -q 'metadata of the first shard' "$work/out"
run inspect --help
check "inspect --help describes a model's JSON" grep -q '"shard" (its path)' "$work/out"
run
check "no subcommand: a usage error naming the commands, exit 64" assert error_text 64 \
  "safetensors-cli: a command is required: inspect, dump, stats, validate, load, hash, verify, diff, rewrite, convert, \
split, merge, dequantize"$'\n'"Run 'safetensors-cli --help' for usage."

summary
