#!/usr/bin/env bash
# Device call: build each leave-one-stage-out probe of the role-warpgroup
# kernel (bench/probe/patch.py: numbers wrong on purpose) and time it at one
# shape, 128 heads only; the template is restored afterwards. Logs under $OUT.
#   SHAPE=128x16384 bench/probe/run.sh base norope halfqk nochain nopv halfpv novt nocopy
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-out}; mkdir -p "$out"
shape=${SHAPE:-128x16384}
work=$(mktemp -d)
sed 's/q_heads: \[128, 64, 16\]/q_heads: [128]/' specs/deepseek_v3_fp8_roles_hopper.yaml > "$work/probe_h128.yaml"
cp templates/decode_wgmma_fp8_roles.cu "$work/roles.cu"
trap 'cp "$work/roles.cu" templates/decode_wgmma_fp8_roles.cu; make -s build/snapmla > /dev/null 2>&1' EXIT
for v in "$@"; do
    f=${v//+/_}   # '+' joins probes; the device tool returns only plain file names
    cp "$work/roles.cu" templates/decode_wgmma_fp8_roles.cu
    python3 bench/probe/patch.py "$v" || { echo "$v: probe does not apply"; continue; }
    make -j16 build/snapmla > "$out/build_$f.log" 2>&1 || { echo "$v: build failed"; tail -5 "$out/build_$f.log"; continue; }
    SNAPMLA_CACHE_DIR="$work/cache" timeout 120 build/snapmla bench "$work/probe_h128.yaml" --shapes "$shape" > "$out/bench_$f.log" 2>&1
    echo "$v: $(grep -m1 '^| .*h128q' "$out/bench_$f.log" | cut -d'|' -f3-6)"
done
