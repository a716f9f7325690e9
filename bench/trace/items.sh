#!/usr/bin/env bash
# Device call: the work-item timeline (bench/trace/items.py) of the Hopper
# decode at one shape. Builds a stamped snapmla in a copy of the tree (the
# checkout is not touched), runs `snapmla bench SPEC --shapes SHAPE` with it
# (the stamps are printed after the 8th launch) and prints
# bench/trace/view_items.py's summary. Logs under $OUT.
#   bench/trace/items.sh bench/mtp_bf16.yaml 128x8192
#   bench/trace/items.sh specs/deepseek_v3_bf16_hopper.yaml 1x65536   (every variant of the spec)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-out}; mkdir -p "$out"
spec=${1:?SPEC} shape=${2:-128x16384}
work=$(mktemp -d)
tar --exclude=./.git --exclude=./build --exclude=./exp -cf - . | tar -xf - -C "$work"
python3 bench/trace/items.py "$work" || exit 1
make -s -C "$work" -j16 build/snapmla > "$out/build_items.log" 2>&1 || { tail -5 "$out/build_items.log"; exit 1; }
name=$(basename "$spec" .yaml)_$shape
SNAPMLA_CACHE_DIR="$work/cache" timeout 300 "$work/build/snapmla" bench "$spec" --shapes "$shape" \
    > "$out/items_$name.log" 2>&1
# one trace per module: split the log at each variant's ITRACE line and summarize each
awk -v base="$out/items_$name" '/^ITRACE/ {n++} n {print > (base "." n ".part")}' "$out/items_$name.log"
for part in "$out/items_$name".*.part; do
    [ -e "$part" ] || { echo "no trace printed (see $out/items_$name.log)"; exit 1; }
    python3 bench/trace/view_items.py "$part"
done
