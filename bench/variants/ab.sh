#!/usr/bin/env bash
# Device call: the variants of bench/variants/patch.py ("base": the shipped
# tree) timed against each other, with the CPU work done in parallel first
# so that the device's minutes go to the GPU: each variant's tree copy is
# built and its kernels compiled (NVRTC, into its own cache) all at once;
# then, one variant at a time, the float64 check (snapmla run at 3 x 100 and
# 2 x 20000 on every spec: a variant that fails or hangs is not timed) and
# ROUNDS interleaved rounds of snapmla bench (SHAPES, default 128x16384).
# SPECS default: the roles spec at 128 and 16 heads. SUITE=1: each timed
# variant's tree also builds tests/test_gpu, and the whole GPU suite runs
# on it after the rounds (the evidence a variant needs before it moves into
# the templates). Logs under $OUT, a few files (a device call brings back
# only so many): build.log, builds.log (each variant's build), checks.log,
# bench.log (every round), rounds.txt, suites.log; the checkout is not
# touched.
#   OUT=out ROUNDS=2 bench/variants/ab.sh base ldsm_all ldsm_all+pslots4
#   SUITE=1 SHAPES=128x16384,128x4096 bench/variants/ab.sh base ldsm_all
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $# -gt 0 ]] || { echo "usage: bench/variants/ab.sh VARIANT... (base: the shipped tree)"; exit 2; }
out=$(realpath -m "${OUT:-out}"); mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# keep LOG TITLE FILE: FILE appended to $out/LOG under a "== TITLE" line
keep() { { echo "== $2"; cat "$3"; } >> "$out/$1" 2>&1; }
if [[ -n ${SPECS:-} ]]; then
    read -ra specs <<< "$SPECS"
    for i in "${!specs[@]}"; do specs[$i]=$(realpath "${specs[$i]}"); done
else
    sed 's/q_heads: \[128, 64, 16\]/q_heads: [128, 16]/' specs/deepseek_v3_fp8_roles_hopper.yaml > "$work/ab.yaml"
    specs=("$work/ab.yaml")
fi
make -s -j"$(nproc)" build/snapmla > "$out/build.log" 2>&1 || { echo "build failed"; tail -5 "$out/build.log"; exit 1; }

# CPU: every variant's tree, binary and kernels, in parallel
prepare() {
    local v=$1 tree=$work/tree_$1
    mkdir -p "$tree"
    tar --exclude=./.git --exclude=./exp -cf - . | tar -xf - -C "$tree"
    if [[ $v != base ]]; then
        python3 bench/variants/patch.py "$v" templates/decode_wgmma_fp8_roles.cu "$work/roles_$v.cu" || return 1
        cp "$work/roles_$v.cu" "$tree/templates/decode_wgmma_fp8_roles.cu"
        [[ -d $work/roles_$v.tree ]] && cp -r "$work/roles_$v.tree/." "$tree/"
    fi
    local targets=build/snapmla
    [[ ${SUITE:-0} == 1 && $v != base ]] && targets+=" build/tests/test_gpu"
    make -s -C "$tree" -j2 $targets > "$work/build_$v.log" 2>&1 || return 1
    SNAPMLA_CACHE_DIR="$work/cache_$v" "$tree/build/snapmla" build "${specs[@]}" -o "$work/aot_$v" -j 2 \
        >> "$work/build_$v.log" 2>&1
}
start=$(date +%s)
for v in "$@"; do
    (prepare "$v" && touch "$work/ready_$v") &
done
wait
echo "prepared $# variants in $(( $(date +%s) - start )) s"
for v in "$@"; do
    keep builds.log "$v" "$work/build_$v.log"
done

# GPU: the checks, then the interleaved rounds
timed=()
for v in "$@"; do
    bin=$work/tree_$v/build/snapmla
    if [[ ! -e $work/ready_$v ]]; then
        echo "$v: did not build"; tail -5 "$work/build_$v.log"; continue
    fi
    checks="" ok=1
    for spec in "${specs[@]}"; do
        for shape in "3 100" "2 20000"; do
            b=${shape% *} n=${shape#* }
            log=$work/run_${v}_$(basename "$spec" .yaml)_$b.log
            SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 100 "$bin" run "$spec" --batch "$b" --seqlen "$n" > "$log" 2>&1
            rc=$?
            keep checks.log "$v $(basename "$spec") --batch $b --seqlen $n: exit $rc" "$log"
            pass=$(grep -c PASS "$log") fail=$(grep -c FAIL "$log")
            checks+=" $(basename "$spec" .yaml) b$b s$n: $pass PASS $fail FAIL;"
            [[ $rc -ne 0 || $fail -gt 0 || $pass -eq 0 ]] && ok=0
            [[ $rc -eq 124 ]] && break 2
        done
    done
    echo "$v:$checks"
    if [[ $ok -eq 1 ]]; then timed+=("$v"); else echo "$v: not timed (a check failed or hung)"; fi
done
for round in $(seq "${ROUNDS:-2}"); do
    for v in "${timed[@]}"; do
        SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 200 "$work/tree_$v/build/snapmla" bench "${specs[@]}" \
            --shapes "${SHAPES:-128x16384}" > "$work/bench.log" 2>&1
        keep bench.log "$v round $round" "$work/bench.log"
        echo "$v round $round | $(bash bench/ab_summary.sh --line "$work/bench.log")" |
            tee -a "$out/rounds.txt"
    done
done
[[ -s $out/rounds.txt ]] && bash bench/ab_summary.sh "$out/rounds.txt"
if [[ ${SUITE:-0} == 1 ]]; then   # (base is main: its suite ran when it landed)
    for v in "${timed[@]}"; do
        [[ $v == base ]] && continue
        SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 600 "$work/tree_$v/build/tests/test_gpu" > "$work/suite.log" 2>&1
        rc=$?
        keep suites.log "$v: exit $rc" "$work/suite.log"
        echo "$v: GPU suite exit $rc | $(grep -E '^[0-9]+%: Checks' "$work/suite.log" | tail -1)"
    done
fi
exit 0
