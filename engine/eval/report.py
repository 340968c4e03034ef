"""docs/RESULTS.md, the plots and the JSON summary, all from one `Results`; never written by hand."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections import defaultdict
from pathlib import Path

from .. import native
from . import tasks as task_rules
from ..config import MODES
from .run import Results, Row
from .tasks import TASKS

REFERENCE_MODES = ("whisper", "perception")  # the listening stages' own outputs, beside the LLM's answers
PAPER_DIFFERENCES = (
    "Models: Whisper base and SmolLM2-135M-Instruct (Q4_1, llama.cpp) instead of Whisper large and LLaMA-7B; "
    "the TLTR/projector layout and the 25 acoustic tokens per 10 s window are LTU-AS's.",
    "Answer to label: cosine similarity of all-MiniLM-L6-v2 sentence embeddings instead of OpenAI "
    "text-embedding-ada-002 (the same protocol otherwise: closest class name wins).",
    "Instruction following: stated rules (non-empty, complete, no template echo, on topic by embedding cosine) "
    "instead of a GPT-4 judge (the paper: > 95 % judged as following). The rules are stricter about truncation "
    "(an answer stopped by the token limit fails) and looser about content (on topic is not correct).",
    "Data: synthetic and game-sound clips built here (espeak-ng/flite speech, Debian sound packages, rendered "
    "MIDI) instead of LibriSpeech, ESC-50, VoxCeleb, GTZAN and the other paper benchmarks; the held-out corpora "
    "(shared/NOTES-data.md) are measured by someone else and are never touched here.",
    "Joint audio+speech: scored by rules (key-word recall of the speech, the sound by embedding) on speech "
    "mixed over one sound event, not by human or GPT judgement on real recordings.",
    "Gender and speaking rate come from the TTS voice and its rate setting (synthetic voices: one female flite "
    "voice), not from recorded speakers.",
)


def fmt(value: float) -> str:
    return f"{round(float(value), 3):.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def git_version(repo: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def summary(results: Results, command: str, code: str) -> dict:
    return {"date": results.date, "command": command, "code": code, "models": results.models,
            "identity": results.identity, "settings": results.settings, "sets": results.sets,
            "answers": {"generated": results.answered, "cached": results.cached},
            "rows": [r.to_dict() for r in results.rows], "notes": results.notes}


def _mode_order(results: Results) -> list[str]:
    seen = {r.mode for r in results.rows}
    return [m for m in (*MODES, *REFERENCE_MODES) if m in seen]


def ablation(results: Results) -> tuple[list[str], list[list[str]]]:
    """Headline metric of each task per source, one column per mode: the paper's ablation table."""
    modes = _mode_order(results)
    cells: dict[tuple[str, str, str], dict[str, Row]] = defaultdict(dict)
    for r in results.rows:
        if r.task in TASKS and (r.metric == TASKS[r.task].headline or (r.task == "sound" and r.mode == "perception"
                                                                        and r.metric == "tagging top-1 accuracy")):
            cells[(r.task, TASKS[r.task].headline, r.source)][r.mode] = r
    rows = []
    for (task, metric, source), by_mode in cells.items():
        if set(by_mode) <= set(REFERENCE_MODES):  # the perception model on a set the task itself does not use
            continue
        n = max(r.n for r in by_mode.values())
        note = "higher is better" if TASKS[task].higher_is_better else "lower is better"
        if TASKS[task].chance is not None:
            note += f"; chance {TASKS[task].chance:.3f}"
        rows.append([task, f"{metric} ({note})", source, str(n)] +
                    [fmt(by_mode[m].value) if m in by_mode else "" for m in modes])
    return ["task", "metric", "source", "n", *modes], rows


