#!/usr/bin/env bash
# Checks safetensors-cli against the reference corpus: JSON output field by field against the
# manifests, error kinds and exit codes, and the layout of the human-readable table; dump's values
# against the manifests' first_values and an F8 decoder here, stats against exact statistics,
# validate against index.json, and convert's results bit for bit; split's shards and index
# against a plan computed here, the split model read back through its index (inspect, validate,
# dump, stats, sha256 per tensor) and merged back into the original; size spellings; the
# progress bar under a pseudo-terminal (script, from util-linux) and its absence elsewhere;
# dump --slice against Python's indexing; files read from standard input (-) and the limits held
# there; usage errors (exit 64) and --version; validate --json; standard output that cannot be
# written (/dev/full) and a reader that goes away (| head -1). test_cli_commands.sh checks the
# commands that came later (load, hash, verify, diff, F4 and F6 conversions), usage errors and
# help texts; the two run as two CTest tests, side by side.
#
# Usage: test_cli.sh PATH/TO/safetensors-cli PATH/TO/tests/data/reference
# Prints "ok - ..." or "not ok - ..." per check, then "N passed, M failed"; exits 1 on a failure.


set -u
source "$(dirname "$0")/lib.sh"

check_valid_json valid/ordering.safetensors
check_valid_json valid/empty.safetensors
check_valid_json valid/mixed_all_dtypes.safetensors
check_valid_json valid/odd_names.safetensors

check_error "$ref/invalid/offsets_overlap.safetensors" invalid/offsets_overlap.safetensors \
  InvalidOffset 1 '"b"'
check_error "$work/missing.safetensors" "a missing file" IoError 2 "$work/missing.safetensors"
check_error "$ref/valid" "a directory of many files and no index" IoError 2 "$ref/valid"

check_table valid/odd_names.safetensors
check_table valid/mixed_all_dtypes.safetensors
check_table valid/empty.safetensors

# rewrite: byte-identical for files with at most one metadata key; --align moves the data start.
for file in valid/ordering.safetensors valid/odd_names.safetensors valid/many_tensors_5000.safetensors; do
  run rewrite "$ref/$file" "$work/rewritten.safetensors"
  check "rewrite $file: exit 0" exit_status 0
  check "rewrite $file: the same bytes as the official writer's" cmp "$ref/$file" "$work/rewritten.safetensors"
done
run rewrite "$ref/valid/ordering.safetensors" "$work/aligned.safetensors" --align 4096
check "rewrite --align 4096: exit 0" exit_status 0
run inspect --json "$work/aligned.safetensors"
check "rewrite --align 4096: data starts at 4096" python3 -c \
  'import json,sys; sys.exit(json.load(open(sys.argv[1]))["data_start"] != 4096)' "$work/out"
run rewrite "$ref/valid/ordering.safetensors" "$work/bad.safetensors" --align 12
check "rewrite --align 12: a usage error naming --align, exit 64" assert error_text 64 \
  $'safetensors-cli: --align: alignment 12 is not a power of two between 8 and 2^30\nRun \'safetensors-cli rewrite --help\' for usage.'
run rewrite "$ref/valid/ordering.safetensors" "$work/bad.safetensors" --align 2147483648
check "rewrite --align 2^31: exit 64" exit_status 64
check "rewrite --align 12: nothing written" test ! -e "$work/bad.safetensors"
run rewrite "$ref/invalid/offsets_overlap.safetensors" "$work/bad.safetensors"
check "rewrite of an invalid file: exit 1" exit_status 1
check "rewrite of an invalid file: nothing written" test ! -e "$work/bad.safetensors"
run rewrite "$work/missing.safetensors" "$work/bad.safetensors"
check "rewrite of a missing file: exit 2" exit_status 2

