#!/usr/bin/env bash
# Device call: A/B of edited copies of one template (TEMPLATE, default the
# role-warpgroup kernel, decode_wgmma_fp8_roles.cu). Each DIR/PREFIX_X.cu
# (X given on the command line; PREFIX default "roles") is installed as
# templates/TEMPLATE and built into its own binary; each is checked
# (snapmla run at 3 x 100 and 2 x 20000 on every spec), then all are timed
# in ROUNDS interleaved rounds (snapmla bench, SHAPES, default 128x16384),
# so that drift between calls does not land on one variant (a variant whose
# check runs out of time is not timed). SPECS default:
# the roles spec at 128 and 16 heads. A variant that also edits other files
# of the tree has them under DIR/PREFIX_X.tree/ (same paths as in the
# repository: gen/resources.c, templates/...): they are installed for its
# build only. Everything is restored at the end. Logs under $OUT.
#   DIR=exp ROUNDS=2 bench/template_ab.sh A C      (exp/roles_A.cu, exp/roles_C.cu)
#   TEMPLATE=decode_wgmma_bf16.cu PREFIX=bf16 SPECS="specs/deepseek_v3_bf16_hopper.yaml bench/mtp_bf16.yaml" \
#       DIR=exp bench/template_ab.sh base F         (exp/bf16_base.cu, exp/bf16_F.cu)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}; mkdir -p "$out"
dir=${DIR:-exp}
template=templates/${TEMPLATE:-decode_wgmma_fp8_roles.cu}
prefix=${PREFIX:-roles}
work=$(mktemp -d)
cp "$template" "$work/keep.cu"
# the other files some variant edits (DIR/PREFIX_X.tree/PATH), kept as they are here
extra=()
for v in "$@"; do
    [[ -d $dir/${prefix}_$v.tree ]] || continue
    while IFS= read -r f; do extra+=("$f"); done < <(cd "$dir/${prefix}_$v.tree" && find . -type f | sed 's|^\./||')
done
for f in "${extra[@]}"; do mkdir -p "$work/keep_tree/$(dirname "$f")"; cp "$f" "$work/keep_tree/$f"; done
restore_tree() { for f in "${extra[@]}"; do cp "$work/keep_tree/$f" "$f"; done; }
trap 'cp "$work/keep.cu" "$template"; restore_tree' EXIT
if [[ -n ${SPECS:-} ]]; then
    read -ra specs <<< "$SPECS"
else
    sed 's/q_heads: \[128, 64, 16\]/q_heads: [128, 16]/' specs/deepseek_v3_fp8_roles_hopper.yaml > "$work/ab.yaml"
    specs=("$work/ab.yaml")
fi
variants=("$@")
for v in "${variants[@]}"; do
    cp "$dir/${prefix}_$v.cu" "$template"
    restore_tree
    [[ -d $dir/${prefix}_$v.tree ]] && cp -r "$dir/${prefix}_$v.tree/." .
    make -j16 build/snapmla > "$out/build_$v.log" 2>&1 || { echo "$v: build failed"; tail -5 "$out/build_$v.log"; continue; }
    cp build/snapmla "$work/snapmla_$v"
    checks="" hung=0
    for spec in "${specs[@]}"; do
        for shape in "3 100" "2 20000"; do
            [[ $hung -eq 1 ]] && break 2   # (one hang is enough: the rest would spend 100 s each)
            b=${shape% *} n=${shape#* }
            SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 100 "$work/snapmla_$v" run "$spec" --batch "$b" --seqlen "$n" \
                > "$work/run_${v}_$b.log" 2>&1
            [[ $? -eq 124 ]] && hung=1
            checks+=" $(basename "$spec" .yaml) b$b s$n: $(grep -c PASS "$work/run_${v}_$b.log") PASS"
            checks+=" $(grep -c FAIL "$work/run_${v}_$b.log") FAIL;"
        done
    done
    echo "$v:$checks"
    # a variant whose check ran out of time (a hang) is not timed: it would spend the call
    if [[ $hung -eq 1 ]]; then
        echo "$v: a check ran past 100 s; not timed"
        rm -f "$work/snapmla_$v"
    fi
done
for round in $(seq "${ROUNDS:-2}"); do
    for v in "${variants[@]}"; do
        [[ -x $work/snapmla_$v ]] || continue
        SNAPMLA_CACHE_DIR="$work/cache_$v" timeout 200 "$work/snapmla_$v" bench "${specs[@]}" \
            --shapes "${SHAPES:-128x16384}" > "$out/bench_${v}_$round.log" 2>&1
        echo "$v round $round | $(bash bench/ab_summary.sh --line "$out/bench_${v}_$round.log")" |
            tee -a "$work/rounds.txt"
    done
done
# Summary: each variant's mean over the rounds per kernel and context, and
# its change against the first variant named (the base).
[[ -s $work/rounds.txt ]] && bash bench/ab_summary.sh "$work/rounds.txt"
