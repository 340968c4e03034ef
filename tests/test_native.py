"""Native code first: llama.cpp and whisper.cpp decode in child processes on this CPU before any test loads them
into pytest's own process, so that a crash is one failed test naming the signal and the CPU, not a dead run.
(conftest.py runs this file first; the in-process engine fixtures fail with the same line when it fails.)"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine import native, threads

ROOT = Path(__file__).resolve().parent.parent


def test_llama_cpp_and_whisper_cpp_decode_in_child_processes(native_smoke):
    assert native_smoke == [], f"native smoke test failed on {native.cpu().summary()}: {native_smoke}"


def test_the_portable_build_loads_the_best_cpu_variant_this_cpu_runs():
    variants = native.llama_variants()
    assert variants, "llama.cpp was built with -march=native: reinstall it with requirements.txt's CMake options"
    names = {p.name.split("-")[2].split(".")[0] for p in variants}
    assert {"x64", "haswell", "skylakex", "sapphirerapids"} <= names, names
    chosen = native.best_variant(variants)
    flags = native.cpu().flags
    # the variant named after a CPU generation is one whose defining instructions this CPU has
    needs = {"haswell": {"avx2", "fma"}, "skylakex": {"avx512f"}, "icelake": {"avx512_vnni", "avx512vbmi"},
             "sapphirerapids": {"amx_int8"}, "zen4": {"avx512_bf16"}, "alderlake": {"avx_vnni"}}
    assert needs.get(chosen, set()) <= flags, (chosen, native.cpu().summary())
    if "avx2" in flags:
        assert chosen not in {"x64", "sse42", "sandybridge", "ivybridge", "piledriver"}, chosen


def test_a_crashing_probe_is_reported_by_signal_not_by_dying():
    status, why = native._run_child("crash", [])
    assert status < 0 and "SIGSEGV" in why, (status, why)


def test_cli_prints_the_cpu_and_both_verdicts():
    done = subprocess.run([sys.executable, "-m", "engine.native"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["whisper"].startswith("transcribes") and isinstance(report["llama_extra_bufts"], bool)
    assert native.cpu().model in report["cpu"]


def test_free_cores_follow_a_busy_process():
    monitor = threads.CoreMonitor()
    assert threads.CoreMonitor(fixed=3).free() == 3
    if not monitor.enabled:  # one core, or a container quota: every allowed core
        assert monitor.free() == monitor.cores
        return
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        monitor.mark()
        time.sleep(0.3)
        np.linalg.norm(np.ones(1 << 20))  # this process's own work does not count as load
        loaded = monitor.free()
    finally:
        busy.kill()
        busy.wait()
    assert monitor.others > 0.5 and loaded <= monitor.cores - 1, (monitor.others, loaded)


def test_a_model_whose_extra_buffer_types_crash_is_loaded_without_them(monkeypatch, tmp_path, native_ok):
    """The AMX machines' failure, injected so that every CPU runs this path (on the AMX Xeon the real probe dies by
    SIGILL, elsewhere it survives): the probe with extra buffer types dies by SIGSEGV, the one without them decodes
    for real; the engine's LLM then loads without them and answers."""
    from engine.config import SamplingOptions
    from engine.errors import ModelError
    from engine.llm import LLM
    from engine.weights import file_sha256, resolve_llm

    real_child = native._run_child

    def child(kind, args):
        if kind == "llama" and args[-1] == "1":
            return -int(signal.SIGSEGV), "signal SIGSEGV"
        return real_child(kind, args)

    monkeypatch.setattr(native, "_run_child", child)
    monkeypatch.setenv("LTU_AS_CACHE", str(tmp_path))  # not the machine's verdicts
    path = resolve_llm(None)
    verdict = native.probe_llama(path, file_sha256(path), 1, 0, fresh=True)
    assert verdict.extra_bufts is False and "SIGSEGV" in verdict.detail
    llm = LLM(path, n_ctx=256, threads=1)  # the cached verdict decides
    assert llm.extra_bufts is False
    answer = "".join(llm.generate([llm.render_chat([{"role": "user", "content": "Say hello."}])],
                                  SamplingOptions(temperature=0.0, max_tokens=8)))
    assert answer.strip()
    llm.close()
    monkeypatch.setattr(native, "_run_child", lambda kind, args: (-int(signal.SIGILL), "signal SIGILL"))
    with pytest.raises(ModelError, match="SIGILL.*" + re.escape(native.cpu().model)):
        native.probe_llama(path, file_sha256(path), 1, 0, fresh=True)
