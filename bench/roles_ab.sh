#!/usr/bin/env bash
# Device call for the FP8 role warpgroups: build, reference checks of the
# roles spec at several shapes (snapmla run, with a hang guard), then one
# bench run of the roles spec next to the seesaw and the BF16 path.
# Logs under $OUT.   bench/roles_ab.sh [SHAPES]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}; mkdir -p "$out"
shapes=${1:-128x4096,128x16384,1x65536}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
make -j16 all > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
export SNAPMLA_CACHE_DIR=/tmp/snapmla-cache
for shape in "3 100" "5 1000" "8 4096" "1 65" "2 20000"; do
    set -- $shape
    timeout 120 build/snapmla run specs/deepseek_v3_fp8_roles_hopper.yaml --batch $1 --seqlen $2 > "$out/run_$1_$2.log" 2>&1
    echo "run b$1 s$2: rc=$? $(grep -c PASS "$out/run_$1_$2.log") pass, $(grep -c FAIL "$out/run_$1_$2.log") fail"
done
grep -h 'FAIL' "$out"/run_*.log | head -5
timeout 300 build/snapmla bench specs/deepseek_v3_fp8_roles_hopper.yaml specs/deepseek_v3_fp8_hopper.yaml \
    specs/deepseek_v3_bf16_hopper.yaml --shapes "$shapes" --csv "$out/bench.csv" > "$out/bench.log" 2>&1
echo "bench rc=$?"
grep -v '^|---' "$out/bench.log" | sed 's/deepseek_v3_\([a-z0-9_]*\)\.mla_decode\.l512r64\.\(h[0-9]*\)[^ |]*/\1 \2/' | cut -c1-150 | tail -32
