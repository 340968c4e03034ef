"""The evaluation sets: clips no training step saw, each with the labels its tasks score against.

Two kinds:
  validation sets   the data builder's validation split (`~/.cache/ltu-as/data`, split by source recording);
                    training only monitored its loss, never took a gradient step or a checkpoint from it.
  new-source sets   built here from sources the training data never drew from: another TTS engine (flite),
                    new sentences (eval/sentences.py), two Debian packages the builder does not read
                    (btanks-data, tuxmath-data), and another soundfont (MuseScore General Lite) for music.

Every set is a deterministic plan; `clips(limit)` builds (or finds in the cache) only the first `limit`
clips of the plan, ordered so that a short prefix already covers the classes (round-robin over labels).
Audio lives under <cache>/eval/sets/<set>/, 16 kHz mono PCM_16, at most 10 s (deb-events-30s: 30 s).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio import decode_trusted
from ..data import audio as data_audio
from ..data import music
from ..data.build import default_out_dir
from ..data.debian import fetch_package
from ..data.denylist import assert_allowed
from ..data.labels import SOUND_LABELS
from ..data.rules import PACKAGES
from ..data.sentences import ENGLISH, OTHER_LANGUAGES
from ..weights import cache_dir
from .sentences import EVAL_SENTENCES

FLITE = "flite"
# flite voice -> gender. The 16 kHz voices only ("kal" is 8 kHz); slt is flite's one female voice.
FLITE_VOICES = {"slt": "female", "awb": "male", "rms": "male", "kal16": "male"}
# speaking-rate class -> flite duration_stretch (espeak-ng training rates 120/170/235 wpm are x1.4 / x1 / x0.72)
FLITE_RATES = {"normal": 1.0, "slow": 1.4, "fast": 0.72}

# Debian packages for new-source sound events: not read by the data builder, not held out.
EVENT_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    # (regex on the path inside the package, label); the first match wins, unmatched files are not used
    "btanks-data": (
        (r"/sounds/(?:building-explosion\d|explosion|nuke-explosion|vehicle-explosion\d?)\.ogg$", "explosion"),
        (r"/sounds/cow\.ogg$", "cow mooing"),
        (r"/sounds/(?:engine-start|engine-vehicle|engine-car)\.ogg$", "engine running"),
        (r"/sounds/helicopter\.ogg$", "helicopter"),
        (r"/sounds/kamikaze-scream\.ogg$", "scream"),
        (r"/sounds/klaxon\.ogg$", "car horn"),
        (r"/sounds/laugh\d+\.ogg$", "laughter"),
        (r"/sounds/man-steps\.ogg$", "footsteps"),
        (r"/sounds/shot\.ogg$", "gunshot"),
        (r"/sounds/zombie\.ogg$", "groaning"),
    ),
    "tuxmath-data": (
        (r"/sounds/alarm\.wav$", "alarm"),
        (r"/sounds/cheer\.wav$", "crowd cheering"),
        (r"/sounds/engine\.wav$", "engine running"),
        (r"/sounds/explosion\.wav$", "explosion"),
        (r"/sounds/towerclock\.wav$", "bell"),
        (r"/sounds/sizzling\.wav$", "hissing"),
    ),
}
MAX_PER_EVENT_LABEL = 3  # explosions dominate btanks-data
SOUNDFONT_PACKAGE = "musescore-general-soundfont-small"
SOUNDFONT_PATH = "usr/share/sounds/sf3/MuseScore_General_Lite.sf3"
MUSIC_SEED = 101  # the training pieces use seed 0: other keys, tempi and melodies
N_MUSIC = 32  # two pieces per instrument
MIX_SNRS_DB = (5, 10, 20)
N_MIX = 24


@dataclass(frozen=True)
class EvalClip:
    id: str
    path: Path
    kind: str  # "speech", "event", "music" or "mix"
    labels: dict  # text, gender, rate | label | instrument | text, gender, event


@dataclass
class EvalSet:
    name: str
    kind: str
    origin: str  # "validation split" or "new source"
    source: str  # where the audio comes from, for RESULTS.md
    plan: Callable[[], list[dict]]  # the whole set, cheap: ids and labels only
    make: Callable[[dict, Path], None] | None = None  # writes one planned clip's wav (None: it exists)
    _planned: list[dict] | None = field(default=None, repr=False)

    def planned(self) -> list[dict]:
        if self._planned is None:
            self._planned = self.plan()
        return self._planned

    @property
    def total(self) -> int:
        return len(self.planned())

    def clips(self, limit: int | None = None) -> list[EvalClip]:
        """The first `limit` clips of the plan (all if None), building any that are missing."""
        chosen = self.planned()[:limit]
        missing = [item for item in chosen if not Path(item["path"]).is_file()]
        if missing and self.make is None:
            raise FileNotFoundError(missing[0]["path"])
        for item in tqdm(missing, desc=f"build {self.name}", unit="clip", leave=False, disable=not missing):
            self.make(item, Path(item["path"]))
        return [EvalClip(item["id"], Path(item["path"]), self.kind, item["labels"]) for item in chosen]


def sets_dir() -> Path:
    return cache_dir() / "eval" / "sets"


def file_sha1(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def round_robin(items: Iterable[dict], key: Callable[[dict], str]) -> list[dict]:
    """Items interleaved over their classes (classes in sorted order, items by hash of id within a class)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in sorted(items, key=lambda i: _hash(i["id"])):
        groups[key(item)].append(item)
    ordered, names = [], sorted(groups)
    for depth in range(max((len(g) for g in groups.values()), default=0)):
        ordered += [groups[n][depth] for n in names if depth < len(groups[n])]
    return ordered


