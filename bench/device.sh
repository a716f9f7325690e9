#!/usr/bin/env bash
# One device call: build, check the Hopper FP8 path (role warpgroups)
# against the float64 reference, run the GPU suite, then time the issue's
# shapes, FP8 beside our BF16 (carry .deps where the device lacks libyaml
# and Check).
# Logs go under $OUT (the device tool's return folder) or ./out.
#   bench/device.sh [quick|test|bench|all]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
mkdir -p "$out"
what=${1:-all}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
make -j16 all build/tests/test_gpu > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
export SNAPMLA_CACHE_DIR=/tmp/snapmla-cache
if [[ $what == quick || $what == all ]]; then
    for shape in "3 100" "5 1000" "8 4096"; do
        set -- $shape
        build/snapmla run specs/deepseek_v3_fp8_roles_hopper.yaml --batch $1 --seqlen $2 2>&1 | tee -a "$out/run.log"
    done
fi
if [[ $what == test || $what == all ]]; then
    build/tests/test_gpu 2>&1 | tee "$out/test_gpu.log" | grep -E "FAIL|wgmma|^[0-9]+%|Checks" | tail -40
fi
if [[ $what == bench || $what == all ]]; then
    # the issue's shapes (two query tokens: mtp_bf16 at 128x8192), FP8 beside our BF16
    build/snapmla bench specs/deepseek_v3_fp8_roles_hopper.yaml specs/deepseek_v3_bf16_hopper.yaml bench/mtp_bf16.yaml \
        --shapes 128x16384,128x4096,1x65536,128x8192 --csv "$out/bench.csv" 2>&1 | tee "$out/bench.log"
fi
