#!/usr/bin/env bash
# Summary of bench/template_ab.sh's (or any A/B's) round lines, one per
# variant and round: "V round R | h128q1c 16384:701.3 us; h16q1c 16384:330.1 us; "
# For each variant, the mean time per kernel and context over its rounds,
# and the change against the first variant in the file (the base).
#   bash bench/ab_summary.sh rounds.txt
# The round lines' body from `snapmla bench` logs, one entry per kernel
# (spec name / heads and query tokens / batch) and context:
#   bash bench/ab_summary.sh --line bench.log...
set -euo pipefail
if [[ ${1:-} == --line ]]; then
    shift
    cat "$@" | awk -F'|' '/mla_decode/ {split($2, a, "."); gsub(/ /, "", a[1]);
        printf "%s/%s/b%s %s:%s us; ", a[1], a[4], $3 + 0, $4 + 0, $5 + 0}'
    exit 0
fi
awk '
/ round [0-9]+ \|/ {
    v = $1
    if (!(v in seen)) { seen[v] = 1; order[++n] = v }
    line = $0
    sub(/^[^|]*\| */, "", line)
    m = split(line, parts, /; */)
    for (i = 1; i <= m; ++i) {
        if (parts[i] == "") continue
        split(parts[i], f, / +/)           # f[1] kernel key, f[2] "context:us"
        split(f[2], cu, ":")
        key = f[1] " " cu[1]
        if (!(key in kseen)) { kseen[key] = 1; keys[++nk] = key }
        sum[v, key] += cu[2]; cnt[v, key] += 1
    }
}
END {
    if (n == 0) { print "no round lines"; exit 1 }
    printf "%-10s", "variant"
    for (k = 1; k <= nk; ++k) {
        width[k] = length(keys[k]) + 3 > 18 ? length(keys[k]) + 3 : 18
        fmt[k] = " | %-" width[k] "s"
        printf fmt[k], keys[k] " us"
    }
    printf "\n"
    base = order[1]
    for (i = 1; i <= n; ++i) {
        v = order[i]
        printf "%-10s", v
        for (k = 1; k <= nk; ++k) {
            key = keys[k]
            if (cnt[v, key] == 0) { printf fmt[k], "-"; continue }
            mean = sum[v, key] / cnt[v, key]
            if (v == base || cnt[base, key] == 0) cell = sprintf("%.1f", mean)
            else cell = sprintf("%.1f (%+.1f%%)", mean, 100 * (mean / (sum[base, key] / cnt[base, key]) - 1))
            printf fmt[k], cell
        }
        printf "\n"
    }
}' "$1"