def plot(results: Results, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    colours = {mode: matplotlib.colors.to_hex(c) for mode, c in zip((*MODES, *REFERENCE_MODES), plt.cm.tab10.colors)}
    header, rows = ablation(results)
    modes = header[4:]
    if rows:
        tasks = list(dict.fromkeys(r[0] for r in rows))
        fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.6), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            mine = [r for r in rows if r[0] == task]
            width = 0.8 / max(1, len(modes))
            for j, mode in enumerate(modes):
                xs = [i + j * width for i, r in enumerate(mine) if r[4 + j]]
                ys = [float(r[4 + j]) for r in mine if r[4 + j]]
                if not xs:
                    continue
                ax.bar(xs, ys, width, color=[colours[mode]] * len(xs), label=mode)
                for x, y in zip(xs, ys):
                    ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=6)
            if TASKS[task].chance is not None:
                ax.axhline(TASKS[task].chance, color="grey", linestyle="--", linewidth=0.8, label="chance")
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(mine))])
            ax.set_xticklabels([f"{r[2]}\nn={r[3]}" for r in mine], fontsize=7)
            ax.set_title(f"{task}: {TASKS[task].headline}", fontsize=9)
            ax.set_ylim(0, 1.1 * max(1.0, *[float(c) for r in mine for c in r[4:] if c]))
        handles, labels = [], []
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
        fig.suptitle(f"LTU-AS evaluation by mode ({results.date[:10]}; WER: lower is better)", fontsize=10)
        fig.tight_layout(rect=(0, 0.08, 1, 0.95))
        fig.savefig(folder / "ablation.png", dpi=110)
        plt.close(fig)
        written.append("ablation.png")
    cost = [r for r in results.rows if r.task == "cost"]
    if cost:
        metrics = list(dict.fromkeys(r.metric for r in cost))
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            mine = [r for r in cost if r.metric == metric]
            ax.bar([r.mode for r in mine], [r.value for r in mine], color=[colours[r.mode] for r in mine])
            for i, r in enumerate(mine):
                ax.text(i, r.value, f"{r.value:.1f}", ha="center", va="bottom", fontsize=7)
            ax.set_title(f"{metric}\n{mine[0].source}, n={mine[0].n}", fontsize=9)
            ax.tick_params(axis="x", labelsize=7, rotation=20)
        fig.tight_layout()
        fig.savefig(folder / "cost.png", dpi=110)
        plt.close(fig)
        written.append("cost.png")
    return written


def _sampling_origin(sampling: dict) -> str:
    from ..config import SamplingOptions

    changed = [k for k, v in dataclasses.asdict(SamplingOptions()).items() if sampling.get(k) != v]
    return "the engine defaults" + (f" except {', '.join(changed)}" if changed else "")


