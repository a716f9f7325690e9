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
for c in gen list build cache run fidelity bench inspect; do
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
expect "a folder for a spec" 2 "^snapmla: cannot read 'specs/': Is a directory$" -- "$snapmla" list specs/
expect "an endless spec" 2 "^snapmla: cannot read '/dev/zero': larger than 64 MiB" -- "$snapmla" list /dev/zero
expect "an endless tuning database" 2 "^snapmla: cannot read '/dev/zero': larger than 64 MiB" -- "$snapmla" tune pick /dev/zero specs/deepseek_v3.yaml --shapes 1x1
printf 'kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {page_size: 16}\ntile: {kv_tokens: 128, stages: 4, q_rows: 16}\n' > "$work/impossible.yaml"
expect "impossible combination" 2 "^snapmla: $work/impossible.yaml:[0-9]+:[0-9]+: .*shared memory" -- "$snapmla" build "$work/impossible.yaml" -o "$work/out"
expect "malformed yaml" 2 "^snapmla: $work/junk.yaml:" -- bash -c "printf 'kernel: [\n' > '$work/junk.yaml'; '$snapmla' list '$work/junk.yaml'"
touch "$work/afile"
expect "build checks -o before compiling" 2 "^snapmla: '$work/afile' is not a directory$" -- bash -c "out=\$('$snapmla' build specs/deepseek_v3.yaml -o '$work/afile' 2>&1); rc=\$?; echo \"\$out\"; grep -q built <<<\"\$out\" && exit 99; exit \$rc"

# Ahead-of-time build, then the same from the cache.
expect "build compiles" 0 "built [0-9]+ variants?: [1-9][0-9]* compiled" -- "$snapmla" build specs/deepseek_v3.yaml specs/minicpm3.yaml --arch sm_90a -o "$work/out"
expect "build from cache" 0 "built [0-9]+ variants?: 0 compiled \(0.0 s of NVRTC\), [1-9][0-9]* from the cache" -- "$snapmla" build specs/deepseek_v3.yaml specs/minicpm3.yaml --arch sm_90a -o "$work/out"
expect "manifest" 0 "mla_decode" -- cat "$work/out/manifest.tsv"
expect "cache ls" 0 "^2 entries" -- "$snapmla" cache ls
expect "cache ls of a missing --dir" 2 "^snapmla cache: --dir: cannot use '$work/no_cache': No such file or directory$" -- bash -c "'$snapmla' cache ls --dir '$work/no_cache'; rc=\$?; [ -e '$work/no_cache' ] && exit 99; exit \$rc"
expect "cache verify" 0 "0 corrupt" -- "$snapmla" cache verify

# A corrupted entry: verify says so, the next build reports it once and rebuilds.
entry=$(find "$work/cache" -name '*.snapmla' | head -n 1)
printf '\x00\x01\x02\x03' | dd of="$entry" bs=1 seek=300 conv=notrunc status=none
expect "verify finds corruption" 1 "CORRUPT" -- "$snapmla" cache verify
expect "corrupt entry rebuilt" 0 "corrupt.*rebuilding" -- "$snapmla" build specs/deepseek_v3.yaml specs/minicpm3.yaml -o "$work/out"
expect "verify clean again" 0 "0 corrupt" -- "$snapmla" cache verify
expect "no temp files left" 0 "^0$" -- bash -c "find '$work/cache' -name '*.tmp*' | wc -l"

