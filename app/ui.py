"""The Gradio Blocks: record or upload a clip, see what was heard, chat about it with streamed answers.

Each browser session has its own `Session` (gr.State): its clip, the engine's AudioContext for it, and the
chat history. The Engine itself is shared (engines.py). Every handler turns engine errors into a readable
status line and a toast; nothing here re-implements a stage of the engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from engine.audio import load_audio
from engine.config import MODES, SamplingOptions
from engine.errors import LtuError
from engine.weights import DEFAULT_LLM

from . import plots
from .engines import (WHISPER_CHOICES, Engines, ModelChoice, check_choice, close_stream, cuda_available,
                      detected_device, installed_llms, llm_label)
from .settings import AppSettings

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
EXAMPLES = [  # (clip, question): one per bundled clip
    ("speech_over_rain.ogg", "What can be heard in this recording, besides the speech?"),
    ("alarm_announcement.ogg", "What should the listener do, and why?"),
    ("dialogue_on_a_train.ogg", "Where does the person want to go, and what is the advice?"),
]
SHOWN_MODES = [m for m in MODES.values() if not m.ablation]  # the picker's modes (the API takes every one)
MODE_HELP = " · ".join(f"{m.name}: {m.help}" for m in SHOWN_MODES)
WAITING = "Upload or record a clip (or pick an example below), then ask about it."


@dataclass
class Session:
    """One browser session's clip, what the engine heard in it, and the chat so far."""

    choice: ModelChoice
    clip: str | None = None
    context: object | None = None  # engine.pipeline.AudioContext of `clip`, made by the Engine for `heard_with`
    heard_with: ModelChoice | None = None
    history: list[tuple[str, str]] = field(default_factory=list)


def messages(history: list[tuple[str, str]]) -> list[dict]:
    """The chat history as Chatbot messages."""
    out: list[dict] = []
    for question, answer in history:
        out += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return out


def adapter_note(engine) -> str:
    """The engine's own warning (the CLI prints the same), for the mode-independent part shown with the clip."""
    if engine is None or engine.trained:
        return ""
    return (f"**Note:** {engine.warnings('soft')[-1]}. Pick mode *tags* (the perception model's words) or "
            "*cascade*, or train an adapter for this LLM (see README).")


def models_markdown(engine, engines: Engines, choice: ModelChoice) -> str:
    if engine is None:
        return f"Models: {choice.describe()} (not loaded yet)."
    m = engine.models
    seconds = engines.load_seconds.get(choice)
    loaded = f", loaded in {seconds:.1f} s" if seconds else ""
    return (f"Models: Whisper `{m['whisper']}`, LLM `{m['llm']}`, adapter `{Path(m['adapter']).name}` "
            f"({m['adapter_training']}), device `{m['device']}`{loaded}.")


def _escape(text: str) -> str:
    """Text shown as Markdown as it is: no tags, no emphasis (intraword underscores are already literal)."""
    return text.replace("<", "&lt;").replace("*", "\\*").replace("`", "'")


def heard_markdown(context) -> str:
    """Language, duration and the timed transcript."""
    t = context.transcript
    head = f"**Language:** `{t.language}` · **Duration:** {context.duration:.1f} s"
    if context.voice and t.text:
        head += f" · **Voice:** {context.voice.describe()}"
    if context.instrument:
        head += f" · **Music:** {context.instrument}"
    if not t.segments:
        return head + "\n\n*(no speech recognised)*"
    lines = "\n".join(f"- `{s.start:5.1f}–{s.end:.1f} s` {_escape(s.text)}" for s in t.segments)
    return f"{head}\n\n{lines}"


def _status_error(error: Exception) -> str:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    gr.Warning(message)
    return f"⚠️ **{_escape(message)}**"


