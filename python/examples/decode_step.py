"""One DeepSeek-V3 decode step (128 heads) from an FP8 cache with snapmla:
allocate the paged cache, append tokens, decode, compare with PyTorch, and time
snapmla FP8 against snapmla BF16.  Run from the repository after `make`:
    PYTHONPATH=python python3 python/examples/decode_step.py
"""
import torch

import snapmla

SPEC = "specs/deepseek_v3.yaml"
batch, context, page = 8, 4096, 64
torch.manual_seed(0)

for fmt in ("bf16", "fp8_per_token"):
    dec = snapmla.Decoder(SPEC, format=fmt, engine="mma_sync", q_rows=64, kv_tokens=32)
    pages = batch * context // page
    cache = dec.alloc_cache(pages)                                   # uint8 [pages, page_bytes]
    slots = torch.arange(batch * context, device="cuda")             # request b owns pages b*64..
    latent = torch.randn(batch * context, 512, device="cuda").bfloat16()
    rope = torch.randn(batch * context, 64, device="cuda").bfloat16()
    snapmla.append_kv(cache, latent, rope, slots, dec)               # quantizes for FP8
    table = torch.arange(pages, device="cuda", dtype=torch.int32).view(batch, -1)
    lens = torch.full((batch,), context, dtype=torch.int32, device="cuda")
    q = torch.randn(batch, 1, 128, 576, device="cuda").bfloat16()
    out, lse = dec(q, cache, table, lens)

    # PyTorch reference on the unquantized tokens
    k = torch.cat([latent, rope], 1).view(batch, context, 576).double()
    s = torch.einsum("bqhc,btc->bqht", q.double(), k) / 576 ** 0.5
    ref = torch.einsum("bqht,btc->bqhc", s.softmax(-1), k[..., :512])
    err = ((out.double() - ref).norm() / ref.norm()).item()

    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        dec(q, cache, table, lens, out=out, lse=lse)
    start.record()
    for _ in range(20):
        dec(q, cache, table, lens, out=out, lse=lse)
    stop.record()
    torch.cuda.synchronize()
    print(f"{fmt:>14}: {start.elapsed_time(stop) / 20 * 1e3:8.1f} us per call, "
          f"relative error vs PyTorch on the BF16 tokens {err:.2e}")