# bench: bad arguments are refused before any GPU work, naming the value.
shape_rule="allowed: BATCHxSEQLEN \\(uniform\\) or BATCHxSEQLEN~ \\(ragged: lengths drawn in 1\\.\\.2\\*SEQLEN-1\\), batch 1\\.\\.65535, SEQLEN 1\\.\\.4194304"
expect "bench bad shape" 2 "^snapmla bench: --shapes: '0x5' is not a shape; $shape_rule" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 128x4096~,0x5
expect "bench misplaced ragged mark" 2 "^snapmla bench: --shapes: '128~x4096' is not a shape; " -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 128~x4096
expect "bench two ragged marks" 2 "^snapmla bench: --shapes: '8x100~~' is not a shape; " -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 8x100~~
expect "bench ragged seqlen too long" 2 "^snapmla bench: --shapes: '1x4194305~' is not a shape; " -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 1x4194305~
expect "bench trailing comma" 2 "^snapmla bench: --shapes: '' is not a shape; " -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 8x100,
expect "bench repeated ragged shape" 2 "^snapmla bench: --shapes: 8x100~ is given twice$" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 8x100~,8x100,8x100~
expect "bench over 16 shapes" 2 "^snapmla bench: --shapes: more than 16 shapes$" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 1x1,1x2,1x3,1x4,1x5,1x6,1x7,1x8,1x9,1x10,1x11,1x12,1x13,1x14,1x15,1x16,1x17
expect "bench shapes without value" 2 "^snapmla bench: --shapes needs a value$" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes
expect "bench json without value" 2 "^snapmla bench: --json needs a value$" -- "$snapmla" bench specs/deepseek_v3.yaml --json
expect "bench json names a directory" 2 "^snapmla bench: --json: '$work/' is not a file name; allowed: the path of the JSON file to write$" -- "$snapmla" bench specs/deepseek_v3.yaml --json "$work/"
expect "bench json empty" 2 "^snapmla bench: --json: '' is not a file name" -- "$snapmla" bench specs/deepseek_v3.yaml --json ""
expect "bench json and csv one file" 2 "^snapmla bench: --csv and --json both name '$work/b.out'; give each its own file$" -- "$snapmla" bench specs/deepseek_v3.yaml --csv "$work/b.out" --json "$work/b.out"
expect "bench bad replays" 2 "^snapmla bench: --replays: '2' is not allowed; allowed: 3\\.\\.64$" -- "$snapmla" bench specs/deepseek_v3.yaml --replays 2
expect "bench bad sustain" 2 "^snapmla bench: --sustain: '121' is not allowed; allowed: 0\\.\\.120$" -- "$snapmla" bench specs/deepseek_v3.yaml --sustain 121
expect "bench flush-mb too small" 2 "^snapmla bench: --flush-mb: '63' is not allowed; allowed: 64\\.\\.16384$" -- "$snapmla" bench specs/deepseek_v3.yaml --flush-mb 63
expect "bench flush-mb without value" 2 "^snapmla bench: --flush-mb needs a value$" -- "$snapmla" bench specs/deepseek_v3.yaml --flush-mb
# Numeric options take the whole value, in range, or name it (no atoi prefix, no wrap).
expect "run batch with junk" 2 "^snapmla run: --batch: '8x' is not allowed; allowed: 1\\.\\.65535$" -- "$snapmla" run specs/deepseek_v3.yaml --batch 8x
expect "run seqlen past int" 2 "^snapmla run: --seqlen: '99999999999' is not allowed; allowed: 0\\.\\.16777216$" -- "$snapmla" run specs/deepseek_v3.yaml --seqlen 99999999999
expect "run negative seed" 2 "^snapmla run: --seed: '-3' is not allowed" -- "$snapmla" run specs/deepseek_v3.yaml --seed -3
expect "build jobs zero" 2 "^snapmla build: -j: '0' is not allowed; allowed: 1\\.\\.64$" -- "$snapmla" build specs/deepseek_v3.yaml -o "$work/j0" -j 0
expect "tune replays with junk" 2 "^snapmla tune: --replays: '5x' is not allowed; allowed: 3\\.\\.64$" -- "$snapmla" tune specs/deepseek_v3.yaml --replays 5x
expect "fidelity heads with junk" 2 "^snapmla fidelity: --heads: '16abc' is not allowed; allowed: 1\\.\\.128$" -- "$snapmla" fidelity specs/deepseek_v3.yaml --heads 16abc
expect "fidelity heads past the spec" 2 "^snapmla fidelity: --heads: 64 is more than the 16 query heads of .*; allowed: 1\\.\\.16$" -- "$snapmla" fidelity specs/deepseek_v2_lite.yaml --heads 64
expect "bench unknown option" 2 "^snapmla bench: unknown option '--ragged'$" -- "$snapmla" bench specs/deepseek_v3.yaml --ragged
expect "bench json in a missing folder" 2 "^snapmla: cannot write '$work/nope/b.json': No such file or directory$" -- "$snapmla" bench specs/deepseek_v3.yaml --json "$work/nope/b.json"
expect "bench json onto a folder" 2 "^snapmla: cannot write '$work': Is a directory$" -- "$snapmla" bench specs/deepseek_v3.yaml --json "$work"

# inspect: ptxas's report per kernel (NVRTC, no GPU) and a SASS census by
# nvdisasm; a stand-in nvdisasm prints a known listing, so the census's
# counting is checked exactly (a predicated QGMMA, labels, two kernels).
cat > "$work/nvdisasm" <<'FAKE'
#!/bin/sh
cat <<'LISTING'
//--------------------- .text.snapmla_decode_split --------------------------
	.section	.text.snapmla_decode_split,"ax",@progbits
.text.snapmla_decode_split:
        /*0000*/                   LDC R1, c[0x0][0x28] ;
        /*0010*/              @!P0 QGMMA.64x64x32.F32.E4M3.E4M3 R24, gdesc[UR4], R24 ;
        /*0020*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], R24, gsb0 ;
        /*0030*/                   STL [R1], R2 ;
.L_x_1:
        /*0040*/                   LDL R2, [R1] ;
        /*0050*/                   EXIT ;
.text.snapmla_combine:
        /*0000*/                   EXIT ;
