"""One decode call's inputs for the Python probes (device; torch, the Python API)

Both probes time batch-128 calls of a spec at given heads, query tokens and
context, through `snapmla.Decoder`: this builds the decoder, its paged
cache filled through the append kernel with random BF16 tokens, Q and the
cache lengths. Imported by clocks.py and l2_resident.py (run from the
repository root: `PYTHONPATH=python python3 bench/probe/NAME.py`).
"""
import torch


def parse_case(case):
    """SPEC:HEADS:Q_LEN:S_K -> (spec, heads, q_len, s_k)."""
    spec, heads, q_len, s_k = case.rsplit(":", 3)
    return spec, int(heads), int(q_len), int(s_k)


def decode_inputs(spec, heads, q_len, s_k, batch, same_tokens=False):
    """(dec, cache, q, lens, pages): `batch` requests of s_k tokens on pages
    0 .. batch * pages - 1, in request order. same_tokens: every request's
    pages hold copies of the first request's tokens (so any request may
    read any other's pages and get the same output); else all random."""
    import snapmla   # (loads libsnapmla.so: `make`, or SNAPMLA_LIB)

    dec = snapmla.Decoder(spec, q_heads=heads, q_len=q_len)
    if s_k % dec.page_size:
        raise ValueError(f"s_k {s_k} is not a multiple of the page size {dec.page_size}")
    pages = s_k // dec.page_size
    cache = dec.alloc_cache(batch * pages)
    tokens = (1 if same_tokens else batch) * pages * dec.page_size
    latent = torch.randn(tokens, dec.latent_dim, dtype=torch.bfloat16, device="cuda")
    rope = torch.randn(tokens, dec.rope_dim, dtype=torch.bfloat16, device="cuda")
    snapmla.append_kv(cache, latent, rope, torch.arange(tokens, dtype=torch.int64, device="cuda"), dec)
    del latent, rope
    if same_tokens:
        cache[pages:] = cache[:pages].repeat(batch - 1, 1)
    q = torch.randn(batch, q_len, heads, dec.latent_dim + dec.rope_dim, dtype=torch.bfloat16, device="cuda")
    lens = torch.full((batch,), s_k, dtype=torch.int32, device="cuda")
    return dec, cache, q, lens, pages
