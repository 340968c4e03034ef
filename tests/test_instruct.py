"""Audio Instruction Generation: the quality filter on hand-written LLM outputs, and a real run of the default
GGUF over six clips written as a tiny dataset (labels only: generation never reads the audio). No mocks."""

from __future__ import annotations

import json
import random
from pathlib import Path

from engine.data.instruct import TASK, InstructOptions, choose_clips, instruct, judge, parse_qa, prompt_messages
from engine.data.questions import qa_for_clip

RECORD_FIELDS = {"instruction", "input", "audio_id", "dataset", "task", "output", "labels", "split"}

CLIPS = [
    {"id": "ev-dog", "audio_id": "audio/events/dog.wav", "kind": "event", "duration": 2.0, "split": "train",
     "labels": {"label": "dog barking", "sound_labels": ["dog barking"]}},
    {"id": "ev-glass", "audio_id": "audio/events/glass.wav", "kind": "event", "duration": 0.8, "split": "validation",
     "labels": {"label": "glass breaking", "sound_labels": ["glass breaking"]}},
    {"id": "sp-bus", "audio_id": "audio/speech/bus.wav", "kind": "speech", "duration": 2.6, "split": "train",
     "labels": {"text": "The bus leaves the station at noon.", "gender": "female", "rate": "normal",
                "pitch": "high", "language": "English", "accent": "British", "voice": "espeak-ng en-gb+f2",
                "sound_labels": ["speech"]}},
    {"id": "mu-piano", "audio_id": "audio/music/piano.wav", "kind": "music", "duration": 4.3, "split": "train",
     "labels": {"label": "music", "instrument": "piano", "gm_program": 0, "key": "C", "mode": "major",
                "tempo_bpm": 100, "tempo": "moderate", "pattern": "melody", "sound_labels": ["music"]}},
    {"id": "mu-flute", "audio_id": "audio/music/flute.wav", "kind": "music", "duration": 3.9, "split": "validation",
     "labels": {"label": "music", "instrument": "flute", "gm_program": 73, "key": "A", "mode": "minor",
                "tempo_bpm": 70, "tempo": "slow", "pattern": "scale", "sound_labels": ["music"]}},
    {"id": "mx-rain", "audio_id": "audio/mix/rain.wav", "kind": "mix", "duration": 6.0, "split": "validation",
     "labels": {"text": "My brother painted the fence yesterday.", "gender": "male", "language": "English",
                "event": "rain", "snr_db": 10, "speech_start": 0.2, "speech_end": 3.1, "event_start": 0.5,
                "event_end": 6.0, "sound_labels": ["speech", "rain"], "speech_clip": "sp-x", "event_clip": "ev-y"}},
]
DOG, _, SPEECH, PIANO, _, MIX = CLIPS


def _verdict(output: str, clip: dict, accepted: set | None = None) -> str | None:
    return judge(output, clip, prompt_messages(clip), accepted or set()).reason


def test_filter_accepts_good_and_names_what_is_wrong_with_bad():
    assert parse_qa("**Question:** Is it loud?\n**Answer:** Yes, very loud.") == ("Is it loud?", "Yes, very loud.")
    assert _verdict("Q: What animal is making noise? A: A dog barks a few times.", DOG) is None
    assert _verdict("Q: Which instrument is this? A: A piano plays a gentle melody.", PIANO) is None
    assert _verdict("Q: What does the woman say? A: She says the bus leaves the station at noon.", SPEECH) is None
    assert _verdict("Q: What is the weather like? A: It is raining while a man talks about a fence.", MIX) is None

    assert _verdict("A dog is barking in the yard.", DOG) == "unparsable"
    assert _verdict("Q: Tell me what animal this is. A: A dog barking.", DOG) == "question without '?'"
    assert _verdict("Q: What animal is it? A: Dog.", DOG) == "answer too short"
    assert _verdict("Q: What animal is it? A: " + "A dog barks and barks " * 9, DOG) == "answer too long"
    assert _verdict("Q: What is it? A: A cat purring softly on a sofa.", DOG) == "misses the key fact"
    # an example's answer from the prompt (the speech example shown to this clip), and the format's placeholder
    example_answer = prompt_messages(SPEECH)[-2]["content"].split("A: ")[1]
    assert _verdict(f"Q: What is heard? A: {example_answer}", SPEECH) == "copies the prompt"
    assert _verdict("Q: What is <question>? A: A dog barks a few times.", DOG) == "copies the prompt"
    # the other gender, another instrument or tempo, a number the description lacks, minutes
    assert _verdict("Q: Who speaks? A: A man says the bus leaves at noon.", SPEECH) == "contradicts the description"
    assert _verdict("Q: What plays? A: A piano and a violin play together.", PIANO) == "contradicts the description"
    assert _verdict("Q: How fast is it? A: The piano plays at a fast tempo.", PIANO) == "contradicts the description"
    assert _verdict("Q: How long does the dog bark? A: The dog barks for 30 seconds.", DOG) \
        == "contradicts the description"
    assert _verdict("Q: How long is it? A: The dog barks for two minutes.", DOG) == "contradicts the description"
    assert _verdict("Q: How long is it? A: The dog barks for two seconds.", DOG) is None  # "2.0 second" said it
    seen = {("what animal is making noise", "a dog barks a few times")}
    assert _verdict("Q: What animal is making noise? A: A dog barks a few times.", DOG, seen) == "duplicate"


