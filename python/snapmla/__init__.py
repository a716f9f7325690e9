"""snapmla for PyTorch: MLA decode kernels generated from YAML specs, compiled
on first use through NVRTC and cached, launched on the current CUDA stream.

    dec = snapmla.Decoder("specs/deepseek_v3.yaml", format="fp8_per_token", engine="mma_sync")
    cache = dec.alloc_cache(num_pages)                   # torch.uint8 [pages, page_bytes]
    snapmla.append_kv(cache, latent, rope, slot_mapping, dec)
    out, lse = dec(q, cache, block_table, cache_seqlens)

FlashMLA's call (`get_mla_metadata`, `flash_mla_with_kvcache`) is mirrored for
the BF16 cache and FlashMLA's 656-byte FP8 cache. Argument problems raise
ValueError naming the argument; library failures raise SnapmlaError; the
library's warnings (a variant compiled to a kernel that spills, a corrupt
cache entry rebuilt) are issued as SnapmlaWarning.
"""

import ctypes
from typing import Dict, Optional, Tuple

import torch

from ._lib import (AppendArgs, DecodeArgs, Error, Options, SnapmlaError, SnapmlaWarning, Spec,
                   Variant, check, lib, log_callback)

__all__ = ["Decoder", "append_kv", "cache_format", "get_mla_metadata", "flash_mla_with_kvcache",
           "SnapmlaError", "SnapmlaWarning"]

_SECTIONS = {
    "latent_dim": "model", "rope_dim": "model", "q_heads": "model", "q_len": "model",
    "causal": "model", "format": "cache", "page_size": "cache", "rope_layout": "cache",
    "kv_tokens": "tile", "q_rows": "tile", "stages": "tile", "warps": "tile", "engine": "tile",
    "schedule": "tile",
    "policy": "split", "max_splits": "split", "min_tokens": "split", "arch": "target",
    "compute": "target",
}
_FORMATS = ("bf16", "fp8_per_token", "fp8_per_tile128")
_context = ctypes.c_void_p()


def _ctx():
    """The process's snapmla context (its disk cache and loaded kernels); its
    warnings become SnapmlaWarning, its info lines go to logging's "snapmla"."""
    if not _context.value:
        err = Error()
        options = Options(log=log_callback)
        check(lib.snapmla_context_create(ctypes.byref(options), ctypes.byref(_context),
                                         ctypes.byref(err)), err)
    return _context


def _yaml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _spec_text(spec: str, overrides: Dict[str, object]) -> Tuple[str, str]:
    """(YAML text, name for messages) from a path or YAML text plus overrides."""
    if "\n" in spec or ":" in spec and not spec.endswith((".yaml", ".yml")):
        text, name = spec, "<spec>"
    else:
        with open(spec) as f:
            text, name = f.read(), spec
    if not overrides:
        return text, name
    import yaml   # overrides edit the document: PyYAML reads and writes it

    doc = yaml.safe_load(text)
    for key, value in overrides.items():
        section = _SECTIONS.get(key)
        if section is None:
            raise ValueError(f"snapmla: unknown override '{key}'; allowed: {', '.join(_SECTIONS)}")
        doc.setdefault(section, {})[key] = value
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items())
            lines.append(f"{key}: {{{inner}}}")
        else:
            lines.append(f"{key}: {_yaml_value(value)}")
    return "\n".join(lines) + "\n", name + " (with overrides)"


def _parse_one(text: str, name: str) -> Variant:
    spec = ctypes.POINTER(Spec)()
    err = Error()
    data = text.encode()
    check(lib.snapmla_spec_parse(data, len(data), name.encode(), ctypes.byref(spec),
                                 ctypes.byref(err)), err)
    try:
        if spec.contents.count != 1:
            raise ValueError(f"snapmla: {name} expands to {spec.contents.count} variants; "
                             "a Decoder takes exactly one")
        return Variant.from_buffer_copy(spec.contents.variants[0])
    finally:
        lib.snapmla_spec_free(spec)


def _need(cond: bool, message: str):
    if not cond:
        raise ValueError("snapmla: " + message)


def _check_tensor(name, t, dtype, shape, device):
    _need(isinstance(t, torch.Tensor), f"{name} must be a torch.Tensor")
    _need(t.is_cuda and t.device == device, f"{name} must be on {device}, not {t.device}")
    _need(t.dtype == dtype, f"{name} must be {dtype}, not {t.dtype}")
    _need(tuple(t.shape) == tuple(shape), f"{name} must have shape {tuple(shape)}, not {tuple(t.shape)}")
    _need(t.is_contiguous(), f"{name} must be contiguous")


