"""Debian packages as audio sources: `apt-get download` + `dpkg-deb -x` (never installed), and licences.

Also reads local folders (`--source-dir`) through the same `Source` interface, and the members of zip
archives (.pk3) inside a package.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .denylist import assert_allowed
from .rules import AUDIO_EXTENSIONS


class FetchError(RuntimeError):
    pass


@dataclass
class Source:
    """An unpacked package (or a local folder): where its files are, and what it is."""

    name: str
    version: str
    root: Path
    licences: list[tuple[list[str], str]] = field(default_factory=list)  # DEP-5 (Files patterns, License)
    default_licence: str = "unknown"
    archives: tuple[str, ...] = ()

    def licence_for(self, path: str) -> str:
        """Licence of `path` (inside the package) from the copyright file: the most specific stanza wins."""
        parts = [p for p in re.split(r"[/!]", path) if p]
        best: tuple[float, int, str] | None = None
        for index, (patterns, licence) in enumerate(self.licences):
            for pattern in patterns:
                score = _pattern_score(pattern, parts)
                if score is not None and (best is None or (score, index) >= best[:2]):
                    best = (score, index, licence)
        return best[2] if best else self.default_licence

    def audio_files(self) -> Iterator[tuple[str, Path | tuple[Path, str]]]:
        """(path inside the source, where to read it): files on disk, then members of listed archives."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if full.is_symlink() or not name.lower().endswith(AUDIO_EXTENSIONS):
                    continue
                yield full.relative_to(self.root).as_posix(), full
        for pattern in self.archives:
            for archive in sorted(self.root.glob(pattern)):
                rel = archive.relative_to(self.root).as_posix()
                with zipfile.ZipFile(archive) as zf:
                    members = sorted(n for n in zf.namelist() if n.lower().endswith(AUDIO_EXTENSIONS))
                for member in members:
                    yield f"{rel}!{member}", (archive, member)


def read_bytes(where: Path | tuple[Path, str]) -> bytes:
    if isinstance(where, tuple):
        with zipfile.ZipFile(where[0]) as zf:
            return zf.read(where[1])
    return where.read_bytes()


def _pattern_score(pattern: str, parts: list[str]) -> float | None:
    """How specifically a DEP-5 `Files:` pattern matches a path; None if it does not.

    Copyright files name paths in the *source* tree, which differ from installed paths by a prefix
    ("share/hedgewars/Data/Sounds/*" vs "usr/share/games/hedgewars/Data/Sounds/..."), so a pattern matches
    when its file part matches the file name and the last >= 2 (or all, if fewer) of its folders appear,
    in order, among the path's folders. "dir/*" covers deeper files too. More matched folders = more
    specific; a named file beats a wildcard.
    """
    pattern = pattern.strip().lstrip("./")
    if pattern in ("*", ""):
        return 0.0
    if pattern.startswith("debian/"):
        return None
    *pat_dirs, pat_base = pattern.lower().split("/")
    *dirs, base = [p.lower() for p in parts]
    if not fnmatch.fnmatchcase(base, pat_base):
        return None
    named = 0.5 if pat_base != "*" else 0.0
    if not pat_dirs:
        return 1.0 + named
    need = min(2, len(pat_dirs))
    for k in range(len(pat_dirs), need - 1, -1):
        want = pat_dirs[-k:]
        if pat_base == "*":  # anywhere below the folder
            spans = range(len(dirs) - k + 1)
        else:  # the file's own folder chain
            spans = [len(dirs) - k] if len(dirs) >= k else []
        for i in spans:
            if all(fnmatch.fnmatchcase(d, w) for d, w in zip(dirs[i : i + k], want)):
                return 1.0 + k + named
    return None


def parse_copyright(text: str) -> tuple[list[tuple[list[str], str]], str]:
    """DEP-5 stanzas as (Files patterns, License short name), and a fallback licence for the package."""
    stanzas: list[tuple[list[str], str]] = []
    if text.startswith("Format:") or "\nFiles:" in text:
        for block in re.split(r"\n\s*\n", text):
            files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", block, re.M)
            licence = re.search(r"^License:[ \t]*(\S.*)$", block, re.M)
            if files and licence:
                stanzas.append((files.group(1).split(), licence.group(1).strip()))
    fallback = "unknown (see copyright file)"
    wildcard = [lic for pats, lic in stanzas if "*" in pats]
    if wildcard:
        fallback = wildcard[-1]
    else:  # free-form copyright file: the licence named first is the package's main one
        gpl = re.search(r"GNU General Public License", text)
        mit = re.search(r"under the MIT license|Permission is hereby granted, free of charge", text)
        if gpl and (not mit or gpl.start() < mit.start()):
            later = re.search(r"any later version", text)
            version = re.search(r"version (\d)", text[gpl.start():])
            fallback = f"GPL-{version.group(1) if version else '2'}{'+' if later else ''}"
        elif mit:
            fallback = "MIT"
    return stanzas, fallback


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise FetchError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def fetch_package(name: str, cache: Path) -> Source:
    """Download (once) and unpack (once) Debian package `name` under `cache`; never installs it."""
    assert_allowed(name)
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        if shutil.which("apt-get") is None:
            raise FetchError("apt-get is not available")
        _run(["apt-get", "download", "-q", name], cwd=debs)
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            raise FetchError(f"apt-get download {name} produced no .deb")
    deb = found[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    root = cache / "pkg" / name
    marker = root / ".extracted"
    if not (marker.exists() and marker.read_text() == deb.name):
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(deb), str(root)])
        marker.write_text(deb.name)
    return open_package_dir(name, version, root)


def open_package_dir(name: str, version: str, root: Path) -> Source:
    from .rules import PACKAGES

    copyright_file = root / "usr/share/doc" / name / "copyright"
    stanzas, fallback = parse_copyright(copyright_file.read_text(errors="replace")) if copyright_file.exists() else ([], "unknown")
    spec = PACKAGES.get(name)
    return Source(name, version, root, stanzas, fallback, spec.archives if spec else ())


def open_local_dir(path: Path, licence: str = "unknown") -> Source:
    """A local folder of recordings, labelled by file-name keywords (see rules.GENERIC_SPEC)."""
    path = Path(path).resolve()
    assert_allowed(str(path))
    return Source(f"local:{path.name}", "local", path, [], licence)
