"""Long recordings: which windows and transcript segments a question gets, and where the ASR cuts its chunks."""

from __future__ import annotations

import numpy as np
import pytest

from engine.asr import CHUNK_SECONDS, Segment, frame_rms, quiet_chunks
from engine.audio import SAMPLE_RATE, windows
from engine.errors import Deadline, StageTimeout
from engine.focus import anchors, choose_windows, nearest_segments

HALF_HOUR = windows(np.zeros(30 * 60 * SAMPLE_RATE, np.float32))
SEGMENTS = [Segment(m * 60 + 5, m * 60 + 8, f"Note {m}. The red lamp is on the table.", 0.9) for m in range(30)]
SEGMENTS.insert(15, Segment(903, 906, "The secret word is pineapple.", 0.9))


@pytest.mark.parametrize("question, expected", [
    ("What is said in the middle of the recording?", 900),
    ("What happens at 12:30?", 750),
    ("What do you hear at 0:25:03?", 1503),
    ("What is said after 90 seconds?", 90),
    ("Which object is named at minute 4?", 240),
    ("How does it begin? What is said at the start?", 0),
    ("What is heard at the end?", 1799),
    ("What is the secret word?", 904.5),  # words that were said there
])
def test_a_question_points_at_a_time(question, expected):
    times = anchors(question, 1800.0, SEGMENTS)
    assert expected in times, times


def test_a_question_without_a_place_points_nowhere():
    assert anchors("Describe the recording.", 1800.0, SEGMENTS) == []


def test_windows_hold_the_asked_place_and_still_cover_the_recording():
    chosen = choose_windows(HALF_HOUR, [904.5], 12)
    starts = [w.start for w in chosen]
    assert len(chosen) == 12 and starts == sorted(starts) and len(set(starts)) == 12
    assert 900 in starts  # the window holding the sentence, and its nearer neighbour
    assert 0 in starts and HALF_HOUR[-1].start in starts  # the spread still spans the whole recording
    assert choose_windows(HALF_HOUR[:5], [10.0], 12) == HALF_HOUR[:5]  # short clips: every window


def test_one_window_goes_where_the_question_points_or_to_the_clearest_sound():
    salience = [0.1] * len(HALF_HOUR)
    salience[42] = 0.9
    assert choose_windows(HALF_HOUR, [904.5], 1, salience) == [HALF_HOUR[90]]
    assert choose_windows(HALF_HOUR, [], 1, salience) == [HALF_HOUR[42]]
    assert choose_windows(HALF_HOUR, [], 1) == [HALF_HOUR[0]]  # no salience: the spread's first window


def test_a_long_transcript_keeps_the_segments_nearest_the_question():
    kept = nearest_segments(SEGMENTS, [904.5], max_chars=200)
    assert any("pineapple" in s.text for s in kept) and len(kept) < len(SEGMENTS)
    assert [s.start for s in kept] == sorted(s.start for s in kept)
    assert nearest_segments(SEGMENTS, [904.5], max_chars=10**6) == SEGMENTS  # fits: all of it
    assert nearest_segments(SEGMENTS, [], max_chars=200)[0] is SEGMENTS[0]  # no place asked: the start


def test_asr_chunks_cut_at_quiet_points():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.3, 95 * SAMPLE_RATE).astype(np.float32)
    for gap in (26.0, 53.0, 75.0):  # quiet half seconds where a cut belongs
        audio[int(gap * SAMPLE_RATE) : int((gap + 0.5) * SAMPLE_RATE)] *= 0.001
    chunks = quiet_chunks(frame_rms(audio), audio.size)
    assert chunks[0][0] == 0 and chunks[-1][1] == audio.size
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))  # contiguous, nothing lost
    assert all(last - first <= CHUNK_SECONDS * SAMPLE_RATE for first, last in chunks)
    cuts = [first / SAMPLE_RATE for first, _ in chunks[1:]]
    assert all(any(g <= c <= g + 0.5 for g in (26.0, 53.0, 75.0)) for c in cuts), cuts
    short = audio[: 20 * SAMPLE_RATE]
    assert quiet_chunks(frame_rms(short), short.size) == [(0, 20 * SAMPLE_RATE)]


def test_a_deadline_says_which_stage_it_stopped():
    with pytest.raises(StageTimeout) as stopped:
        Deadline(1e-9, "analysing the audio").check("transcription")
    message = str(stopped.value)
    assert "\n" not in message and "transcription" in message and "limit" in message
    Deadline(None, "no limit").check("anything")