LISTING
FAKE
printf '#!/bin/sh\necho "nvdisasm fatal : bad cubin"; exit 3\n' > "$work/nvdisasm_fails"
chmod +x "$work/nvdisasm" "$work/nvdisasm_fails"
expect "inspect needs a spec" 2 "^snapmla inspect: need at least one SPEC" -- "$snapmla" inspect --strict
expect "inspect unknown option" 2 "^snapmla inspect: unknown option" -- "$snapmla" inspect specs/deepseek_v3.yaml --sass
expect "inspect bad spec" 2 "^snapmla: $work/bad.yaml:7:14: cache.page_size" -- "$snapmla" inspect "$work/bad.yaml"
expect "inspect: ptxas report and SASS census" 0 "^  snapmla_decode_split +[0-9]+ registers, +[0-9]+ barriers?, stack 0 B, spill stores/loads 0/0 B, static smem [0-9]+ B; SASS 6: QGMMA 1, HGMMA 1, HMMA 0, UTMALDG 0, LDL 1, STL 1$" -- env TMPDIR="$work" SNAPMLA_NVDISASM="$work/nvdisasm" "$snapmla" inspect specs/deepseek_v3.yaml
expect "inspect: the variant line" 0 "^deepseek_v3\.mla_decode\..* \(sm_90a, [0-9]+ threads, [0-9]+ B dynamic smem\)$" -- "$snapmla" inspect specs/deepseek_v3.yaml --no-sass
expect "inspect --strict, nothing spills" 0 "^1 variant, [0-9]+ kernels; spilling: 0; with performance-loss notes: 0; variants off their design: 0$" -- "$snapmla" inspect specs/deepseek_v3.yaml --strict --no-sass
# NVRTC 12.9+ keeps its own cache where a driver is installed; a repeated
# compile must still run ptxas, or the report is empty (GPU machines)
expect "inspect, the same source again" 0 "^  snapmla_decode_split +[0-9]+ registers" -- env SNAPMLA_CACHE_DIR="$work/cache_again" "$snapmla" inspect specs/deepseek_v3.yaml --no-sass
# The spill reports' fixture: a SIMT variant whose decode kernel spills at
# 255 registers (8 bytes with NVRTC 13.0; the 512 + 128 one of earlier
# sessions stopped spilling with the unsigned block-table row)
printf 'kernel: mla_decode\nmodel: {latent_dim: 992, rope_dim: 128, q_heads: 128}\ntile: {engine: simt, q_rows: 8, kv_tokens: 16, warps: 4, stages: 2}\n' > "$work/spills.yaml"
expect "inspect --strict, a kernel spills" 1 "^snapmla inspect: --strict: variants off their design: 1 \\(kernels spilling: 1; with performance-loss notes: 0\\)$" -- "$snapmla" inspect "$work/spills.yaml" --strict --no-sass
expect "inspect: the spill is shown" 0 "^  snapmla_decode_split .* spill stores/loads [1-9][0-9]*/[1-9][0-9]* B" -- "$snapmla" inspect "$work/spills.yaml" --no-sass
expect "inspect: what is off the design" 0 "^  off its design: snapmla_decode_split spills [1-9][0-9]* bytes to local memory \\(loads [1-9][0-9]*\\)$" -- "$snapmla" inspect "$work/spills.yaml" --no-sass
expect "build warns of a spilling variant" 0 "^snapmla: [^ ]+: snapmla_decode_split spills [1-9][0-9]* bytes to local memory \\(loads [1-9][0-9]*\\); it runs, slower than it should" -- "$snapmla" build "$work/spills.yaml" -o "$work/spills_aot"
expect "inspect: a bad SNAPMLA_NVDISASM" 2 "^snapmla: SNAPMLA_NVDISASM: '$work/none' is not an executable file; allowed: the path of nvdisasm$" -- env SNAPMLA_NVDISASM="$work/none" "$snapmla" inspect specs/deepseek_v3.yaml
expect "inspect: nvdisasm fails" 1 "^snapmla: deepseek_v3\.mla_decode\..*: '$work/nvdisasm_fails' failed \(exit 3\): nvdisasm fatal : bad cubin" -- env TMPDIR="$work" SNAPMLA_NVDISASM="$work/nvdisasm_fails" "$snapmla" inspect specs/deepseek_v3.yaml
expect "inspect --csv: the census row" 0 "^deepseek_v3\.mla_decode\.[^,]+,snapmla_decode_split,[0-9]+,[0-9]+,0,0,0,[0-9]+,[0-9]+,0,6,1,1,0,0,1,1$" -- bash -c "TMPDIR='$work' SNAPMLA_NVDISASM='$work/nvdisasm' '$snapmla' inspect specs/deepseek_v3.yaml --csv '$work/i.csv' > /dev/null && cat '$work/i.csv'"
expect "inspect --csv: the header" 0 "^variant,kernel,registers,barriers,stack_bytes,spill_store_bytes,spill_load_bytes,static_smem_bytes,dynamic_smem_bytes,performance_notes,sass_instructions,QGMMA,HGMMA,HMMA,UTMALDG,LDL,STL$" -- head -n 1 "$work/i.csv"
expect "inspect --csv --no-sass: SASS columns empty" 0 "^deepseek_v3\.mla_decode\.[^,]+,snapmla_decode_split,([0-9]+,){7}0,,,,,,,$" -- bash -c "'$snapmla' inspect specs/deepseek_v3.yaml --no-sass --csv '$work/n.csv' > /dev/null && cat '$work/n.csv'"
expect "inspect --csv needs a value" 2 "^snapmla inspect: --csv needs the path of the CSV file to write$" -- "$snapmla" inspect specs/deepseek_v3.yaml --csv
expect "inspect --csv in a missing folder, before compiling" 2 "^snapmla: cannot write '$work/nope/i.csv': No such file or directory$" -- "$snapmla" inspect specs/deepseek_v3.yaml --csv "$work/nope/i.csv"
expect "inspect leaves no temporary files" 0 "^0$" -- bash -c "find '$work' -maxdepth 1 -name 'snapmla-sass-*' | wc -l"

