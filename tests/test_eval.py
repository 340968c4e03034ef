"""The evaluation suite: its text scoring, its data provenance, and one small real run of every task on the
real default models, whose RESULTS.md must carry the very numbers of its JSON summary. No mocks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data.denylist import is_held_out
from engine.data.rules import PACKAGES
from engine.eval.sentences import EVAL_SENTENCES
from engine.eval.sets import EVENT_PACKAGES, EvalClip, SOUNDFONT_PACKAGE, check_event_packages, check_sentences
from engine.data.questions import PHRASINGS
from engine.eval.tasks import ASKED_FOR_WORDS, TASKS, average_precision, is_quote
from engine.eval.text import corpus_wer, edit_distance, key_word_recall, normalize, quoted_or_whole, wer_counts

REPO = Path(__file__).resolve().parent.parent
SMALL_RUN_SETS = "flite-speech,deb-events,sf-music,flite-deb-mix"  # new-source sets: built on any machine
SMALL_RUN_MODES = ("cascade", "soft")


def test_normaliser_spells_numbers_and_drops_punctuation():
    assert normalize("The train leaves at 7:30, on the 3rd platform!") == \
        "the train leaves at seven thirty on the third platform"
    assert normalize("Mr. Smith’s café: it's OK [music]") == "mister smiths cafe its okay"
    assert normalize("1205 people") == normalize("one thousand two hundred five people")
    assert normalize("well-known colour") == "well known color"


def test_wer_is_word_edit_distance_over_reference_length():
    assert edit_distance("a b c d".split(), "a x c".split()) == 2  # one substitution, one deletion
    assert wer_counts("The cat sat on the mat.", "the cat sat on mat") == (1, 6)
    assert corpus_wer([("a b c", "a x c d"), ("e f", "e f")]) == pytest.approx(2 / 5)
    assert corpus_wer([("hello there", "Hello, there!")]) == 0.0


def test_answer_helpers():
    assert quoted_or_whole('The speaker says "the ferry leaves" while a dog barks.') == "the ferry leaves"
    assert quoted_or_whole("no quotes here") == "no quotes here"
    assert key_word_recall("The ferry to the island leaves.", "a ferry leaves for the island") == 1.0
    assert key_word_recall("The ferry to the island leaves.", "a boat") == 0.0
    assert is_quote("the ferry leaves at noon", "The ferry leaves at noon.")
    assert not is_quote("Speech by a male speaker with the sound of a hammer in the background.", "8 of spades")
    assert is_quote("the man sat down", "The man sat down.")  # caption words the speaker says count as a quote


def test_asked_for_words_are_no_training_phrasing():
    """asr_asked measures questions put in words the LLM never trained on: no training phrasing may be one."""
    trained = {normalize(q) for phrasings in PHRASINGS.values() for q in phrasings}
    assert not trained & {normalize(q) for q in ASKED_FOR_WORDS}
    clip = EvalClip("sp-0", Path("x.wav"), "speech", {"text": "hello"})
    assert TASKS["asr_asked"].question(clip) in ASKED_FOR_WORDS


def test_average_precision():
    assert average_precision(np.array([0.9, 0.8, 0.1]), np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0.1, 0.9]), np.array([True, False])) == pytest.approx(0.5)


def test_new_sources_are_not_training_or_held_out_sources():
    check_sentences()
    check_event_packages()
    assert len(set(EVAL_SENTENCES)) == len(EVAL_SENTENCES)
    for package in (*EVENT_PACKAGES, SOUNDFONT_PACKAGE):
        assert package not in PACKAGES and not is_held_out(package)


def _markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, dict, str]:
    """Every task, two modes, one clip per new-source set, on the real default models, into a fresh folder and
    a fresh answer cache (nothing reused from earlier runs). Answers are cut at 48 tokens and the engine uses one
    thread, to keep it short and steady on a shared CPU."""
    tmp = tmp_path_factory.mktemp("eval")
    out = tmp / "docs"
    command = [sys.executable, "-m", "engine.eval", "--limit", "1", "--modes", ",".join(SMALL_RUN_MODES),
               "--max-tokens", "48", "--threads", "1", "--sets", SMALL_RUN_SETS, "--json", "--quiet",
               "--out", str(out), "--cache", str(tmp / "cache")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads(done.stdout), done.stderr


def test_report_rows_carry_task_source_n_mode_and_a_number(small_run):
    out, summary, _ = small_run
    text = (out / "RESULTS.md").read_text()
    rows = _markdown_table(text, "Results")
    assert rows
    modes = {*SMALL_RUN_MODES, "whisper", "perception"}
    for row in rows:
        assert row["task"] in (*TASKS, "cost"), row
        assert row["source"] in summary["sets"], row
        assert int(row["n"]) >= 1, row
        assert row["mode"] in modes, row
        assert re.fullmatch(r"-?\d+\.\d{3}", row["value"]), row
    covered = {(r["task"], r["mode"]) for r in rows}
    for task in (*TASKS, "cost"):
        for mode in SMALL_RUN_MODES:
            assert (task, mode) in covered, f"no {task} row in mode {mode}"
    assert ("asr", "whisper") in covered and ("sound", "perception") in covered
    # the run answered every question itself (fresh cache), and says with which models, when
    assert summary["answers"]["generated"] > 0 and summary["answers"]["cached"] == 0
    assert summary["models"]["llm"] in text and summary["models"]["whisper"] in text and summary["date"] in text
    for name, info in summary["sets"].items():
        assert info["source"] in text and info["used"] >= 1


def test_json_summary_numbers_equal_the_report(small_run):
    out, summary, _ = small_run
    text = (out / "RESULTS.md").read_text()
    from_markdown = sorted((r["task"], r["metric"], r["source"], int(r["n"]), r["mode"], float(r["value"]))
                           for r in _markdown_table(text, "Results"))
    from_json = sorted((r["task"], r["metric"], r["source"], r["n"], r["mode"], r["value"]) for r in summary["rows"])
    assert from_markdown == from_json
    assert json.loads((out / "results" / "summary.json").read_text()) == summary
    by_key = {(r["task"], r["source"], r["mode"]): r["value"] for r in summary["rows"] if r["task"] in TASKS
              and r["metric"] in (TASKS[r["task"]].headline, "tagging top-1 accuracy")}
    for row in _markdown_table(text, "Ablation"):
        for mode, cell in row.items():
            if mode in (*SMALL_RUN_MODES, "whisper", "perception") and cell:
                assert float(cell) == by_key[(row["task"], row["source"], mode)], (row, mode)


def test_numbers_come_from_the_audio(small_run):
    """Sanity on real clips: Whisper transcribes clean flite speech well; costs are positive; plots are PNGs."""
    out, summary, _ = small_run
    rows = {(r["task"], r["metric"], r["source"], r["mode"]): r["value"] for r in summary["rows"]}
    assert rows[("asr", "WER", "flite-speech", "whisper")] <= 0.5
    # "what is said?" is scored over a background sound too: the app's example is speech over rain
    for mode in (*SMALL_RUN_MODES, "whisper"):
        assert ("asr", "WER", "flite-deb-mix", mode) in rows
    for mode in SMALL_RUN_MODES:
        assert rows[("cost", "latency per answer (s)", "flite-deb-mix", mode)] > 0
        assert rows[("cost", "peak RSS (MB)", "flite-deb-mix", mode)] > 100
        assert rows[("instruction", "follows instruction", "flite-deb-mix", mode)] in (0.0, 1.0)  # one clip
    # clean flite speech: soft quotes what Whisper heard (SmolLM2 alone, in cascade, often paraphrases: no bound)
    assert rows[("asr", "WER", "flite-speech", "soft")] <= 2 * rows[("asr", "WER", "flite-speech", "whisper")] + 0.2
    for name in ("ablation.png", "cost.png"):
        assert (out / "results" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    details = json.loads((out / "results" / "details.json").read_text())
    assert {d["task"] for d in details} == set(TASKS)
    assert all(isinstance(d["answer"], str) for d in details)


def test_cached_analyses_are_keyed_to_the_perception_model(tmp_path):
    """A cached analysis holds the perception model's tags and voice: another perception file must not reuse it
    (it once did, and RESULTS.md showed a retrained model's answers beside the old model's tags)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from engine.config import EngineConfig
    from engine.eval.run import Runner
    from engine.weights import REPO_WEIGHTS

    shipped = REPO_WEIGHTS / "perception_whisper-base.safetensors"
    other = tmp_path / "perception_other.safetensors"
    tensors = load_file(str(shipped))
    with safe_open(str(shipped), "pt") as f:
        metadata = f.metadata()
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1  # another model: other weights, so another digest
    save_file(tensors, str(other), metadata)
    keys = []
    for perception in (str(shipped), str(other)):
        runner = Runner(EngineConfig(perception=perception), tmp_path / "cache", progress=False)
        keys.append(runner._analysis_key("clip digest"))
        runner.close()
    assert keys[0] != keys[1]
