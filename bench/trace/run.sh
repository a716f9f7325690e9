#!/usr/bin/env bash
# Device call: the timeline trace (bench/trace/patch.py) of one decode
# kernel at one shape: builds the traced snapmla, runs `snapmla bench` on
# SPEC at SHAPE (the trace is printed after the split kernel's 8th
# launch; 20 replays), restores the templates and prints bench/trace/view.py's summary.
# The untraced kernel is timed in the same call for comparison. Logs under $OUT.
#   bench/trace/run.sh roles SPEC 128x16384
#   bench/trace/run.sh bf16 bench/mtp_bf16.yaml 128x8192
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-out}; mkdir -p "$out"
kind=$1 spec=$2 shape=${3:-128x16384}
work=$(mktemp -d)
declare -A template=([roles]=templates/decode_wgmma_fp8_roles.cu [bf16]=templates/decode_wgmma_bf16.cu)
file=${template[$kind]:?kernel: roles or bf16}
cp "$file" "$work/kernel.cu"; cp templates/combine.cu "$work/combine.cu"; cp templates/decode_plan.cu "$work/plan.cu"
restore() { cp "$work/kernel.cu" "$file"; cp "$work/combine.cu" templates/combine.cu; cp "$work/plan.cu" templates/decode_plan.cu; }
trap restore EXIT
name=$(basename "$spec" .yaml)_$shape
make -j16 build/snapmla > "$out/build_untraced.log" 2>&1 || { tail -5 "$out/build_untraced.log"; exit 1; }
cp build/snapmla "$work/snapmla_untraced"
python3 bench/trace/patch.py "$kind" || exit 1
make -j16 build/snapmla > "$out/build_trace_$kind.log" 2>&1 || { tail -5 "$out/build_trace_$kind.log"; exit 1; }
restore
SNAPMLA_CACHE_DIR="$work/cache_trace" timeout 150 build/snapmla bench "$spec" --shapes "$shape" --replays 20 \
    > "$out/trace_$name.log" 2>&1
rows() { grep -E "q[0-9]" "$1" | head -3 | cut -c1-150; }   # the bench table's rows
echo "traced ($(grep -c '^TR ' "$out/trace_$name.log") trace lines):"; rows "$out/trace_$name.log"
SNAPMLA_CACHE_DIR="$work/cache_untraced" timeout 150 "$work/snapmla_untraced" bench "$spec" --shapes "$shape" --replays 20 \
    > "$out/untraced_$name.log" 2>&1
echo "untraced:"; rows "$out/untraced_$name.log"
cp "$work/snapmla_untraced" build/snapmla   # (the templates are back; the binary too, without a rebuild)
python3 bench/trace/view.py "$kind" "$out/trace_$name.log"
