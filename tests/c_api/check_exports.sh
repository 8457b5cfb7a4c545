#!/usr/bin/env bash
# The shared C library exports the functions of safetensors.h and nothing else (no C++ symbol
# of the library, which would tie a program to its inline functions).
# Usage: check_exports.sh LIBSAFETENSORS_C_SO
set -euo pipefail
library=$1
exported=$(nm -D --defined-only "$library" | awk '{print $3}' | grep -v -E '^(_init|_fini|__bss_start|_edata|_end)$' | sort)
others=$(grep -v '^safetensors_' <<<"$exported" || true)
declared=$(grep -o -E 'SAFETENSORS_C_API [^(]*\bsafetensors_[a-z_]+\(' "$(dirname "$0")/../../include/safetensors/safetensors.h" |
           grep -o -E 'safetensors_[a-z_]+\($' | tr -d '(' | sort)
if [[ -n $others ]]; then
  echo "not ok - symbols beyond the ABI are exported:"
  echo "$others" | head -20
  exit 1
fi
if [[ $exported != "$declared" ]]; then
  echo "not ok - the exports differ from safetensors.h's functions:"
  diff <(echo "$declared") <(echo "$exported") || true
  exit 1
fi
echo "ok - $(wc -l <<<"$exported") functions exported, exactly safetensors.h's"
