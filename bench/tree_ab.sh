#!/usr/bin/env bash
# A/B of the whole template tree: the working tree ("new") against older
# copies of some template files ("old"), each built into its own binary;
# the new one checked (snapmla run, every spec, two shapes; test_gpu on
# CASES when given), then both timed in ROUNDS interleaved rounds.
#   here:    bench/tree_ab.sh --prepare REV FILE...   (git show REV:templates/FILE > exp/old/FILE)
#   device:  CASES=... ROUNDS=2 bench/tree_ab.sh       (carry exp and .deps; logs under $OUT)
# SPECS (default: the three Hopper specs) are timed at SHAPES (128x16384),
# MTP_SPECS (bench/mtp_bf16.yaml bench/roles_mtp.yaml) at MTP_SHAPES (128x8192).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
old=${OLD:-exp/old}
if [[ ${1:-} == --prepare ]]; then
    rev=$2; shift 2
    mkdir -p "$old"
    for f in "$@"; do git show "$rev:templates/$f" > "$old/$f" || exit 1; done
    echo "old copies of $* at $rev in $old"
    exit 0
fi
out=${OUT:-out}; mkdir -p "$out"
[[ -n $(ls "$old" 2> /dev/null) ]] || { echo "tree_ab: no old copies in $old (run --prepare here first)"; exit 1; }
specs=${SPECS:-specs/deepseek_v3_fp8_roles_hopper.yaml specs/deepseek_v3_fp8_hopper.yaml specs/deepseek_v3_bf16_hopper.yaml}
mtp_specs=${MTP_SPECS:-bench/mtp_bf16.yaml bench/roles_mtp.yaml}
w=$(mktemp -d)
for f in "$old"/*; do cp "templates/$(basename "$f")" "$w/$(basename "$f").new"; done
restore() { for f in "$old"/*; do cp "$w/$(basename "$f").new" "templates/$(basename "$f")"; done; }
trap restore EXIT
make -j16 build/snapmla build/tests/test_gpu > "$out/build_new.log" 2>&1 || { tail -20 "$out/build_new.log"; exit 1; }
cp build/snapmla "$w/bin_new"; cp build/tests/test_gpu "$w/test_gpu_new"
for f in "$old"/*; do cp "$f" templates/; done
make -j16 build/snapmla > "$out/build_old.log" 2>&1 || { tail -20 "$out/build_old.log"; exit 1; }
cp build/snapmla "$w/bin_old"
restore
for s in $specs $mtp_specs; do
    for shape in "3 100" "2 5000"; do
        b=${shape% *} n=${shape#* }
        SNAPMLA_CACHE_DIR="$w/cache_new" "$w/bin_new" run "$s" --batch "$b" --seqlen "$n" > "$w/run.log" 2>&1
        echo "check new $(basename "$s") b$b s$n: $(grep -c PASS "$w/run.log") PASS $(grep -c FAIL "$w/run.log") FAIL"
    done
done
if [[ -n ${CASES:-} ]]; then
    SNAPMLA_CACHE_DIR="$w/cache_new" SNAPMLA_GPU_CASES="$CASES" timeout 300 "$w/test_gpu_new" > "$out/test_gpu_new.log" 2>&1
    echo "test_gpu new (rc $?): $(grep -c PASS "$out/test_gpu_new.log") PASS lines, $(grep -c FAIL "$out/test_gpu_new.log") FAIL; $(grep -E '^[0-9]+%' "$out/test_gpu_new.log")"
fi
for round in $(seq "${ROUNDS:-2}"); do
    for v in old new; do
        # shellcheck disable=SC2086
        SNAPMLA_CACHE_DIR="$w/cache_$v" "$w/bin_$v" bench $specs --shapes "${SHAPES:-128x16384}" > "$out/b1_${v}_$round.log" 2>&1
        # shellcheck disable=SC2086
        SNAPMLA_CACHE_DIR="$w/cache_$v" "$w/bin_$v" bench $mtp_specs --shapes "${MTP_SHAPES:-128x8192}" > "$out/b2_${v}_$round.log" 2>&1
        echo "$v round $round | $(bash bench/ab_summary.sh --line "$out/b1_${v}_$round.log" "$out/b2_${v}_$round.log")" |
            tee -a "$w/rounds.txt"
    done
done
# each kernel's mean over the rounds, new against old (bench/ab_summary.sh)
[[ -s $w/rounds.txt ]] && bash bench/ab_summary.sh "$w/rounds.txt"
