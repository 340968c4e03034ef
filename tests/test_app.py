"""The app end to end: one live `python app.py` for the module, driven through gradio_client, the OpenAI
route (httpx) and a headless Debian chromium (Playwright), with espeak-ng clips made here."""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import clips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import loadtest  # noqa: E402  (scripts/loadtest.py starts and stops the live server)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UPLOAD_MB = 2  # the server's cap in this module, so the size checks need no big files
OTHER_SENTENCE = "Please remember to water the tomato plants in the garden every morning."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` on a free port of 127.0.0.1; its URL. Stopped at the end of the module."""
    with loadtest.serve(tmp_path_factory.mktemp("server") / "app.log", {"LTU_AS_MAX_UPLOAD_MB": str(UPLOAD_MB)}) as live:
        yield live.url


@pytest.fixture(scope="module")
def other_clip(clip_dir) -> Path:
    return clips.speech(OTHER_SENTENCE, clip_dir / "tomatoes.wav")


@pytest.fixture(scope="module")
def bad_clip(clip_dir) -> Path:
    path = clip_dir / "not_audio.wav"
    path.write_bytes(os.urandom(4000))
    return path


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def analyze(c, clip: Path) -> tuple[str, dict]:
    from gradio_client import handle_file

    status, _image, _heard, _events, details, chat, _note = c.predict(handle_file(str(clip)), api_name="/analyze")
    assert chat == []
    return status, details


def ask(c, question: str, **options) -> tuple[list[dict], str]:
    chat, box, status = c.predict(question, api_name="/ask", **options)
    assert box == ("" if "tok/s" in status else question)  # answered: the box empties; refused: kept to fix
    return chat, status


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


# -- gradio_client -------------------------------------------------------------------------------------------------
def test_client_analyze_and_multi_turn(server, speech_clip):
    c = client(server)
    status, details = analyze(c, speech_clip)
    assert status.startswith("Heard"), status
    assert "fox" in details["transcript"].lower()
    assert details["language"] == "en" and details["duration"] > 2
    assert details["models"]["llm"].endswith(".gguf")
    chat, status = ask(c, "What animal is mentioned?")
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert text_of(chat[1]).strip(), "empty answer"
    assert "tok/s" in status
    chat, _ = ask(c, "Say it in three words.", mode="cascade", max_tokens=32)
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    assert "decoded" in _
    chat, _ = c.predict(api_name="/clear")
    assert chat == []


def test_client_bad_file_is_a_message(server, bad_clip, speech_clip):
    c = client(server)
    status, details = analyze(c, bad_clip)
    assert status.startswith("⚠️") and "not a readable audio file" in status, status
    assert "error" in details
    chat, status = ask(c, "What is this?")  # no clip: told so, no answer
    assert chat == [] and "Upload or record" in status
    status, _ = analyze(c, speech_clip)  # the app keeps serving
    assert status.startswith("Heard")


def test_client_load_models_validates_and_reloads(server, speech_clip):
    """Settings: a wrong LLM path is a message; another model choice loads once and re-hears the clip."""
    c = client(server)
    analyze(c, speech_clip)
    missing = c.predict("base", "/nowhere/model.gguf", "auto", None, api_name="/load_models")
    assert missing[0] == "⚠️ **LLM file not found: /nowhere/model.gguf**"
    not_gguf = c.predict("base", str(speech_clip), "auto", None, api_name="/load_models")
    assert "not a GGUF file" in not_gguf[0]
    from engine.weights import resolve_llm

    models, _note, status, *_ = c.predict("base", str(resolve_llm(None)), "cpu", 0, api_name="/load_models")
    assert models.startswith("Models:") and "device `cpu`" in models, models
    assert status.startswith("Heard")  # the clip, heard again with the chosen models
    chat, status = ask(c, "What is said?", mode="cascade", max_tokens=24)
    assert "tok/s" in status and text_of(chat[-1]).strip()


def test_picker_switches_to_a_second_llm_by_name(server, speech_clip):
    """The LLM picker lists the named LLMs installed here; picking one loads it without a restart. The OpenAI
    route lists the same names as models and answers with the one asked for (the Engine is shared)."""
    from engine.weights import LLMS, installed_llm

    if installed_llm(LLMS["qwen2.5-coder-0.5b"]) is None:
        pytest.skip("qwen2.5-coder-0.5b is not installed: scripts/setup.sh dev fetches it")
    c = client(server)
    analyze(c, speech_clip)
    if installed_llm(LLMS["qwen2.5-coder-1.5b"]) is None:
        missing = c.predict("base", "qwen2.5-coder-1.5b", "auto", None, api_name="/load_models")
        assert "not installed on this server (python -m engine weights --get qwen2.5-coder-1.5b)" in missing[0]
    models, *_ = c.predict("base", "qwen2.5-coder-0.5b", "auto", None, api_name="/load_models")
    assert "LLM `qwen2.5-coder-0.5b.gguf`" in models, models
    chat, status = ask(c, "What is said?", mode="cascade", max_tokens=24)
    assert "tok/s" in status and text_of(chat[-1]).strip()

    ids = [m["id"] for m in httpx.get(f"{server}/v1/models", timeout=30).json()["data"]]
    assert ids[0] == "ltu-as" and "ltu-as:qwen2.5-coder-0.5b" in ids and "ltu-as:smollm2-135m" in ids
    unknown = httpx.post(f"{server}/v1/chat/completions", timeout=60,
                         json=completion_request(speech_clip, "What is said?", model="ltu-as:gpt-17"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    reply = httpx.post(f"{server}/v1/chat/completions", timeout=300, json=completion_request(
        speech_clip, "What is said?", mode="cascade", model="ltu-as:qwen2.5-coder-0.5b"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "ltu-as:qwen2.5-coder-0.5b" and reply.json()["choices"][0]["message"]["content"]


def test_two_sessions_keep_their_own_clip(server, speech_clip, other_clip):
    """Two users at once, different clips: each sees only its own transcript and its own chat."""
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def user(name: str, clip: Path, question: str) -> None:
        try:
            c = client(server)
            _, details = analyze(c, clip)
            chat, _ = ask(c, question, mode="cascade", max_tokens=48)
            results[name] = {"transcript": details["transcript"].lower(), "chat": chat}
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)

    threads = [threading.Thread(target=user, args=("fox", speech_clip, "Which animal jumps?")),
               threading.Thread(target=user, args=("tomato", other_clip, "What needs water?"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert "fox" in results["fox"]["transcript"] and "tomato" not in results["fox"]["transcript"]
    assert "tomato" in results["tomato"]["transcript"] and "fox" not in results["tomato"]["transcript"]
    assert [text_of(m) for m in results["fox"]["chat"] if m["role"] == "user"] == ["Which animal jumps?"]
    assert [text_of(m) for m in results["tomato"]["chat"] if m["role"] == "user"] == ["What needs water?"]


# -- the OpenAI-compatible route ----------------------------------------------------------------------------------
def completion_request(clip: Path, question: str, **extra) -> dict:
    data = base64.b64encode(clip.read_bytes()).decode()
    return {"model": "ltu-as", "max_tokens": 48, **extra,
            "messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
                {"type": "text", "text": question}]}]}


def test_openai_route_non_stream(server, speech_clip):
    response = httpx.post(f"{server}/v1/chat/completions", json=completion_request(speech_clip, "What is said?"),
                          timeout=180)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    assert body["usage"]["completion_tokens"] > 0
    assert "fox" in body["ltu_as"]["transcript"].lower()


def test_openai_route_stream_with_history(server, speech_clip):
    request = completion_request(speech_clip, "What animal is it?", stream=True, mode="tags",
                                 stream_options={"include_usage": True})
    request["messages"] += [{"role": "assistant", "content": "A fox."}, {"role": "user", "content": "What colour?"}]
    lines = []
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=request, timeout=180) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.strip()
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] in ("stop", "length")
    assert chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("case", ["no_messages", "no_audio", "bad_base64", "not_audio", "bad_mode", "image_part",
                                  "audio_too_large", "body_too_large", "not_json"])
def test_openai_route_rejects_bad_input(server, speech_clip, case):
    request = completion_request(speech_clip, "What is said?")
    audio_part = request["messages"][0]["content"][0]
    if case == "no_messages":
        request["messages"] = []
    elif case == "no_audio":
        request["messages"] = [{"role": "user", "content": "hello"}]
    elif case == "bad_base64":
        audio_part["input_audio"]["data"] = "not base64!!"
    elif case == "not_audio":
        audio_part["input_audio"]["data"] = base64.b64encode(os.urandom(3000)).decode()
    elif case == "bad_mode":
        request["mode"] = "loud"
    elif case == "image_part":
        request["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": "x"}})
    elif case == "audio_too_large":  # within the body cap, over the audio cap
        audio_part["input_audio"]["data"] = base64.b64encode(b"\0" * int(UPLOAD_MB * 1.2 * 2**20)).decode()
    elif case == "body_too_large":
        audio_part["input_audio"]["data"] = "A" * (UPLOAD_MB * 3 * 2**20)
    content = b"{not json" if case == "not_json" else json.dumps(request).encode()
    response = httpx.post(f"{server}/v1/chat/completions", content=content, timeout=60,
                          headers={"content-type": "application/json"})
    assert response.status_code == (413 if case == "body_too_large" else 400), response.text
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in error["message"] and error["type"]


def test_openai_python_client(server, speech_clip):
    """The docs' example with the `openai` package (a test dependency; optional for users)."""
    import openai

    c = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    data = base64.b64encode(speech_clip.read_bytes()).decode()
    reply = c.chat.completions.create(model="ltu-as", max_tokens=32, messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
        {"type": "text", "text": "What is said?"}]}])
    assert reply.choices[0].message.content.strip()


# -- the page in a browser ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def playwright():
    assert Path(CHROMIUM).is_file(), "Debian chromium is not installed (scripts/setup.sh dev installs it)"
    from playwright import sync_api

    with sync_api.sync_playwright() as p:  # one per thread: both browsers come from it
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url, wait_until="load")
    page.wait_for_selector("#clip input[type=file]", state="attached", timeout=60000)
    return page


def upload(page, clip: Path, expect: str) -> None:
    """Put `clip` in the audio box (clearing what is there) and wait for the status to show `expect`."""
    if page.locator("#clip input[type=file]").count() == 0:
        page.locator("#clip button[aria-label=Clear]").click()
        page.wait_for_selector("#clip input[type=file]", state="attached")
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    page.wait_for_function(f"document.querySelector('#status').innerText.includes({json.dumps(expect)})",
                           timeout=120000)


def ask_in_page(page, question: str, answers_before: int) -> list[str]:
    """Type and send a question; the answer's text as seen at each poll until the turn is done."""
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        bots = page.locator("#chat [data-testid=bot]").all_inner_texts()
        if len(bots) > answers_before and bots[-1].strip():
            if not seen or seen[-1] != bots[-1]:
                seen.append(bots[-1])
        if page.locator("#answer-status").inner_text().startswith(f"answer {answers_before + 1} ·"):
            final = page.locator("#chat [data-testid=bot]").all_inner_texts()[-1]
            if not seen or seen[-1] != final:
                seen.append(final)
            return seen
        time.sleep(0.03)
    raise AssertionError(f"no finished answer to {question!r}; seen {seen[-1:]}")


def test_browser_upload_ask_follow_up(server, browser, mixed_clip, tmp_path):
    page = open_page(browser, server)
    upload(page, mixed_clip, "Heard")
    assert "fox" in page.locator("#transcript").inner_text().lower()
    assert page.locator("#overview img").count() == 1
    assert page.locator("#events svg").count() >= 1
    first = ask_in_page(page, "What is the speaker talking about?", 0)
    assert len(first) >= 2, f"the answer did not stream: {first}"  # seen growing, not only in one piece
    assert first[-1].startswith(first[0].strip()[:5])
    follow = ask_in_page(page, "Is there any other sound?", 1)
    assert follow[-1].strip()
    assert page.locator("#chat [data-testid=user]").count() == 2
    # the README's picture is refreshed on request only (LTU_AS_SCREENSHOT=docs/screenshot.png), not by every run
    shot = Path(os.environ.get("LTU_AS_SCREENSHOT") or tmp_path / "screenshot.png")
    page.screenshot(path=str(shot if shot.is_absolute() else ROOT / shot), full_page=True)
    page.close()


@pytest.fixture(scope="module")
def microphone_browser(playwright, clip_dir, speech_clip):
    """A second Chromium whose microphone is Chromium's fake capture device playing the speech clip (48 kHz
    16-bit WAV, as the fake device reads it), with the permission prompt answered yes."""
    wav = clip_dir / "microphone.wav"
    clips.run("sox", str(speech_clip), "-r", "48000", "-b", "16", str(wav), "pad", "0.5", "1")
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"]
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    yield chromium
    chromium.close()


def test_browser_microphone_record_stop_ask(server, microphone_browser):
    """The microphone path: pick the microphone, record, stop; the recording is heard and asked about."""
    page = open_page(microphone_browser, server)
    page.locator("#clip button[aria-label='Record audio']").first.click()
    page.locator("#clip .record-button").click()
    page.wait_for_timeout(6000)  # the fake device loops the clip: one pass and a half
    page.locator("#clip button", has_text="Stop").first.click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Heard')", timeout=120000)
    heard = page.locator("#transcript").inner_text().lower()
    assert len({"quick", "brown", "fox", "lazy", "dog", "river"} & set(heard.replace(".", " ").split())) >= 3, heard
    answer = ask_in_page(page, "What is said?", 0)
    assert answer[-1].strip()
    page.close()


def test_browser_bad_upload_shows_error_and_keeps_serving(server, browser, bad_clip, speech_clip):
    page = open_page(browser, server)
    upload(page, bad_clip, "⚠️")
    assert "not a readable audio file" in page.locator("#status").inner_text()
    assert "Traceback" not in page.content()
    upload(page, speech_clip, "Heard")  # the same page, and the server, carry on
    page.close()