class Decoder:
    """One mla_decode variant: JIT-compiled (and cached) on first call.

    spec: a spec path or YAML text with exactly one variant; keyword overrides
    replace single fields, e.g. ``q_heads=16, format="fp8_per_token"``.
    """

    def __init__(self, spec: str, **overrides):
        text, name = _spec_text(spec, overrides)
        self.variant = _parse_one(text, name)
        _need(self.variant.kernel == 0, f"{name} is not an mla_decode spec")
        self.name = self.variant.name.decode()
        self._kernel = ctypes.c_void_p()
        self._workspaces: Dict[Tuple[torch.device, int], torch.Tensor] = {}

    # ---- shapes ------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.variant.latent_dim

    @property
    def rope_dim(self) -> int:
        return self.variant.rope_dim

    @property
    def q_heads(self) -> int:
        return self.variant.q_heads

    @property
    def q_len(self) -> int:
        return self.variant.q_len

    @property
    def page_size(self) -> int:
        return self.variant.page_size

    @property
    def format(self) -> str:
        return _FORMATS[self.variant.cache_format]

    @property
    def page_bytes(self) -> int:
        return int(lib.snapmla_cache_page_bytes(ctypes.byref(self.variant)))

    def alloc_cache(self, num_pages: int, device=None) -> torch.Tensor:
        """A paged cache of this format: uint8 [num_pages, page_bytes], NaN-filled."""
        return torch.full((num_pages, self.page_bytes), 0xFF, dtype=torch.uint8,
                          device=device or torch.device("cuda"))

    def kernel(self) -> ctypes.c_void_p:
        if not self._kernel.value:
            torch.cuda.init()
            torch.cuda.current_stream()   # makes torch's context current on this thread
            err = Error()
            check(lib.snapmla_kernel_get(_ctx(), ctypes.byref(self.variant),
                                         ctypes.byref(self._kernel), ctypes.byref(err)), err)
        return self._kernel

    def workspace(self, batch: int, device) -> torch.Tensor:
        """The split-KV workspace for a batch size, allocated once and kept."""
        key = (device, batch)
        if key not in self._workspaces:
            size = lib.snapmla_decode_workspace_bytes(self.kernel(), batch)
            self._workspaces[key] = torch.empty(max(size, 16), dtype=torch.uint8, device=device)
        return self._workspaces[key]

    # ---- the call ----------------------------------------------------------
    def __call__(self, q: torch.Tensor, cache: torch.Tensor, block_table: torch.Tensor,
                 cache_seqlens: torch.Tensor, out: Optional[torch.Tensor] = None,
                 lse: Optional[torch.Tensor] = None, softmax_scale: Optional[float] = None,
                 num_splits: int = 0, workspace: Optional[torch.Tensor] = None,
                 plan_ready: bool = False):
        """Decode one step. q: bf16 [batch, q_len, q_heads, latent+rope]; cache: the
        paged cache (any dtype; dim 0 is pages, each page contiguous); block_table:
        int32 [batch, max_pages]; cache_seqlens: int32 [batch]. Returns (out bf16
        [batch, q_len, q_heads, latent], lse fp32 [batch, q_len, q_heads]); pass
        out, lse and workspace to run allocation-free (e.g. under graph capture).
        plan_ready: reuse the work plan the previous call on this workspace made
        (same batch and cache_seqlens values: the other layers of a step)."""
        v = self.variant
        _need(isinstance(q, torch.Tensor) and q.dim() == 4, "q must be a 4-D tensor")
        batch, device = q.shape[0], q.device
        _check_tensor("q", q, torch.bfloat16, (batch, v.q_len, v.q_heads, v.latent_dim + v.rope_dim), device)
        _need(isinstance(cache, torch.Tensor) and cache.is_cuda and cache.device == device,
              f"cache must be a CUDA tensor on {device}")
        _need(cache.dim() >= 2 and cache[0].is_contiguous(), "cache pages must be contiguous")
        page_stride = cache.stride(0) * cache.element_size()
        _need(page_stride >= self.page_bytes,
              f"cache pages are {page_stride} bytes apart; this format needs {self.page_bytes}")
        _need(isinstance(block_table, torch.Tensor) and block_table.dim() == 2,
              "block_table must be a 2-D tensor")
        _check_tensor("block_table", block_table, torch.int32, (batch, block_table.shape[1]), device)
        _check_tensor("cache_seqlens", cache_seqlens, torch.int32, (batch,), device)
        if out is None:
            out = torch.empty(batch, v.q_len, v.q_heads, v.latent_dim, dtype=torch.bfloat16, device=device)
        _check_tensor("out", out, torch.bfloat16, (batch, v.q_len, v.q_heads, v.latent_dim), device)
        if lse is None:
            lse = torch.empty(batch, v.q_len, v.q_heads, dtype=torch.float32, device=device)
        _check_tensor("lse", lse, torch.float32, (batch, v.q_len, v.q_heads), device)
        if workspace is None:
            workspace = self.workspace(batch, device)
        if softmax_scale is None:
            softmax_scale = (v.latent_dim + v.rope_dim) ** -0.5
        args = DecodeArgs(
            batch=batch, q=q.data_ptr(), kv_cache=cache.data_ptr(), num_pages=cache.shape[0],
            page_stride=page_stride, block_table=block_table.data_ptr(),
            block_table_stride=block_table.shape[1], cache_seqlens=cache_seqlens.data_ptr(),
            softmax_scale=float(softmax_scale), out=out.data_ptr(), lse=lse.data_ptr(),
            workspace=workspace.data_ptr(), workspace_bytes=workspace.numel(), num_splits=num_splits,
            plan_ready=int(bool(plan_ready)))
        err = Error()
        stream = ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream)
        check(lib.snapmla_decode(self.kernel(), ctypes.byref(args), stream, ctypes.byref(err)), err)
        return out, lse


