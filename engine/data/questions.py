"""Template question-answer pairs from a clip's labels, in the Open-ASQA record style.

Closed-ended tasks have several phrasings and short answers in one fixed format; open-ended ones get a
caption-like answer built from the labels. Every record:
  {"instruction", "input", "audio_id", "dataset", "task", "output", "labels", "split"}
"input" holds the transcript placeholder: the known text for speech, "" otherwise.
"""

from __future__ import annotations

import random
from typing import Any

from .labels import CATEGORY_PHRASE, LABEL_CATEGORY, LABEL_PHRASE

# "What is said?" in many words: with 14 fixed phrasings the model learned those and answered others with a
# caption ("What is said?" -> "Weary, male; no squeaking"). Who speaks x how the question is put, plus a few free
# ones; engine.eval.tasks.ASKED_FOR_WORDS stays out (tests/test_eval.py), so the eval still asks untrained words.
_SPEAKERS = ("the speaker", "the person", "the voice", "the narrator", "the announcer", "the man or woman",
             "the person in the recording")
_ASKING_FOR_WORDS = ("What does {} say?", "What did {} say?", "What is {} saying?", "Tell me what {} says.",
                     "Quote what {} said.", "Write down exactly what {} says.", "Which words does {} use?")
SPOKEN_WORDS_QUESTIONS: tuple[str, ...] = (
    "Can you identify the spoken text?",
    "Transcribe the speech.",
    "Write down what is said.",
    "What words are spoken?",
    "Repeat exactly what the person said.",
    "What did you hear them say?",
    "Quote the speech.",
    "Tell me the words in the recording.",
    "What is being said in this clip?",
    "Give a transcript of the audio.",
    "Which sentence is spoken?",
    "What does the voice say? Answer with the words only.",
    "Could you write out the speech for me?",
    "What's being said?",
    "What was said in the recording?",
    "Transcribe this, please.",
    "What is the spoken message?",
    "Type out the words you hear.",
    "What is spoken here?",
    "Any words? Quote them.",
    "What does it say?",
    *(form.format(who) for form in _ASKING_FOR_WORDS for who in _SPEAKERS),
)
BACKGROUND_QUESTIONS = (
    "What can be heard besides the speech?",
    "What sound is in the background?",
    "Apart from the voice, what sound event occurs?",
    "Besides the talking, what else do you hear?",
    "What noise is there behind the voice?",
    "Which sound can be heard under the speech?",
    "What can you hear besides the speech?",
    "Is there any other sound apart from the voice?",
)
NO_SPEECH = "No one speaks in this recording."
ONLY_THE_VOICE = "Nothing else: only the voice."

PHRASINGS: dict[str, tuple[str, ...]] = {
    "cla_label": (
        "What sound is this?",
        "Classify the sound event.",
        "What is the sound event in the audio?",
        "Identify the sound.",
        "Which sound event can be heard? Answer with a label.",
        "What kind of sound is in this recording?",
        "What do you hear?",
        "Name the sound.",
        "What is making this noise?",
        "Which sound is this? Answer in a few words.",
        "What was that sound?",
    ),
    "cla_category": (
        "What kind of source made this sound? Answer with one word.",
        "Is this a human, animal, nature, vehicle, impact, household or musical sound?",
        "Which category does this sound belong to?",
    ),
    "speech_presence": (
        "Is there speech in the audio?",
        "Is anyone talking in this recording?",
        "Does the audio contain human speech?",
    ),
    "gender": (
        "What is the gender of the speaker?",
        "Is the speaker male or female?",
        "Is the voice male or female?",
        "Is it a man or a woman speaking?",
        "Who is talking, a man or a woman?",
        "Male or female voice?",
        "Does a man or a woman speak here?",
    ),
    "asr": SPOKEN_WORDS_QUESTIONS,
    "asr_none": SPOKEN_WORDS_QUESTIONS,
    "speech_rate": (
        "How fast is the speaker talking? Answer slow, normal or fast.",
        "Is the speaking rate slow, normal or fast?",
        "Describe the speed of the speech in one word.",
    ),
    "pitch": (
        "Is the speaker's pitch low, normal or high?",
        "How high is the voice? Answer low, normal or high.",
        "What is the pitch level of the speaker?",
    ),
    "language": (
        "What language is spoken?",
        "Which language does the speaker use?",
        "Identify the language of the speech.",
    ),
    "accent": (
        "What accent does the speaker have?",
        "Which English accent is this?",
    ),
    "background_event": BACKGROUND_QUESTIONS,
    "background_none": BACKGROUND_QUESTIONS,
    "event_time": (
        "When does the background sound occur? Answer with start and end time.",
        "At what time does the sound event happen?",
        "Give the time span of the sound event.",
    ),
    "loudness": (
        "How loud is the background sound compared to the speech?",
        "Is the background sound louder or quieter than the voice?",
    ),
    "duration": (
        "How long is the audio?",
        "What is the duration of this clip in seconds?",
    ),
    "instrument": (
        "What instrument is playing?",
        "Which musical instrument can be heard?",
        "Identify the instrument.",
        "Which instrument is this?",
        "What is the instrument in this music?",
        "Name the instrument you hear.",
    ),
    "music_key": (
        "What key is the music in?",
        "Name the key and mode of this piece.",
    ),
    "tempo": (
        "Is the tempo slow, moderate or fast?",
        "How fast is the music? Answer slow, moderate or fast.",
    ),
    "open_caption": (
        "Describe the audio.",
        "What is happening in this audio?",
        "Write a short caption for this recording.",
        "Describe what you hear.",
    ),
    "open_source": (
        "What might be producing this sound?",
        "What is the source of this sound, and what kind of sound is it?",
    ),
    "open_voice": (
        "Describe the speaker's voice.",
        "What can you tell about the speaker?",
    ),
    "open_scene": (
        "Describe the scene in this audio, both the speech and the other sounds.",
        "What is said, and what else can be heard?",
    ),
}