# dump: every reference tensor with first_values gives exactly those; F8, F4 and F6 tensors the
# values their bytes hold (F4 and F6 unpacked in either order); the text form; a missing tensor.
for path in "$ref"/valid/*.safetensors "$ref"/foreign/*.safetensors; do
  file=${path#"$ref"/}
  if grep -q '"first_values"' "$path.json"; then
    check "dump --json --limit 16 $file: every tensor's first_values" \
      python3 "$here/corpus.py" first_values "$cli" "$ref" "$file"
  fi
done
for file in valid/dtype_F8_{E5M2,E4M3,E8M0,E4M3FNUZ,E5M2FNUZ}.safetensors valid/dtype_F4.safetensors \
  valid/dtype_F6_E2M3.safetensors valid/mixed_all_dtypes.safetensors; do
  check "dump --json $file: F8, F4 and F6 values decoded here from their bytes (F4 low nibble first, F6 a \
little-endian bit stream)" python3 "$here/corpus.py" all_values "$cli" "$ref" "$file"
done
for file in valid/dtype_F4.safetensors valid/dtype_F6_E2M3.safetensors valid/mixed_all_dtypes.safetensors; do
  check "dump --json --packing high-first $file: F4 high nibble first, F6 a big-endian bit stream" \
    python3 "$here/corpus.py" all_values "$cli" "$ref" "$file" high-first
done
run dump "$ref/valid/dtype_F32.safetensors" matrix
check "dump matrix: a NAME DTYPE [shape] line, then the values a row of 6 to a line" assert stdout_is 0 \
  $'"matrix" F32 [4, 6]\n-3 -2.75 -2.5 -2.25 -2 -1.75\n-1.5 -1.25 -1 -0.75 -0.5 -0.25\n0 0.25 0.5 0.75 1 1.25\n1.5 1.75 2 2.25 2.5 2.75\n'
run dump "$ref/valid/dtype_F32.safetensors" vector --limit 10
check "dump --limit 10 vector: -0, inf, -inf, nan, and how many more" assert stdout_is 0 \
  $'"vector" F32 [37]\n0 -0 1 -1 0.10000000149011612 3.4028234663852886e+38 -3.4028234663852886e+38 inf -inf nan\n... 27 more values\n'
run dump "$ref/valid/mixed_all_dtypes.safetensors" t_C64
check "dump t_C64: [re, im] pairs" assert stdout_is 0 \
  $'"t_C64" C64 [5]\n[0, -0] [1, -1] [inf, -inf] [nan, 0.5] [1.401298464324817e-45, 3.4028234663852886e+38]\n'
run dump "$ref/valid/mixed_all_dtypes.safetensors" t_F4
check "dump t_F4: bytes 7 38 69 are E2M1 6 0 4 1 3 2, low nibble first" assert stdout_is 0 $'"t_F4" F4 [6]\n6 0 4 1 3 2\n'
run dump "$ref/valid/mixed_all_dtypes.safetensors" t_F4 --packing high-first
check "dump t_F4 --packing high-first: 0 6 1 4 2 3" assert stdout_is 0 $'"t_F4" F4 [6]\n0 6 1 4 2 3\n'
run dump "$ref/valid/mixed_all_dtypes.safetensors" t_F4 --packing middle
check "dump --packing middle: a usage error naming --packing, exit 64" \
  test "$(<"$work/rc"):$(grep -c -- '--packing' "$work/err")" = 64:1
run dump --json --limit 3 "$ref/valid/mixed_all_dtypes.safetensors" t_U64
check "dump --json t_U64: 2^64 - 1 exactly" assert stdout_is 0 \
  $'{"name":"t_U64","dtype":"U64","shape":[5],"values":[0,1,18446744073709551615]}\n'
run dump --json --limit 0 "$ref/valid/dtype_F32.safetensors" vector
check "dump --json --limit 0: no values" assert stdout_is 0 $'{"name":"vector","dtype":"F32","shape":[37],"values":[]}\n'
run dump --json "$ref/valid/odd_names.safetensors" --index 20
check "dump --index 20: the tensor whose name holds NUL" python3 -c \
  'import json,sys; sys.exit(json.load(open(sys.argv[1]))["name"] != "nul\0char")' "$work/out"
run dump --json "$ref/valid/dtype_F32.safetensors" missing
check "dump --json of a missing tensor: exit 1, TensorNotFound" assert error_json TensorNotFound 1 '"missing"'
run dump "$ref/valid/dtype_F32.safetensors" missing
check "dump of a missing tensor: exit 1, one line on stderr" assert error_text 1 \
  "safetensors-cli: TensorNotFound: \"$ref/valid/dtype_F32.safetensors\": no tensor named \"missing\""
run dump --json "$ref/valid/dtype_F32.safetensors" --index 6
check "dump --index past the last tensor: exit 1, TensorNotFound" assert error_json TensorNotFound 1 'index 6'
run dump --json "$ref/invalid/offsets_overlap.safetensors" a
check "dump of an invalid file: exit 1, InvalidOffset" assert error_json InvalidOffset 1 '"b"'
run dump "$work/missing.safetensors" a
check "dump of a missing file: exit 2" exit_status 2
run dump "$ref/valid/dtype_F32.safetensors"
check "dump without a tensor: a usage error, exit 64" assert error_text 64 \
  $'safetensors-cli: dump needs TENSOR or --index K\nRun \'safetensors-cli dump --help\' for usage.'
run dump "$ref/valid/dtype_F32.safetensors" vector --limit=-1
check "dump --limit -1: a usage error, exit 64" exit_status 64

# stats: against statistics computed exactly here; NaN and infinities counted apart.
run stats --json "$f32"
for tensor in matrix cube scalar vector; do
  check "stats --json dtype_F32 $tensor: count, min, max, mean, std, nan, inf" assert stats_of "$f32" "$tensor" f
done
run stats --json "$ref/valid/dtype_I64.safetensors" vector
check "stats --json dtype_I64 vector: exact 64-bit min and max" assert stats_of "$ref/valid/dtype_I64.safetensors" vector q
run stats --json "$ref/valid/mixed_all_dtypes.safetensors" t_U64
check "stats --json t_U64: max 2^64 - 1 exactly" python3 -c \
  'import json,sys; sys.exit(json.load(open(sys.argv[1]))[0]["max"] != 2**64 - 1)' "$work/out"
run stats --json "$ref/valid/mixed_all_dtypes.safetensors" t_C64
check "stats --json t_C64: not summarised, with a note" python3 -c \
  'import json,sys; t = json.load(open(sys.argv[1]))[0]; sys.exit((t["min"], t["nan"], t["note"]) != (None, None, "complex: not summarised"))' \
  "$work/out"
run stats "$f32" matrix
check "stats matrix: a table" assert stdout_is 0 \
  $'name      dtype  count  min   max    mean      std  nan  inf\n"matrix"  F32       24   -3  2.75  -0.125  1.73055    0    0\n'
run stats "$ref/valid/mixed_all_dtypes.safetensors"
check "stats: a row per tensor, t_F4 summarised: 6 values from 0 to 6, mean 2.66667" grep -q \
  '^"t_F4"  *F4  *6  *0  *6  *2\.66667  *1\.97203  *0  *0 *$' "$work/out"
for file_tensor in dtype_F4:matrix dtype_F4:vector dtype_F6_E2M3:cube mixed_all_dtypes:t_F6_E3M2; do
  file=$ref/valid/${file_tensor%%:*}.safetensors tensor=${file_tensor#*:}
  run stats --json "$file" "$tensor"
  check "stats --json ${file_tensor/:/ }: count, min, max, mean, std of the values decoded here" \
    assert stats_of "$file" "$tensor" sub-byte
done
run stats --json "$f32" missing
check "stats --json of a missing tensor: exit 1, TensorNotFound" assert error_json TensorNotFound 1 '"missing"'
run stats "$work/missing.safetensors"
check "stats of a missing file: exit 2" exit_status 2

# validate: one line per file, exit 1 when one is invalid, else 2 when one is unreadable.
mapfile -t good < <(cd "$ref" && ls valid/*.safetensors foreign/*.safetensors)
run validate "${good[@]/#/$ref/}"
check "validate every valid and foreign file: exit 0, ok lines with tensor counts" \
  assert validate_lines "$ref" 0 "${good[@]}"
mix=(valid/ordering.safetensors invalid/offsets_overlap.safetensors foreign/safetensors_samples_overall.safetensors)
run validate "${mix[@]/#/$ref/}"
check "validate with one invalid file: exit 1, one FAIL line naming the kind" \
  assert validate_lines "$ref" 1 "${mix[@]}"
check "validate with one invalid file: exactly one FAIL line" test "$(grep -c '^FAIL ' "$work/out")" = 1
mapfile -t cases < <(cd "$ref" && ls invalid/*.safetensors)
run validate "${cases[@]/#/$ref/}"
check "validate every invalid/ case: the kind index.json expects, or ok" \
  assert validate_lines "$ref" 1 "${cases[@]}"
run validate "$ref/valid/empty.safetensors" "$ref/missing.safetensors"
check "validate with an unreadable file and no invalid one: exit 2" \
  assert validate_lines "$ref" 2 valid/empty.safetensors missing.safetensors
run validate "$ref/missing.safetensors" "$ref/invalid/offsets_overlap.safetensors"
check "validate with an unreadable file and an invalid one: exit 1" exit_status 1

# convert: F32 to BF16 and back rounds every value once; integers and other dtypes keep their
# bytes; a file larger than the writer's 1 MiB pieces widens exactly and narrows back.
run convert "$f32" "$work/bf16.safetensors" --dtype BF16
check "convert dtype_F32 --dtype BF16: exit 0" exit_status 0
run inspect --json "$work/bf16.safetensors"
check "convert --dtype BF16: every tensor BF16, same names, shapes, metadata" \
  assert converted_header "$f32.json" BF16
run convert "$work/bf16.safetensors" "$work/f32.safetensors" --dtype F32
check "convert back --dtype F32: exit 0" exit_status 0
for tensor in vector matrix cube scalar; do
  run dump --json "$work/f32.safetensors" "$tensor"
  check "F32 -> BF16 -> F32 $tensor: each value rounded to BF16" assert bf16_round_trip "$f32" "$tensor"
done
run convert "$mixed" "$work/f16.safetensors" --dtype F16
check "convert mixed_all_dtypes --dtype F16: exit 0" exit_status 0
run inspect --json "$work/f16.safetensors"
check "convert --dtype F16: floats (F4 and F6 too) F16, other dtypes unchanged" \
  assert converted_header "$mixed.json" F16
check "convert --dtype F16: integer, BOOL, C64 and F8 tensors keep their sha256" \
  assert unchanged_bytes "$mixed.json" "$work/f16.safetensors"
for tensor in t_F4 t_F6_E2M3 t_F6_E3M2; do
  "$cli" dump --json "$mixed" "$tensor" | sed 's/"dtype":"F[46][_E0-9M]*"/"dtype":"F16"/' >"$work/expected"
  run dump --json "$work/f16.safetensors" "$tensor"
  check "convert --dtype F16: $tensor widened exactly, its values unchanged" assert json_lines 0 "$work/expected"
done
python3 "$here/corpus.py" make_f16 "$work/big_f16.safetensors"
run convert "$work/big_f16.safetensors" "$work/big_f32.safetensors" --dtype F32
check "convert a 1.2 MB F16 tensor --dtype F32: exit 0" exit_status 0
check "convert --dtype F32: every F16 bit pattern widened exactly, in 3 pieces" \
  python3 "$here/corpus.py" widened "$work/big_f16.safetensors" "$work/big_f32.safetensors"
run convert "$work/big_f32.safetensors" "$work/big_back.safetensors" --dtype F16
check "convert back --dtype F16: the original file, byte for byte" \
  cmp "$work/big_f16.safetensors" "$work/big_back.safetensors"
run convert "$f32" "$work/bad.safetensors" --dtype F64
check "convert --dtype F64: a usage error, exit 64" exit_status 64
check "convert --dtype F64: nothing written" test ! -e "$work/bad.safetensors"
run convert "$ref/invalid/offsets_overlap.safetensors" "$work/bad.safetensors" --dtype F16
check "convert of an invalid file: exit 1" exit_status 1
check "convert of an invalid file: nothing written" test ! -e "$work/bad.safetensors"
run convert "$work/missing.safetensors" "$work/bad.safetensors" --dtype F16
check "convert of a missing file: exit 2" exit_status 2

# split and merge: a model split into shards and read back through its index gives the original
# tensors byte for byte, and merged back gives the original file.
for size in 10KB:10000 4KiB:4096; do
  spelling=${size%%:*} bytes=${size#*:} out=$work/split_$spelling
  run split "$many" "$out" --max-shard-size "$spelling"
  check "split many_tensors_5000 --max-shard-size $spelling: exit 0, nothing on stdout or stderr" assert stdout_is 0 ""
  check "split --max-shard-size $spelling: model-0000K-of-0000N shards of at most $bytes tensor bytes, in file order, \
with the original's metadata" \
    python3 "$here/corpus.py" split_layout "$many" "$out" "$bytes" "$many_metadata"
  check "split --max-shard-size $spelling: the index as transformers writes it (2-space indent, sorted keys, \
final newline, total_size)" \
    python3 "$here/corpus.py" index_text "$many" "$out" "$bytes"
  check "split --max-shard-size $spelling: every tensor through the index has the original's dtype, shape and sha256" \
    python3 "$here/corpus.py" through_index "$many" "$out/model.safetensors.index.json"
  for shard in "$out"/model-*.safetensors; do "$cli" inspect --json "$shard"; done >"$work/shard_objects"
  run inspect --json "$out"
  check "inspect --json of the split directory: index, total_size, shards as file objects, tensors by name \
with their shard" \
    assert model_json "$out" "$out" "$out/model.safetensors.index.json" "$out" "$work/shard_objects"
  run inspect --json "$out/model.safetensors.index.json"
  check "inspect --json of the index: the same model" \
    assert model_json "$out/model.safetensors.index.json" "$out" "$out/model.safetensors.index.json" "$out" \
    "$work/shard_objects"
  run inspect "$out"
  check "inspect of the split directory: summary, index, shard lines, then a table by name with a shard column" \
    assert model_table "$out" "$out" "$out"
  shards=$(find "$out" -name 'model-*.safetensors' | wc -l)
  run validate "$out" "$out/model.safetensors.index.json"
  line="(5000 tensors in $shards shards)"$'\n'
  check "validate the directory and the index: exit 0, ok (5000 tensors in $shards shards)" assert stdout_is 0 \
    "ok \"$out\" $line""ok \"$out/model.safetensors.index.json\" $line"
  run merge "$out" "$work/merged.safetensors"
  check "merge of the $spelling split: exit 0, nothing on stdout or stderr" assert stdout_is 0 ""
  check "merge of the $spelling split: the original file, byte for byte (one metadata key, canonical layout)" \
    cmp "$many" "$work/merged.safetensors"
done
check "split --max-shard-size 10KB makes 6 shards, 4KiB 15" \
  test "$(find "$work/split_10KB" -name "model-*" | wc -l):$(find "$work/split_4KiB" -name "model-*" | wc -l)" = 6:15
run merge "$work/split_4KiB/model.safetensors.index.json" "$work/merged.safetensors"
check "merge of the index: the original file, byte for byte" cmp "$many" "$work/merged.safetensors"

# dump and stats read a model like a file; --index counts in name order there.
run dump --json "$many" '#1759'
cp "$work/out" "$work/dump_file"
run dump --json "$work/split_4KiB" '#1759'
check "dump --json of a tensor of the split model: as from the original" cmp "$work/dump_file" "$work/out"
run dump --json "$work/split_4KiB" --index 0
check "dump --index 0 of a model: the first tensor by name" python3 -c \
  'import json,sys; sys.exit(json.load(open(sys.argv[1]))["name"] != " leading space#110")' "$work/out"
run dump --json "$work/split_4KiB" --index 5000
check "dump --index 5000 of a 5000-tensor model: exit 1, TensorNotFound" \
  assert error_json TensorNotFound 1 'the model has 5000 tensors'
run stats --json "$many"
cp "$work/out" "$work/stats_file"
run stats --json "$work/split_4KiB/model.safetensors.index.json"
check "stats --json of the split model: the original's objects, by name" python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit([t["name"] for t in b] != sorted(t["name"] for t in a) or sorted(a, key=lambda t: t["name"]) != b)' \
  "$work/stats_file" "$work/out"

# A tensor larger than the limit gets a shard of its own; a file with no metadata gets
# {"format": "pt"} in each shard, which merge keeps.
python3 "$here/corpus.py" make_sharded "$work/three.safetensors"
run split "$work/three.safetensors" "$work/three" --max-shard-size 100KB
check "split with a 400 KB tensor and --max-shard-size 100KB: exit 0" exit_status 0
check "split: the 400 KB tensor alone in model-00002-of-00003, each shard with {\"format\": \"pt\"}" \
  python3 "$here/corpus.py" split_layout "$work/three.safetensors" "$work/three" 100000 '{"format": "pt"}'
check "split: a (4,000 bytes) in shard 1, big in shard 2, c in shard 3" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["weight_map"] != {"a": "model-00001-of-00003.safetensors",
         "big": "model-00002-of-00003.safetensors", "c": "model-00003-of-00003.safetensors"})' \
  "$work/three/model.safetensors.index.json"
run merge "$work/three" "$work/three_merged.safetensors"
check "merge of it: exit 0" exit_status 0
check "merge of it: the same tensors, with the first shard's metadata {\"format\": \"pt\"}" \
  python3 "$here/corpus.py" same_tensors "$work/three.safetensors" "$work/three_merged.safetensors" '{"format": "pt"}'

# Every dtype (sub-byte ones too) and seven metadata keys survive split and merge.
mixed_metadata=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["metadata"]))' "$mixed.json")
run split "$mixed" "$work/mixed" --max-shard-size 100B
check "split mixed_all_dtypes --max-shard-size 100B: exit 0" exit_status 0
check "split mixed_all_dtypes: shards of at most 100 bytes, each with the 7 metadata keys" \
  python3 "$here/corpus.py" split_layout "$mixed" "$work/mixed" 100 "$mixed_metadata"
run merge "$work/mixed" "$work/mixed_merged.safetensors"
check "merge of it: every tensor's name, dtype, shape and bytes, and the metadata" \
  python3 "$here/corpus.py" same_tensors "$mixed" "$work/mixed_merged.safetensors" "$mixed_metadata"

# Everything fits: one model.safetensors and no index.
run split "$ref/valid/ordering.safetensors" "$work/single"
check "split of a small file with the default 5GB: exit 0" exit_status 0
check "split of a small file: one model.safetensors, no index" test "$(ls "$work/single")" = model.safetensors
check "split of a small file: its tensors, with {\"format\": \"pt\"}" python3 "$here/corpus.py" same_tensors \
  "$ref/valid/ordering.safetensors" "$work/single/model.safetensors" '{"format": "pt"}'
run inspect --json "$work/single"
check "inspect --json of a directory with one file: index and total_size null" python3 -c '
import json, sys
got = json.load(open(sys.argv[1]))
sys.exit((got["index"], got["total_size"], [s["path"] for s in got["shards"]], len(got["tensors"])) != (None, None, [sys.argv[2]], 9))' \
  "$work/out" "$work/single/model.safetensors"

# More shards than the soft limit on open files: shards are written one at a time, one file open.
run_with_soft_limit() { (ulimit -Sn 32 && run "$@"); }
run_with_soft_limit split "$many" "$work/split_1KB" --max-shard-size 1KB
check "split into 61 shards with a soft limit of 32 open files: exit 0" exit_status 0
check "split into 61 shards: model-000KK-of-00061.safetensors, K = 1..61" \
  test "$(find "$work/split_1KB" -name 'model-*-of-00061.safetensors' | wc -l)" = 61
check "split into 61 shards: every tensor through the index" \
  python3 "$here/corpus.py" through_index "$many" "$work/split_1KB/model.safetensors.index.json"

# Sizes: an integer and B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
run split "$many" "$work/split_bytes" --max-shard-size 10000
check "--max-shard-size 10000 and 10KB: the same index" \
  cmp "$work/split_10KB/model.safetensors.index.json" "$work/split_bytes/model.safetensors.index.json"
run split "$many" "$work/split_bytes_b" --max-shard-size=4096B
check "--max-shard-size=4096B and 4KiB: the same index" \
  cmp "$work/split_4KiB/model.safetensors.index.json" "$work/split_bytes_b/model.safetensors.index.json"
for size in 1MB 1MiB 1GB 1GiB 1TB 1TiB 18446744073709551615 16777215TiB; do
  rm -rf "$work/sized"
  run split "$ref/valid/ordering.safetensors" "$work/sized" --max-shard-size "$size"
  check "--max-shard-size $size: accepted, one shard" test "$(<"$work/rc")$(ls "$work/sized")" = 0model.safetensors
done
for size in 10kb 10Kb 10kB 10gb 10K 10KIB 1.5GB -1 +1 0x10 '10 KB' ' 10KB' KB '' 0 0GB \
  18446744073709551616 18446744073709551615B1 16777216TiB; do
  run split "$ref/valid/ordering.safetensors" "$work/unsized" --max-shard-size "$size"
  check "--max-shard-size '$size': a usage error naming the option, nothing written" \
    test "$(<"$work/rc"):$(grep -c -- '--max-shard-size' "$work/err"):$([[ -e $work/unsized ]] && echo written)" \
    = 64:1:
done

# split's errors: an unreadable or invalid input, an output directory that holds a model or is
# a file.
run split "$work/missing.safetensors" "$work/unsplit"
check "split of a missing file: exit 2, nothing created" \
  test "$(<"$work/rc")$([[ -e $work/unsplit ]] && echo created)" = 2
run split "$ref/invalid/offsets_overlap.safetensors" "$work/unsplit"
check "split of an invalid file: exit 1, InvalidOffset, nothing created" \
  test "$(<"$work/rc")$(grep -c InvalidOffset "$work/err")$([[ -e $work/unsplit ]] && echo created)" = 11
cp -r "$work/split_10KB" "$work/occupied"
run split "$many" "$work/occupied" --max-shard-size 4KiB
check "split into a directory holding a model: exit 1, InvalidArgument naming a file there and --replace" \
  assert error_text 1 "safetensors-cli: InvalidArgument: \"$work/occupied\": already holds a model \
(\"model.safetensors.index.json\" and 6 others), which a new one replaces only when told to (--replace)"
check "split into a directory holding a model: the model untouched" \
  diff -r "$work/split_10KB" "$work/occupied"
run split "$many" "$work/occupied" --max-shard-size 4KiB --replace
check "split --replace into the directory of a 6-shard model: exit 0, nothing on stdout or stderr" assert stdout_is 0 ""
check "split --replace: the 15 new shards and their index, and nothing of the old model" \
  python3 "$here/corpus.py" split_layout "$many" "$work/occupied" 4096 "$many_metadata"
cp "$ref/valid/ordering.safetensors" "$work/occupied/extra.safetensors"
run split "$ref/valid/ordering.safetensors" "$work/occupied" --replace
check "split --replace of a small file: one model.safetensors, the old index and its 15 shards gone, a file no \
index named kept" test "$(<"$work/rc"):$(cd "$work/occupied" && echo *)" = \
  "0:extra.safetensors model.safetensors"
run split "$many" "$ref/valid/empty.safetensors/sub"
check "split into a path under a file: exit 2" exit_status 2

# merge's errors: a missing shard (IoError naming it), a tensor in the wrong shard or a wrong
# total_size (InvalidIndex), a missing model; nothing written.
cp -r "$work/split_10KB" "$work/broken"
rm "$work/broken/model-00003-of-00006.safetensors"
run merge "$work/broken" "$work/unmerged.safetensors"
check "merge with a missing shard: exit 2, IoError naming the shard" test \
  "$(<"$work/rc"):$(grep -c 'IoError: .*/model-00003-of-00006.safetensors", which is missing' "$work/err")" = 2:1