# run: on a GPU it checks one decode step; without one it says so and still compiles.
# bench: on a GPU a small uniform + ragged run with CSV and JSON; without one
# it fails and leaves no JSON behind.
if [[ -e /dev/nvidiactl ]]; then
    expect "run on the GPU" 0 "PASS" -- "$snapmla" run specs/deepseek_v3.yaml
    expect "bench ragged on the GPU" 0 "^\\| [^|]+ \\| 4 \\| 300~ \\| [0-9.]+ \\| [0-9.]+ \\|.* \\| - \\| - \\|" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 2x100,4x300~ --replays 3 --csv "$work/b.csv" --json "$work/b.json"
    expect "bench CSV header" 0 "^variant,batch,seqlen,ragged,tokens,us,tbps,copy_fraction,tflops,mma_fraction,flashmla_us,sm_mhz,clock_limits$" -- head -n 1 "$work/b.csv"
    expect "bench CSV uniform row" 0 "^[^,]+,2,100,0,200,[0-9.]+," -- sed -n 2p "$work/b.csv"
    expect "bench CSV ragged row" 0 "^[^,]+,4,300,1,[0-9]+,[0-9.]+,.*,0,[0-9]*,\"[a-z, ]*\"$" -- sed -n 3p "$work/b.csv"
    expect "bench: the SM clock column" 0 "^\\| [^|]+ \\| 2 \\| 100 \\| .* \\| ([0-9]+[a-z ,]*|-) \\|$" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 2x100 --replays 3
    expect "bench --sustain says so" 0 "^--sustain 1: each shape's call replayed back to back for 1 s" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 2x100 --replays 3 --sustain 1 --json "$work/s.json"
    expect "bench --sustain JSON" 0 "\"sustain_s\": 1," -- cat "$work/s.json"
    expect "bench JSON rows" 0 "\"batch\": 4, \"seqlen\": 300, \"ragged\": true, \"tokens\": [0-9]+, .*\"mma_fraction\": ([0-9.]+|null), \"flashmla_us\": null" -- cat "$work/b.json"
    expect "bench no JSON temporary left" 1 "" -- test -e "$work/b.json.tmp"
    if command -v python3 >/dev/null; then
        expect "bench JSON parses" 0 "" -- python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["ceilings"]; assert c["copy_tbps"] > 0 and len(d["rows"]) == 2 and d["rows"][1]["ragged"] and d["plan_ready"] is False and d["sustain_s"] == 0; assert all((r["sm_mhz"] is None) == (r["clock_limits"] is None) == (d["sm_max_mhz"] is None) for r in d["rows"]); assert all(r["sm_mhz"] is None or 0 < r["sm_mhz"] <= d["sm_max_mhz"] for r in d["rows"]); assert all(k in c for k in ("bf16_tflops", "fp8_tflops", "fp8_n64_mix_tflops", "fp8_n64_ss_tflops")); assert (c["fp8_tflops"] is None) == (c["fp8_n64_mix_tflops"] is None) == (c["fp8_n64_ss_tflops"] is None)' "$work/b.json"
    fi
    # --plan-ready on the Hopper FP8 path at a batch that runs persistent (with a plan)
    expect "bench plan-ready says so" 0 "^--plan-ready: each call reuses a plan made once" -- "$snapmla" bench specs/deepseek_v3_fp8_hopper.yaml --shapes 160x100 --replays 3 --plan-ready --json "$work/p.json"
    expect "bench plan-ready JSON" 0 "\"plan_ready\": true" -- cat "$work/p.json"
    expect "bench cold-l2 says so" 0 "^--cold-l2: L2 flushed before each call \\([0-9]+ MB written" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 2x100 --replays 3 --cold-l2 --json "$work/c.json"
    expect "bench cold-l2 JSON" 0 "\"cold_l2\": true" -- cat "$work/c.json"
    expect "bench warm JSON" 0 "\"cold_l2\": false" -- cat "$work/b.json"
    expect "bench flush-mb says so" 0 "^--flush-mb 256: 256 MB written before each call" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 2x100 --replays 3 --flush-mb 256 --json "$work/f.json"
    expect "bench flush-mb JSON" 0 "\"cold_l2\": true,.*\"flush_mb\": 256," -- bash -c "tr -d '\\n' < '$work/f.json'"
    expect "bench cold-l2 JSON has no flush size" 0 "\"flush_mb\": 0," -- cat "$work/c.json"
else
    expect "run without GPU" 0 "no CUDA (driver|GPU).*compiled" -- "$snapmla" run specs/deepseek_v3.yaml
    expect "bench without GPU" 1 "^snapmla: no CUDA (driver|GPU)" -- "$snapmla" bench specs/deepseek_v3.yaml
    expect "bench plan-ready is an option" 1 "^snapmla: no CUDA (driver|GPU)" -- "$snapmla" bench specs/deepseek_v3.yaml --plan-ready
    expect "bench cold-l2 is an option" 1 "^snapmla: no CUDA (driver|GPU)" -- "$snapmla" bench specs/deepseek_v3.yaml --cold-l2
    expect "bench sustain is an option" 1 "^snapmla: no CUDA (driver|GPU)" -- "$snapmla" bench specs/deepseek_v3.yaml --sustain 2
    expect "bench flush-mb is an option" 1 "^snapmla: no CUDA (driver|GPU)" -- "$snapmla" bench specs/deepseek_v3.yaml --flush-mb 8000
    expect "bench without GPU leaves no JSON" 1 "^snapmla: '$work/b.json' not written: the run did not finish$" -- "$snapmla" bench specs/deepseek_v3.yaml --shapes 8x100~ --json "$work/b.json"
    expect "bench without GPU: no JSON file" 0 "^0$" -- bash -c "find '$work' -maxdepth 1 -name 'b.json*' | wc -l"
fi

expect "cache clear" 0 "removed [0-9]+ files?" -- "$snapmla" cache clear
expect "cache empty" 0 "^0 entries" -- "$snapmla" cache ls