DATASETS = {"event": "debian_events", "speech": "espeak_speech", "music": "fluidsynth_music",
            "mix": "speech_event_mix"}


def label_answer(label: str) -> str:
    return label[:1].upper() + label[1:]


def loudness_answer(snr_db: float) -> str:
    if snr_db <= 2:
        return "About as loud as the speech"
    if snr_db <= 7:
        return "Slightly quieter than the speech"
    if snr_db <= 15:
        return "Quieter than the speech"
    return "Much quieter than the speech"


def _voice_phrase(lab: dict[str, Any]) -> str:
    pace = {"slow": "slowly", "normal": "at a normal pace", "fast": "quickly"}[lab["rate"]]
    pitch = {"low": "a low", "normal": "a medium", "high": "a high"}[lab["pitch"]]
    return f"A {lab['gender']} voice with {pitch} pitch speaks {lab['language']} {pace}"


PATTERN_PHRASE = {"scale": "a scale", "arpeggio": "arpeggios", "chords": "a chord progression",
                  "melody": "a short melody"}


def qa_for_clip(clip: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """All template QA records for one clip (see the module docstring)."""
    kind, lab = clip["kind"], clip["labels"]
    pairs: list[tuple[str, str]] = []  # (task, answer)
    duration = f"{clip['duration']:.1f} seconds"
    if kind == "event":
        label = lab["label"]
        phrase = LABEL_PHRASE[label]
        category = LABEL_CATEGORY[label]
        pairs += [
            ("cla_label", label_answer(label)),
            ("cla_category", label_answer(category)),
            ("speech_presence", "Yes" if label == "speech" else "No"),
            ("duration", duration),
            ("open_caption", f"The sound of {phrase}, lasting about {duration}."),
            ("open_source", f"It is {CATEGORY_PHRASE[category]}: the sound of {phrase}."),
        ]
        if category != "human":  # human sounds may hold words no one transcribed (recorded speech, chatter)
            pairs.append(("asr_none", NO_SPEECH))
    elif kind == "speech":
        pairs += [
            ("speech_presence", "Yes"),
            ("gender", label_answer(lab["gender"])),
            ("asr", lab["text"]),
            ("speech_rate", label_answer(lab["rate"])),
            ("pitch", label_answer(lab["pitch"])),
            ("language", lab["language"]),
            ("open_voice", f"{_voice_phrase(lab)}."),
            ("open_caption", f"{_voice_phrase(lab)}, saying: \"{lab['text']}\""),
            ("background_none", ONLY_THE_VOICE),
            ("open_scene", f"A {lab['gender']} speaker says \"{lab['text']}\", and nothing else can be heard."),
        ]
        if lab.get("accent") and lab["language"] == "English":
            pairs.append(("accent", f"{lab['accent']} English"))
    elif kind == "music":
        pairs += [
            ("cla_label", "Music"),
            ("speech_presence", "No"),
            ("instrument", label_answer(lab["instrument"])),
            ("music_key", f"{lab['key']} {lab['mode']}"),
            ("tempo", label_answer(lab["tempo"])),
            ("asr_none", NO_SPEECH),
            ("duration", duration),
            ("open_caption", f"A {lab['instrument']} plays {PATTERN_PHRASE[lab['pattern']]} in {lab['key']} "
                             f"{lab['mode']} at about {lab['tempo_bpm']} beats per minute."),
        ]
    elif kind == "mix":
        event = lab["event"]
        phrase = LABEL_PHRASE[event]
        span = f"from {lab['event_start']:.1f} s to {lab['event_end']:.1f} s"
        pairs += [
            ("cla_label", "; ".join(label_answer(x) for x in lab["sound_labels"])),
            ("background_event", label_answer(event)),
            ("asr", lab["text"]),
            ("gender", label_answer(lab["gender"])),
            ("event_time", f"{label_answer(event)}, {span}"),
            ("loudness", loudness_answer(lab["snr_db"])),
            ("open_scene", f"A {lab['gender']} speaker says \"{lab['text']}\" while the sound of {phrase} "
                           f"can be heard {span}."),
            ("open_caption", f"Speech by a {lab['gender']} speaker with the sound of {phrase} in the background."),
        ]
    else:
        raise ValueError(f"unknown clip kind {kind!r}")
    transcript = lab.get("text", "") if kind in ("speech", "mix") else ""
    return [
        {
            "instruction": rng.choice(PHRASINGS[task]),
            "input": transcript,
            "audio_id": clip["audio_id"],
            "dataset": DATASETS[kind],
            "task": task,
            "output": answer,
            "labels": lab,
            "split": clip["split"],
        }
        for task, answer in pairs
    ]