check "merge with a missing shard: nothing written" test ! -e "$work/unmerged.safetensors"
run validate "$work/broken"
check "validate with a missing shard: exit 2, FAIL IoError" \
  test "$(<"$work/rc"):$(grep -c '^FAIL IoError: .*model-00003-of-00006' "$work/out")" = 2:1
rm -rf "$work/broken" && cp -r "$work/split_10KB" "$work/broken"
python3 - "$work/broken/model.safetensors.index.json" <<'PYTHON'
import json, sys
with open(sys.argv[1]) as f:
    index = json.load(f)
# "#1759" is not in shard 5 (the check below fails otherwise).
assert index["weight_map"]["#1759"] != "model-00005-of-00006.safetensors"
index["weight_map"]["#1759"] = "model-00005-of-00006.safetensors"
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
PYTHON
run merge "$work/broken/model.safetensors.index.json" "$work/unmerged.safetensors"
check "merge of an index listing a tensor in the wrong shard: exit 1, InvalidIndex naming it" \
  test "$(<"$work/rc"):$(grep -c 'InvalidIndex: .*"#1759"' "$work/err")" = 1:1
check "merge of that index: nothing written" test ! -e "$work/unmerged.safetensors"
run validate "$work/broken"
check "validate of that model: exit 1, FAIL InvalidIndex" \
  test "$(<"$work/rc"):$(grep -c '^FAIL InvalidIndex: ' "$work/out")" = 1:1
