#!/usr/bin/env bash
# Device call: A/B of edited copies of the role-warpgroup template. Each
# DIR/roles_X.cu (X given on the command line) is installed as
# templates/decode_wgmma_fp8_roles.cu and built into its own binary; each
# is checked (snapmla run at 3 x 100 and 2 x 20000, h128 and h16), then all
# are timed in ROUNDS interleaved rounds (snapmla bench, SHAPES, default
# 128x16384), so that drift between calls does not land on one variant.
# The template is restored at the end. Logs under $OUT.
#   DIR=exp ROUNDS=2 bench/template_ab.sh A C      (exp/roles_A.cu, exp/roles_C.cu)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}; mkdir -p "$out"
dir=${DIR:-exp}
work=$(mktemp -d)
cp templates/decode_wgmma_fp8_roles.cu "$work/keep.cu"
trap 'cp "$work/keep.cu" templates/decode_wgmma_fp8_roles.cu' EXIT
sed 's/q_heads: \[128, 64, 16\]/q_heads: [128, 16]/' specs/deepseek_v3_fp8_roles_hopper.yaml > "$work/ab.yaml"
variants=("$@")
for v in "${variants[@]}"; do
    cp "$dir/roles_$v.cu" templates/decode_wgmma_fp8_roles.cu
    make -j16 build/snapmla > "$out/build_$v.log" 2>&1 || { echo "$v: build failed"; tail -5 "$out/build_$v.log"; continue; }
    cp build/snapmla "$work/snapmla_$v"
    checks=""
    for shape in "3 100" "2 20000"; do
        b=${shape% *} n=${shape#* }
        SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 100 "$work/snapmla_$v" run "$work/ab.yaml" --batch "$b" --seqlen "$n" \
            > "$work/run_${v}_$b.log" 2>&1
        checks+=" b$b s$n: $(grep -c PASS "$work/run_${v}_$b.log") PASS $(grep -c FAIL "$work/run_${v}_$b.log") FAIL"
    done
    echo "$v:$checks"
done
for round in $(seq "${ROUNDS:-2}"); do
    for v in "${variants[@]}"; do
        [[ -x $work/snapmla_$v ]] || continue
        SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 200 "$work/snapmla_$v" bench "$work/ab.yaml" \
            --shapes "${SHAPES:-128x16384}" > "$out/bench_${v}_$round.log" 2>&1
        echo "$v round $round | $(grep -E 'h(128|16)q' "$out/bench_${v}_$round.log" | cut -d'|' -f3-5 | tr '\n' ' ')"
    done
done