def reliability_lines(saved: dict) -> list[str]:
    """The load test's and the long-recording run's figures (scripts/loadtest.py and scripts/longaudio.py with
    --save write them to docs/results/reliability.json; this report only shows them)."""
    lines = ["", "## Reliability", "",
             "From `docs/results/reliability.json`, written by the commands named below (not by this evaluation)."]
    if "load" in saved:
        r = saved["load"]
        lines += ["", f"**Load** (`{r['command']}`, {r['date']}, commit {r['commit']}, {r['cores']} cores, "
                      f"1-minute load average {r['load_average']} at the end): the live app on loopback; "
                      f"{r['errors']} errors, server {'alive' if r['alive'] else 'DEAD'} afterwards.", ""]
        phases = [("openai", f"OpenAI route, {r['clients']} concurrent clients x {r['requests_per_client']}"),
                  ("gradio_analyze", f"Gradio /analyze, {r['gradio_sessions']} sessions at once"),
                  ("gradio_ask", f"Gradio /ask, {r['gradio_sessions']} sessions at once"),
                  ("soak", f"soak, {r['soak_requests']} sequential requests")]
        lines += _table(["phase", "requests", "errors", "req/s", "p50 (s)", "p95 (s)"],
                        [[label, str(r[k]["requests"]), str(r[k]["errors"]), fmt(r[k]["throughput_per_s"]),
                          fmt(r[k]["p50_s"]), fmt(r[k]["p95_s"])] for k, label in phases if k in r])
        soak = ", ".join(f"{n}: {mb}" for n, mb in r.get("soak_rss_mb", []))
        lines += ["", f"Server RSS: {r['rss_start_mb']:.0f} MB at start, {r['rss_warm_mb']:.0f} MB after the first "
                      f"request, {r['rss_before_soak_mb']:.0f} MB before the soak, {r['rss_end_mb']:.0f} MB at the end; "
                      f"during the soak (requests: MB) {soak}."]
    if "long_audio" in saved:
        r = saved["long_audio"]
        timings = ", ".join(f"{k} {v:.0f} s" for k, v in r["timings"].items())
        lines += ["", f"**Long recording** (`{r['command']}`, {r['date']}, commit {r['commit']}, {r['cores']} cores, "
                      f"1-minute load average {r['load_average']} at the end): {r['minutes']:g} min of pink noise with "
                      f"a spoken note each minute and a secret sentence at {r['secret_at_s']:.0f} s.", "",
                  f"- Analysed in {r['analyze_s']:.0f} s ({timings}); peak RSS {r['peak_rss_mb']} MB, of which the "
                  f"loaded models {r['models_loaded_rss_mb']} MB; {r['windows']} windows of 10 s.",
                  f"- Secret heard at {r['secret_heard_at_s']} s; {r['notes_heard']} of {r['notes_placed']} minute "
                  "notes heard at their time."]
        for a in r["answers"]:
            seen = any(t <= r["secret_at_s"] < t + 10 for t in a["windows"])
            where = (f"acoustic tokens from {len(a['windows'])} windows, {'including' if seen else 'not'} the middle"
                     if a["windows"] else "no acoustic tokens")
            lines.append(f"- [{a['mode']}] {a['question']} -> {json.dumps(a['answer'], ensure_ascii=False)} ({where})")
    return lines


