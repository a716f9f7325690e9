"""snapmla's Python API against a float64 PyTorch reference: fresh random data,
NaN in every unused cache byte, random block tables, ragged cache lengths
including 0, 1 and the page edges; FlashMLA-signature calls; CUDA-graph replay
with changing lengths; argument errors."""

import os

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

import snapmla  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, "specs", "deepseek_v3.yaml")
SEED = int(os.environ.get("SNAPMLA_TEST_SEED", "0")) or int.from_bytes(os.urandom(4), "little")
print(f"python tests: seed {SEED} (replay with SNAPMLA_TEST_SEED={SEED})")
dev = torch.device("cuda")


def dequantize(dec, cache, pages, slots):
    """float64 [n, latent+rope] of the tokens at (pages, slots), read byte by
    byte through cache_format(): the reference sees what the format stores."""
    fmt = snapmla.cache_format(dec)
    L, R = dec.latent_dim, dec.rope_dim
    flat = cache.view(torch.uint8).reshape(cache.shape[0], -1)

    def part(name, count):
        offset, stride, dtype = fmt["parts"][name]
        size = torch.tensor([], dtype=dtype).element_size()
        start = offset + slots * stride
        idx = start[:, None] + torch.arange(count * size, device=cache.device)[None, :]
        raw = flat[pages[:, None], idx].contiguous()
        return raw.view(dtype).to(torch.float64)

    latent, rope = part("latent", L), part("rope", R)
    if fmt["format"] == "fp8_per_token":
        latent = latent * part("scale", 1)
    elif fmt["format"] == "fp8_per_tile128":
        latent = latent * part("scale", L // 128).repeat_interleave(128, dim=1)
    return torch.cat([latent, rope], dim=1)


def quantize_q_like_fp8_kernel(q, L):
    """The FP8 path's Q: latent part to e4m3 with one scale per row (amax /
    448 rounded up to a power of two), in the kernel's float32 operations;
    RoPE part as given (the kernel divides it by the scale, exactly)."""
    x = q.float()
    amax = x[..., :L].abs().amax(-1, keepdim=True)
    scale = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    mant, expo = torch.frexp(scale)   # scale = mant 2^expo, mant in [0.5, 1)
    scale = torch.ldexp(torch.ones_like(scale), torch.where(mant == 0.5, expo - 1, expo))
    inv = 1.0 / scale
    codes = (x[..., :L] * inv).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
    latent = codes.double() * scale.double()
    return torch.cat([latent, q[..., L:].double()], dim=-1)


def reference(dec, q, cache, table, seqlens, causal=True, fp8_q=False):
    b, ql, h, W = q.shape
    L = dec.latent_dim
    if fp8_q:
        q = quantize_q_like_fp8_kernel(q, L)
    out = torch.zeros(b, ql, h, L, dtype=torch.float64, device=dev)
    lse = torch.full((b, ql, h), float("inf"), dtype=torch.float64, device=dev)
    magnitude = torch.zeros(b, ql, h, dtype=torch.float64, device=dev)
    for i in range(b):
        n = int(seqlens[i])
        if n == 0:
            continue
        t = torch.arange(n, device=dev)
        kv = dequantize(dec, cache, table[i, t // dec.page_size].long(), t % dec.page_size)
        s = torch.einsum("qhc,tc->qht", q[i].double(), kv) * W ** -0.5
        size = torch.einsum("qhc,tc->qht", q[i].double().abs(), kv.abs()) * W ** -0.5
        if causal:
            pos = n - ql + torch.arange(ql, device=dev)
            s = s.masked_fill(t[None, None, :] > pos[:, None, None], float("-inf"))
            size = size.masked_fill(t[None, None, :] > pos[:, None, None], 0.0)
        magnitude[i] = size.amax(-1)
        m = s.amax(-1, keepdim=True)
        seen = torch.isfinite(m)
        p = torch.where(seen, torch.exp(s - m), torch.zeros_like(s))
        l = p.sum(-1, keepdim=True)
        out[i] = torch.where(seen, (p / l) @ kv[:, :L], torch.zeros_like(out[i]))
        lse[i] = torch.where(seen[..., 0], (m + torch.log(l))[..., 0], lse[i])
    if fp8_q:
        return out, lse, magnitude
    return out, lse


def make_problem(dec, seqlens, gen):
    """A NaN-filled cache, a random block table and random tokens appended."""
    P = dec.page_size
    b = len(seqlens)
    per = [max(1, -(-n // P)) for n in seqlens]
    pages = sum(per) + 3
    order = torch.randperm(pages, generator=gen).to(dev)
    table = torch.full((b, max(per)), -1, dtype=torch.int32, device=dev)
    used = 0
    for i, k in enumerate(per):
        table[i, :k] = order[used:used + k].int()
        used += k
    cache = dec.alloc_cache(pages)
    for i, n in enumerate(seqlens):
        if n == 0:
            continue
        t = torch.arange(n, device=dev)
        slots = table[i, t // P].long() * P + t % P
        size = torch.exp(0.5 * torch.randn(n, 1, generator=gen)).to(dev)
        latent = (torch.randn(n, dec.latent_dim, generator=gen).to(dev) * size).bfloat16()
        rope = torch.randn(n, dec.rope_dim, generator=gen).to(dev).bfloat16()
        snapmla.append_kv(cache, latent, rope, slots, dec)
    q = torch.randn(b, dec.q_len, dec.q_heads, dec.latent_dim + dec.rope_dim, generator=gen)
    return q.to(dev).bfloat16(), cache, table, torch.tensor(seqlens, dtype=torch.int32, device=dev)


def close(out, lse, ref_out, ref_lse, tol=5e-3, lse_tol=1e-4):
    err = (out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isinf(lse), ~finite), "empty rows must have lse +inf and only they"
    lse_tol = torch.as_tensor(lse_tol, dtype=torch.float64, device=dev).expand_as(ref_lse)
    lse_err = (lse.double()[finite] - ref_lse[finite]).abs()
    ratio = (lse_err / lse_tol[finite]).max().item() if finite.any() else 0.0
    assert not torch.isnan(out).any(), "NaN in the output"
    assert err < tol and ratio <= 1.0, f"rel_l2 {err:.2e} (tol {tol}), lse error / tolerance {ratio:.2f}"
    return err


CASES = [
    dict(format="bf16", engine="mma_sync", q_heads=128, q_len=1, page_size=64, q_rows=64, kv_tokens=32),
    dict(format="fp8_per_token", engine="mma_sync", q_heads=16, q_len=2, page_size=16, q_rows=16),
    dict(format="fp8_per_tile128", engine="simt", q_heads=3, q_len=1, page_size=64),
    dict(format="bf16", engine="simt", q_heads=5, q_len=3, page_size=1, kv_tokens=16),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['format']}-{c['engine']}-h{c['q_heads']}q{c['q_len']}")
def test_decode_matches_reference(case):
    gen = torch.Generator().manual_seed(SEED)
    dec = snapmla.Decoder(SPEC, **case)
    P = dec.page_size
    seqlens = [0, 1, max(P - 1, 2), P, P + 1, 300, 1027]
    q, cache, table, lens = make_problem(dec, seqlens, gen)
    out = torch.full((len(seqlens), dec.q_len, dec.q_heads, dec.latent_dim), float("nan"),
                     dtype=torch.bfloat16, device=dev)
    lse = torch.full(out.shape[:3], float("nan"), device=dev)
    dec(q, cache, table, lens, out=out, lse=lse)
    ref_out, ref_lse = reference(dec, q, cache, table, lens)
    close(out, lse, ref_out, ref_lse)


@pytest.mark.skipif(torch.cuda.get_device_capability() != (9, 0), reason="the FP8 wgmma path is sm_90a")
@pytest.mark.parametrize("fmt, warps", [("fp8_per_token", 8), ("fp8_per_tile128", 8), ("fp8_per_token", 16),
                                         ("fp8_per_tile128", 16)])
def test_fp8_tensor_core_path(fmt, warps):
    """The Hopper FP8 path on both FP8 caches (SnapMLA's per-token one and
    FlashMLA's 656-byte one), in both schedules (role warpgroups: warps 16,
    which read the 656-byte cache at each token's largest scale): judged
    against a reference that quantizes Q as the kernel does, at the bounds of
    reference/gpu_check.h (P's e4m3 rounding)."""
    gen = torch.Generator().manual_seed(SEED + 4)
    dec = snapmla.Decoder(SPEC, format=fmt, engine="wgmma", compute="fp8",
                          q_heads=16, q_len=2, page_size=32, warps=warps)
    seqlens = [0, 1, 31, 32, 33, 700, 2050]
    q, cache, table, lens = make_problem(dec, seqlens, gen)
    out, lse = dec(q, cache, table, lens)
    ref_out, ref_lse, magnitude = reference(dec, q, cache, table, lens, fp8_q=True)
    # per row: 2e-3 + 2^-9 * scale * max_t sum_c |q_c k_c| (the tensor cores'
    # accumulation of e4m3 products; reference/gpu_check.h)
    close(out, lse, ref_out, ref_lse, tol=3e-2, lse_tol=2e-3 + magnitude / 512)


@pytest.mark.skipif(torch.cuda.get_device_capability() != (9, 0), reason="the wgmma paths are sm_90a")
def test_bf16_tensor_core_path():
    """The Hopper BF16 path on FlashMLA's dense layout, 128 heads (two row
    blocks): P is BF16 in the PV product, so the mma_sync engine's bound
    (5e-3 against the unrounded reference)."""
    gen = torch.Generator().manual_seed(SEED + 5)
    dec = snapmla.Decoder(SPEC, format="bf16", engine="wgmma", compute="bf16", q_heads=128, q_len=1,
                          page_size=64)
    seqlens = [0, 1, 63, 64, 65, 700, 2050]
    q, cache, table, lens = make_problem(dec, seqlens, gen)
    out, lse = dec(q, cache, table, lens)
    ref_out, ref_lse = reference(dec, q, cache, table, lens)
    close(out, lse, ref_out, ref_lse)


@pytest.mark.skipif(torch.cuda.get_device_capability() != (9, 0), reason="the wgmma paths are sm_90a")
def test_plan_reused_by_the_next_layer():
    """Two layers of one step on the FP8 path, 140 requests (a persistent
    launch with its plan): the second reuses the first's plan (plan_ready)
    on new queries; its output, poisoned first, must match the reference."""
    gen = torch.Generator().manual_seed(SEED + 6)
    dec = snapmla.Decoder(SPEC, format="fp8_per_token", engine="wgmma", compute="fp8", q_heads=64, q_len=1,
                          page_size=64)
    seqlens = [int(x) for x in torch.randint(0, 200, (140,), generator=gen)]
    seqlens[:4] = [0, 1, 64, 65]
    q, cache, table, lens = make_problem(dec, seqlens, gen)
    workspace = dec.workspace(len(seqlens), dev)
    dec(q, cache, table, lens, workspace=workspace)   # layer 0 makes the plan
    q2 = (torch.randn(q.shape, generator=gen) * 2).to(torch.bfloat16).to(dev)
    out = torch.full((len(seqlens), 1, 64, 512), float("nan"), dtype=torch.bfloat16, device=dev)
    out, lse = dec(q2, cache, table, lens, out=out, workspace=workspace, plan_ready=True)
    ref_out, ref_lse, magnitude = reference(dec, q2, cache, table, lens, fp8_q=True)
    close(out, lse, ref_out, ref_lse, tol=3e-2, lse_tol=2e-3 + magnitude / 512)


def test_flashmla_signature_bf16_and_fp8():
    gen = torch.Generator().manual_seed(SEED + 1)
    b, h, P = 4, 16, 64
    seqlens = [1, 64, 200, 513]
    meta, splits = snapmla.get_mla_metadata(torch.tensor(seqlens, dtype=torch.int32, device=dev), 1 * h, 1)
    for fp8 in (False, True):
        dec = snapmla.Decoder(SPEC, q_heads=h, format="fp8_per_tile128" if fp8 else "bf16", page_size=P)
        q, cache, table, lens = make_problem(dec, seqlens, gen)
        width = 656 if fp8 else 576
        if fp8:
            k_cache = cache.view(cache.shape[0], P, 1, width)
        else:
            k_cache = cache.view(torch.bfloat16).view(cache.shape[0], P, 1, width)
        out, lse = snapmla.flash_mla_with_kvcache(q, k_cache, table, lens, 512, meta, splits,
                                                  causal=True, is_fp8_kvcache=fp8)
        assert out.shape == (b, 1, h, 512) and lse.shape == (b, h, 1)
        ref_out, ref_lse = reference(dec, q, cache, table, lens)
        close(out, lse.transpose(1, 2), ref_out, ref_lse)


def test_graph_replay_with_changing_lengths():
    gen = torch.Generator().manual_seed(SEED + 2)
    dec = snapmla.Decoder(SPEC, q_heads=16, q_len=2, engine="mma_sync", q_rows=32, kv_tokens=32)
    most = [3000, 65, 1, 700]
    q, cache, table, lens = make_problem(dec, most, gen)
    out = torch.empty(4, 2, 16, 512, dtype=torch.bfloat16, device=dev)
    lse = torch.empty(4, 2, 16, device=dev)
    workspace = dec.workspace(4, dev)
    dec(q, cache, table, lens, out=out, lse=lse, workspace=workspace)   # compile + warm up
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        dec(q, cache, table, lens, out=out, lse=lse, workspace=workspace)
    for lengths in ([3000, 65, 1, 700], [1500, 0, 1, 64], [2, 65, 0, 699]):
        lens.copy_(torch.tensor(lengths, dtype=torch.int32))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        ref_out, ref_lse = reference(dec, q, cache, table, lens)
        close(out, lse, ref_out, ref_lse)


def test_bad_arguments_are_named():
    dec = snapmla.Decoder(SPEC, q_heads=16)
    gen = torch.Generator().manual_seed(SEED + 3)
    q, cache, table, lens = make_problem(dec, [10, 200], gen)
    with pytest.raises(ValueError, match="q must be torch.bfloat16"):
        dec(q.float(), cache, table, lens)
    with pytest.raises(ValueError, match=r"q must have shape \(2, 1, 16, 576\)"):
        dec(q[:, :, :8].contiguous(), cache, table, lens)
    with pytest.raises(ValueError, match="cache_seqlens must be torch.int32"):
        dec(q, cache, table, lens.long())
    with pytest.raises(ValueError, match="block_table must be contiguous"):
        dec(q, cache, table.t().contiguous().t(), lens)
    with pytest.raises(ValueError, match="unknown override 'q_head'"):
        snapmla.Decoder(SPEC, q_head=16)
    with pytest.raises(snapmla.SnapmlaError, match=r"cache.page_size: '48' is not allowed"):
        snapmla.Decoder(SPEC, page_size=48)


def test_a_spilling_variant_warns_when_compiled(tmp_path, monkeypatch):
    """The library's warning reaches Python as a SnapmlaWarning: mma_sync at
    latent 1024 holds 256 accumulators per thread, more than the registers."""
    monkeypatch.setenv("SNAPMLA_CACHE_DIR", str(tmp_path))   # compiled now, not served from a cache
    monkeypatch.setattr(snapmla, "_context", type(snapmla._context)())   # a fresh context reads it
    dec = snapmla.Decoder("kernel: mla_decode\nmodel: {latent_dim: 1024, rope_dim: 64, q_heads: 16}\n"
                          "tile: {engine: mma_sync, q_rows: 16, kv_tokens: 32}\n")
    with pytest.warns(snapmla.SnapmlaWarning, match="snapmla_decode_split spills"):
        dec.kernel()
