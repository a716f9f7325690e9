#!/usr/bin/env bash
# End-to-end tests of the snapmla command line: what a user types, the exit
# codes and the one-line messages, the cache seen from outside.
# usage: tests/test_cli.sh path/to/snapmla
set -u
snapmla=$(realpath "${1:?usage: test_cli.sh path/to/snapmla}")
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/snapmla-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
export SNAPMLA_CACHE_DIR=$work/cache
passed=0 failed=0

# expect NAME CODE PATTERN -- COMMAND...: exit code CODE and output matching
# the extended regex PATTERN (stdout and stderr together).
expect() {
    local name=$1 code=$2 pattern=$3
    shift 4
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [[ $rc -eq $code ]] && grep -Eq -- "$pattern" <<<"$out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        printf 'FAIL %s: exit %d (want %d), output:\n%s\n(want /%s/)\n' "$name" "$rc" "$code" "$out" "$pattern"
    fi
}

expect "help" 0 "commands:" -- "$snapmla" --help
for c in gen list build cache run fidelity bench; do
    expect "$c --help" 0 "usage: snapmla $c" -- "$snapmla" "$c" --help
done
expect "no command" 2 "usage: snapmla COMMAND" -- "$snapmla"
expect "unknown command" 2 "unknown command 'frobnicate'" -- "$snapmla" frobnicate

expect "list default" 0 "^1 variant, 0 rejected" -- "$snapmla" list specs/deepseek_v3.yaml
expect "list sweep" 0 "^[0-9]+ variants" -- "$snapmla" list specs/deepseek_v3_sweep.yaml

"$snapmla" gen specs/deepseek_v3.yaml -o "$work/a.cu" 2>/dev/null
"$snapmla" gen specs/deepseek_v3.yaml > "$work/b.cu"
expect "gen is deterministic" 0 "" -- cmp "$work/a.cu" "$work/b.cu"
expect "gen sweep needs a directory" 2 "give -o DIR" -- "$snapmla" gen specs/deepseek_v3_sweep.yaml
expect "gen sweep into a directory" 0 "wrote" -- "$snapmla" gen specs/deepseek_v3_sweep.yaml -o "$work/src"

# Bad input: one clear line naming the file, and exit 2.
printf 'kernel: mla_decode\nmodel:\n  latent_dim: 512\n  rope_dim: 64\n  q_heads: 16\ncache:\n  page_size: 48\n' > "$work/bad.yaml"
expect "bad value" 2 "^snapmla: $work/bad.yaml:7:14: cache.page_size: '48' is not allowed; allowed: 1, 16, 32, 64, 128$" -- "$snapmla" list "$work/bad.yaml"
expect "missing file" 2 "^snapmla: cannot open '$work/nope.yaml': No such file or directory$" -- "$snapmla" list "$work/nope.yaml"
printf 'kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {page_size: 16}\ntile: {kv_tokens: 128, stages: 4, q_rows: 16}\n' > "$work/impossible.yaml"
expect "impossible combination" 2 "^snapmla: $work/impossible.yaml:[0-9]+:[0-9]+: .*shared memory" -- "$snapmla" build "$work/impossible.yaml" -o "$work/out"
expect "malformed yaml" 2 "^snapmla: $work/junk.yaml:" -- bash -c "printf 'kernel: [\n' > '$work/junk.yaml'; '$snapmla' list '$work/junk.yaml'"

# Ahead-of-time build, then the same from the cache.
expect "build compiles" 0 "built [0-9]+ variants?: [1-9][0-9]* compiled" -- "$snapmla" build specs/deepseek_v3.yaml specs/minicpm3.yaml --arch sm_90a -o "$work/out"
expect "build from cache" 0 "built [0-9]+ variants?: 0 compiled \(0.0 s of NVRTC\), [1-9][0-9]* from the cache" -- "$snapmla" build specs/deepseek_v3.yaml specs/minicpm3.yaml --arch sm_90a -o "$work/out"
expect "manifest" 0 "mla_decode" -- cat "$work/out/manifest.tsv"
expect "cache ls" 0 "^2 entries" -- "$snapmla" cache ls
expect "cache verify" 0 "0 corrupt" -- "$snapmla" cache verify

# A corrupted entry: verify says so, the next build reports it once and rebuilds.
entry=$(find "$work/cache" -name '*.snapmla' | head -n 1)
printf '\x00\x01\x02\x03' | dd of="$entry" bs=1 seek=300 conv=notrunc status=none
expect "verify finds corruption" 1 "CORRUPT" -- "$snapmla" cache verify
expect "corrupt entry rebuilt" 0 "corrupt.*rebuilding" -- "$snapmla" build specs/deepseek_v3.yaml specs/minicpm3.yaml -o "$work/out"
expect "verify clean again" 0 "0 corrupt" -- "$snapmla" cache verify
expect "no temp files left" 0 "^0$" -- bash -c "find '$work/cache' -name '*.tmp*' | wc -l"

# run: on a GPU it checks one decode step; without one it says so and still compiles.
if [[ -e /dev/nvidiactl ]]; then
    expect "run on the GPU" 0 "PASS" -- "$snapmla" run specs/deepseek_v3.yaml
else
    expect "run without GPU" 0 "no CUDA (driver|GPU).*compiled" -- "$snapmla" run specs/deepseek_v3.yaml
    expect "bench without GPU" 1 "^snapmla: no CUDA (driver|GPU)" -- "$snapmla" bench specs/deepseek_v3.yaml
fi

expect "cache clear" 0 "removed [0-9]+ files?" -- "$snapmla" cache clear
expect "cache empty" 0 "^0 entries" -- "$snapmla" cache ls

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
