"""How much of a decode's time is memory? (device; Python API, torch)

Times the same decode call twice: every request reading its own pages (the
cache far larger than L2, as in `snapmla bench`), and every request's block
table pointing at the first request's pages (about 10-19 MB at 16K tokens:
L2-resident). The pages hold the same tokens, so the outputs must be equal;
the probe says so. A kernel whose time barely moves when its reads come from
L2 is bound on chip (tensor pipe, shared memory, its own dependencies), not
by HBM bandwidth or latency.

    PYTHONPATH=python python3 bench/probe/l2_resident.py [SPEC:HEADS:Q_LEN:S_K ...]

Per case: five interleaved rounds of 20 back-to-back calls per table
between two CUDA events (after 3 warm-up calls), the median round's mean
per call; launches and the plan kernel included, so the absolute times
sit above `snapmla bench`'s graph replays: compare the two columns of one
line.
"""
import sys

try:
    import torch
except ImportError:   # a probe of the GPU: nothing to do without torch
    torch = None

DEFAULT_CASES = [
    "specs/deepseek_v3_fp8_roles_hopper.yaml:128:1:16384",
    "specs/deepseek_v3_fp8_roles_hopper.yaml:128:1:4096",
    "specs/deepseek_v3_fp8_roles_hopper.yaml:64:1:4096",
    "specs/deepseek_v3_bf16_hopper.yaml:128:1:16384",
    "bench/mtp_bf16.yaml:128:2:8192",
]
BATCH, CALLS, ROUNDS = 128, 20, 5


def per_call_us(calls):
    """Median over ROUNDS of the mean time of CALLS back-to-back calls (the GPU kept busy)."""
    results = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():   # interleaved: drift hits both alike
            for _ in range(3):
                call()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(CALLS):
                call()
            end.record()
            torch.cuda.synchronize()
            results[name].append(start.elapsed_time(end) * 1000 / CALLS)
    return {name: sorted(t)[len(t) // 2] for name, t in results.items()}


def probe(spec, heads, q_len, s_k):
    from decode_inputs import decode_inputs

    # every request: the same tokens, on its own pages
    dec, cache, q, lens, pages = decode_inputs(spec, heads, q_len, s_k, BATCH, same_tokens=True)
    own = torch.arange(BATCH * pages, dtype=torch.int32, device="cuda").view(BATCH, pages)
    shared = torch.arange(pages, dtype=torch.int32, device="cuda").repeat(BATCH, 1)
    outs = {}
    calls = {}
    for name, table in (("own", own), ("shared", shared)):
        out, lse = dec(q, cache, table, lens)
        outs[name] = out.float().clone()
        calls[name] = (lambda t=table, o=out, l=lse: dec(q, cache, t, lens, out=o, lse=l))
    times = per_call_us(calls)
    t_own, t_shared = times["own"], times["shared"]
    same = torch.equal(outs["own"], outs["shared"])
    print(f"{spec} h{heads} q_len {q_len} s_k {s_k} b{BATCH}: own pages {t_own:.1f} us, "
          f"shared pages (L2-resident) {t_shared:.1f} us ({(t_shared / t_own - 1) * 100:+.1f}%), "
          f"outputs equal: {same}", flush=True)
    return same


def main(argv):
    if torch is None or not torch.cuda.is_available():
        print("l2_resident: needs torch with a CUDA device; nothing timed")
        return 0
    ok = True
    from decode_inputs import parse_case

    for case in argv or DEFAULT_CASES:
        ok &= probe(*parse_case(case))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