run inspect --json "$work/broken"
check "inspect --json of that model: exit 1, InvalidIndex" assert error_json InvalidIndex 1 '"#1759"'
rm -rf "$work/broken" && cp -r "$work/split_10KB" "$work/broken"
sed -i 's/"total_size": 59403/"total_size": 59404/' "$work/broken/model.safetensors.index.json"
run merge "$work/broken" "$work/unmerged.safetensors"
check "merge with a wrong total_size: exit 1, InvalidIndex" \
  test "$(<"$work/rc"):$(grep -c 'InvalidIndex: .*total_size is 59404' "$work/err")" = 1:1
run merge "$work/missing" "$work/unmerged.safetensors"
check "merge of a missing model: exit 2" exit_status 2
check "merge failures: nothing written" test ! -e "$work/unmerged.safetensors"

# Progress: nothing on stderr when it is not a terminal (every run above checks an empty stderr
# too); under a pseudo-terminal, a bar drawn at most 10 times a second and erased at the end.
for command in "rewrite $many $work/quiet.safetensors" "convert $f32 $work/quiet.safetensors --dtype BF16" \
  "stats $many" "split $many $work/quiet --max-shard-size 4KiB" "merge $work/quiet $work/quiet.safetensors"; do
  # shellcheck disable=SC2086  # the words of the command
  run $command
  check "${command%% *} with stderr not a terminal: exit 0, nothing on stderr" \
    test "$(<"$work/rc"):$(wc -c <"$work/err")" = 0:0
