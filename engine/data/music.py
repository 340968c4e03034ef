"""Short music clips: generated MIDI (scales, arpeggios, chords) rendered by fluidsynth with the
General MIDI soundfont of Debian's `fluid-soundfont-gm` (downloaded and unpacked, not installed).

Labels: instrument, key, mode, tempo. Optional: skipped when fluidsynth is not on the machine.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import decode_trusted

FLUIDSYNTH = "fluidsynth"
SOUNDFONT_PACKAGE = "fluid-soundfont-gm"
SOUNDFONT_PATH = "usr/share/sounds/sf2/FluidR3_GM.sf2"

# plain-English instrument name -> General MIDI program (0-based)
INSTRUMENTS: dict[str, int] = {
    "piano": 0, "electric piano": 4, "marimba": 12, "organ": 19, "acoustic guitar": 24, "electric guitar": 27,
    "bass guitar": 33, "violin": 40, "cello": 42, "harp": 46, "string ensemble": 48, "trumpet": 56,
    "trombone": 57, "saxophone": 65, "clarinet": 71, "flute": 73,
}
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PATTERNS = ("scale", "arpeggio", "chords", "melody")
TICKS = 480  # MIDI ticks per quarter note


def tempo_class(bpm: int) -> str:
    return "slow" if bpm < 90 else "moderate" if bpm < 125 else "fast"


@dataclass(frozen=True)
class Piece:
    instrument: str
    key: str
    mode: str
    bpm: int
    pattern: str
    seed: int

    @property
    def key_id(self) -> str:
        return hashlib.sha1(repr(self).encode()).hexdigest()[:12]


def plan_pieces(n: int, seed: int) -> list[Piece]:
    rng = random.Random(f"music:{seed}")
    names = list(INSTRUMENTS)
    return [
        Piece(names[i % len(names)], rng.choice(KEYS), rng.choice(list(MODES)), rng.randrange(60, 161, 5),
              PATTERNS[(i // len(names)) % len(PATTERNS)], rng.randrange(1 << 30))
        for i in range(n)
    ]


def _notes(p: Piece) -> list[tuple[float, float, list[int]]]:
    """(start beat, length in beats, MIDI pitches) for about 8 beats of `p`."""
    rng = random.Random(p.seed)
    low = p.instrument in ("bass guitar", "cello", "trombone")
    root = 48 + KEYS.index(p.key) - (12 if low else 0)
    scale = [root + s for s in MODES[p.mode]] + [root + 12 + s for s in MODES[p.mode]] + [root + 24]
    degree = lambda d: scale[d]  # noqa: E731
    if p.pattern == "scale":
        return [(i * 0.5, 0.5, [degree(i)]) for i in range(15)]
    if p.pattern == "arpeggio":
        chord = [0, 2, 4, 7]
        return [(i * 0.5, 0.5, [degree(chord[i % 4] + (7 if (i // 4) % 2 else 0) % 7)]) for i in range(16)]
    if p.pattern == "chords":
        progression = (0, 3, 4, 0) if p.mode == "major" else (0, 5, 3, 4)
        return [(i * 2.0, 2.0, [degree(d), degree(d + 2), degree(d + 4)]) for i, d in enumerate(progression)]
    beat, out, d = 0.0, [], 7
    while beat < 8:
        length = rng.choice((0.5, 0.5, 1.0, 1.0, 1.5))
        d = min(14, max(0, d + rng.choice((-2, -1, -1, 1, 1, 2))))
        out.append((beat, length, [degree(d)]))
        beat += length
    return out


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def midi_bytes(p: Piece) -> bytes:
    """A one-track standard MIDI file (format 0) for `p`."""
    events: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03" + struct.pack(">I", 60_000_000 // p.bpm)[1:])]
    events.append((0, bytes((0xC0, INSTRUMENTS[p.instrument]))))
    for start, length, pitches in _notes(p):
        on, off = int(start * TICKS), int((start + length) * TICKS * 0.95)
        for pitch in pitches:
            events.append((on, bytes((0x90, pitch, 90))))
            events.append((off, bytes((0x80, pitch, 0))))
    events.sort(key=lambda e: (e[0], e[1][0] == 0x90))  # note-offs before note-ons at the same tick
    track, last = b"", 0
    for tick, data in events:
        track += _vlq(tick - last) + data
        last = tick
    track += _vlq(TICKS) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(track)) + track


def have_fluidsynth() -> bool:
    return shutil.which(FLUIDSYNTH) is not None


def render(p: Piece, soundfont: Path) -> np.ndarray:
    """Render `p` to 16 kHz mono float32 with fluidsynth."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        mid.write_bytes(midi_bytes(p))
        subprocess.run(
            [FLUIDSYNTH, "-ni", "-q", "-g", "0.6", "-r", "44100", "-F", str(wav), str(soundfont), str(mid)],
            check=True, capture_output=True,
        )
        return decode_trusted(wav)