class App:
    """The handlers, bound to the shared engines and the server settings."""

    def __init__(self, engines: Engines, settings: AppSettings):
        self.engines = engines
        self.settings = settings

    # -- the clip -------------------------------------------------------------------------------------------
    def listen(self, session: Session) -> dict:
        """Analyze the session's clip with its engine; returns what the page shows about it."""
        engine = self.engines.get(session.choice)
        clock = time.perf_counter()
        samples = load_audio(session.clip, self.settings.max_duration)
        decode = time.perf_counter() - clock
        context = engine.analyze(samples)
        context.timings["decode"] = decode
        session.context, session.heard_with, session.history = context, session.choice, []
        events = [(e.label, e.score, e.start, e.end) for e in context.events]
        image = plots.overview(samples, [(s.start, s.end, s.text) for s in context.transcript.segments], events)
        timings = context.timings
        status = (f"Heard {context.duration:.1f} s in {sum(timings.values()):.1f} s (ASR {timings['asr']:.1f} s, "
                  f"encoder {timings['encoder']:.1f} s). Ask about it below.")
        details = {**context.to_dict(), "timings": {k: round(v, 3) for k, v in timings.items()},
                   "models": engine.models, "trained": engine.trained}
        return {"status": status, "image": image, "heard": heard_markdown(context),
                "events": plots.events_table(events), "details": details,
                "note": adapter_note(engine) or "".join(f"**Note:** {w}." for w in engine.warnings("soft", context))}

    def on_clip(self, clip: str | None, session: Session) -> Iterator[tuple]:
        """A new clip (upload, recording or example): analyze it and start a fresh chat."""
        session.clip, session.context, session.heard_with, session.history = clip, None, None, []
        empty = (None, "", plots.events_table([]), {}, [])
        if not clip:
            yield session, WAITING, *empty, gr.skip()
            return
        yield session, "Listening…", *empty, gr.skip()
        try:
            shown = self.listen(session)
        except LtuError as error:
            session.clip = None
            yield session, _status_error(error), None, "", plots.events_table([]), {"error": str(error)}, [], gr.skip()
            return
        yield (session, shown["status"], shown["image"], shown["heard"], shown["events"], shown["details"], [],
               shown["note"])

    # -- the chat ---------------------------------------------------------------------------------------------
    def on_ask(self, question: str, session: Session, mode: str, temperature: float,
               max_tokens: float) -> Iterator[tuple]:
        """Stream the answer into the chat; the question box empties while it streams."""
        question = (question or "").strip()
        if not question:
            yield session, messages(session.history), "", _status_error(ValueError("Type a question first."))
            return
        if session.clip is None:
            yield session, messages(session.history), question, _status_error(ValueError(WAITING))
            return
        try:
            if session.context is None or session.heard_with != session.choice:  # models changed since
                self.listen(session)
            engine = self.engines.get(session.choice)
            sampling = SamplingOptions(temperature=float(temperature), max_tokens=int(max_tokens),
                                       timeout=self.settings.answer_timeout)
            stream = engine.ask(session.context, question, session.history, mode=mode, sampling=sampling)
        except (LtuError, ValueError) as error:
            yield session, messages(session.history), question, _status_error(error)
            return
        chat = messages(session.history) + [{"role": "user", "content": question},
                                            {"role": "assistant", "content": ""}]
        yield session, chat, "", "Thinking…"
        pieces = iter(stream)
        try:
            for piece in pieces:
                chat[-1]["content"] += piece
                yield session, chat, "", "Answering…"
        except LtuError as error:
            yield session, chat, "", _status_error(error)
            return
        finally:
            close_stream(stream, pieces)
        answer = stream.text.strip()
        session.history.append((question, answer))
        chat[-1]["content"] = answer
        s = stream.stats
        yield session, chat, "", (f"answer {len(session.history)} · {mode} · {s.generated_tokens} tokens at "
                                  f"{s.tokens_per_second:.1f} tok/s · first token after "
                                  f"{s.first_token_seconds:.2f} s · {s.decoded_units} of {s.prompt_units} prompt "
                                  "positions decoded")

    def on_clear(self, session: Session) -> tuple:
        session.history = []
        return session, [], "Chat cleared; the clip stays. Ask a new question."

    # -- the models ---------------------------------------------------------------------------------------------
    def on_models(self, whisper: str, llm: str, device: str, gpu_layers: float | None,
                  session: Session) -> Iterator[tuple]:
        """Switch this session to other models (loading them once), then re-analyze its clip with them."""
        keep = (gr.skip(),) * 7
        try:
            choice = check_choice(whisper, llm, device, gpu_layers, self.settings.custom_llm)
        except LtuError as error:
            yield session, _status_error(error), *keep
            return
        yield session, f"Loading {choice.describe()}…", *keep
        try:
            engine = self.engines.get(choice)
        except LtuError as error:
            yield session, _status_error(error), *keep
            return
        session.choice = choice
        info = models_markdown(engine, self.engines, choice)
        if session.clip is None:
            yield session, info, adapter_note(engine), *keep[1:]
            return
        try:
            shown = self.listen(session)
        except LtuError as error:
            yield session, info, adapter_note(engine), _status_error(error), *keep[2:]
            return
        yield (session, info, shown["note"], shown["status"], shown["image"], shown["heard"], shown["events"],
               shown["details"], [])

    def on_page(self, session: Session) -> tuple:
        engine = self.engines.get(session.choice) if self.engines.is_loaded(session.choice) else None
        return models_markdown(engine, self.engines, session.choice), adapter_note(engine)