done
if command -v script >/dev/null; then
  # Runs the CLI under a pseudo-terminal (stdin, stdout and stderr), keeping what the terminal
  # showed in $work/out and how long it took in $work/seconds; SUFFIX is shell text appended to
  # the command line, such as a redirection.
  run_tty() {
    local suffix=$1 line start end
    shift
    printf -v line '%q ' "$cli" "$@"
    start=$(date +%s.%N)
    script -qec "$line$suffix" /dev/null </dev/null >"$work/out" 2>"$work/err"
    echo $? >"$work/rc"
    end=$(date +%s.%N)
    awk -v start="$start" -v end="$end" 'BEGIN { print end - start }' >"$work/seconds"
  }
  run_tty "" split "$many" "$work/tty_split" --max-shard-size 4KiB
  check "split under a terminal: a bar 'split [---]  0 B / 59.4 KB  0%', at most 10 a second, erased at the end" \
    assert terminal_bar split "$(<"$work/seconds")" ""
  check "split under a terminal: the same index" \
    cmp "$work/split_4KiB/model.safetensors.index.json" "$work/tty_split/model.safetensors.index.json"
  run_tty "" merge "$work/tty_split" "$work/tty_merged.safetensors"
  check "merge under a terminal: a bar, erased at the end" assert terminal_bar merge "$(<"$work/seconds")" ""
  run_tty "" rewrite "$many" "$work/tty_rewritten.safetensors"
  check "rewrite under a terminal: a bar, erased at the end" assert terminal_bar rewrite "$(<"$work/seconds")" ""
  run_tty "" convert "$work/big_f16.safetensors" "$work/tty_f32.safetensors" --dtype F32
  check "convert under a terminal: a bar, erased at the end" assert terminal_bar convert "$(<"$work/seconds")" ""
  run stats "$f32"
  cp "$work/out" "$work/stats_table"
  run_tty "" stats "$f32"
  check "stats under a terminal: the bar erased, then the table" \
    assert terminal_bar stats "$(<"$work/seconds")" "$work/stats_table"
  run_tty " 2>/dev/null" split "$many" "$work/tty_quiet" --max-shard-size 4KiB
  check "split under a terminal with stderr redirected: exit 0, no bar" \
    test "$(<"$work/rc"):$(wc -c <"$work/out")" = 0:0