# tune: the compile report, resource rejections, shards, the plan; without a
# GPU --dry-run stops after the compile; on a GPU a small run end to end.
tune_spec=specs/deepseek_v3_tune.yaml
expect "tune --help" 0 "usage: snapmla tune" -- "$snapmla" tune --help
expect "tune compiles a sweep" 0 "^compiled 24 variants on 2 threads in [0-9.]+ s \([0-9.]+ variants/s\): 24 by NVRTC \([0-9.]+ s of NVRTC\), 0 cache hits, 0 failed" -- "$snapmla" tune "$tune_spec" --shapes 1/128x4096 -j 2 --dry-run -o "$work/t.yaml"
expect "tune from the cache" 0 "24 cache hits, 0 failed" -- "$snapmla" tune "$tune_spec" --shapes 1/128x4096 -j2 --dry-run -o "$work/t.yaml"
expect "tune dry run" 0 "^dry run: " -- "$snapmla" tune "$tune_spec" --shapes 1/128x4096 --dry-run -o "$work/t.yaml"
expect "tune plan" 0 "^plan: shard 0/1: 24 of 24 decode variants, 48 configs x 2 shapes; $work/t.measurements.tsv: 0 measurements and 0 checks already taken, 96 measurements to go" -- "$snapmla" tune "$tune_spec" --shapes 1/128x4096 --splits 0,8 --dry-run -o "$work/t.yaml"
expect "tune shard" 0 "^plan: shard 1/4: 6 of 24 decode variants" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --shard 1/4 --dry-run -o "$work/t.yaml"
printf 'name: t\nkernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {engine: mma_sync, q_rows: 16, kv_tokens: [64, 128], stages: [1, 2]}\n' > "$work/tune_big.yaml"
expect "tune rejects over the resources" 0 "  rejected t\.mla_decode\..*kv128q16s2w2.*: $work/tune_big.yaml:4:68: needs 334080 bytes of shared memory per CTA" -- "$snapmla" tune "$work/tune_big.yaml" --shapes 1x100 --dry-run -o "$work/big.yaml"
expect "tune needs shapes" 2 "^snapmla tune: need at least one SPEC and --shapes" -- "$snapmla" tune "$tune_spec"
expect "tune bad shapes" 2 "^snapmla tune: --shapes takes BATCHxSEQLEN" -- "$snapmla" tune "$tune_spec" --shapes 0x5
expect "tune repeated shape" 2 "^snapmla tune: --shapes: 8x4096 is given twice" -- "$snapmla" tune "$tune_spec" --shapes 8x4096,8x4096
expect "tune bad shard" 2 "^snapmla tune: --shard takes i/n" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --shard 2/2
expect "tune bad splits" 2 "^snapmla tune: --splits takes" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --splits 0,0
expect "tune bad spec" 2 "^snapmla: $work/bad.yaml:7:14: cache.page_size" -- "$snapmla" tune "$work/bad.yaml" --shapes 8x4096
printf 'measured\tx\t0\t8\t4096\t1\n' > "$work/bad.tsv"
expect "tune bad resume file" 2 "^snapmla: $work/bad.tsv:1: records before the device line$" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --shard 0/24 --resume "$work/bad.tsv" --dry-run
expect "tune checks its files before compiling" 2 "^snapmla: cannot write '$work/nodir/t.yaml': No such file or directory$" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --resume "$work/t2.tsv" -o "$work/nodir/t.yaml"
expect "tune checks its log before compiling" 2 "^snapmla: cannot write '$work': Is a directory$" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --resume "$work" -o "$work/t3.yaml"
if [[ -e /dev/nvidiactl ]]; then
    expect "tune on the GPU" 0 "^wrote $work/g.yaml: 1 entry" -- "$snapmla" tune "$tune_spec" --shapes 2x600 --shard 0/12 -o "$work/g.yaml"
    expect "tune resumes" 0 "2 measurements and 2 checks already taken, 0 measurements to go" -- "$snapmla" tune "$tune_spec" --shapes 2x600 --shard 0/12 -o "$work/g.yaml"
    expect "tune pick on the GPU's database" 0 "batch 2, context 600 .*tune\.mla_decode\..* \(tuned at 2, 513-1024" -- "$snapmla" tune pick "$work/g.yaml" "$tune_spec" --shapes 2x600
else
    expect "tune without GPU" 1 "^snapmla: no CUDA (driver|GPU).*: timing needs a GPU \(--dry-run compiles only\)$" -- "$snapmla" tune "$tune_spec" --shapes 8x4096 --shard 0/24 -o "$work/t.yaml"
fi

# tune merge and pick: databases written by hand, as two shards would.
v=tune.mla_decode.l512r64.h16q1c.bf16p64i
db_entry() {   # batch context variant us
    printf '  - arch: sm_90a\n    device: "NVIDIA H100 80GB HBM3"\n    family: l512r64.q1c.bf16p64i.bf16\n    rows: 16\n    batch: %s\n    context: %s\n    variant: %s\n    us: %s\n' "$@"
}
{ echo "version: 1"; echo "entries:"; db_entry 5-8 2049-4096 $v.kv16q16s1w2.auto64m128.sm_90a.bf16.mma 50; } > "$work/a.yaml"
{ echo "version: 1"; echo "entries:"; db_entry 5-8 2049-4096 $v.kv32q16s2w2.auto64m256.sm_90a.bf16.mma 40; db_entry 1 0-512 $v.kv16q16s2w2.auto64m128.sm_90a.bf16.mma 5; } > "$work/b.yaml"
expect "tune merge" 0 "^merged 2 files \(3 entries in all\) into $work/m.yaml: 2 entries, 1 conflict" -- "$snapmla" tune merge "$work/a.yaml" "$work/b.yaml" -o "$work/m.yaml"
expect "tune merge reports the conflict" 0 "^snapmla: merge: sm_90a 'NVIDIA H100 80GB HBM3' l512r64.q1c.bf16p64i.bf16 rows 16 batch 5-8 context 2049-4096: $work/a.yaml has .*kv16q16s1w2.* \(50.0 us\), $work/b.yaml has .*kv32q16s2w2.* \(40.0 us\); kept .*kv32q16s2w2" -- "$snapmla" tune merge "$work/a.yaml" "$work/b.yaml" -o "$work/m.yaml"
expect "merged winner and margin" 0 "variant: $v.kv32q16s2w2.auto64m256.sm_90a.bf16.mma
    splits: 0
    us: 40.000
    runner_up: $v.kv16q16s1w2.auto64m128.sm_90a.bf16.mma
    runner_up_splits: 0
    margin: 0.2500" -- cat "$work/m.yaml"