def build(engines: Engines, settings: AppSettings) -> gr.Blocks:
    """The Blocks, with the queue set up; app.py mounts and serves it."""
    app = App(engines, settings)
    devices = ["auto", "cpu", *(["cuda"] if cuda_available() else [])]
    with gr.Blocks(title="LTU-AS: listen, think, understand", analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as demo:
        session = gr.State(Session(engines.default))
        gr.Markdown("# LTU-AS: ask about audio\nSpeech and sounds heard together, answered by a local LLM, offline.")
        note = gr.Markdown(label="note", elem_id="adapter-note")
        with gr.Row():
            with gr.Column(scale=5):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="clip",
                                 buttons=["download"], elem_id="clip")
                status = gr.Markdown(WAITING, label="status", elem_id="status")
                image = gr.Image(label="overview", interactive=False,
                                 format="png", elem_id="overview", buttons=["download", "fullscreen"])
                with gr.Row():
                    heard = gr.Markdown(label="transcript", elem_id="transcript")
                    events = gr.BarPlot(plots.events_table([]), x="event", y="score", y_lim=[0, 1],
                                        label="events", title="Sound events", sort="-y", height=220, elem_id="events",
                                        x_label_angle=-30)
                with gr.Accordion("Details (JSON)", open=False):
                    details = gr.JSON(label="details", elem_id="details")
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(label="chat", height=440, elem_id="chat",
                                     feedback_options=None, buttons=["copy"])
                question = gr.Textbox(label="question", placeholder="Ask about the clip, e.g. what is happening?",
                                      show_label=False,
                                      elem_id="question", submit_btn="Ask")
                answer_status = gr.Markdown(label="answer_status", elem_id="answer-status")
                with gr.Row():
                    mode = gr.Radio([m.name for m in SHOWN_MODES], value="soft", label="Mode", info=MODE_HELP)
                    clear = gr.Button("Clear chat", variant="secondary", size="sm", elem_id="clear", scale=0)
                with gr.Accordion("Settings", open=False):
                    temperature = gr.Slider(0.0, 1.5, value=SamplingOptions.temperature, step=0.05,
                                            label="Temperature")
                    max_tokens = gr.Slider(16, 1024, value=SamplingOptions.max_tokens, step=16,
                                           label="Max tokens")
                    llm = gr.Dropdown([(llm_label(p), p.name) for p in installed_llms()], value=DEFAULT_LLM,
                                      label="LLM", allow_custom_value=settings.custom_llm, elem_id="llm",
                                      info=("installed here (more: `python -m engine weights --get NAME`)"
                                            + ("; or type the path of a local GGUF file" if settings.custom_llm
                                               else "")))
                    with gr.Row():
                        whisper = gr.Dropdown(list(WHISPER_CHOICES), value=engines.default.whisper,
                                              label="Whisper")
                        device = gr.Dropdown(devices, value="auto", label="Device",
                                             info=f"detected: {detected_device()}")
                        gpu_layers = gr.Number(None, precision=0, label="GPU layers",
                                               info="empty: all on CUDA, none on CPU; -1 all")
                    load = gr.Button("Load these models", elem_id="load-models")
                    models_info = gr.Markdown(label="models", elem_id="models")
        gr.Examples([[str(EXAMPLES_DIR / clip), q] for clip, q in EXAMPLES if (EXAMPLES_DIR / clip).is_file()],
                    inputs=[audio, question], label="Example clips and questions", cache_examples=False)

        shown = [status, image, heard, events, details, chatbot]
        limits = {"concurrency_limit": settings.concurrency}
        audio.change(app.on_clip, [audio, session], [session, *shown, note], api_name="analyze",
                     concurrency_id="listen", **limits)
        ask = dict(fn=app.on_ask, inputs=[question, session, mode, temperature, max_tokens],
                   outputs=[session, chatbot, question, answer_status], concurrency_id="answer", **limits)
        question.submit(api_name="ask", **ask)
        clear.click(app.on_clear, [session], [session, chatbot, answer_status], api_name="clear", queue=False)
        chatbot.clear(app.on_clear, [session], [session, chatbot, answer_status], api_visibility="private",
                      queue=False)  # the chat's own trash button
        load.click(app.on_models, [whisper, llm, device, gpu_layers, session],
                   [session, models_info, note, *shown], api_name="load_models", concurrency_id="listen", **limits)
        demo.load(app.on_page, [session], [models_info, note], api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.max_queue)
    return demo