def test_clip_choice_spreads_over_kinds_and_splits():
    rng = random.Random(0)
    clips = [{"id": f"{kind}-{i}", "kind": kind, "split": "validation" if rng.random() < 0.1 else "train"}
             for kind in ("event", "speech", "music", "mix") for i in range(50)]
    chosen = choose_clips(clips, 40)
    assert chosen == choose_clips(list(reversed(clips)), 40)
    assert {c["kind"] for c in chosen[:4]} == {"event", "speech", "music", "mix"}
    assert all(sum(c["kind"] == kind for c in chosen) == 10 for kind in ("event", "speech", "music", "mix"))
    assert {c["split"] for c in chosen} == {"train", "validation"}


def test_generates_open_aig_records_with_the_default_model(tmp_path: Path):
    rng = random.Random(0)
    templates = {split: [r for c in CLIPS if c["split"] == split for r in qa_for_clip(c, rng)]
                 for split in ("train", "validation")}
    stale = dict(templates["train"][0], task=TASK, instruction="An old generated question?")
    (tmp_path / "clips.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CLIPS))
    (tmp_path / "train.json").write_text(json.dumps(templates["train"] + [stale]))
    (tmp_path / "validation.json").write_text(json.dumps(templates["validation"]))

    def run() -> tuple[dict, dict[str, list[dict]]]:
        summary = instruct(InstructOptions(data=tmp_path, clips=len(CLIPS), threads=1, progress=False))
        return summary, {split: json.loads((tmp_path / f"{split}.json").read_text()) for split in templates}

    summary, records = run()
    print(json.dumps(summary, indent=1))
    assert json.loads((tmp_path / "instruct.json").read_text()) == summary
    assert summary["tried"] == len(CLIPS)
    assert summary["accepted"] + sum(summary["rejected"].values()) == len(CLIPS)
    assert summary["accepted"] >= 1
    assert summary["model"]["path"].endswith(".gguf")
    by_audio = {c["audio_id"]: c for c in CLIPS}
    generated = []
    for split, recs in records.items():
        assert [r for r in recs if r["task"] != TASK] == templates[split]  # template records kept as they were
        for r in (r for r in recs if r["task"] == TASK):
            clip = by_audio[r["audio_id"]]
            assert set(r) == RECORD_FIELDS and r["split"] == split == clip["split"]
            assert r["labels"] == clip["labels"] and r["instruction"].endswith("?") and r["output"]
            assert r["input"] == (clip["labels"]["text"] if clip["kind"] in ("speech", "mix") else "")
            generated.append(r)
    assert len(generated) == summary["accepted"]  # the stale open_aig record is gone

    again, records_again = run()  # greedy decoding: the same records, replacing rather than adding
    assert records_again == records and again["accepted"] == summary["accepted"]


def test_every_clip_says_whether_it_holds_words_and_other_sounds():
    """"What is said?" of a clip without speech is answered "no one speaks", and "what else?" of speech alone
    "only the voice", so the model learns to answer the question asked rather than describe the clip."""
    from engine.data.questions import NO_SPEECH, ONLY_THE_VOICE, PHRASINGS

    def answers(clip: dict) -> dict[str, str]:
        return {r["task"]: r["output"] for r in qa_for_clip(clip, random.Random(0))}

    assert answers(DOG)["asr_none"] == answers(PIANO)["asr_none"] == NO_SPEECH
    assert answers(SPEECH)["asr"] == SPEECH["labels"]["text"] and answers(SPEECH)["background_none"] == ONLY_THE_VOICE
    assert "asr_none" not in answers(MIX) and "background_none" not in answers(MIX)
    recorded_speech = dict(DOG, labels={"label": "speech", "sound_labels": ["speech"]})
    assert "asr_none" not in answers(recorded_speech)  # words no one transcribed are not "no speech"
    assert PHRASINGS["asr_none"] == PHRASINGS["asr"] and len(set(PHRASINGS["asr"])) >= 60