expect "tune pick: tuned bucket" 0 "^  batch 8, context 4096 \(buckets 5-8, 2049-4096\): $v.kv32q16s2w2.auto64m256.sm_90a.bf16.mma splits 0 \(tuned at 5-8, 2049-4096: 40.0 us\)$" -- "$snapmla" tune pick "$work/m.yaml" "$tune_spec" --shapes 8x4096,1x100,128x65536
expect "tune pick: nearest bucket" 0 "^  batch 128, context 65536 \(buckets 65-128, 32769-65536\): $v.kv32q16s2w2.* \(nearest tuned bucket 5-8, 2049-4096: 40.0 us\)$" -- "$snapmla" tune pick "$work/m.yaml" "$tune_spec" --shapes 8x4096,1x100,128x65536
expect "tune pick: another device" 0 "^  batch 8, context 4096 .*kv16q16s1w2.auto64m128.* splits 0 \(default: the database has no entry" -- "$snapmla" tune pick "$work/m.yaml" "$tune_spec" --shapes 8x4096 --device "NVIDIA A100-SXM4-80GB"
printf 'version: 1\nentries:\n  - arch: sm_100\n' > "$work/bad_db.yaml"
expect "tune merge bad database" 2 "^snapmla: $work/bad_db.yaml:3:11: entries\[0\].arch: 'sm_100' is not allowed; allowed: sm_80, sm_89, sm_90a$" -- "$snapmla" tune merge "$work/a.yaml" "$work/bad_db.yaml" -o "$work/m2.yaml"
expect "tune merge wrote nothing" 1 "" -- test -e "$work/m2.yaml"
expect "tune merge needs -o" 2 "^snapmla tune: merge: need at least one database and -o OUT.yaml" -- "$snapmla" tune merge "$work/a.yaml"
expect "tune pick needs shapes" 2 "^snapmla tune: pick: need DB.yaml, at least one SPEC and --shapes" -- "$snapmla" tune pick "$work/m.yaml" "$tune_spec"

# bench/ab_summary.sh: the device A/Bs' round lines to means and changes against the base
printf '%s\n' "base round 1 | h128q1c 16384:700.0 us; h16q1c 16384:330.0 us; " \
    "V round 1 | h128q1c 16384:650.0 us; h16q1c 16384:336.0 us; " \
    "base round 2 | h128q1c 16384:710.0 us; h16q1c 16384:330.0 us; " \
    "V round 2 | h128q1c 16384:660.0 us; " > "$work/rounds.txt"
expect "ab summary: means and changes" 0 "^V +\| 655\.0 \(-7\.1%\) +\| 336\.0 \(\+1\.8%\)" -- bash bench/ab_summary.sh "$work/rounds.txt"
expect "ab summary: the base as it is" 0 "^base +\| 705\.0 +\| 330\.0" -- bash bench/ab_summary.sh "$work/rounds.txt"
expect "ab summary: no round lines" 1 "^no round lines" -- bash bench/ab_summary.sh /dev/null
printf '%s\n' "| variant | batch | s_k | us |" \
    "| deepseek_v3_fp8_roles_hopper.mla_decode.l512r64.h128q1c.fp8tokp64p.kv64q64s4w16 | 128 | 16384 | 701.3 | 1.98 |" \
    "| mtp_bf16.mla_decode.l512r64.h128q2c.bf16p64i.kv64q64s2w8 | 128 | 8192 | 968.9 | 1.32 |" > "$work/bench.log"
expect "ab summary: round line from a bench log" 0 "^deepseek_v3_fp8_roles_hopper/h128q1c/b128 16384:701\.3 us; mtp_bf16/h128q2c/b128 8192:968\.9 us; $" -- bash bench/ab_summary.sh --line "$work/bench.log"

# bench/trace: the patch still matches the shipped templates (a copy of them), and the reader's sums
if command -v python3 >/dev/null; then
    for kind in roles bf16; do
        mkdir -p "$work/trace_$kind/templates"
        cp templates/decode_wgmma_fp8_roles.cu templates/decode_wgmma_bf16.cu templates/combine.cu \
            templates/decode_plan.cu "$work/trace_$kind/templates"
        kernel=$([[ $kind == roles ]] && echo decode_wgmma_fp8_roles.cu || echo decode_wgmma_bf16.cu)
        stamps=$([[ $kind == roles ]] && echo 17 || echo 8)   # each step's stamp (roles: the first quarter's by quarters only)
        expect "trace patch applies ($kind)" 0 "^$stamps 2 1$" -- bash -c "cd '$work/trace_$kind' &&
            python3 '$PWD/bench/trace/patch.py' $kind && echo \$(grep -c 'TR(' templates/$kernel) \
            \$(grep -c print_trace templates/decode_plan.cu) \$(grep -c print_trace templates/combine.cu)"
    done
    python3 -c 'print("TRACE tiles 100 rows 128")
