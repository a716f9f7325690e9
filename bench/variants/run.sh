#!/usr/bin/env bash
# Device call: the shipped roles template ("base") against the named
# variants of bench/variants/patch.py, through bench/template_ab.sh (each
# checked against the float64 reference, then timed in ROUNDS interleaved
# rounds; SPECS, SHAPES, ROUNDS as there). Logs under $OUT.
#   bench/variants/run.sh ldsm_all pslots4
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $# -gt 0 ]] || { echo "usage: bench/variants/run.sh VARIANT..."; exit 2; }
dir=$(mktemp -d)
cp templates/decode_wgmma_fp8_roles.cu "$dir/roles_base.cu"
for v in "$@"; do
    python3 bench/variants/patch.py "$v" templates/decode_wgmma_fp8_roles.cu "$dir/roles_$v.cu" || exit 1
done
DIR=$dir bash bench/template_ab.sh base "$@"