_appenders: Dict[Tuple, Tuple[Variant, ctypes.c_void_p]] = {}


def append_kv(cache: torch.Tensor, latent: torch.Tensor, rope: torch.Tensor,
              slot_mapping: torch.Tensor, spec: Decoder,
              bad_slots: Optional[torch.Tensor] = None) -> None:
    """Writes new tokens into the paged cache in spec's format (quantizing for
    FP8). latent bf16 [n, latent_dim], rope bf16 [n, rope_dim] (rows may be
    strided); slot_mapping int64 [n] = page * page_size + offset, negative:
    skipped; slots past the cache are not written and counted in bad_slots
    (int32 [1], optional, added to)."""
    v = spec.variant
    key = (v.latent_dim, v.rope_dim, v.cache_format, v.page_size, v.rope_layout, v.arch)
    if key not in _appenders:
        layout = "planar" if v.rope_layout else "interleaved"
        arch = ("sm_80", "sm_89", "sm_90a")[v.arch]
        text = (f"kernel: kv_append\nmodel: {{latent_dim: {v.latent_dim}, rope_dim: {v.rope_dim}}}\n"
                f"cache: {{format: {_FORMATS[v.cache_format]}, page_size: {v.page_size}, "
                f"rope_layout: {layout}}}\ntarget: {{arch: {arch}}}\n")
        variant = _parse_one(text, "append")
        kernel = ctypes.c_void_p()
        err = Error()
        torch.cuda.current_stream()
        check(lib.snapmla_kernel_get(_ctx(), ctypes.byref(variant), ctypes.byref(kernel),
                                     ctypes.byref(err)), err)
        _appenders[key] = (variant, kernel)
    _, kernel = _appenders[key]
    n = latent.shape[0]
    device = cache.device
    for name, t, width in (("latent", latent, v.latent_dim), ("rope", rope, v.rope_dim)):
        _need(t.is_cuda and t.device == device and t.dtype == torch.bfloat16,
              f"{name} must be bf16 on {device}")
        _need(t.dim() == 2 and t.shape == (n, width) and t.stride(1) == 1,
              f"{name} must be [{n}, {width}] with unit stride along the row")
    _check_tensor("slot_mapping", slot_mapping, torch.int64, (n,), device)
    if bad_slots is not None:
        _check_tensor("bad_slots", bad_slots, torch.int32, (1,), device)
    page_stride = cache.stride(0) * cache.element_size()
    args = AppendArgs(num_tokens=n, latent=latent.data_ptr(), latent_stride=latent.stride(0),
                      rope=rope.data_ptr(), rope_stride=rope.stride(0),
                      slot_mapping=slot_mapping.data_ptr(), kv_cache=cache.data_ptr(),
                      num_pages=cache.shape[0], page_stride=page_stride,
                      bad_slots=bad_slots.data_ptr() if bad_slots is not None else None)
    err = Error()
    stream = ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream)
    check(lib.snapmla_append(kernel, ctypes.byref(args), stream, ctypes.byref(err)), err)