for w in range(4):
    for t in range(63):
        if w >= 2 or t % 2 == w:   # score warpgroups on their own tiles; output warpgroups on every tile
            print("TR", w, t, *[t * 1000 + (500 if w >= 2 else 0) + 10 * e for e in range(10)])' > "$work/trace.log"
    expect "trace view: the tile period" 0 "tile period \(O0 sees P' of t, then of t\+1\): 1000$" -- \
        python3 bench/trace/view.py roles "$work/trace.log"
    expect "trace view: the score steps" 0 "S per own tile: full wait 10, .*; top to last 70$" -- \
        python3 bench/trace/view.py roles "$work/trace.log"
    expect "trace view: each output warpgroup apart" 0 "O1 per own tile: pfull wait 10, retire t-1 10," -- \
        python3 bench/trace/view.py roles "$work/trace.log"
    expect "trace view: the copier's steps (O0)" 0 "O0 per own tile: .*used wait 10, copy issue 30, look-up \+ tail -20;" -- \
        python3 bench/trace/view.py roles "$work/trace.log"
    expect "trace view: P' slot freed to the score warpgroup's wake" 0 "to S past its pempty wait \(t\): 1520$" -- \
        python3 bench/trace/view.py roles "$work/trace.log"
    expect "trace view: no trace lines" 1 "no TR lines" -- python3 bench/trace/view.py roles /dev/null
    # bench/ncu_segments.py: samples per segment between waits, on a made-up source-page export
    printf '%s\n' '"Kernel Name","k"' \
        '"Address","Source","Warp Stall Sampling (All Samples)","Instructions Executed","stall_barrier","stall_wait"' \
        '"0x0000","LDG.E R2, desc[UR4][R2.64]","100","1","0","60"' \
        '"0x0010","FMUL R1, R1, R2","10","100","0","10"' \
        '"0x0020","BAR.SYNC.DEFER_BLOCKING 0x1, 0x100","5","100","0","5"' \
        '"0x0030","LDS R3, [R4]","40","100","40","0"' \
        '"0x0040","HGMMA.64x64x16.F32.BF16 R8, gdesc[UR8], R8, gsb0","20","100","0","20"' \
        '"0x0050","WARPGROUP.DEPBAR.LE gsb0, 0x0","30","100","30","0"' \
        '"0x0060","@!P0 FADD R1, R1, R3","5","100","0","5"' > "$work/sass.csv"
    expect "ncu segments: the hot code's share" 0 "^hot code 110 samples \(52\.4%\), the rest 100$" -- \
        python3 bench/ncu_segments.py "$work/sass.csv"
    expect "ncu segments: a barrier's wait in the segment after it" 0 "^  0x0030 +60 +28\.57% +2  HGMMA" -- \
        python3 bench/ncu_segments.py "$work/sass.csv"
    expect "ncu segments: per opcode, predicated too" 0 "^  FADD +2\.4%  wait 2\.4$" -- \
        python3 bench/ncu_segments.py "$work/sass.csv"
    expect "ncu segments: samples without a reason column" 0 "^  LDG +47\.6%  wait 28\.6, unlisted 19\.0$" -- \
        python3 bench/ncu_segments.py "$work/sass.csv"
    expect "ncu segments: the rest's runs outside the hot code" 0 "^  0x0000\.\.0x0000 +100 +47\.62% +1 x1  0x0000 100 LDG" -- \
        python3 bench/ncu_segments.py "$work/sass.csv"
    expect "ncu segments: the rest's floor" 0 "^the rest, runs outside the hot code with at least 101 samples" -- \
        python3 bench/ncu_segments.py "$work/sass.csv" --rest-min 101
    expect "ncu segments: not an export" 1 "no header row with Address and Source" -- \
        python3 bench/ncu_segments.py /dev/null
    # host model of the BF16 pair schedule's hand-offs (also with a planted bug: a refill before its reader)
    expect "pair protocol model" 0 "no deadlock, no race$" -- python3 bench/pair_model/protocol.py
    expect "pair protocol model catches an early refill" 1 "^FAIL " -- env MUT=a python3 bench/pair_model/protocol.py
    expect "pair protocol model catches an early next-item copy" 1 "^FAIL " -- env MUT=g python3 bench/pair_model/protocol.py
    # bench/trace/items.py: the work-item stamps still match the shipped templates; the reader's sums
    mkdir -p "$work/items/templates"
    cp templates/decode_wgmma_kernel.cu templates/decode_wgmma_bf16.cu templates/decode_wgmma_bf16_pair.cu \
        templates/decode_wgmma_fp8_roles.cu templates/combine.cu templates/decode_plan.cu "$work/items/templates"
    expect "item stamps apply" 0 "^4 3 3 6 2 1$" -- bash -c "python3 '$PWD/bench/trace/items.py' '$work/items' >/dev/null &&
        cd '$work/items/templates' && echo \$(grep -c 'IT_STAMP(\\|IT_ENTER()\\|IT_EXIT()' decode_wgmma_kernel.cu decode_wgmma_bf16.cu \
        decode_wgmma_bf16_pair.cu decode_wgmma_fp8_roles.cu | cut -d: -f2) \$(grep -c print_trace decode_plan.cu) \
        \$(grep -c print_trace combine.cu)"
    python3 -c 'print("ITRACE grid 2")
for c in range(2):   # 2 GHz: clock64 = 2 x ns; items 10 us apart: prologue 1 us, loop 7, epilogue 1 (stores at 0.5)
    print("KE", c, 1000, 21000, 2000, 42000, 2)
    for i in range(2):
        t = 1000 + 10000 * i
        ev = [t, t + 1000, t + 8000, t + 9000, t + 8500]
        print("IT", c, i, 16, *[v for e in ev for v in (e, 2 * e)])' > "$work/items.log"
    expect "item view: the clock" 0 "SM clock \(clock64 / globaltimer per CTA\): mean 2000 MHz" -- \
        python3 bench/trace/view_items.py "$work/items.log"
    expect "item view: the span" 0 "^kernel span 20.0 us over 2 busy CTAs" -- python3 bench/trace/view_items.py "$work/items.log"
    expect "item view: the loop" 0 "^  loop: mean 7.00 us" -- python3 bench/trace/view_items.py "$work/items.log"
    expect "item view: the loop per tile" 0 "^  loop per tile: mean 0.44 us" -- python3 bench/trace/view_items.py "$work/items.log"
    expect "item view: the stores" 0 "^    stores to item end: mean 0.50 us" -- python3 bench/trace/view_items.py "$work/items.log"
    expect "item view: between items" 0 "^  between items: mean 1.00 us.*\(n 2\)" -- python3 bench/trace/view_items.py "$work/items.log"
    expect "item view: no stamps" 1 "no KE lines" -- python3 bench/trace/view_items.py /dev/null
    # traces with each CTA's SM (%smid, KE's last field): the CTAs' loop rates ranked by SM
    python3 -c 'print("ITRACE grid 2")