# ---------------------------------------------------------------- the training data's validation split


def _validation_clips(data_dir: Path, kind: str) -> list[dict]:
    path = data_dir / "clips.jsonl"
    if not path.is_file():
        return []
    clips = []
    for line in path.read_text().splitlines():
        c = json.loads(line) if line.strip() else None
        if c and c["split"] == "validation" and c["kind"] == kind:
            clips.append({"id": c["id"], "path": str(data_dir / c["audio_id"]), "labels": c["labels"]})
    return clips


def validation_sets(data_dir: Path | None = None) -> list[EvalSet]:
    data_dir = Path(data_dir or default_out_dir())
    built = ""
    if (data_dir / "manifest.json").is_file():
        built = f", built {json.loads((data_dir / 'manifest.json').read_text()).get('build_date', '?')}"
    where = f"validation split of the training data ({data_dir}{built})"
    return [
        EvalSet("val-speech", "speech", "validation split",
                f"{where}: espeak-ng speech, English voices, sentences whose id fell in the validation split",
                lambda: round_robin([c for c in _validation_clips(data_dir, "speech")
                                     if c["labels"]["language"] == "English"], lambda c: c["labels"]["gender"])),
        EvalSet("val-events", "event", "validation split",
                f"{where}: Debian sound-event recordings whose source recording fell in the validation split",
                lambda: round_robin(_validation_clips(data_dir, "event"), lambda c: c["labels"]["label"])),
        EvalSet("val-music", "music", "validation split",
                f"{where}: generated MIDI rendered by fluidsynth with FluidR3_GM (fluid-soundfont-gm)",
                lambda: round_robin(_validation_clips(data_dir, "music"), lambda c: c["labels"]["instrument"])),
        EvalSet("val-mix", "mix", "validation split",
                f"{where}: validation espeak-ng speech over validation sound events at 0/5/10/20 dB SNR",
                lambda: round_robin([c for c in _validation_clips(data_dir, "mix")
                                     if c["labels"]["language"] == "English"], lambda c: c["labels"]["event"])),
    ]


# ---------------------------------------------------------------- new sources: flite speech


def have_flite() -> bool:
    return shutil.which(FLITE) is not None


def check_sentences() -> None:
    """The evaluation sentences must not be training sentences."""
    training = {s.strip().lower() for s in ENGLISH} | {s.strip().lower() for v in OTHER_LANGUAGES.values() for s in v}
    overlap = [s for s in EVAL_SENTENCES if s.strip().lower() in training]
    if overlap:
        raise ValueError(f"evaluation sentences also used in training: {overlap}")


