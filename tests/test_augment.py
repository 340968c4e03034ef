"""Each augmented view on a real clip: the labels stay true and the sound changes the way the view says."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import audio
from engine.data.augment import (VIEWS_PER_KIND, View, add_noise, change_speed, place, plan_views, render, reverberate,
                                 telephone)

from clips import sound, speech


def _db(x: np.ndarray) -> float:
    return 20 * np.log10(max(audio.active_rms(x), 1e-12))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    (root / "audio").mkdir()
    speech("The kettle is boiling in the kitchen.", root / "audio" / "say.wav")
    sound("beeps", root / "audio" / "beeps.wav", seconds=1.0)
    sound("noise", root / "audio" / "rain.wav", seconds=2.0)
    return root


def _clip(name: str, label: str, split: str = "train", kind: str = "event") -> dict:
    return {"id": name, "audio_id": f"audio/{name}.wav", "kind": kind, "split": split,
            "labels": {"label": label, "sound_labels": [label]}}


def test_plan_pairs_within_a_split_and_another_label():
    clips = [_clip("beeps", "beep"), _clip("rain", "rain"), _clip("val", "thunder", "validation")]
    views = plan_views(clips)
    assert {v.name for v in views if v.clip["id"] == "beeps"} == set(VIEWS_PER_KIND["event"])
    pair = next(v for v in views if v.clip["id"] == "beeps" and v.name == "pair")
    assert pair.partner["id"] == "rain" and pair.sound_labels == ["beep", "rain"]
    assert not any(v.name == "pair" for v in views if v.clip["id"] == "val")  # no partner in its split
    assert plan_views(clips) == views  # deterministic
    background = [v for v in views if v.name == "background"]
    assert {v.clip["split"] for v in background} == {"train", "validation"}
    assert all(v.sound_labels == [] for v in background)


def test_views_on_a_real_clip(data_dir):
    beeps = audio.read_wav(data_dir / "audio" / "beeps.wav")
    clip = _clip("beeps", "beep")
    clean = render(View(clip["audio_id"], clip, "clean"), data_dir)
    assert clean.shape == (audio.MAX_SAMPLES,) and np.allclose(clean[: len(beeps)], beeps, atol=1e-4)
    noisy = render(View("k#noisy", clip, "noisy"), data_dir)
    assert noisy.shape == (audio.MAX_SAMPLES,) and -40 < _db(noisy) < 0 and np.abs(noisy).max() <= 0.99
    assert np.abs(noisy[-16000:]).mean() > 0  # noise fills the whole window, not only the sound
    assert not np.allclose(noisy, render(View("k2#noisy", clip, "noisy"), data_dir))  # the key seeds the view
    assert np.array_equal(noisy, render(View("k#noisy", clip, "noisy"), data_dir))
    partner = _clip("rain", "rain")
    quiet = render(next(v for v in plan_views([clip]) if v.name == "background"), data_dir)
    assert quiet.shape == (audio.MAX_SAMPLES,) and -80 < 20 * np.log10(audio.rms(quiet)) < -20
    pair = render(View("k#pair", clip, "pair", partner), data_dir)
    assert pair.shape == (audio.MAX_SAMPLES,) and (np.abs(pair) > 1e-3).sum() > len(beeps)


def test_each_effect_does_what_it_says(data_dir):
    rng = np.random.default_rng(0)
    x = audio.read_wav(data_dir / "audio" / "say.wav")
    placed = place(x, rng)
    start = int(np.argmax(np.abs(placed) > 0)) - int(np.argmax(np.abs(x) > 0))  # x may begin with zeros
    assert start >= 0 and np.array_equal(placed[start:start + len(x)], x)
    noisy = add_noise(placed, 10.0, rng)
    noise_db = 20 * np.log10(audio.rms(noisy - placed))
    assert abs(noise_db - (_db(placed) - 10.0)) < 0.5  # the noise sits 10 dB under the sound's active level
    wet = reverberate(x, 0.8, rng)
    assert len(wet) > len(x) and np.abs(wet[len(x):]).max() > 1e-3  # a tail after the dry sound ends
    spectrum = np.abs(np.fft.rfft(telephone(x)))
    f = np.fft.rfftfreq(len(x), 1 / audio.SAMPLE_RATE)
    assert spectrum[(f < 250) | (f > 3500)].max() < 1e-3 * spectrum.max()


def test_speed_view_changes_tempo_and_pitch_together(data_dir):
    """change_speed scales a tone's frequency and a real voice's length by the factor; the speech view keeps the
    voice inside the window."""
    tone = np.sin(2 * np.pi * 200 * np.arange(audio.SAMPLE_RATE) / audio.SAMPLE_RATE).astype(np.float32)
    fast = change_speed(tone, 1.1)
    peak = np.fft.rfftfreq(len(fast), 1 / audio.SAMPLE_RATE)[np.argmax(np.abs(np.fft.rfft(fast)))]
    assert len(fast) == round(len(tone) / 1.1) and abs(peak - 220) < 2
    x = audio.read_wav(data_dir / "audio" / "say.wav")
    assert len(change_speed(x, 0.9)) == round(len(x) / 0.9)
    clip = {**_clip("say", "speech", kind="speech")}
    view = render(View("say#speed", clip, "speed"), data_dir)
    assert view.shape == (audio.MAX_SAMPLES,) and -40 < _db(view) < 0 and np.abs(view).max() <= 0.99
    assert "speed" in VIEWS_PER_KIND["speech"] and "speed" not in VIEWS_PER_KIND["event"]
