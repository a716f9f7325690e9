#!/usr/bin/env bash
# First device call for the role warpgroups: build, the reference checks
# (snapmla run) of the new path at several shapes with a hang guard, then
# A/B timing against the seesaw in the same run. Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
make -j16 all build/tests/test_gpu > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
export SNAPMLA_CACHE_DIR=/tmp/snapmla-cache
for shape in "3 100" "5 1000" "8 4096" "1 65"; do
    set -- $shape
    timeout 120 build/snapmla run specs/deepseek_v3_fp8_roles_hopper.yaml --batch $1 --seqlen $2 > "$out/run_$1_$2.log" 2>&1
    echo "run b$1 s$2: rc=$? $(grep -c PASS "$out/run_$1_$2.log") pass, $(grep -c FAIL "$out/run_$1_$2.log") fail"
done
grep -h 'FAIL\|rel_l2' "$out"/run_*.log | head -20
timeout 300 build/snapmla bench specs/deepseek_v3_fp8_roles_hopper.yaml specs/deepseek_v3_fp8_hopper.yaml \
    --shapes 128x4096,128x16384,1x65536 --csv "$out/bench.csv" > "$out/bench.log" 2>&1
echo "bench rc=$?"
tail -40 "$out/bench.log"