def _speech_plan() -> list[dict]:
    """Each sentence once; genders alternate (slt is female, the others male), rates cycle per pair."""
    check_sentences()
    males = [v for v, g in FLITE_VOICES.items() if g == "male"]
    rates = list(FLITE_RATES)
    out = []
    for i, text in enumerate(EVAL_SENTENCES):
        voice = "slt" if i % 2 else males[(i // 2) % len(males)]
        rate = rates[(i // 2) % len(rates)]
        key = _hash(f"{text}|{voice}|{rate}")[:12]
        out.append({"id": f"flite-{key}", "path": str(sets_dir() / "flite-speech" / f"{key}.wav"),
                    "labels": {"text": text, "gender": FLITE_VOICES[voice], "rate": rate,
                               "voice": f"flite {voice}", "duration_stretch": FLITE_RATES[rate]}})
    return out


def flite_version() -> str:
    done = subprocess.run([FLITE, "--version"], capture_output=True, text=True)
    found = re.search(r"flite-(\d+[\w.\-]*)", done.stdout + done.stderr)
    return found.group(1) if found else "unknown"


def synthesize_flite(text: str, voice: str, stretch: float) -> np.ndarray:
    if not have_flite():
        raise RuntimeError("flite is not installed (apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run([FLITE, "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", str(wav)],
                       check=True, capture_output=True)
        return decode_trusted(wav)


def _make_speech(item: dict, path: Path) -> None:
    lab = item["labels"]
    x = data_audio.trim(synthesize_flite(lab["text"], lab["voice"].split()[-1], lab["duration_stretch"]))
    data_audio.write_wav(path, data_audio.normalize_peak(x, -3.0))


# ---------------------------------------------------------------- new sources: Debian sound events


def check_event_packages() -> None:
    for name in EVENT_PACKAGES:
        assert_allowed(name)  # not held out
        if name in PACKAGES:
            raise ValueError(f"{name} is a training source (engine/data/rules.py)")
    for rules in EVENT_PACKAGES.values():
        for _, label in rules:
            if label not in SOUND_LABELS:
                raise ValueError(f"{label!r} is not a sound label")


def _event_plan() -> list[dict]:
    check_event_packages()
    root = sets_dir() / "deb-events"
    items = []
    for package, rules in EVENT_PACKAGES.items():
        source = fetch_package(package, cache_dir() / "eval" / "_sources")
        per_label: dict[str, int] = defaultdict(int)
        for path, where in source.audio_files():
            label = next((lab for pattern, lab in rules if re.search(pattern, path.lower())), None)
            if label is None or per_label[label] >= MAX_PER_EVENT_LABEL:
                continue
            per_label[label] += 1
            key = _hash(f"{package}/{path}")[:12]
            items.append({"id": f"deb-{key}", "path": str(root / f"{key}.wav"), "where": str(where),
                          "labels": {"label": label, "package": package, "version": source.version,
                                     "file": path, "licence": source.licence_for(path)}})
    return round_robin(items, lambda c: c["labels"]["label"])


def _make_event(item: dict, path: Path) -> None:
    x = decode_trusted(Path(item["where"]))
    if data_audio.peak(x) > 0.99:
        x = data_audio.normalize_peak(x, -0.1)
    data_audio.write_wav(path, data_audio.trim(x))


LONG_SECONDS, LONG_EVENT_AT = 30.0, 13.0  # the event starts in the middle of three 10 s windows
LONG_NOISE_DB = -55.0  # room hiss (dBFS RMS) around it


def _long_event_plan() -> list[dict]:
    return [{"id": f"long-{item['id']}", "path": str(sets_dir() / "deb-events-30s" / Path(item["path"]).name),
             "event": item, "labels": item["labels"]} for item in _event_plan()]


def _make_long_event(item: dict, path: Path) -> None:
    """A deb-events clip inside a 30 s recording: a sound in a longer recording, where soft mode shows the
    LLM a choice of 10 s windows rather than the one window it was trained on."""
    event = item["event"]
    if not Path(event["path"]).is_file():
        _make_event(event, Path(event["path"]))
    x = data_audio.read_wav(Path(event["path"]))
    rng = np.random.default_rng(int(_hash(item["id"])[:8], 16))
    out = (rng.standard_normal(int(LONG_SECONDS * data_audio.SAMPLE_RATE)) * 10 ** (LONG_NOISE_DB / 20))
    start = int(LONG_EVENT_AT * data_audio.SAMPLE_RATE)
    out[start:start + len(x)] += x
    data_audio.write_wav(path, out.astype(np.float32))


# ---------------------------------------------------------------- new sources: music with another soundfont


def _music_plan() -> list[dict]:
    out = []
    for piece in music.plan_pieces(N_MUSIC, MUSIC_SEED):
        out.append({"id": f"sf3-{piece.key_id}", "path": str(sets_dir() / "sf-music" / f"{piece.key_id}.wav"),
                    "labels": {"instrument": piece.instrument, "key": piece.key, "mode": piece.mode,
                               "tempo_bpm": piece.bpm, "pattern": piece.pattern, "seed": piece.seed}})
    return out


def _make_music(item: dict, path: Path) -> None:
    font = fetch_package(SOUNDFONT_PACKAGE, cache_dir() / "eval" / "_sources")
    lab = item["labels"]
    piece = music.Piece(lab["instrument"], lab["key"], lab["mode"], lab["tempo_bpm"], lab["pattern"], lab["seed"])
    x = data_audio.trim(music.render(piece, font.root / SOUNDFONT_PATH))
    data_audio.write_wav(path, data_audio.normalize_peak(x, -3.0))


# ---------------------------------------------------------------- new sources: flite speech over Debian events


def _mix_plan() -> list[dict]:
    speech = _speech_plan()[::-1]  # the other end of the sentence list from the flite-speech prefix
    events = _event_plan()
    out = []
    for i in range(min(N_MIX, len(speech))):
        sp, ev, snr = speech[i], events[i % len(events)], MIX_SNRS_DB[i % len(MIX_SNRS_DB)]
        key = _hash(f"{sp['id']}|{ev['id']}|{snr}")[:12]
        out.append({"id": f"mix-{key}", "path": str(sets_dir() / "flite-deb-mix" / f"{key}.wav"),
                    "speech": sp, "event": ev,
                    "labels": {"text": sp["labels"]["text"], "gender": sp["labels"]["gender"],
                               "event": ev["labels"]["label"], "snr_db": snr, "speech_clip": sp["id"],
                               "event_clip": ev["id"], "sound_labels": ["speech", ev["labels"]["label"]]}})
    return out


def _make_mix(item: dict, path: Path) -> None:
    for part, make in ((item["speech"], _make_speech), (item["event"], _make_event)):
        if not Path(part["path"]).is_file():
            make(part, Path(part["path"]))
    sp, ev = data_audio.read_wav(Path(item["speech"]["path"])), data_audio.read_wav(Path(item["event"]["path"]))
    lead = int(0.3 * data_audio.SAMPLE_RATE)  # speech starts 0.3 s in; the event starts in its first half
    padded = np.concatenate([np.zeros(lead, np.float32), sp])[: data_audio.MAX_SAMPLES]
    offset = lead + max(0, len(sp) - len(ev)) // 3
    ev = ev[: data_audio.MAX_SAMPLES - offset]
    x = data_audio.mix_at_snr(padded, ev, item["labels"]["snr_db"], offset)[: data_audio.MAX_SAMPLES]
    data_audio.write_wav(path, x)


def new_source_sets() -> list[EvalSet]:
    fl = "flite (Debian `flite` {v}) voices slt (female), awb, rms, kal16 (male), duration_stretch 1.4/1.0/0.72 " \
         "for slow/normal/fast, {n} sentences written for evaluation (engine/eval/sentences.py)"
    fl = fl.format(v=flite_version() if have_flite() else "?", n=len(EVAL_SENTENCES))
    events = ("Debian `btanks-data` and `tuxmath-data` (not read by the data builder, not held out), labelled by "
              f"file name (rules in engine/eval/sets.py), at most {MAX_PER_EVENT_LABEL} clips per label")
    return [
        EvalSet("flite-speech", "speech", "new source", fl, _speech_plan, _make_speech),
        EvalSet("deb-events", "event", "new source", events, _event_plan, _make_event),
        EvalSet("deb-events-30s", "event", "new source",
                f"each deb-events clip starting at {LONG_EVENT_AT:.0f} s of a {LONG_SECONDS:.0f} s recording of "
                f"white noise at {LONG_NOISE_DB:.0f} dBFS (three 10 s windows; the sound is in the middle one)",
                _long_event_plan, _make_long_event),
        EvalSet("sf-music", "music", "new source",
                f"MIDI from the builder's generator with seed {MUSIC_SEED} (training: seed 0), rendered by fluidsynth "
                f"with MuseScore_General_Lite.sf3 (Debian `{SOUNDFONT_PACKAGE}`; training used FluidR3_GM)",
                _music_plan, _make_music),
        EvalSet("flite-deb-mix", "mix", "new source",
                f"flite speech (as flite-speech, other sentences first) over the deb-events clips at "
                f"{'/'.join(map(str, MIX_SNRS_DB))} dB SNR", _mix_plan, _make_mix),
    ]


SET_NAMES = ("val-speech", "val-events", "val-music", "val-mix", "flite-speech", "deb-events", "deb-events-30s",
             "sf-music", "flite-deb-mix")


def all_sets(data_dir: Path | None = None) -> dict[str, EvalSet]:
    return {s.name: s for s in validation_sets(data_dir) + new_source_sets()}
