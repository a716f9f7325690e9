#!/usr/bin/env bash
# No GPU needed: each named variant of bench/variants/patch.py (names as in
# ab.sh, '+' joins) applied, with its edits of other files, to a copy of
# the tree (the checkout is not touched), built there, and put through
# `snapmla inspect` (ptxas's report and the SASS census) on SPEC (default:
# the roles spec, 128, 64 and 16 heads). Prints each variant's decode
# kernels with their spills, and any performance-loss note. Exit status 1
# if a variant fails to apply or build, or its decode kernel spills or has
# a performance-loss note (ptxas serialized its wgmma).
#   bench/variants/inspect.sh pslots4 ldsm_all+chain_ilp
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $# -gt 0 ]] || { echo "usage: bench/variants/inspect.sh VARIANT..."; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
spec=$(realpath "${SPEC:-specs/deepseek_v3_fp8_roles_hopper.yaml}")
make -s build/snapmla > "$work/build.log" 2>&1 || { echo "build failed"; tail -5 "$work/build.log"; exit 1; }
status=0
for v in "$@"; do
    echo "== $v"
    tree=$work/tree_$v
    mkdir -p "$tree"
    # (the build folder's times kept: the copy rebuilds only what the variant edits)
    tar --exclude=./.git --exclude=./exp -cf - . | tar -xf - -C "$tree"
    if ! python3 bench/variants/patch.py "$v" templates/decode_wgmma_fp8_roles.cu "$work/roles_$v.cu"; then
        status=1; continue
    fi
    cp "$work/roles_$v.cu" "$tree/templates/decode_wgmma_fp8_roles.cu"
    [[ -d $work/roles_$v.tree ]] && cp -r "$work/roles_$v.tree/." "$tree/"
    if ! make -s -C "$tree" build/snapmla > "$work/build_$v.log" 2>&1; then
        echo "build failed"; tail -5 "$work/build_$v.log"; status=1; continue
    fi
    SNAPMLA_CACHE_DIR="$work/cache_$v" "$tree/build/snapmla" inspect "$spec" > "$work/inspect_$v.log" 2>&1 || status=1
    grep -E "^[a-z_0-9]+\.mla_decode|snapmla_decode_split|rror" "$work/inspect_$v.log"
    if grep "^  snapmla_decode_split " "$work/inspect_$v.log" | grep -Evq "spill stores/loads 0/0 B" ||
        grep "^  snapmla_decode_split " "$work/inspect_$v.log" | grep -q "performance-loss note"; then
        echo "$v: the decode kernel spills or has a performance-loss note"; status=1
    fi
    rm -rf "$tree"
done
exit $status
