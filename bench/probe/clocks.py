"""Is a decode kernel power-bound? SM clock, power and energy per call, in a burst and sustained (device; torch)

A board at its power limit lowers the SM clock until the power fits, so a
kernel's time there follows its energy, not its cycles. `snapmla bench`
times a burst (2 warm-up + at most 64 replays after the GPU idled); an
engine keeps the GPU busy. This probe does both per case, reading the
driver (NVML, through ctypes) from a sampling thread:

- burst: after 1 s idle, 2 + 64 calls queued back to back, as the bench;
  time per call (CUDA events), the SM clock over the burst (mean, first
  and last sample) and the clock-event reasons seen (sw_power_cap: the
  board's power limit);
- sustained: the same call back to back for 4 s; over the second half:
  time per call, median SM clock, board power and energy per call (the
  board's energy counter).

Two torch GEMMs (8192^3, bf16 and e4m3 where torch has `_scaled_mm`) give
the same figures for a pure tensor-core load. docs/bench.md explains the
reading.

    PYTHONPATH=python python3 bench/probe/clocks.py [SPEC:HEADS:Q_LEN:S_K ...]
"""
import ctypes
import sys
import threading
import time

try:
    import torch
except ImportError:   # a probe of the GPU: nothing to do without torch
    torch = None

DEFAULT_CASES = [
    "specs/deepseek_v3_fp8_roles_hopper.yaml:128:1:16384",
    "specs/deepseek_v3_bf16_hopper.yaml:128:1:16384",
    "bench/roles_mtp.yaml:128:2:8192",
    "bench/mtp_bf16.yaml:128:2:8192",
    "specs/deepseek_v3_fp8_roles_hopper.yaml:16:1:16384",
]
BATCH, BURST, SUSTAIN_S, SAMPLE_S = 128, 64, 4.0, 0.0005
NVML_CLOCK_SM = 1
# bits of the clock-event reasons (nvml.h, nvmlClocksEventReason*)
REASONS = {0x1: "idle", 0x2: "app_clocks", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
           0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake"}


class Nvml:
    """The few NVML queries the probe needs, on the first GPU (the one torch uses here)."""

    def __init__(self):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self.check("nvmlInit_v2")
        self.dev = ctypes.c_void_p()
        self.check("nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(torch.cuda.current_device()),
                   ctypes.byref(self.dev))
        name = "nvmlDeviceGetCurrentClocksEventReasons"
        self.reasons_fn = name if hasattr(self.lib, name) else "nvmlDeviceGetCurrentClocksThrottleReasons"

    def check(self, fn, *args):
        rc = getattr(self.lib, fn)(*args)
        if rc != 0:
            raise RuntimeError(f"{fn} failed: NVML error {rc}")

    def sm_clock(self):
        mhz = ctypes.c_uint()
        self.check("nvmlDeviceGetClockInfo", self.dev, ctypes.c_uint(NVML_CLOCK_SM), ctypes.byref(mhz))
        return mhz.value

    def reasons(self):
        bits = ctypes.c_ulonglong()
        self.check(self.reasons_fn, self.dev, ctypes.byref(bits))
        return bits.value

    def power_w(self):
        mw = ctypes.c_uint()
        self.check("nvmlDeviceGetPowerUsage", self.dev, ctypes.byref(mw))
        return mw.value / 1000

    def energy_j(self):
        mj = ctypes.c_ulonglong()
        self.check("nvmlDeviceGetTotalEnergyConsumption", self.dev, ctypes.byref(mj))
        return mj.value / 1000


class Sampler(threading.Thread):
    """(time, SM clock, reasons) every SAMPLE_S until stopped."""

    def __init__(self, nvml):
        super().__init__(daemon=True)
        self.nvml, self.samples, self.running = nvml, [], True

    def run(self):
        while self.running:
            self.samples.append((time.time(), self.nvml.sm_clock(), self.nvml.reasons()))
            time.sleep(SAMPLE_S)

    def window(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]


def describe(samples):
    if not samples:
        return "no clock sample"
    clocks = [s[1] for s in samples]
    bits = 0
    for s in samples:
        bits |= s[2]
    reasons = ",".join(n for b, n in REASONS.items() if bits & b) or "none"
    return (f"SM clock mean {sum(clocks) / len(clocks):.0f} MHz (first {clocks[0]}, last {clocks[-1]}, "
            f"min {min(clocks)}), reasons {reasons}")


def burst(call, sampler):
    time.sleep(1.0)   # idle first, as before the bench's first replay
    t0 = time.time()
    for _ in range(2):
        call()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(BURST):
        call()
    end.record()
    torch.cuda.synchronize()
    us = start.elapsed_time(end) * 1000 / BURST
    return us, describe(sampler.window(t0, time.time()))


def sustained(call, sampler, nvml):
    t_start, calls = time.time(), 0
    e0 = None
    while time.time() - t_start < SUSTAIN_S:
        for _ in range(10):
            call()
        calls += 10
        torch.cuda.synchronize()   # the host stays within 10 calls of the GPU
        if e0 is None and time.time() - t_start >= SUSTAIN_S / 2:
            mid = torch.cuda.Event(enable_timing=True)
            mid.record()
            t_mid, calls_mid, e0 = time.time(), calls, nvml.energy_j()
    end = torch.cuda.Event(enable_timing=True)
    end.record()
    torch.cuda.synchronize()
    e1, t_end = nvml.energy_j(), time.time()
    n = calls - calls_mid
    us = mid.elapsed_time(end) * 1000 / n
    watts = (e1 - e0) / (t_end - t_mid)
    return us, (e1 - e0) / n, watts, describe(sampler.window(t_mid, t_end))


def decode_call(spec, heads, q_len, s_k):
    from decode_inputs import decode_inputs

    dec, cache, q, lens, pages = decode_inputs(spec, heads, q_len, s_k, BATCH)
    table = torch.randperm(BATCH * pages, device="cuda").to(torch.int32).view(BATCH, pages)
    out, lse = dec(q, cache, table, lens)
    flops = 2 * BATCH * q_len * heads * s_k * (2 * dec.latent_dim + dec.rope_dim)
    return (lambda: dec(q, cache, table, lens, out=out, lse=lse)), flops


def gemm_calls():
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    calls = {"torch bf16 GEMM 8192^3": (lambda: a @ b, 2 * n ** 3)}
    if hasattr(torch, "_scaled_mm"):
        a8, b8 = a.to(torch.float8_e4m3fn), b.t().contiguous().to(torch.float8_e4m3fn).t()
        one = torch.ones((), device="cuda")
        calls["torch e4m3 GEMM 8192^3"] = (
            lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16), 2 * n ** 3)
    return calls


