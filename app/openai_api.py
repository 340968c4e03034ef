"""`POST /v1/chat/completions` in OpenAI's shape: audio arrives as an `input_audio` content part (base64),
the question as text parts; earlier user/assistant messages are the chat history. `stream: true` answers with
server-sent `chat.completion.chunk` events ending in `data: [DONE]`. A non-standard `mode` field picks
soft / tags / cascade. Errors are OpenAI-style JSON: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from engine.config import MODES, SamplingOptions
from engine.errors import InputError, LtuError
from engine.weights import DEFAULT_LLM, LLMS, installed_llm

from .engines import Engines, ModelChoice, close_stream, installed_llms
from .settings import MB, AppSettings

MODEL_ID = "ltu-as"
DEFAULT_QUESTION = "What can be heard in this recording?"  # when the last user message carries only audio
CONTEXTS_KEPT = 8  # clips whose analysis is remembered: a multi-turn client resends the same audio each turn
# OpenAI has no "timeout" or "loop": an answer the time limit or the loop guard cut short is reported as cut
# short ("length"); the exact reason is in the non-standard ltu_as.stop_reason
FINISH = {"eos": "stop", "max_tokens": "length", "context": "length", "timeout": "length", "loop": "length"}


DRAIN_FACTOR = 4  # an oversized body is read and dropped up to 4x the cap before the 413


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind, "param": self.param,
                                       "code": self.code}}, status_code=self.status)


@dataclass
class ChatRequest:
    audio: bytes
    question: str
    history: list[tuple[str, str]] = field(default_factory=list)
    mode: str = "soft"
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    stream: bool = False
    include_usage: bool = False
    model: str = MODEL_ID


def _decode_audio(part: dict, where: str, cap: int) -> bytes:
    audio = part.get("input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise ApiError(400, f"{where}.input_audio needs a base64 string in \"data\"", f"{where}.input_audio.data")
    data = audio["data"]
    if data.startswith("data:"):  # a data URL: data:audio/wav;base64,....
        data = data.partition(",")[2]
    if len(data) * 3 // 4 > cap:
        raise ApiError(400, f"the audio is over the {cap / MB:.0f} MB limit", f"{where}.input_audio.data",
                       "audio_too_large")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{where}.input_audio.data is not valid base64", f"{where}.input_audio.data") from None
    if not raw:
        raise ApiError(400, f"{where}.input_audio.data is empty", f"{where}.input_audio.data")
    return raw


def _text_and_audio(message: dict, where: str, cap: int) -> tuple[str, bytes | None]:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or "", None
    if not isinstance(content, list):
        raise ApiError(400, f"{where}.content must be a string or a list of parts", f"{where}.content")
    texts, audio = [], None
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_audio":
            audio = _decode_audio(part, here, cap)
        else:
            raise ApiError(400, f"{here}: only text and input_audio parts are supported", here)
    return "\n".join(t for t in texts if t.strip()), audio


def parse_request(body: object, settings: AppSettings) -> ChatRequest:
    """Validate an OpenAI chat request; the clip is the last `input_audio` in any message."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    chat = body.get("messages")
    if not isinstance(chat, list) or not chat:
        raise ApiError(400, "messages must be a non-empty list", "messages")
    audio, history, pending = None, [], None
    for i, message in enumerate(chat):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant"):
            raise ApiError(400, f"{where}.role must be system, developer, user or assistant", f"{where}.role")
        text, clip = _text_and_audio(message, where, settings.max_upload_bytes)
        audio = clip or audio
        if role == "user":
            pending = text if pending is None else f"{pending}\n{text}".strip()
        elif role == "assistant" and pending is not None:
            history.append((pending or DEFAULT_QUESTION, text))
            pending = None
        # system/developer messages are not passed on: the engine's prompt format is fixed (adapters record it)
    if audio is None:
        raise ApiError(400, "no audio: put an input_audio content part in a user message", "messages",
                       "missing_audio")
    if pending is None:
        raise ApiError(400, "the last message must come from the user", "messages")
    mode = body.get("mode") or "soft"
    if mode not in MODES:
        raise ApiError(400, f"mode must be one of {', '.join(MODES)}", "mode")
    if body.get("n", 1) != 1:
        raise ApiError(400, "only n=1 is supported", "n")
    defaults = SamplingOptions()
    try:
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or defaults.max_tokens
        sampling = SamplingOptions(temperature=float(_get(body, "temperature", defaults.temperature)),
                                   top_p=float(_get(body, "top_p", defaults.top_p)), max_tokens=int(max_tokens),
                                   seed=int(_get(body, "seed", defaults.seed)), timeout=settings.answer_timeout)
    except (TypeError, ValueError) as error:
        raise ApiError(400, f"invalid sampling options: {str(error).splitlines()[0]}") from None
    options = body.get("stream_options") or {}
    return ChatRequest(audio, pending or DEFAULT_QUESTION, history, mode, sampling, bool(body.get("stream")),
                       bool(isinstance(options, dict) and options.get("include_usage")),
                       str(body.get("model") or MODEL_ID))