else
  echo "ok - # SKIP progress bars under a pseudo-terminal: script (util-linux) is not installed"
fi

# dump --slice: Python's syntax, negative indices included, against values computed in Python;
# rows of the selection's last dimension.
for tensor_slice in "matrix 1:3,:" "matrix -1" "matrix ::2,-3:" "matrix -2:,1::2" "matrix :,-1" "matrix 2:2" \
  "cube 1,-1,:" "cube -1:,::2,-3::2" "cube 0,1,2" "vector -10:-1:3" "vector 5"; do
  for dtype in F32 I64; do
    # shellcheck disable=SC2086  # the tensor and the slice
    check "dump --slice of dtype_$dtype ${tensor_slice/ / \"}\": slice_shape, values and rows as Python computes them" \
      python3 "$here/corpus.py" dump_slice "$cli" "$ref/valid/dtype_$dtype.safetensors" $tensor_slice
  done
done
run dump "$f32" matrix --slice 1:3,::2
check "dump matrix --slice 1:3,::2: a row of the selection to a line" assert stdout_is 0 \
  $'"matrix" F32 [4, 6], slice "1:3,::2" of shape [2, 3]\n-1.5 -1 -0.5\n0 0.5 1\n'
run dump "$f32" matrix --slice=-1,-3: --limit 2
check "dump matrix --slice=-1,-3: --limit 2: the last row's last values, cut short" assert stdout_is 0 \
  $'"matrix" F32 [4, 6], slice "-1,-3:" of shape [3]\n2.25 2.5\n... 1 more value\n'
