"""The prompt: acoustic tokens {A} first (as LTU-AS), then the chat in the GGUF's own template, whose first
user turn carries the question {Q} and what was heard: the transcript {S}, and in `soft` and `tags` modes what
the perception model names: the sound events, the voice, the instrument (a 135M LLM does not learn to name
dozens of sound classes from the acoustic tokens alone in the CPU hours we train; from the heads' words it does)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import Mode
from .llm import LLM, Embeddings, Prompt

PROMPT_FORMAT = "ltu-as-chat/2"  # adapters record it: a change here invalidates trained weights
# a change that keeps trained weights valid but changes answers (the eval's answer cache keys on it): 2 = a clip of
# one window gets its transcript quoted, as in training, even when Whisper cut it into segments
PROMPT_REVISION = 2
SYSTEM = ("You listen to an audio recording and answer questions about its sounds and its speech. "
          "Answer briefly and only from what was heard.")


def describe_audio(mode: Mode, transcript_text: str, timed_transcript: str, events: Sequence[tuple[str, float, float]],
                   windows: Sequence[tuple[float, float]], voice: str = "", instrument: str = "") -> str:
    """The text that tells the LLM what was heard; `events` are (label, start, end) from the perception model,
    `windows` the (start, end) of each block of acoustic tokens in `soft` mode, `voice` and `instrument` the
    perception model's words for the voice and the music ("" when it hears none). `timed_transcript` is for audio
    longer than one window ("" otherwise): training writes the quoted text of one window, so a short clip that
    Whisper cut into segments is quoted too (written with times, a trained LoRA answered "No one speaks")."""
    lines = []
    if mode.acoustic_tokens and len(windows) > 1:
        spans = ", ".join(f"{a:.0f}-{b:.0f} s" for a, b in windows)
        lines.append(f"Audio: {len(windows)} parts of 10 s, in order: {spans}.")
    if mode.heard_words:
        heard = ", ".join(f"{label} ({a:.0f}-{b:.0f} s)" for label, a, b in events)
        lines.append(f"Sounds: {heard or 'none recognised'}.")
        if voice and transcript_text:  # a voice without words to go with it is not written
            lines.append(f"Voice: {voice}.")
        if instrument:
            lines.append(f"Music: {instrument}.")
    if not transcript_text:
        lines.append("Speech: none.")
    elif timed_transcript:
        lines.append(f"Speech:\n{timed_transcript}")
    else:
        lines.append(f'Speech: "{transcript_text}"')
    return "\n".join(lines)


def chat_messages(question: str, history: Sequence[tuple[str, str]], description: str) -> list[dict]:
    """The chat: system, then the turns; what was heard goes with the first question (as LTU-AS's Input)."""
    messages = [{"role": "system", "content": SYSTEM}]
    for i, (q, a) in enumerate([*history, (question, None)]):
        messages.append({"role": "user", "content": f"{q}\n\n{description}" if i == 0 else q})
        if a is not None:
            messages.append({"role": "assistant", "content": a})
    return messages


def build_prompt(llm: LLM, question: str, history: Sequence[tuple[str, str]], description: str,
                 audio_key: str | None = None, audio_tokens: np.ndarray | None = None,
                 reserve: int = 0) -> tuple[Prompt, int]:
    """[acoustic tokens] + chat tokens. The oldest turns are dropped until the prompt leaves `reserve` positions
    free in the context; returns the prompt and how many history turns it kept."""
    history = list(history)
    n_audio = 0 if audio_tokens is None else len(audio_tokens)
    while True:
        tokens = llm.render_chat(chat_messages(question, history, description))
        if n_audio + len(tokens) + reserve <= llm.n_ctx or not history:
            break
        history = history[1:]
    prompt: Prompt = []
    if audio_tokens is not None:
        prompt.append(Embeddings(audio_key or "audio", audio_tokens))
    prompt.append(tokens)
    return prompt, len(history)
