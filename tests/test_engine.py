"""The engine on the real default models and real audio."""

from __future__ import annotations

import re

import clips
import numpy as np
import pytest

from engine import audio as audio_io
from engine.config import MODES, EngineConfig, SamplingOptions
from engine.errors import ModelError
from engine.features import TOKENS_PER_WINDOW
from engine.llm import LLM, Embeddings, GenerationStats, ends_in_loop, sample_token
from engine.prompt import SYSTEM


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def _chat_tokens(llm: LLM) -> list[int]:
    return llm.render_chat([{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": "What sound does a cat make?"}])


@pytest.mark.parametrize("lora", [False, True])
def test_embedding_input_equals_token_input(engine, lora):
    """The guard of the whole audio path: token-embedding rows fed as vectors give the tokens' own logits, with
    the shipped LoRA and without. Both sides decode the same batches (all but the last position, then the last):
    with a LoRA, llama.cpp's logits depend on how positions are split into batches (0.41 apart when measured),
    which is not what this guards."""
    llm = engine.llm
    llm.use_session(f"guard-lora-{lora}", lora=lora)
    tokens = _chat_tokens(llm)
    llm.reset()
    llm.prefill([tokens[:-1]])
    llm.prefill([tokens])  # the cached prefix is kept: only the last token is decoded
    by_tokens = llm._last_logits().copy()
    rows = llm.token_embeddings(tokens[:-1])
    by_vectors = llm.next_token_logits([Embeddings("rows", rows), tokens[-1:]])
    diff = float(np.abs(by_tokens - by_vectors).max())
    print(f"max abs logit difference, tokens vs embedding rows ({len(tokens)} positions, LoRA {lora}): {diff}")
    assert diff <= 1e-4
    assert int(np.argmax(by_tokens)) == int(np.argmax(by_vectors))


def test_embedding_width_is_checked(engine):
    tokens = _chat_tokens(engine.llm)
    with pytest.raises(ModelError, match="width"):
        engine.llm.next_token_logits([Embeddings("bad", np.zeros((3, 17), np.float32)), tokens])


def test_end_to_end_speech_over_sound(engine, mixed_clip):
    context = engine.analyze(mixed_clip)
    heard = _words(context.transcript.text)
    assert {"quick", "brown", "fox", "lazy", "dog"} <= heard, context.transcript.text
    assert context.transcript.language == "en"
    assert context.transcript.segments and context.transcript.segments[-1].end <= 10.5
    assert context.window_tokens.shape == (1, TOKENS_PER_WINDOW, engine.llm.n_embd)
    assert context.window_tags.shape == (1, len(engine.sound_labels)) and len(engine.sound_labels) > 50
    assert all(0 <= e.score <= 1 and e.label in engine.sound_labels for e in context.events)
    assert set(context.timings) == {"decode", "asr", "encoder", "tltr"}
    for mode in ("soft", "tags", "cascade"):
        stream = engine.ask(context, "What is said in the recording?", mode=mode)
        pieces = list(stream)
        assert len(pieces) > 1  # streamed, not one block
        assert stream.text.strip() and stream.stats.generated_tokens > 0
        assert stream.timings["first_token"] > 0 and stream.timings["tokens_per_s"] > 0


def test_second_turn_reuses_the_kv_cache(engine, mixed_clip):
    context = engine.analyze(mixed_clip)
    options = SamplingOptions(max_tokens=24)
    engine.llm.reset()
    first = engine.ask(context, "What do you hear?", mode="soft", sampling=options)
    answer = first.read()
    assert first.stats.decoded_units == first.stats.prompt_units  # an empty cache decodes everything
    second = engine.ask(context, "Is someone speaking?", history=[("What do you hear?", answer)], mode="soft",
                        sampling=options)
    second.read()
    print(f"turn 1 decoded {first.stats.decoded_units}; turn 2 decoded {second.stats.decoded_units} "
          f"of {second.stats.prompt_units}")
    assert second.stats.prompt_units > first.stats.prompt_units
    assert second.stats.decoded_units < second.stats.prompt_units - first.stats.prompt_units + 10
    # a different clip must not reuse the first clip's acoustic tokens
    other = engine.analyze(np.random.default_rng(1).normal(0, 0.1, 16000 * 3).astype(np.float32))
    third = engine.ask(other, "What do you hear?", mode="soft", sampling=options)
    third.read()
    assert third.stats.decoded_units == third.stats.prompt_units
    # back to the first clip: its conversation's KV state was parked, not lost
    fourth = engine.ask(context, "Is it loud?", history=[("What do you hear?", answer)], mode="soft", sampling=options)
    fourth.read()
    print(f"back on clip 1 after another clip: decoded {fourth.stats.decoded_units} of {fourth.stats.prompt_units}")
    assert fourth.stats.decoded_units < 20


def test_long_audio_gives_one_block_per_window(engine, speech_clip):
    from engine.audio import load_audio

    speech = load_audio(speech_clip)
    long = np.concatenate([speech, np.zeros(16000 * 12, np.float32), speech])  # ~ 2 sentences, 3 windows
    context = engine.analyze(long)
    assert len(context.windows) == len(context.window_tokens) == -(-long.size // 160000)
    assert len(context.transcript.segments) >= 2
    assert context.transcript.segments[-1].start > 10
    assert len(context.window_loudness) == len(context.windows)
    # soft hears one window (the adapter was trained on one): with no place asked, the loudest
    stream = engine.ask(context, "Describe the recording.", mode="soft", sampling=SamplingOptions(max_tokens=4))
    assert stream.windows == [context.windows[int(np.argmax(context.window_loudness))]]
    assert stream.read() and stream.stats.prompt_units > TOKENS_PER_WINDOW
    assert engine.warnings("soft", context) and not engine.warnings("cascade", context)
    stream = engine.ask(context, "What is said at 0:20?", mode="soft", sampling=SamplingOptions(max_tokens=4))
    assert stream.windows == [context.windows[-1]] and stream.read()


def test_every_stage_stops_at_its_time_limit(engine, speech_clip):
    from engine.audio import load_audio, windows
    from engine.errors import Deadline, StageTimeout

    speech = load_audio(speech_clip)
    spent = Deadline(1e-6, "analysing the audio")
    with pytest.raises(StageTimeout, match="transcription"):
        engine.asr(speech, deadline=spent)
    with pytest.raises(StageTimeout, match="encoder"):
        engine.features.encode(speech, windows(speech), deadline=spent)
    context = engine.analyze(speech)
    stream = engine.ask(context, "Describe the recording.", sampling=SamplingOptions(timeout=1e-6, max_tokens=50))
    stream.read()
    assert stream.stats.stop_reason == "timeout" and stream.stats.generated_tokens == 0


def test_sampling_follows_its_options():
    rng = np.random.default_rng(0)
    logits = np.array([1.0, 5.0, 4.9, -2.0])
    greedy = SamplingOptions(temperature=0)
    assert sample_token(logits, [], greedy, rng) == 1
    assert sample_token(logits, [1], SamplingOptions(temperature=0, repeat_penalty=1.1), rng) == 2
    narrow = SamplingOptions(temperature=1.0, top_k=1)
    assert {sample_token(logits, [], narrow, rng) for _ in range(20)} == {1}
    nucleus = SamplingOptions(temperature=1.0, top_p=0.5)
    assert {sample_token(logits, [], nucleus, rng) for _ in range(20)} == {1}
    wide = SamplingOptions(temperature=1.0, top_p=1.0, top_k=0)
    assert {sample_token(logits, [], wide, rng) for _ in range(300)} >= {1, 2}


def test_a_loop_is_a_span_said_three_times_filling_the_window():
    female = [101, 59] * 12  # "female;" x 12: the runaway answer seen on flite
    assert ends_in_loop(female, 24) and not ends_in_loop(female[:-1], 24) and not ends_in_loop(female, 0)
    assert ends_in_loop([7] + [1, 2, 3, 4, 5, 6, 7, 8] * 3, 24)  # a sentence of 8 tokens, said 3 times
    assert not ends_in_loop([1, 2, 3, 4, 5, 6, 7, 8, 9] * 3, 24)  # 9 tokens: only 2.7 times in the window
    assert not ends_in_loop([1] + [0] * 4 + list(range(20, 39)), 24)  # "10000" then more text


def test_a_looping_answer_stops_at_the_loop(native_ok):
    from engine.weights import resolve_llm

    llm = LLM(resolve_llm(None), n_ctx=512, threads=1)
    prompt = [llm.render_chat([{"role": "user", "content": "List the word 'female' 100 times, separated by "
                                                            "semicolons."}])]
    runs = {}
    for window in (24, 0):
        stats = GenerationStats()
        text = "".join(llm.generate(prompt, SamplingOptions(temperature=0, repeat_penalty=1.0, max_tokens=120,
                                                            loop_window=window), stats))
        runs[window] = (text, stats)
    llm.close()
    (guarded, stats), (unguarded, free) = runs[24], runs[0]
    assert free.stop_reason == "max_tokens" and free.generated_tokens == 120  # the model does loop
    assert stats.stop_reason == "loop" and stats.generated_tokens < 60 and unguarded.startswith(guarded)
    assert guarded.lower().count("female") >= 3


def test_the_repetition_penalty_spares_the_prompt_so_a_quote_comes_back_word_for_word(native_ok):
    """The prompt ends with the transcript; a penalty on the prompt's tokens (llama.cpp's way) pushes the answer to
    "what is said?" off the words: the cards came back as a sum of cards, the kitchen line reworded."""
    from engine.weights import resolve_llm

    said = ["8 of spades, 4 of clubs, 7 of hearts",
            "please turn off the lights in the kitchen before you go to bed tonight"]
    llm = LLM(resolve_llm(None), n_ctx=512, threads=1)

    def answer(sentence: str, penalize_prompt: bool) -> str:
        question = f'Repeat exactly what is said.\n\nSpeech: "{sentence}"'
        prompt = [llm.render_chat([{"role": "user", "content": question}])]
        text = "".join(llm.generate(prompt, SamplingOptions(temperature=0, max_tokens=40,
                                                            penalize_prompt=penalize_prompt)))
        return re.sub(r"[^a-z0-9 ]", "", text.lower())

    spared = [answer(s, False) for s in said]
    penalised = [answer(s, True) for s in said]
    llm.close()
    words = [re.sub(r"[^a-z0-9 ]", "", s) for s in said]
    assert all(w in a for w, a in zip(words, spared)), spared
    assert not all(w in a for w, a in zip(words, penalised)), penalised


def test_events_are_spans_of_windows_above_the_threshold_and_reach_soft_and_tags_prompts():
    from engine.prompt import describe_audio
    from engine.tltr import tagged_events

    tags = np.array([[0.7, 0.2, 0.1], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8]])  # 3 windows x (dog, rain, siren)
    spans = [(0.0, 10.0), (10.0, 20.0), (20.0, 24.5)]
    events = tagged_events(tags, spans, ("dog", "rain", "siren"), threshold=0.25, max_events=5)
    assert [(e.label, e.start, e.end, e.score) for e in events] == [
        ("siren", 10.0, 24.5, 0.8), ("dog", 0.0, 20.0, 0.7)]  # rain never reaches 0.25; siren spans windows 2-3
    assert len(tagged_events(tags, spans, ("dog", "rain", "siren"), 0.25, max_events=1)) == 1
    heard = [(e.label, e.start, e.end) for e in events]
    for mode in ("soft", "tags"):
        assert "Sounds: siren (10-24 s), dog (0-20 s)." in describe_audio(MODES[mode], "hi", "", heard, [(0.0, 10.0)])
    assert "Sounds" not in describe_audio(MODES["cascade"], "hi", "", heard, [])
    # one window: the quoted text, as training writes it; longer audio: the timed segments the pipeline passes
    assert describe_audio(MODES["tags"], "a. b.", "", [], []).endswith('Speech: "a. b."')
    timed = "[0.0-1.0 s] a.\n[12.0-13.0 s] b."
    assert describe_audio(MODES["tags"], "a. b.", timed, [], []).endswith(f"Speech:\n{timed}")
    assert "Voice:" not in describe_audio(MODES["tags"], "", "", [], [], voice="male, slow rate, low pitch")


def test_modes_are_one_table_the_faces_read():
    """Each mode's inputs come from its entry: the ablation drops the transcript (and the voice words that
    hang on it), cascade the words; the CLI and the app's picker list the table."""
    from engine.cli import main

    assert [m.name for m in MODES.values() if not m.ablation] == ["soft", "tags", "cascade"]
    ablation = MODES["soft-no-transcript"].inputs
    assert "{A}" in ablation and "words" in ablation and "{S}" not in ablation and "{S}" in MODES["cascade"].inputs
    with pytest.raises(SystemExit):
        main(["ask", "x.wav", "q", "--mode", "loud"])
    tokens = MODES["tokens"].inputs
    assert "{A}" in tokens and "{S}" in tokens and "words" not in tokens
    with pytest.raises(ValueError, match="mode must be one of soft, tags, cascade, soft-no-transcript, tokens"):
        EngineConfig(mode="loud")


def test_adapter_for_other_models_is_refused(engine, tmp_path):
    from engine.tltr import AdapterDims, AdapterInfo, AudioAdapter, check_pairing, load_adapter, save_adapter

    dims = AdapterDims(engine.features.n_layers, engine.features.width, 640)
    path = tmp_path / "gemma-adapter.safetensors"
    save_adapter(AudioAdapter(dims), AdapterInfo(engine.whisper.id, "other.gguf", "0" * 64, "ltu-as-chat/1", "stage1"), path)
    adapter, info = load_adapter(path)
    with pytest.raises(ModelError, match="not this one"):
        check_pairing(info, adapter.dims, engine.whisper.id, engine.features.n_layers, engine.features.width,
                      engine.llm_sha256, engine.llm.n_embd, "ltu-as-chat/1", path)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError):
        load_adapter(tmp_path / "junk.safetensors")


def test_language_comes_from_the_shared_encoder_pass_and_agrees_with_whisper_cpp(engine, clip_dir):
    """The engine names the language from the acoustic path's encoder pass (one whisper.cpp encode instead of
    two); on German and Spanish speech it says what whisper.cpp's own detection says, and transcribes in it."""
    for voice, text, expected in [("de", "Das Wetter ist heute schön und wir gehen mit den Kindern in den Park.", "de"),
                                  ("es", "Hoy hace buen tiempo y vamos al parque con los niños.", "es")]:
        path = clips.speech(text, clip_dir / f"speech_{voice}.wav", voice=voice)
        context = engine.analyze(path)
        assert context.transcript.language == expected, context.transcript
        own = engine.asr(audio_io.load_audio(path))  # whisper.cpp detecting it with an encoder pass of its own
        assert own.language == expected
        assert {"park", "parque"} & _words(context.transcript.text), context.transcript.text


def _requantized(source, target):
    """A GGUF no adapter was trained for: the default LLM requantized to Q8_0 (other weights, other checksum)."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, True, 1
    assert llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) == 0
    return target


def test_tags_mode_with_an_unpaired_gguf_answers_with_the_heads_words(engine, clip_dir, mixed_clip):
    """The perception model is keyed to Whisper alone: an LLM it was never paired with gets its words in `tags`
    mode (and `soft` says it has no adapter for it)."""
    from engine.config import EngineConfig
    from engine.pipeline import Engine

    other = _requantized(engine.llm_path, clip_dir / "other-llm.Q8_0.gguf")
    unpaired = Engine(EngineConfig(llm=str(other)))
    try:
        assert unpaired.adapter_path is None and unpaired.lora_path is None
        assert unpaired.perception_path == engine.perception_path is not None
        assert unpaired.warnings("tags") == [] and unpaired.warnings("cascade") == []
        assert any("tags and cascade modes work with any LLM" in w for w in unpaired.warnings("soft"))
        context = unpaired.analyze(clips.sound("beeps", clip_dir / "beeps-only.wav"))
        assert context.events, "the perception model named nothing"
        top = context.events[0].label
        answer = unpaired.ask(context, "Which sound can be heard? Name it.", mode="tags",
                              sampling=SamplingOptions(temperature=0.0, max_tokens=40)).read()
        print(f"unpaired GGUF, tags mode: events {[e.label for e in context.events]}; answer {answer!r}")
        said = _words(answer)  # "music" -> "musical", "bell" -> "bells": a word that begins with the label's
        assert any(w.startswith(t) for t in _words(top) for w in said), (top, answer)
    finally:
        unpaired.llm.close()


def test_the_environment_is_read_once_by_the_config(monkeypatch):
    """LTU_AS_WHISPER / LTU_AS_LLM / ... are the config's defaults, for engine.load() and every face alike;
    the resolvers below it read only what they are given."""
    from engine.weights import LLMS, installed_llm, resolve_llm

    monkeypatch.setenv("LTU_AS_WHISPER", "tiny.en")
    monkeypatch.setenv("LTU_AS_LLM", "qwen2.5-coder-1.5b")
    config = EngineConfig.given(whisper=None, llm=None, mode="tags")  # flags not passed keep the environment's
    assert (config.whisper, config.llm, config.mode) == ("tiny.en", "qwen2.5-coder-1.5b", "tags")
    assert EngineConfig.given(llm="smollm2-135m").llm == "smollm2-135m"  # a flag wins
    assert resolve_llm(None) == installed_llm(LLMS["smollm2-135m"])  # not the environment's 1.5B