run dump "$f32" cube
check "dump cube: [2, 3, 4] as 6 rows of 4" assert stdout_is 0 "$(
  python3 -c 'print("\"cube\" F32 [2, 3, 4]"); [print(*[i * (-1) ** i for i in range(r * 4, r * 4 + 4)]) for r in range(6)]')"$'\n'
for bad in "1:2:0" "::-1" "a" "" "1,,2" "1:2:3:4" "99999999999999999999" "1.5"; do
  run dump "$f32" matrix --slice "$bad"
  check "dump --slice '$bad': a usage error naming --slice, exit 64" \
    test "$(<"$work/rc"):$(grep -c "^safetensors-cli: --slice: '$bad' is not a slice: " "$work/err")" = 64:1
done
for misfit in "4:index 4 is out of range" "-5:index -5 is out of range" "0:7:stop 7 is past the end" \
  "3:1:start 3 is after stop 1" "1,1,1:3 dimensions given for a tensor of rank 2"; do
  run dump --json "$f32" matrix --slice "${misfit%:*}"
  check "dump --slice '${misfit%:*}' that does not fit [4, 6]: exit 1, InvalidArgument" \
    assert error_json InvalidArgument 1 "${misfit##*:}"
done
run dump --json "$mixed" t_F4 --slice 1:2
check "dump --slice of half a byte of a sub-byte tensor: exit 1, MisalignedSlice" \
  assert error_json MisalignedSlice 1 t_F4
run dump "$f32" matrix --slice 4
check "dump --slice 4 of [4, 6]: one line on stderr naming the file, the tensor and the dimension" assert error_text 1 \
  "safetensors-cli: InvalidArgument: \"$f32\": slice of tensor \"matrix\", dimension 0 (size 4): index 4 is out of range"
run dump "$work/split_10KB" '#1759' --slice 5
check "dump --slice 5 of a model's tensor [2, 3]: the error names the shard" \
  test "$(<"$work/rc"):$(grep -c '^safetensors-cli: InvalidArgument: ".*/model-0000[1-6]-of-00006.safetensors": slice of tensor "#1759", dimension 0' "$work/err")" = 1:1