def cache_format(spec: Decoder) -> dict:
    """The per-page byte layout of spec's cache (docs/cache-formats.md): page
    bytes and, per part, (byte offset of slot 0, bytes per token, dtype)."""
    v, P, L, R = spec.variant, spec.page_size, spec.latent_dim, spec.rope_dim
    fmt = spec.format
    if fmt == "bf16" and not v.rope_layout:
        parts = {"latent": (0, (L + R) * 2, torch.bfloat16), "rope": (L * 2, (L + R) * 2, torch.bfloat16)}
    elif fmt == "bf16":
        parts = {"latent": (0, L * 2, torch.bfloat16), "rope": (P * L * 2, R * 2, torch.bfloat16)}
    elif fmt == "fp8_per_token":
        parts = {"latent": (0, L, torch.float8_e4m3fn), "rope": (P * L, R * 2, torch.bfloat16),
                 "scale": (P * (L + 2 * R), 4, torch.float32)}
    else:
        token = L + L // 32 + 2 * R
        parts = {"latent": (0, token, torch.float8_e4m3fn), "scale": (L, token, torch.float32),
                 "rope": (L + L // 32, token, torch.bfloat16)}
    return {"format": fmt, "page_size": P, "page_bytes": spec.page_bytes, "parts": parts}


# ---- FlashMLA's call -------------------------------------------------------------
_flash_decoders: Dict[Tuple, Decoder] = {}


def get_mla_metadata(cache_seqlens: torch.Tensor, num_q_tokens_per_head_k: int,
                     num_heads_k: int, num_heads_q: Optional[int] = None,
                     is_fp8_kvcache: bool = False, topk: Optional[int] = None):
    """FlashMLA's scheduling call. snapmla plans splits on the device inside the
    decode call, so this returns placeholders of FlashMLA's types: an empty
    int32 tile_scheduler_metadata and num_splits of zeros [batch + 1]."""
    _need(num_heads_k == 1, "MLA decode has one KV head (num_heads_k must be 1)")
    _need(topk is None, "sparse (topk) decode is not supported")
    device = cache_seqlens.device
    return (torch.empty(0, dtype=torch.int32, device=device),
            torch.zeros(cache_seqlens.shape[0] + 1, dtype=torch.int32, device=device))


def _flash_spec(d: int, head_dim_v: int, h_q: int, s_q: int, causal: bool, page_size: int,
                is_fp8_kvcache: bool, hopper: bool) -> str:
    """The spec of flash_mla_with_kvcache's decoder. On Hopper a BF16 cache
    whose dims and pages the wgmma engine takes runs on its BF16 path (TMA
    needs pages of 16 tokens or more; docs/spec.md); everything else, and
    FlashMLA's per-tile FP8 cache, on the mma_sync engine."""
    rope = d - head_dim_v
    model = (f"model: {{latent_dim: {head_dim_v}, rope_dim: {rope}, q_heads: {h_q}, q_len: {s_q}, "
             f"causal: {'true' if causal else 'false'}}}\n")
    cache = f"cache: {{format: {'fp8_per_tile128' if is_fp8_kvcache else 'bf16'}, page_size: {page_size}}}\n"
    if hopper and not is_fp8_kvcache and page_size >= 16 and head_dim_v in (256, 512) and rope in (32, 64, 128):
        tile = "tile: {engine: wgmma}\ntarget: {arch: sm_90a, compute: bf16}\n"
    elif s_q * h_q >= 64:
        tile = "tile: {engine: mma_sync, q_rows: 64, kv_tokens: 32}\n"
    else:
        tile = "tile: {engine: mma_sync, q_rows: 16, kv_tokens: 16, stages: 3}\n"
    return "kernel: mla_decode\n" + model + cache + tile


def flash_mla_with_kvcache(q: torch.Tensor, k_cache: torch.Tensor, block_table: torch.Tensor,
                           cache_seqlens: torch.Tensor, head_dim_v: int,
                           tile_scheduler_metadata: torch.Tensor, num_splits: torch.Tensor,
                           softmax_scale: Optional[float] = None, causal: bool = False,
                           is_fp8_kvcache: bool = False):
    """FlashMLA's dense decode call: q bf16 [batch, s_q, h_q, d]; k_cache
    [blocks, page_size, 1, d] bf16, or FlashMLA's FP8 cache (656 bytes per
    token for d = 576) with is_fp8_kvcache; returns out bf16 [batch, s_q, h_q,
    head_dim_v] and lse fp32 [batch, h_q, s_q] (a transposed view)."""
    _need(q.dim() == 4 and k_cache.dim() == 4 and k_cache.shape[2] == 1,
          "q must be [batch, s_q, h_q, d] and k_cache [blocks, page_size, 1, d]")
    batch, s_q, h_q, d = q.shape
    page_size = k_cache.shape[1]
    hopper = torch.cuda.get_device_capability(q.device) == (9, 0)
    key = (d, head_dim_v, h_q, s_q, causal, page_size, is_fp8_kvcache, hopper)
    if key not in _flash_decoders:
        _flash_decoders[key] = Decoder(_flash_spec(d, head_dim_v, h_q, s_q, causal, page_size,
                                                   is_fp8_kvcache, hopper))
    out, lse = _flash_decoders[key](q, k_cache, block_table, cache_seqlens,
                                    softmax_scale=softmax_scale)
    return out, lse.transpose(1, 2)
