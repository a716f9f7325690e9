#!/usr/bin/env bash
# Device call: hardware counters of the decode kernel for each spec given,
# at one shape (Nsight Compute, clocks left alone). Logs under $OUT.
#   bench/ncu_profile.sh SHAPE SPEC...      e.g. 128x4096 specs/deepseek_v3_fp8_roles_hopper.yaml
# NCU_SOURCE=1: the full set, plus a per-SASS-instruction table
# (ncu_NAME_sass.csv: executed counts, stalls, shared-memory wavefronts).
# Tensor pipe and shared-memory load are what the 128-head FP8 kernel is
# weighed against (docs/perf.md); stall reasons say what the warps wait on.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}; mkdir -p "$out"
shape=$1; shift
command -v ncu > /dev/null || { echo "ncu: not on this machine"; exit 1; }
[[ -x build/snapmla ]] || make -j16 all > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
export SNAPMLA_CACHE_DIR=/tmp/snapmla-cache
metrics=l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum
metrics+=,smsp__inst_executed.sum,sm__cycles_elapsed.avg,smsp__issue_active.avg.pct_of_peak_sustained_active
metrics+=,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum
metrics+=,sm__memory_throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active
metrics+=,l1tex__data_bank_reads.avg.pct_of_peak_sustained_elapsed,l1tex__data_bank_writes.avg.pct_of_peak_sustained_elapsed
metrics+=,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_tensor_op_gmma.sum
# DRAM bytes against the cache's, L2 lookups and the SM clock: a request's
# row blocks that drift apart re-read from DRAM, and the board's power
# limit then takes clock (docs/perf.md, thirty-sixth session)
metrics+=,dram__bytes_read.sum,lts__t_sectors_srcunit_tex.sum,sm__cycles_elapsed.avg.per_second
sections=(--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section InstructionStats)
[[ ${NCU_SOURCE:-0} == 1 ]] && sections=(--set full --import-source no)
for spec in "$@"; do
    name=$(basename "$spec" .yaml)
    timeout 240 ncu --clock-control none -k regex:snapmla_decode_split --launch-skip 3 --launch-count 1 \
        "${sections[@]}" --metrics "$metrics" -o "/tmp/ncu_$name" -f \
        build/snapmla bench "$spec" --shapes "$shape" > "$out/ncu_$name.run.log" 2>&1
    echo "$name: rc=$?"
    ncu -i "/tmp/ncu_$name.ncu-rep" --page details > "$out/ncu_$name.log" 2>&1
    [[ ${NCU_SOURCE:-0} == 1 ]] && ncu -i "/tmp/ncu_$name.ncu-rep" --page source --csv --print-source sass \
        > "$out/ncu_${name}_sass.csv" 2>&1
    grep -E "pipe_tensor|data_bank|shared|Issue|Elapsed Cycles|Duration|Warp Cycles Per Issued|inst_executed|Stall|Active Warps|dram__bytes_read|lts__t_sectors|per_second" "$out/ncu_$name.log" | head -44
done
