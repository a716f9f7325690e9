"""ctypes view of libsnapmla: finding the library and mirroring the structs of
include/snapmla.h. Everything else in the package goes through here."""

import ctypes
import logging
import os
import warnings
from pathlib import Path

NAME_MAX = 192
ERROR_MAX = 2048


class Error(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * ERROR_MAX)]


class Variant(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * NAME_MAX)] + [
        (field, ctypes.c_int)
        for field in (
            "kernel", "latent_dim", "rope_dim", "q_heads", "q_len", "causal",
            "cache_format", "page_size", "rope_layout", "kv_tile", "q_tile", "stages",
            "warps", "engine", "schedule", "split_policy", "max_splits", "split_min_tokens", "arch",
            "compute", "threads", "smem_bytes",
        )
    ]


class Rejected(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * NAME_MAX), ("reason", ctypes.c_char * ERROR_MAX)]


class Spec(ctypes.Structure):
    _fields_ = [
        ("path", ctypes.c_char_p),
        ("count", ctypes.c_size_t),
        ("variants", ctypes.POINTER(Variant)),
        ("rejected_count", ctypes.c_size_t),
        ("rejected", ctypes.POINTER(Rejected)),
    ]


LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class Options(ctypes.Structure):
    _fields_ = [
        ("cache_dir", ctypes.c_char_p),
        ("disable_disk_cache", ctypes.c_int),
        ("aot_dirs", ctypes.POINTER(ctypes.c_char_p)),
        ("aot_dir_count", ctypes.c_int),
        ("log", LOG_FN),
        ("log_user", ctypes.c_void_p),
    ]


class DecodeArgs(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int),
        ("q", ctypes.c_void_p),
        ("kv_cache", ctypes.c_void_p),
        ("num_pages", ctypes.c_int64),
        ("page_stride", ctypes.c_int64),
        ("block_table", ctypes.c_void_p),
        ("block_table_stride", ctypes.c_int),
        ("cache_seqlens", ctypes.c_void_p),
        ("softmax_scale", ctypes.c_float),
        ("out", ctypes.c_void_p),
        ("lse", ctypes.c_void_p),
        ("workspace", ctypes.c_void_p),
        ("workspace_bytes", ctypes.c_size_t),
        ("num_splits", ctypes.c_int),
        ("plan_ready", ctypes.c_int),
    ]


class AppendArgs(ctypes.Structure):
    _fields_ = [
        ("num_tokens", ctypes.c_int64),
        ("latent", ctypes.c_void_p),
        ("latent_stride", ctypes.c_int64),
        ("rope", ctypes.c_void_p),
        ("rope_stride", ctypes.c_int64),
        ("slot_mapping", ctypes.c_void_p),
        ("kv_cache", ctypes.c_void_p),
        ("num_pages", ctypes.c_int64),
        ("page_stride", ctypes.c_int64),
        ("bad_slots", ctypes.c_void_p),
    ]


def _candidates():
    env = os.environ.get("SNAPMLA_LIB")
    if env:
        yield env
    here = Path(__file__).resolve().parent
    yield str(here / "libsnapmla.so")
    yield str(here.parent.parent / "build" / "libsnapmla.so")   # a source tree after `make`
    yield "libsnapmla.so.0"
    yield "libsnapmla.so"


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise ImportError("snapmla: cannot load libsnapmla.so; build it with `make` or set "
                      "SNAPMLA_LIB. Tried:\n  " + "\n  ".join(tried))


lib = _load()

_signatures = {
    "snapmla_spec_parse": [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                           ctypes.POINTER(ctypes.POINTER(Spec)), ctypes.POINTER(Error)],
    "snapmla_spec_free": [ctypes.POINTER(Spec)],
    "snapmla_context_create": [ctypes.POINTER(Options), ctypes.POINTER(ctypes.c_void_p),
                               ctypes.POINTER(Error)],
    "snapmla_kernel_get": [ctypes.c_void_p, ctypes.POINTER(Variant),
                           ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(Error)],
    "snapmla_decode_workspace_bytes": [ctypes.c_void_p, ctypes.c_int],
    "snapmla_decode": [ctypes.c_void_p, ctypes.POINTER(DecodeArgs), ctypes.c_void_p,
                       ctypes.POINTER(Error)],
    "snapmla_append": [ctypes.c_void_p, ctypes.POINTER(AppendArgs), ctypes.c_void_p,
                       ctypes.POINTER(Error)],
    "snapmla_cache_page_bytes": [ctypes.POINTER(Variant)],
}
for _name, _args in _signatures.items():
    getattr(lib, _name).argtypes = _args
lib.snapmla_decode_workspace_bytes.restype = ctypes.c_size_t
lib.snapmla_cache_page_bytes.restype = ctypes.c_size_t


class SnapmlaError(RuntimeError):
    """A snapmla call failed; the message is the library's own."""


def check(status, err):
    if status != 0:
        raise SnapmlaError(err.message.decode(errors="replace"))


class SnapmlaWarning(UserWarning):
    """The library's warnings: a variant that compiles to a kernel off its
    design (spills, a ptxas performance note), a corrupt cache entry rebuilt,
    an unusable cache directory."""


def _log(_user, level, message):
    text = message.decode(errors="replace")
    if level == 1:   # SNAPMLA_LOG_WARN
        warnings.warn(text, SnapmlaWarning, stacklevel=2)
    else:            # what each kernel request was served from
        logging.getLogger("snapmla").info(text)


# The context's log callback; kept here so that it outlives every call.
log_callback = LOG_FN(_log)
