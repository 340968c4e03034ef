"""Native code that is safe on the CPU it runs on.

llama.cpp is built portable (requirements.txt): one CPU backend library per x86-64 level, the best one for
this CPU loaded at run time (`load_llama_backends`). Its extra weight buffer types (runtime-repacked layouts
and Intel AMX tiles) are its fastest paths, and on some machines its crash: a VM that advertises AMX segfaults
at the first decode. So the first use of a (library, CPU, model) triple decodes a few tokens in a child
process (`probe_llama`), with the extra buffer types and, if that dies, without them; the verdict is cached
and the engine loads the model the way that survived. whisper.cpp (pywhispercpp's wheel) gets the same child
check (`probe_whisper`). A crash in a probe is a one-line ModelError naming the signal and the CPU, never a
dead process.

`python -m engine.native [--fresh]` probes the default models and prints the CPU, the llama.cpp variant and both
verdicts (`--fresh`: probe again, whatever is cached); the test suite does the same first.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ModelError
from .threads import available_cores
from .weights import memo_get, memo_put

PROBES = "native-probes.json"  # the verdicts, in the weights cache
PROBE_TIMEOUT = 300.0  # seconds for one child probe (a model load and a few tokens take ~2 s here)
# ggml's compile-time feature queries and the /proc/cpuinfo flag each one needs
GGML_FEATURE_FLAGS = {"sse3": "pni", "ssse3": "ssse3", "avx": "avx", "avx2": "avx2", "bmi2": "bmi2",
                      "f16c": "f16c", "fma": "fma", "avx_vnni": "avx_vnni", "avx512": "avx512f",
                      "avx512_vbmi": "avx512vbmi", "avx512_vnni": "avx512_vnni", "avx512_bf16": "avx512_bf16",
                      "amx_int8": "amx_int8"}
# flags shown beside every figure: the ones that pick llama.cpp's and whisper.cpp's kernels
REPORTED_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512vbmi", "avx512_vnni", "avx512_bf16", "avx_vnni",
                  "amx_tile", "amx_int8", "amx_bf16")


# -- the CPU ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CPU:
    model: str
    cores: int
    flags: frozenset[str]

    def summary(self) -> str:
        """'Intel(R) Xeon(R) ..., 2 cores, flags avx avx2 ... avx512f, no AMX': the line beside every figure."""
        have = [f for f in REPORTED_FLAGS if f in self.flags]
        amx = "" if "amx_tile" in self.flags else ", no AMX"
        return f"{self.model}, {self.cores} cores, flags {' '.join(have) or 'none of ' + ' '.join(REPORTED_FLAGS)}{amx}"


@lru_cache(maxsize=1)
def cpu() -> CPU:
    """This machine's CPU: the first processor's model name and flags in /proc/cpuinfo (elsewhere: platform's)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), " ".join(value.split()))
    return CPU(fields.get("model name") or platform.processor() or platform.machine(), available_cores(),
               frozenset(fields.get("flags", "").split()))


def compiled_features(library: Path) -> list[str]:
    """The CPU features `library` (a ggml CPU backend) was compiled to use (ggml's compile-time queries). Asked in
    a child process: loading a library built for instructions this CPU lacks may already execute them."""
    code = ("import ctypes, json, sys; lib = ctypes.CDLL(sys.argv[1]); names = json.loads(sys.argv[2]);"
            "print(json.dumps([n for n in names if hasattr(lib, 'ggml_cpu_has_' + n) and "
            "getattr(lib, 'ggml_cpu_has_' + n)()]))")
    done = subprocess.run([sys.executable, "-c", code, str(library), json.dumps(list(GGML_FEATURE_FLAGS))],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ModelError(f"cannot load {library.name} on this CPU ({_exit_text(done.returncode)}; {cpu().summary()})")
    return json.loads(done.stdout)


def missing_features(features: list[str]) -> list[str]:
    """Those of ggml's `features` this CPU lacks: a library compiled for them dies with an illegal instruction."""
    return [name for name in features if GGML_FEATURE_FLAGS[name] not in cpu().flags]


def torch_capability() -> str:
    """The vector width PyTorch's CPU kernels dispatch to at run time on this CPU (DEFAULT, AVX2, AVX512...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


# -- llama.cpp's CPU backend variants ----------------------------------------------------------------------------
def llama_lib_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise ModelError("llama-cpp-python is not installed: run scripts/setup.sh")
    return Path(spec.origin).parent / "lib"


def llama_variants() -> list[Path]:
    """The CPU backend libraries of a portable build (libggml-cpu-haswell.so, ...); none in a native build."""
    return sorted(llama_lib_dir().glob("libggml-cpu-*.so"))


_backends_lock = threading.Lock()
_backends_loaded: str | None = None


def load_llama_backends() -> str:
    """Register llama.cpp's backends before the first model loads; returns the CPU variant in use ("native" for a
    build with one CPU backend linked in). ggml itself would only look beside the Python executable."""
    global _backends_loaded
    with _backends_lock:
        if _backends_loaded is None:
            import llama_cpp  # noqa: F401  (loads libggml with its dependencies)

            llama_log = logging.getLogger("llama-cpp-python")  # ggml's log; `Llama(verbose=False)` sets the same
            if llama_log.level == logging.NOTSET:
                llama_log.setLevel(logging.ERROR)

            variants = llama_variants()
            if not variants:
                _backends_loaded = "native"
            else:
                # the copy libllama links to by its soname (libggml.so.0): a wheel holds no symlinks, so
                # libggml.so beside it is another copy with a registry of its own
                ggml = ctypes.CDLL(str(min(llama_lib_dir().glob("libggml.so.*"), key=lambda p: len(p.name))))
                ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
                if ggml.ggml_backend_reg_count() == 0:
                    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
                    ggml.ggml_backend_load_all_from_path(str(llama_lib_dir()).encode())
                _backends_loaded = best_variant(variants)
        return _backends_loaded


def best_variant(variants: list[Path]) -> str:
    """The variant ggml picks: the highest `ggml_backend_score()` (0 = this CPU cannot run it). Scoring only
    reads cpuid, so it is safe to call in every variant."""
    best, name = 0, "none"
    for path in variants:
        lib = ctypes.CDLL(str(path))
        score = lib.ggml_backend_score() if hasattr(lib, "ggml_backend_score") else 0
        if score > best:
            best, name = score, path.name[len("libggml-cpu-"):].split(".")[0]
    return name


# -- loading a model with or without the extra buffer types -------------------------------------------------------
_params_lock = threading.Lock()


@contextlib.contextmanager
def llama_model_defaults(**fields):
    """llama-cpp-python's `Llama()` takes no `use_extra_bufts`; it reads llama.cpp's defaults as it loads, so
    hand it defaults with `fields` changed for the duration of one load."""
    import llama_cpp.llama_cpp as lib

    with _params_lock:
        original = lib.llama_model_default_params

        def defaults():
            params = original()
            for name, value in fields.items():
                setattr(params, name, value)
            return params

        lib.llama_model_default_params = defaults
        try:
            yield
        finally:
            lib.llama_model_default_params = original


# -- probes in child processes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LlamaVerdict:
    extra_bufts: bool  # load with llama.cpp's extra weight buffer types (repack, AMX)
    variant: str  # the CPU backend library in use
    detail: str  # what the probe saw, for `python -m engine.native` and error messages
    decided: bool = True  # False: the probe failed with an error (not a crash), so nothing was learnt


def probe_llama(model_path: Path, model_sha256: str, n_threads: int, n_gpu_layers: int,
                fresh: bool = False) -> LlamaVerdict:
    """How this model can be decoded on this machine, probed once in a child process and cached. A probe that
    fails with an error (not a crash) decides nothing: the load in this process then reports that error."""
    variant = load_llama_backends()
    key = _key("llama", [llama_lib_dir() / "libllama.so", *llama_variants()], f"{model_sha256}|{n_gpu_layers != 0}")
    cached = None if fresh else memo_get(PROBES, key)
    if cached is not None:
        return LlamaVerdict(**cached)
    args = [str(model_path), str(n_threads), str(n_gpu_layers)]
    first, why = _run_child("llama", [*args, "1"])
    if first > 0:
        return LlamaVerdict(True, variant, f"the probe failed ({why}); not cached", decided=False)
    if first == 0:
        verdict = LlamaVerdict(True, variant, "decodes with the extra buffer types (repacked weights, AMX)")
    else:
        second, why_second = _run_child("llama", [*args, "0"])
        if second != 0:
            raise ModelError(f"llama.cpp cannot load {model_path.name} on this CPU: the probe died with {why} and, "
                             f"without extra buffer types, {why_second} (variant {variant}; {cpu().summary()})")
        verdict = LlamaVerdict(False, variant, f"with the extra buffer types the probe died with {why}; without "
                                               "them it decodes, so they are off")
    memo_put(PROBES, key, asdict(verdict))
    return verdict


def probe_whisper(ggml_path: Path, fresh: bool = False) -> str:
    """Check once, in a child process, that whisper.cpp transcribes on this CPU; raises a one-line ModelError."""
    import _pywhispercpp

    library = Path(_pywhispercpp.__file__)
    cpu_libs = sorted(library.parent.glob("pywhispercpp.libs/libggml-cpu*.so*")) or sorted(
        library.parent.glob("libggml-cpu*.so*"))
    key = _key("whisper", [library, *cpu_libs, Path(ggml_path)], "")
    cached = None if fresh else memo_get(PROBES, key)
    if cached is not None:
        return cached["detail"]
    features = compiled_features(cpu_libs[0]) if cpu_libs else []
    missing = missing_features(features)
    if missing:
        raise ModelError(f"pywhispercpp's wheel was built for CPU features this CPU lacks ({', '.join(missing)}); "
                         "rebuild it here: .venv/bin/pip install --force-reinstall --no-binary pywhispercpp "
                         f"pywhispercpp==1.5.1 ({cpu().summary()})")
    status, why = _run_child("whisper", [str(ggml_path)])
    if status != 0:
        raise ModelError(f"whisper.cpp cannot transcribe with {Path(ggml_path).name} on this CPU: the probe ended "
                         f"with {why} ({cpu().summary()})")
    detail = f"transcribes (wheel built for {' '.join(features) or 'baseline x86-64'})"
    memo_put(PROBES, key, {"detail": detail})
    return detail


def _run_child(kind: str, args: list[str]) -> tuple[int, str]:
    """Run one probe in a child process: (its exit status, negative for a signal; how it ended, in words)."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-m", "engine.native", "--child", kind, *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace",
                              timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return -int(signal.SIGKILL), f"no answer in {PROBE_TIMEOUT:.0f} s"
    last = (done.stderr.strip().splitlines() or [""])[-1][:200]
    return done.returncode, _exit_text(done.returncode) + (f": {last}" if done.returncode > 0 and last else "")


def _child(kind: str, args: list[str]) -> None:
    """The probe itself, run as `python -m engine.native --child KIND ...`: exit 0 if decoding worked."""
    import numpy as np

    if kind == "llama":
        from .config import SamplingOptions
        from .llm import LLM, Embeddings

        path, n_threads, n_gpu_layers, extra = args
        llm = LLM(Path(path), n_ctx=256, n_batch=64, threads=int(n_threads), n_gpu_layers=int(n_gpu_layers),
                  extra_bufts=extra == "1")
        vectors = llm.token_embeddings(llm.tokenize("a dog barks"))  # embedding input, as soft mode feeds it
        prompt = [llm.tokenize("Hello", add_bos=True), Embeddings("probe", vectors), llm.tokenize(" What is it?")]
        "".join(llm.generate(prompt, SamplingOptions(temperature=0.0, max_tokens=4)))
        llm.close()
    elif kind == "whisper":
        from .asr import WhisperASR

        t = np.arange(16000) / 16000
        WhisperASR(Path(args[0]), threads=1)(np.float32(0.1) * np.sin(2 * np.pi * 440 * t, dtype=np.float32))
    elif kind == "crash":  # the machinery's own check: a child that segfaults is reported, not fatal
        ctypes.string_at(0)
    else:
        raise SystemExit(f"unknown probe {kind}")


def _exit_text(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-status).name}"
        return f"signal {-status}"
    return f"exit status {status}"