def measure(name, call, flops, sampler, nvml):
    b_us, b_clock = burst(call, sampler)
    s_us, joules, watts, s_clock = sustained(call, sampler, nvml)
    print(f"{name}\n  burst ({BURST} after 1 s idle): {b_us:.1f} us per call, "
          f"{flops / b_us / 1e6:.0f} TFLOP/s; {b_clock}\n"
          f"  sustained ({SUSTAIN_S / 2:.0f} s): {s_us:.1f} us per call, {flops / s_us / 1e6:.0f} TFLOP/s, "
          f"{watts:.0f} W, {joules * 1000:.1f} mJ per call ({joules / flops * 1e12:.2f} pJ/FLOP); {s_clock}",
          flush=True)


def main(argv):
    if torch is None or not torch.cuda.is_available():
        print("clocks: needs torch with a CUDA device; nothing measured")
        return 0
    nvml = Nvml()
    sampler = Sampler(nvml)
    sampler.start()
    try:
        time.sleep(0.5)
        print(f"idle: {describe(sampler.window(0, time.time()))}, {nvml.power_w():.0f} W", flush=True)
        for name, (call, flops) in gemm_calls().items():
            measure(name, call, flops, sampler, nvml)
        from decode_inputs import parse_case

        for case in argv or DEFAULT_CASES:
            spec, heads, q_len, s_k = parse_case(case)
            call, flops = decode_call(spec, heads, q_len, s_k)
            measure(f"{spec} h{heads} q_len {q_len} s_k {s_k} b{BATCH}", call, flops, sampler, nvml)
            del call
            torch.cuda.empty_cache()
    finally:
        sampler.running = False
        sampler.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
