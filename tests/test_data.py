"""The training-data builder on real audio: a sox-made source folder, espeak-ng speech, mixtures, and
(when apt can reach Debian) one small real package. No mocks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from engine.data import SOUND_LABELS, HeldOutError, assert_allowed, build, is_held_out
from engine.data.labels import AUDIOSET_NAME
from engine.data.music import midi_bytes, plan_pieces
from engine.data.rules import PACKAGES, match, variant_stem
from engine.data.split import split_of_source, split_of_sources

RECORD_FIELDS = {"instruction", "input", "audio_id", "dataset", "task", "output", "labels", "split"}



def _sox(path: Path, *effects: str, rate: int = 44100, channels: int = 2) -> None:
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), str(path), *effects], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory) -> Path:
    """Recordings with telling names, in several formats, rates and channel counts; one unlabelled, one long."""
    d = tmp_path_factory.mktemp("sounds")
    _sox(d / "thunder1.wav", "synth", "1.5", "brownnoise", "vol", "0.6", "fade", "0", "1.5", "1.2")
    _sox(d / "thunder2.wav", "synth", "2", "brownnoise", "vol", "0.5", "fade", "0", "2", "1.5")
    _sox(d / "dog_bark.ogg", "synth", "0.4", "square", "300", "vol", "0.4", rate=22050, channels=1)
    _sox(d / "rain_long.flac", "synth", "14", "pinknoise", "highpass", "1000", "vol", "0.3")  # > 10 s: cut
    _sox(d / "footstep_wood.wav", "synth", "0.2", "whitenoise", "vol", "0.5", rate=48000)
    _sox(d / "glass_smash.wav", "synth", "0.8", "whitenoise", "highpass", "3000", "vol", "0.5")
    _sox(d / "bell_ring.wav", "synth", "1.2", "sine", "880", "fade", "0", "1.2", "1.1")
    _sox(d / "mystery.wav", "synth", "1", "sine", "440")  # no keyword: skipped
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory, source_dir) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("data")
    manifest = build(out, packages=[], source_dirs=[source_dir], n_speech=8, n_mix=10, n_music=0, progress=False)
    return out, manifest


def _clips(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]


def test_wavs_are_16k_mono_and_at_most_10s(built):
    out, _ = built
    clips = _clips(out)
    assert {c["kind"] for c in clips} == {"event", "speech", "mix"}
    for c in clips:
        info = sf.info(out / c["audio_id"])
        assert (info.samplerate, info.channels) == (16000, 1), c["audio_id"]
        assert 0.1 <= info.frames / 16000 <= 10.0
        assert abs(info.frames / 16000 - c["duration"]) < 0.01


def test_event_labels_sources_and_skips(built):
    out, manifest = built
    events = [c for c in _clips(out) if c["kind"] == "event"]
    by_name = {Path(c["provenance"][0]["path"]).stem: c for c in events}
    assert set(by_name) == {"thunder1", "thunder2", "dog_bark", "rain_long", "footstep_wood", "glass_smash", "bell_ring"}
    assert by_name["dog_bark"]["labels"]["label"] == "dog barking"
    assert by_name["rain_long"]["duration"] == pytest.approx(10.0, abs=0.01)
    assert by_name["thunder1"]["source_ids"] == by_name["thunder2"]["source_ids"]  # variants: one source
    for c in events:
        assert c["labels"]["label"] in SOUND_LABELS
        assert set(c["labels"]["sound_labels"]) <= set(SOUND_LABELS)
        assert {"package", "version", "path", "licence"} <= set(c["provenance"][0])
    skipped = next(v for k, v in manifest["skipped"].items() if k.startswith("local:"))
    assert skipped == {"unlabelled or excluded by rule": 1}


def test_speech_and_mixture_labels(built):
    out, _ = built
    clips = _clips(out)
    speech = [c for c in clips if c["kind"] == "speech"]
    assert len(speech) == 8 and {c["labels"]["gender"] for c in speech} == {"male", "female"}
    for c in speech:
        assert c["labels"]["rate"] in ("slow", "normal", "fast") and c["labels"]["text"]
    mixes = [c for c in clips if c["kind"] == "mix"]
    assert mixes
    for m in mixes:
        lab = m["labels"]
        assert lab["snr_db"] in (0, 5, 10, 20)
        assert lab["sound_labels"][0] == "speech" and lab["event"] in SOUND_LABELS and lab["text"]
        assert 0 <= lab["event_start"] < lab["event_end"] <= 10.0


def test_records_have_all_fields(built):
    out, manifest = built
    for split in ("train", "validation"):
        records = json.loads((out / f"{split}.json").read_text())
        for r in records:
            assert set(r) == RECORD_FIELDS
            assert r["split"] == split and r["output"] and r["instruction"]
            assert (out / r["audio_id"]).exists()
            if r["dataset"] == "debian_events":
                assert r["input"] == ""
            else:
                assert r["input"] == r["labels"]["text"]
    tasks = manifest["records"]["per_task"]
    for task in ("cla_label", "gender", "asr", "background_event", "event_time", "open_caption"):
        assert tasks.get(task, 0) > 0, task


def test_no_source_in_both_splits(built):
    out, manifest = built
    assert manifest["sources_in_both_splits"] == []
    seen: dict[str, set] = {}
    for c in _clips(out):
        for s in c["source_ids"]:
            seen.setdefault(s, set()).add(c["split"])
        if c["kind"] == "mix":
            assert c["split"] == split_of_sources(c["source_ids"])
            if c["split"] == "train":
                assert all(split_of_source(s) == "train" for s in c["source_ids"])
    assert all(len(v) == 1 for v in seen.values())


def test_rebuild_is_idempotent_and_deterministic(built, source_dir):
    out, _ = built
    before = (out / "clips.jsonl").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}
    build(out, packages=[], source_dirs=[source_dir], n_speech=8, n_mix=10, n_music=0, progress=False)
    assert (out / "clips.jsonl").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")} == mtimes


def test_denylist_rejects_held_out_sources(tmp_path):
    for name in ("scratch", "sonic-pi-samples", "ktuberling-data", "alsa-utils", "pocketsphinx-testdata"):
        assert is_held_out(name)
        with pytest.raises(HeldOutError):
            assert_allowed(name)
    assert is_held_out("/data/LibriSpeech/train-clean-100") and is_held_out("ESC-50-master")
    assert not is_held_out("minetest-data")
    assert not any(is_held_out(p) for p in PACKAGES)
    with pytest.raises(HeldOutError):
        build(tmp_path / "out", packages=["openttd-opensfx"], n_speech=0, n_mix=0, progress=False)
    esc = tmp_path / "ESC-50-master"
    esc.mkdir()
    with pytest.raises(HeldOutError):
        build(tmp_path / "out", packages=[], source_dirs=[esc], n_speech=0, n_mix=0, progress=False)
    assert not (tmp_path / "out").exists()  # rejected before anything was written


def test_package_rules():
    assert variant_stem("a/b/behemoth_attack1c.wav") == "behemoth_attack"
    assert variant_stem("x.pk3!sound/footsteps/grass3.ogg") == "grass"
    spec = PACKAGES["minetest-data"]
    m = match(spec, "usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_break_glass.2.ogg")
    assert m is not None and m.label == "glass breaking"
    assert match(PACKAGES["megaglest-data"], "usr/share/games/megaglest/techs/x/sounds/archer_ack3.wav") is None


def test_new_source_rules():
    """The packages added for the perception model label what their names say, and skip voice lines."""
    wz = "usr/share/games/warzone2100/base.wz!audio/"
    ad = "usr/share/games/0ad/mods/public/public.zip!audio/"
    cases = [
        ("warzone2100-data", wz + "sfx/weapons/mgheavy.ogg", "machine gun"),
        ("warzone2100-data", wz + "sfx/weapons/lrgcan.ogg", "artillery fire"),
        ("warzone2100-data", wz + "sfx/explons/lrgexpl.ogg", "explosion"),
        ("warzone2100-data", wz + "sfx/explons/scream2.ogg", "scream"),
        ("warzone2100-data", wz + "tutorial/tut01.ogg", None),
        ("heroes-sound-effects", "usr/share/games/heroes/sfx/claxon.wav", "car horn"),
        ("heroes-sound-effects", "usr/share/games/heroes/sfx/foule2.wav", "crowd cheering"),
        ("heroes-sound-effects", "usr/share/games/heroes/sfx/menu01.wav", None),
        ("sound-icons", "usr/share/sounds/sound-icons/cembalo-10.wav", "harpsichord"),
        ("sound-icons", "usr/share/sounds/sound-icons/violoncello-7.wav", "cello"),
        ("sound-icons", "usr/share/sounds/sound-icons/prompt", None),
        ("asterisk-core-sounds-en-wav", "usr/share/asterisk/sounds/en_US_f_Allison/privacy-prompt.wav", "speech"),
        # the 2026-12 survey: 0ad's sounds sit inside public.zip, its voice lines are skipped (but the dog's bark)
        ("0ad-data", ad + "actor/human/death/female_death_07.ogg", "groaning"),
        ("0ad-data", ad + "resource/lumbering/lumber_tree_10.ogg", "chopping wood"),
        ("0ad-data", ad + "voice/global/civ_dog_bark.ogg", "dog barking"),
        ("0ad-data", ad + "voice/greek/civ/civ_female_attack_1.ogg", None),
        ("torcs-data", "usr/share/games/torcs/data/sound/viper_long.wav", "engine running"),
        ("torcs-data", "usr/share/games/torcs/data/sound/crash1.wav", "crash"),
        ("supertuxkart-data", "usr/share/games/supertuxkart/data/tracks/black_forest/steamlocomotive.ogg", "train"),
        ("lincity-ng-data", "usr/share/games/lincity-ng/sounds/trafichigh3.wav", "traffic noise"),
        ("fillets-ng-data", "usr/share/games/fillets-ng/sound/linux/en/space0.ogg", "keyboard typing"),
        # the 2026-12-03 survey: vehicles and weather, a whistle, voices with their gender
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/rotor-2blade.wav", "helicopter"),
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/turbine_start.wav", "jet engine"),
        ("flightgear-data-base", "usr/share/games/flightgear/Aircraft/c172p/Sounds/engine-start.wav", "engine starting"),
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/rain-windshield.wav", "rain"),
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/tcas/climb.wav", None),
        ("simutrans-pak64", "usr/share/games/simutrans/pak/sound/seagulls.wav", "bird call"),
        ("tuxfootball", "usr/share/games/tuxfootball/sound/refwhistletwice.wav", "whistle"),
        ("tuxfootball", "usr/share/games/tuxfootball/sound/kick.wav", None),
        ("flare-game", "usr/share/games/flare/mods/fantasycore/soundfx/steps/step_metal3.ogg", "footsteps"),
        ("freedroidrpg-data", "usr/share/freedroidrpg/data/sound/effects/swing_then_nohit_3.ogg", "whoosh"),
        ("kajongg", "usr/share/kajongg/voices/de/male2/pung.ogg", "speech"),
        ("micropolis-data", "usr/share/games/micropolis/res/sounds/honkhonk-med.wav", "car horn"),
        ("micropolis-data", "usr/share/games/micropolis/res/sounds/quackquack.wav", "duck quacking"),
        ("etw-data", "usr/share/games/etw/snd/fischiolungo.wav", "whistle"),
        ("etw-data", "usr/share/games/etw/music/back3.wav", None),
        ("searchandrescue-data", "usr/share/games/searchandrescue/sounds/hh65/engine_start.wav", "helicopter"),
        ("asterisk-core-sounds-it-wav", "usr/share/asterisk/sounds/it_IT_m_Carlo/vm-goodbye.wav", "speech"),
        ("asterisk-core-sounds-it-wav", "usr/share/asterisk/sounds/it_IT_m_Carlo/digits/7.wav", None),
        # the 2026-12-03 second survey (Debian's Contents index): a recording per pictured thing, the spoken word
        # for it skipped; game effects named for what they are
        ("qabcs-data", "usr/share/qabcs/abcs/all/noises/rooster.ogg", "rooster crowing"),
        ("qabcs-data", "usr/share/qabcs/abcs/all/noises/western_concert_flute.ogg", "flute"),
        ("qabcs-data", "usr/share/qabcs/abcs/all/noises/eagle-owl.ogg", "bird call"),
        ("qabcs-data", "usr/share/qabcs/abcs/en/sounds/words/rooster.ogg", None),
        ("qabcs-data", "usr/share/qabcs/abcs/all/noises/dogmatix.ogg", None),
        ("brainparty-data", "usr/share/games/brainparty/baa3.wav", "sheep bleating"),
        ("madbomber-data", "usr/share/games/madbomber/sounds/splash7.wav", "water splashing"),
        ("solarwolf", "usr/share/games/solarwolf/data/audio/whip.wav", "whip crack"),
        ("triplea", "usr/share/games/triplea/assets/sounds/classical/phase_end_turn/phase_end_turn_01_coins.mp3", "coins"),
        ("triplea", "usr/share/games/triplea/assets/sounds/ww2/battle_air/battle_air_02_air_close_flyby.mp3",
         "airplane"),
        ("triplea", "usr/share/games/triplea/assets/sounds/ww2/game_start/game_start_01_start_of_1812_overture.mp3",
         None),
        ("berusky2-data", "usr/share/games/berusky2/sound/stepsnow2.wav", "footsteps"),
        ("berusky2-data", "usr/share/games/berusky2/sound/Racek2.wav", "bird call"),
        ("berusky2-data", "usr/share/games/berusky2/music/Relax3.ogg", None),
    ]
    for package, path, label in cases:
        found = match(PACKAGES[package], path.lower())
        assert (found.label if found else None) == label, (package, path, found)
    allison = "usr/share/asterisk/sounds/en_US_f_Allison/privacy-prompt.wav"
    assert PACKAGES["asterisk-core-sounds-en-wav"].speaker(allison) == ("asterisk Allison", "female")
    assert PACKAGES["kajongg"].speaker("usr/share/kajongg/voices/female2/c1.ogg") == ("kajongg en/female2", "female")
    assert PACKAGES["kajongg"].speaker("usr/share/kajongg/voices/de/male1/c1.ogg") == ("kajongg de/male1", "male")
    carlo = "usr/share/asterisk/sounds/it_IT_m_Carlo/vm-goodbye.wav"
    assert PACKAGES["asterisk-core-sounds-it-wav"].speaker(carlo) == ("asterisk Carlo", "male")
    merchant = "usr/share/games/flare/mods/fantasycore/soundfx/npcs/male_merchant_02.ogg"
    assert PACKAGES["flare-game"].speaker(merchant) == ("flare male merchant", "male")
    assert PACKAGES["flare-game"].speaker(merchant.replace("npcs/male_merchant_02", "door_open")) is None
    assert set(AUDIOSET_NAME) == set(SOUND_LABELS) and AUDIOSET_NAME["dog barking"] == "Bark"
    assert PACKAGES["0ad-data"].archives  # read inside the zip


def test_generated_midi_is_well_formed():
    pieces = plan_pieces(8, seed=0)
    assert len({p.instrument for p in pieces}) == 8
    data = midi_bytes(pieces[0])
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00")


def test_real_debian_package(tmp_path):
    """One small real package (sound-theme-freedesktop, ~0.4 MB), fetched with apt-get download."""
    manifest = build(tmp_path, packages=["sound-theme-freedesktop"], limit=3, n_speech=2, n_mix=2,
                     n_music=0, progress=False)
    assert "sound-theme-freedesktop" not in manifest["packages_failed"], manifest["packages_failed"]
    events = [c for c in _clips(tmp_path) if c["kind"] == "event"]
    assert len(events) == 3
    for c in events:
        prov = c["provenance"][0]
        assert prov["package"] == "sound-theme-freedesktop" and prov["version"]
        assert prov["licence"].startswith(("CC-BY", "GPL"))
        assert c["labels"]["label"] in SOUND_LABELS
        assert sf.info(tmp_path / c["audio_id"]).samplerate == 16000


def test_validation_packages_are_whole_and_speakers_labelled(tmp_path):
    """A package kept apart for validation has every clip there; a recorded voice package labels its gender."""
    manifest = build(tmp_path, packages=["heroes-sound-effects", "asterisk-core-sounds-en-wav", "kajongg"], limit=4,
                     n_speech=0, n_mix=0, n_music=0, progress=False)
    assert not manifest["packages_failed"], manifest["packages_failed"]
    events = [c for c in _clips(tmp_path) if c["kind"] == "event"]
    heroes = [c for c in events if c["provenance"][0]["package"] == "heroes-sound-effects"]
    allison = [c for c in events if c["provenance"][0]["package"] == "asterisk-core-sounds-en-wav"]
    assert heroes and {c["split"] for c in heroes} == {"validation"}
    assert allison and all(c["labels"]["gender"] == "female" and c["labels"]["label"] == "speech" for c in allison)
    kajongg = [c for c in events if c["provenance"][0]["package"] == "kajongg"]  # several voices, gender per folder
    assert kajongg and all(f"/{c['labels']['gender']}" in c["provenance"][0]["path"] for c in kajongg)
    assert all(c["labels"]["voice"].startswith("kajongg ") for c in kajongg)