def _key(kind: str, files: list[Path], extra: str) -> str:
    """What a verdict depends on: the native libraries and model files (path, size, time), the CPU, `extra`."""
    parts = [kind, extra, cpu().model, " ".join(sorted(cpu().flags))]
    for file in files:
        stat = file.stat()
        parts.append(f"{file}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def report(whisper: str = "base", llm: str | None = None, fresh: bool = False) -> dict:
    """Probe the default (or given) models in child processes: what `python -m engine.native` prints."""
    from .weights import file_sha256, resolve_llm, resolve_whisper

    llm_path = resolve_llm(llm)
    verdict = probe_llama(llm_path, file_sha256(llm_path), 1, 0, fresh=fresh)
    if not verdict.decided:
        raise ModelError(f"llama.cpp could not decode {llm_path.name}: {verdict.detail}")
    return {"cpu": cpu().summary(), "llama_variant": verdict.variant, "llama_extra_bufts": verdict.extra_bufts,
            "llama": verdict.detail, "whisper": probe_whisper(resolve_whisper(whisper).ggml_path, fresh=fresh),
            "torch": f"kernels dispatched at run time: {torch_capability()}"}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[2:])
        return 0
    from .errors import LtuError

    try:
        print(json.dumps(report(fresh="--fresh" in argv), indent=1))
    except LtuError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