# Standard input: - reads a file from it, within the limits of a file.
run_stdin() {
  local input=$1
  shift
  "$cli" "$@" <"$input" >"$work/out" 2>"$work/err"
  echo $? >"$work/rc"
}
"$cli" inspect --json "$ordering" | sed 's|"path":"[^"]*"|"path":"-"|' >"$work/expected"
run_stdin "$ordering" inspect --json -
check "inspect --json - < ordering.safetensors: the file's object, path \"-\"" assert json_lines 0 "$work/expected"
"$cli" inspect "$ordering" | sed '1s|^"[^"]*"|"-"|' >"$work/expected"
run_stdin "$ordering" inspect -
check "inspect - < ordering.safetensors: the file's table" assert stdout_is 0 "$(<"$work/expected")"$'\n'
run_stdin "$f32" dump - matrix
check "dump - matrix < dtype_F32: the values" assert stdout_is 0 "$("$cli" dump "$f32" matrix)"$'\n'
run_stdin "$f32" stats --json -
check "stats --json - < dtype_F32: as from the file" assert stdout_is 0 "$("$cli" stats --json "$f32")"$'\n'
run_stdin "$ordering" validate -
check "validate - < ordering.safetensors: ok \"-\" (9 tensors)" assert stdout_is 0 $'ok "-" (9 tensors)\n'
run_stdin "$ordering" rewrite - "$work/from_stdin.safetensors"
check "rewrite - < ordering.safetensors: the same bytes" cmp "$ordering" "$work/from_stdin.safetensors"
run_stdin "$f32" convert - "$work/from_stdin.safetensors" --dtype BF16
check "convert - < dtype_F32 --dtype BF16: as from the file" cmp "$work/bf16.safetensors" "$work/from_stdin.safetensors"
run_stdin "$many" split - "$work/split_stdin" --max-shard-size 10KB
check "split - < many_tensors_5000: the same index as from the file" \
  cmp "$work/split_10KB/model.safetensors.index.json" "$work/split_stdin/model.safetensors.index.json"
head -c 100 "$ordering" >"$work/truncated"
run_stdin "$work/truncated" inspect -
check "inspect - of a truncated file: exit 1, InvalidHeaderLength naming \"-\"" assert error_text 1 \
  'safetensors-cli: InvalidHeaderLength: "-": header length 496 runs past the end of the file (100 bytes)'
# An 8-byte header length over the limit, then an endless stream: refused before reading on.
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<Q", 2**40))' >"$work/huge_header"
{ cat "$work/huge_header" /dev/zero; } | timeout 60 "$cli" inspect - >"$work/out" 2>"$work/err"
echo "${PIPESTATUS[1]}" >"$work/rc"
check "inspect - of a header length of 2^40 and an endless stream: exit 1 at once, HeaderTooLarge" assert error_text 1 \
  'safetensors-cli: HeaderTooLarge: "-": header length 1099511627776 exceeds the limit of 100000000 bytes'
# Sizes that the input only claims are not allocated: within 60 MB (of address space, or under
# AddressSanitizer, whose shadow memory needs terabytes of it, for any one allocation), a header
# of 99 MB and a tensor of 2^40 bytes, each followed by a few bytes.
run_stdin_within_60MB() {
  if grep -q __asan_init "$cli"; then
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=60 run_stdin "$@"
  else
    (ulimit -v 60000 && run_stdin "$@")
  fi
}
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<Q", 99_000_000) + b"{\"a\":")' >"$work/claims_header"
run_stdin_within_60MB "$work/claims_header" inspect -
check "inspect - of a 99 MB header length and 5 bytes, in 60 MB: exit 1, InvalidHeaderLength" assert error_text 1 \
  'safetensors-cli: InvalidHeaderLength: "-": header length 99000000 runs past the end of the file (13 bytes)'
python3 -c '
import json, struct, sys
header = json.dumps({"a": {"dtype": "U8", "shape": [2**40], "data_offsets": [0, 2**40]}}).encode()
sys.stdout.buffer.write(struct.pack("<Q", len(header)) + header + b"abc")' >"$work/claims_data"
run_stdin_within_60MB "$work/claims_data" inspect -
check "inspect - of a 2^40-byte tensor and 3 bytes, in 60 MB: exit 1, MetadataIncompleteBuffer" assert error_text 1 \
  'safetensors-cli: MetadataIncompleteBuffer: "-": the tensors cover 1099511627776 bytes but the data buffer holds 3'

# validate --json: one object a line, a file and a model in one schema.
"$cli" inspect --json "$ref/invalid/offsets_overlap.safetensors" >"$work/overlap"
"$cli" inspect --json "$work/missing.safetensors" >"$work/missing"
python3 - "$ref/valid/ordering.safetensors" "$work/split_10KB" "$ref/invalid/offsets_overlap.safetensors" \
  "$work/missing.safetensors" "$work/overlap" "$work/missing" >"$work/expected" <<'PYTHON'
import json, sys
file, model, invalid, missing, invalid_error, missing_error = sys.argv[1:]
lines = [{"ok": True, "path": file, "file_count": 1, "tensor_count": 9},
         {"ok": True, "path": model, "file_count": 6, "tensor_count": 5000}]
for path, error in ((invalid, invalid_error), (missing, missing_error)):
    with open(error) as f:
        reported = json.load(f)
    lines.append({"ok": False, "path": path, "error": reported["error"], "message": reported["message"]})
for line in lines:
    print(json.dumps(line, ensure_ascii=False))
PYTHON
run validate --json "$ref/valid/ordering.safetensors" "$work/split_10KB" "$ref/invalid/offsets_overlap.safetensors" \
  "$work/missing.safetensors"
check "validate --json of a file, a model, an invalid file and a missing one: exit 1, an object each" \
  assert json_lines 1 "$work/expected"

summary