for c in range(2):   # CTA 1 (SM 8) loops 2 us longer an item than CTA 0 (SM 7)
    print("KE", c, 1000, 21000, 2000, 42000, 2, 7 + c)
    for i in range(2):
        t = 1000 + 10000 * i
        ev = [t, t + 1000, t + 8000 + 2000 * c, t + 9000, t + 8500]
        print("IT", c, i, 16, *[v for e in ev for v in (e, 2 * e)])' > "$work/items_sm.log"
    expect "item view: loop per tile by SM" 0 "^  loop per tile by SM, fastest: SM 7 0.438, SM 8 0.562" -- \
        python3 bench/trace/view_items.py "$work/items_sm.log"
    expect "item view: no SM, no ranking" 1 "^0$" -- bash -c "python3 bench/trace/view_items.py '$work/items.log' | grep -c 'by SM'"
    # bench/probe: each leave-one-stage-out probe still edits the shipped roles template
    mkdir -p "$work/probe/templates"
    for probe in norope halfqk nochain nopv halfpv novt nocopy nocopy_noused nocopy+norope onewait qkregs pairtiles pairsoft softhalf nopstore paircopy \
        smemload8 smemload16 smembc8 smembc16 lat8s2 lat8o lat8opre nofence l2page \
        pvsmem regs96 pvsmem+regs96+kfrag+colsoft \
        qkregs+pairtiles+paircopy+halfpv+novt+nocopy pairsoft+paircopy+halfpv+novt+nocopy; do
        expect "probe applies ($probe)" 0 "^edited$" -- bash -c "cd '$work/probe' &&
            cp '$PWD/templates/decode_wgmma_fp8_roles.cu' templates/ &&
            python3 '$PWD/bench/probe/patch.py' $probe &&
            ! cmp -s '$PWD/templates/decode_wgmma_fp8_roles.cu' templates/decode_wgmma_fp8_roles.cu && echo edited"
    done
    # bench/variants: each prepared variant still edits the shipped roles template
    for v in chain_ilp chain_ilp+ldsm_all; do
        expect "variant applies ($v)" 0 "^edited$" -- bash -c "python3 bench/variants/patch.py $v \
            templates/decode_wgmma_fp8_roles.cu '$work/roles_$v.cu' &&
            ! cmp -s templates/decode_wgmma_fp8_roles.cu '$work/roles_$v.cu' && echo edited"
    done
    # ... and builds, its decode kernels without spills or performance-loss notes (NVRTC, in a copy of the tree)
    sum_tree() { cat templates/* gen/* | md5sum; }
    before=$(sum_tree)
    expect "variants build without spills or notes" 0 "^== ldsm_all\+chain_ilp$" -- env TMPDIR="$work" \
        bench/variants/inspect.sh chain_ilp pslots4 ldsm_all combine_lse ldsm_all+chain_ilp polyexp lateref
    # ab.sh's CPU half (trees and kernels in parallel); without a GPU its checks fail and nothing is timed
    if [[ ! -e /dev/nvidiactl ]]; then
        expect "variants: ab.sh prepares, then times only what passes" 0 "^chain_ilp: not timed \\(a check failed or hung\\)$" -- \
            env TMPDIR="$work" OUT="$work/ab" ROUNDS=1 bench/variants/ab.sh base chain_ilp
        expect "variants: ab.sh's trees and kernels" 0 "^built 2 variants: 2 compiled" -- cat "$work/ab/builds.log"
    fi
    expect "variants: the checkout untouched" 0 "^same$" -- bash -c "[[ '$before' == '$(sum_tree)' ]] && echo same"
    expect "variants: the V^T fragment orders (emulated)" 0 "^ldmatrix, latent 256: 0 wrong fragment bytes or channel maps; at most 1 access" -- \
        python3 bench/variants/fragments.py
    expect "variants: inspect.sh, an unknown variant" 1 "unknown variant nosuch" -- env TMPDIR="$work" \
        bench/variants/inspect.sh nosuch
    expect "variants: inspect.sh needs a name" 2 "^usage: bench/variants/inspect.sh VARIANT" -- bench/variants/inspect.sh
    expect "variant applies (pslots4: the host's size and the shared parts)" 0 "^edited$" -- bash -c "
        python3 bench/variants/patch.py pslots4 templates/decode_wgmma_fp8_roles.cu '$work/roles_pslots4.cu' &&
            ! cmp -s gen/resources.c '$work/roles_pslots4.tree/gen/resources.c' &&
            ! cmp -s templates/wgmma_fp8_parts.cuh '$work/roles_pslots4.tree/templates/wgmma_fp8_parts.cuh' &&
            echo edited"
    expect "variant applies (ldsm_all: the shared parts)" 0 "^edited$" -- bash -c "
        python3 bench/variants/patch.py ldsm_all templates/decode_wgmma_fp8_roles.cu '$work/roles_ldsm_all.cu' &&
            grep -q 'VT_LDMATRIX = true;' '$work/roles_ldsm_all.tree/templates/wgmma_fp8_parts.cuh' && echo edited"
    expect "variant applies (combine_lse: the combine only)" 0 "^edited$" -- bash -c "
        python3 bench/variants/patch.py combine_lse templates/decode_wgmma_fp8_roles.cu '$work/roles_combine_lse.cu' &&
            cmp -s templates/decode_wgmma_fp8_roles.cu '$work/roles_combine_lse.cu' &&
            ! cmp -s templates/combine.cu '$work/roles_combine_lse.tree/templates/combine.cu' && echo edited"
    expect "variant unknown" 1 "unknown variant nosuch" -- python3 bench/variants/patch.py nosuch \
        templates/decode_wgmma_fp8_roles.cu "$work/roles_nosuch.cu"
fi

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