def markdown(results: Results, command: str, code: str, plots: list[str], reliability: dict | None = None) -> str:
    m, ident, s = results.models, results.identity, results.settings
    sp = ident["sampling"]
    lines = [
        "# Results",
        "",
        f"Generated by `{command}` on {results.date} (UTC), code {code}. "
        "Written by the command: do not edit; rerun it.",
        "",
        "## Setup",
        "",
        f"- Models (`engine.models`): Whisper `{m.get('whisper')}` ({m.get('whisper_source')}); LLM `{m.get('llm')}` "
        f"(sha256 {m.get('llm_sha256')}); adapter `{m.get('adapter')}` (training: {m.get('adapter_training')}, "
        f"sha256 {ident['adapter_sha256'] or '-'}); LoRA `{m.get('lora')}`; perception `{m.get('perception')}` "
        f"(training: {m.get('perception_training')}, sha256 {ident.get('perception_sha256') or '-'}); "
        f"device {m.get('device')}; "
        f"prompt format `{m.get('prompt_format')}` revision {ident.get('prompt_revision')}.",
        f"- Sampling: {_sampling_origin(sp)}: temperature {sp['temperature']}, top-p {sp['top_p']}, "
        f"top-k {sp['top_k']}, repetition penalty {sp['repeat_penalty']} over the last {sp['repeat_last_n']} tokens "
        f"of {'the prompt and ' if sp.get('penalize_prompt') else ''}the answer, at most {sp['max_tokens']} tokens, "
        f"with the fixed seed {sp['seed']} for every answer (so reruns give the same text).",
        f"- Clips: the first {s['limit'] if s['limit'] is not None else 'all'} of each set's plan per task "
        "(`--limit`; plans interleave the classes, so a short prefix covers many of them).",
        f"- Answer to class: {s['embedder']}, cosine similarity.",
        f"- Answers: {results.answered} generated in this run, {results.cached} from the cache (same model versions, "
        "same question, same clip audio).",
        f"- Machine: {native.cpu().summary()}; {s['threads']}, "
        f"1-minute load average {s['load_average_at_start']} at the start and "
        f"{s['load_average_at_end']} at the end of the run (other work shares the CPU: latencies are upper bounds); "
        "cost numbers are from this run.",
        "",
        "## Evaluation data",
        "",
        "Nothing here was trained on. Validation sets: the data builder's validation split (split by source "
        "recording or sentence; training only logged its loss). New-source sets: sources no training clip came "
        "from. Held-out sources (shared/NOTES-data.md) are not used at all.",
        "",
    ]
    lines += _table(["set", "origin", "kind", "clips used", "available", "source"],
                    [[name, d["origin"], d["kind"], str(d["used"]), str(d["available"]), d["source"]]
                     for name, d in results.sets.items()])
    header, rows = ablation(results)
    if rows:
        lines += ["", "## Ablation", "",
                  "The headline metric of each task by mode, as in the paper's ablation (the modes' inputs are "
                  "under Results: soft against tags is what the acoustic tokens add to the perception model's "
                  "words; tokens, which has no such words, is what the tokens carry alone). With n clips one "
                  "clip moves an accuracy by 1/n: small-n differences are noise.", ""]
        lines += _table(header, rows)
    lines += ["", "## Results", "",
              "One row per number: task, metric, evaluation set (source), clips scored (n), mode. Modes: "
              + "; ".join(f"`{m.name}` = {m.inputs}" for m in MODES.values())
              + "; `whisper` = Whisper's own transcript; `perception` = the perception model's own heads (sound: window_tags; gender, rate: its voice reading; instrument: its music reading).",
              ""]
    lines += _table(["task", "metric", "source", "n", "mode", "value"],
                    [[r.task, r.metric, r.source, str(r.n), r.mode, fmt(r.value)] for r in results.rows])
    cost = [r for r in results.rows if r.task == "cost"]
    if cost:
        metrics = list(dict.fromkeys(r.metric for r in cost))
        by_mode: dict[str, dict[str, Row]] = defaultdict(dict)
        for r in cost:
            by_mode[r.mode][r.metric] = r
        lines += ["", "## Cost", "",
                  f"Measured in this run on {cost[0].source} clips after one warm-up answer per mode. Latency per "
                  "answer = the listening stages the mode needs (cascade: decode + ASR; the others also the Whisper "
                  "encoder + TLTR) + prefill + generation. Peak RSS = the process's resident-memory high-water mark, "
                  "reset before each mode (all models stay loaded, as in the app).", ""]
        lines += _table(["mode", "inputs", "n", *metrics],
                        [[mode, MODES[mode].inputs, str(next(iter(v.values())).n),
                          *[fmt(v[k].value) if k in v else "" for k in metrics]] for mode, v in by_mode.items()])
    if reliability:
        lines += reliability_lines(reliability)
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p[:-4]}](results/{p})" for p in plots]
    lines += ["", "## Scoring rules", "", "```", task_rules.__doc__.split("\n\n", 1)[1].strip(), "```",
              "", "## Differences from the LTU-AS paper's protocol", ""]
    lines += [f"- {d}" for d in PAPER_DIFFERENCES]
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results.notes]
    lines += ["", "Per-answer details (question, answer, what each rule decided): `docs/results/details.json`; "
              "the same numbers for machines: `docs/results/summary.json`.", ""]
    return "\n".join(lines)


def write(results: Results, out: Path, command: str, repo: Path) -> dict:
    code = git_version(repo)
    folder = out / "results"
    plots = plot(results, folder)
    data = summary(results, command, code)
    (folder / "summary.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    (folder / "details.json").write_text(json.dumps(results.details, indent=1, ensure_ascii=False, default=str))
    saved = folder / "reliability.json"
    reliability = json.loads(saved.read_text()) if saved.is_file() else None
    (out / "RESULTS.md").write_text(markdown(results, command, code, plots, reliability))
    return data