def _get(body: dict, key: str, default):
    value = body.get(key)
    return default if value is None else value


async def read_body(request: Request, cap: int) -> object:
    """The JSON body, refusing (413) anything larger than `cap` bytes before it is all in memory. An oversized
    body is read to its end (and dropped) up to DRAIN_FACTOR x `cap`, so that the client gets the 413 instead
    of a reset connection; past that the connection is cut."""
    too_large = ApiError(413, f"the request is over the {cap / MB:.0f} MB limit", code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_FACTOR * cap:
            break
        if size <= cap:
            chunks.append(chunk)
    if size > cap:
        raise too_large
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not JSON ({error})") from None
    except RecursionError:  # "[[[[..." nested deeper than the parser's stack
        raise ApiError(400, "the body is not JSON this server reads (nested too deeply)") from None


class ChatCompletions:
    """The route's state: the shared engines, a few recent analyses, and a cap on requests in flight."""

    def __init__(self, engines: Engines, settings: AppSettings):
        self.engines = engines
        self.settings = settings
        self._contexts: OrderedDict[tuple, object] = OrderedDict()
        self._contexts_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_queue)

    def context(self, engine, audio: bytes):
        """The engine's AudioContext for `audio`, analyzed once per distinct clip (the history resends it)."""
        key = (id(engine), hashlib.sha1(audio).hexdigest())
        with self._contexts_lock:
            if key in self._contexts:
                self._contexts.move_to_end(key)
                return self._contexts[key]
        context = engine.analyze(audio)
        with self._contexts_lock:
            self._contexts[key] = context
            while len(self._contexts) > CONTEXTS_KEPT:
                self._contexts.popitem(last=False)
        return context

    def start(self, chat: ChatRequest, choice: ModelChoice):
        """Listen to the clip and set the answer going (the stream is lazy: nothing decodes until it is read)."""
        engine = self.engines.get(choice)
        context = self.context(engine, chat.audio)
        return engine, context, engine.ask(context, chat.question, chat.history, mode=chat.mode,
                                           sampling=chat.sampling)

    async def __call__(self, request: Request):
        if not self._slots.acquire(blocking=False):
            return ApiError(429, "the server is busy; retry shortly", code="busy", kind="rate_limit_error").response()
        release = True
        try:
            cap = self.settings.max_upload_bytes * 4 // 3 + MB  # base64 is 4/3 of the audio, plus the JSON
            chat = parse_request(await read_body(request, cap), self.settings)
            choice = model_choice(chat.model, self.engines)  # an unknown model is refused before the clip is read
            engine, context, stream = await run_in_threadpool(self.start, chat, choice)
            reply = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": chat.model}
            if chat.stream:
                release = False  # the stream releases its slot when it ends
                return StreamingResponse(self._events(stream, reply, chat.include_usage),
                                         media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            text = await run_in_threadpool(stream.read)
            finish = FINISH.get(stream.stats.stop_reason, "stop")
            return JSONResponse({**reply, "object": "chat.completion",
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "logprobs": None, "finish_reason": finish}],
                                 "usage": _usage(stream.stats),
                                 "ltu_as": {**_heard(engine, context, chat.mode),
                                            "stop_reason": stream.stats.stop_reason}})
        except ApiError as error:
            return error.response()
        except InputError as error:
            return ApiError(400, str(error), code="invalid_audio").response()
        except LtuError as error:  # a model is missing or broken: the server's fault, not the request's
            return ApiError(500, str(error), code="model_error", kind="server_error").response()
        finally:
            if release:
                self._slots.release()

    def _events(self, stream, reply: dict, include_usage: bool) -> Iterator[str]:
        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            body = {**reply, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        pieces = iter(stream)
        try:
            yield chunk({"role": "assistant", "content": ""})
            for piece in pieces:
                yield chunk({"content": piece})
            yield chunk({}, FINISH.get(stream.stats.stop_reason, "stop"))
            if include_usage:
                body = {**reply, "object": "chat.completion.chunk", "choices": [], "usage": _usage(stream.stats)}
                yield f"data: {json.dumps(body)}\n\n"
        except LtuError as error:
            body = {"error": {"message": str(error), "type": "server_error", "param": None,
                              "code": "generation_failed"}}
            yield f"data: {json.dumps(body)}\n\n"
        finally:
            close_stream(stream, pieces)  # frees the LLM at once if the client went away mid-answer
            self._slots.release()
        yield "data: [DONE]\n\n"


def model_choice(model: str, engines: Engines) -> ModelChoice:
    """`ltu-as` -> the server's default models; `ltu-as:NAME` (or NAME) -> the default with that named LLM if
    it is installed here, else ApiError 404 as OpenAI answers an unknown model. Other names (a client's
    `gpt-4o`) mean the default, as other local servers treat them."""
    name = model.removeprefix(f"{MODEL_ID}:")
    if name in LLMS and installed_llm(LLMS[name]) is not None:
        return dataclasses.replace(engines.default, llm=None if name == DEFAULT_LLM else name)
    if name in LLMS or model.startswith(f"{MODEL_ID}:"):
        known = ", ".join([MODEL_ID, *(f"{MODEL_ID}:{p.name}" for p in installed_llms())])
        raise ApiError(404, f"the model {model!r} is not installed here; GET /v1/models lists them: {known}", "model",
                       "model_not_found")
    return engines.default


def _heard(engine, context, mode: str) -> dict:
    """Non-standard `ltu_as` field: what the engine heard, so a client can show it."""
    heard = context.to_dict()  # as the CLI's --json prints it, less the timed segments
    return {"mode": mode, **{k: heard[k] for k in ("transcript", "language", "events", "voice", "instrument")},
            "adapter_trained": engine.trained}


def _usage(stats) -> dict:
    return {"prompt_tokens": stats.prompt_units, "completion_tokens": stats.generated_tokens,
            "total_tokens": stats.prompt_units + stats.generated_tokens}


def router(engines: Engines, settings: AppSettings) -> APIRouter:
    routes = APIRouter()
    completions = ChatCompletions(engines, settings)

    @routes.post("/v1/chat/completions", summary="OpenAI-compatible chat completion about an input_audio clip")
    async def chat_completions(request: Request):
        return await completions(request)

    @routes.get("/v1/models")
    def models() -> dict:
        """`ltu-as` (the server's default models) and each named LLM installed here, as `ltu-as:NAME`."""
        ids = [MODEL_ID, *(f"{MODEL_ID}:{p.name}" for p in installed_llms())]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "local"} for i in ids]}

    return routes
