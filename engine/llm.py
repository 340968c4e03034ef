"""The LLM stage: a GGUF model in llama.cpp, fed a prompt that mixes embedding vectors (acoustic tokens)
and text tokens, keeping what it decoded in the KV cache so the next turn only decodes what is new."""

from __future__ import annotations

import codecs
import ctypes
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import SamplingOptions
from .errors import InputError, ModelError
from .threads import Threads, thread_source
from .weights import check_gguf, file_sha256

SEQ = 0  # one sequence per context
PARKED_SESSIONS = 8  # conversations whose KV state is kept aside while another one decodes
THREAD_CHECK_TOKENS = 16  # generated tokens between two looks at how many cores are free


@dataclass(frozen=True)
class Embeddings:
    """A run of input vectors in the LLM's embedding space. `key` identifies their content: two runs with the
    same key are the same vectors, so a cached prefix can be reused across turns."""

    key: str
    vectors: np.ndarray  # (n, n_embd) float32


Segment = list[int] | Embeddings  # token ids or embedding vectors
Prompt = list[Segment]


@dataclass
class GenerationStats:
    prompt_units: int = 0  # tokens + vectors in the prompt
    decoded_units: int = 0  # how many of them had to be decoded (the rest came from the KV cache)
    prefill_seconds: float = 0.0
    first_token_seconds: float = 0.0  # from the start of prefill to the first sampled token
    generated_tokens: int = 0
    generate_seconds: float = 0.0
    stop_reason: str = ""  # "eos", "max_tokens", "context", "timeout" or "loop"
    threads: int = 0  # llama.cpp threads for the prompt (engine/threads.py)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.generate_seconds if self.generate_seconds > 0 else 0.0


@dataclass
class _Cache:
    units: list = field(default_factory=list)  # what occupies KV positions 0..n-1: token ids or (key, row)


class LLM:
    """llama.cpp through llama-cpp-python: its high-level `Llama` loads the model, context and tokenizer;
    decoding is done here with the low-level batch API, which alone accepts embedding input."""

    def __init__(self, path: Path, n_ctx: int = 4096, n_batch: int = 512, threads: Threads | int = 2,
                 n_gpu_layers: int = 0, lora_path: Path | None = None, extra_bufts: bool | None = None):
        """`threads`: a thread count, or a function asked before the prompt and every THREAD_CHECK_TOKENS
        generated tokens (engine/threads.py). `extra_bufts`: use llama.cpp's extra weight buffer types
        (repacked layouts, AMX); None = as a probe in a child process found safe for this model on this CPU
        (engine/native.py)."""
        import llama_cpp

        from . import native

        path = Path(path)
        check_gguf(path)
        self._lib = llama_cpp
        self.threads = thread_source(threads)
        self._n_threads = n_threads = self.threads()
        self.cpu_variant = native.load_llama_backends()
        if extra_bufts is None:
            extra_bufts = native.probe_llama(path, file_sha256(path), n_threads, n_gpu_layers).extra_bufts
        self.extra_bufts = extra_bufts
        try:
            with native.llama_model_defaults(use_extra_bufts=extra_bufts):
                self._llama = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                                              n_threads=n_threads, n_threads_batch=n_threads,
                                              n_gpu_layers=n_gpu_layers, lora_path=str(lora_path) if lora_path else None,
                                              verbose=False)
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"llama.cpp cannot load {path.name}: {error}") from None
        self.path = path
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.n_embd = self._llama.n_embd()
        self.n_vocab = self._llama.n_vocab()
        self.metadata = dict(self._llama.metadata)
        self.arch = self.metadata.get("general.architecture", "")
        self._ctx = self._llama.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._token_batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._embd_batch = llama_cpp.llama_batch_init(n_batch, self.n_embd, 1)
        self._cache = _Cache()
        self._session: str | None = None
        self._lora = self._llama._lora_adapter  # loaded by Llama(lora_path=...), active from the start
        self._lora_active = self._lora is not None
        self._parked: OrderedDict[str, tuple[list, bytes]] = OrderedDict()
        self._token_table: np.ndarray | None = None

    def close(self) -> None:
        if self._llama is not None:
            self._lib.llama_batch_free(self._token_batch)
            self._lib.llama_batch_free(self._embd_batch)
            self._llama.close()
            self._llama = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- text -----------------------------------------------------------------------------------------------
    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        """Tokens of `text`, parsing special tokens such as <|im_start|>; BOS only if asked and the model wants it."""
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def token_piece(self, token: int) -> bytes:
        return self._llama.detokenize([token], special=False)

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    @property
    def end_of_turn(self) -> list[int]:
        """The tokens the chat template writes after an assistant's words, up to the first end-of-generation
        token: a training target ends with them, and generation stops there."""
        eos = self._llama.token_eos()
        if not self.chat_template:
            return [eos]
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        marker = "\u2063answer\u2063"
        text = Jinja2ChatFormatter(self.chat_template, eos_token=self._token_text(eos),
                                   bos_token=self._token_text(self._llama.token_bos()), add_generation_prompt=False)(
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]).prompt
        tail = self.tokenize(text.split(marker, 1)[1]) if marker in text else []
        ends = [i for i, t in enumerate(tail) if self.is_end(t)]
        return tail[: ends[0] + 1] if ends else [eos]

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    def render_chat(self, messages: list[dict]) -> list[int]:
        """Tokens of `messages` in the GGUF's own chat template, ending with the assistant's turn opening."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos = self._token_text(self._llama.token_bos())
        eos = self._token_text(self._llama.token_eos())
        if self.chat_template:
            text = Jinja2ChatFormatter(self.chat_template, eos_token=eos, bos_token=bos,
                                       add_generation_prompt=True)(messages=messages).prompt
        else:  # no template in the file: LTU-AS's own Alpaca-style format
            text = "".join(f"### {'Response' if m['role'] == 'assistant' else 'Instruction'}:\n{m['content']}\n\n"
                           for m in messages if m["role"] != "system") + "### Response:\n"
        if bos and text.startswith(bos):  # the template wrote BOS as text; let the tokenizer add the real one
            text = text[len(bos):]
        return self.tokenize(text, add_bos=True)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="ignore")

    # -- embeddings -------------------------------------------------------------------------------------------
    def token_embeddings(self, tokens: list[int]) -> np.ndarray:
        """Input-space embedding rows of `tokens`, dequantized from the GGUF's token_embd table. Gemma scales
        token input by sqrt(n_embd) inside llama.cpp but not raw embeddings, so the rows carry that scale."""
        if self._token_table is None:
            import gguf

            reader = gguf.GGUFReader(str(self.path))
            tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
            table = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(-1, self.n_embd)
            scale = np.sqrt(self.n_embd) if self.arch.startswith("gemma") else 1.0
            self._token_table = (table * scale).astype(np.float32)
        return self._token_table[np.asarray(tokens)]

    # -- decoding ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the KV cache (the next prompt is decoded from position 0)."""
        self._lib.llama_memory_clear(self._memory, True)
        self._cache = _Cache()

    def use_session(self, session: str, lora: bool = True) -> None:
        """One KV state per conversation: park the active one (its units and llama.cpp's bytes for them) and
        bring back `session`'s, so users taking turns on one model do not re-decode each other's prompts.
        `lora=False` runs the plain model (a cascade baseline); KV states computed with and without the LoRA
        are kept apart."""
        lora = lora and self._lora is not None
        session = f"{session}|lora" if lora else session
        if session == self._session:
            return
        lib = self._lib
        if self._session is not None and self._cache.units:
            size = lib.llama_state_seq_get_size(self._ctx, SEQ)
            buffer = (ctypes.c_uint8 * size)()
            written = lib.llama_state_seq_get_data(self._ctx, buffer, size, SEQ)
            self._parked[self._session] = (self._cache.units, bytes(buffer)[:written])
            while len(self._parked) > PARKED_SESSIONS:
                self._parked.popitem(last=False)
        self.reset()
        if lora != self._lora_active:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._lora) if lora else None
            scales = (ctypes.c_float * 1)(1.0) if lora else None
            if lib.llama_set_adapters_lora(self._ctx, adapters, 1 if lora else 0, scales):
                raise ModelError("llama.cpp could not switch the LoRA adapter")
            self._lora_active = lora
        self._session = session
        if session in self._parked:
            units, data = self._parked.pop(session)
            buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            if lib.llama_state_seq_set_data(self._ctx, buffer, len(data), SEQ) == len(data):
                self._cache.units = units
            else:  # could not restore: start clean (correct, only slower)
                self.reset()

    def prefill(self, prompt: Prompt) -> tuple[int, int]:
        """Make the KV cache hold exactly `prompt`, decoding only what differs from what it holds.
        Returns (prompt units, decoded units). The prompt must end with text (llama.cpp's logits come from it)."""
        if not prompt or not isinstance(prompt[-1], list) or not prompt[-1]:
            raise ValueError("a prompt must end with text tokens")
        units, rows = _flatten(prompt)
        if len(units) >= self.n_ctx:
            raise InputError(f"the prompt needs {len(units)} positions, over the context of {self.n_ctx}; "
                             "shorten the audio or clear the chat")
        cached = self._cache.units
        keep = 0
        while keep < min(len(cached), len(units)) and cached[keep] == units[keep]:
            keep += 1
        keep = min(keep, len(units) - 1)  # the last unit is always decoded: its logits start the answer
        if not self._lib.llama_memory_seq_rm(self._memory, SEQ, keep, -1):
            self.reset()
            keep = 0
        self._cache.units = cached[:keep]
        start = keep
        while start < len(units):  # runs of one kind (vectors or tokens), each in chunks of n_batch
            is_vector = isinstance(units[start], tuple)
            end = start
            while end < len(units) and end - start < self.n_batch and isinstance(units[end], tuple) == is_vector:
                end += 1
            if is_vector:
                self._decode_vectors(np.stack([rows[units[i]] for i in range(start, end)]), start)
            else:
                self._decode_tokens(units[start:end], start, logits_last=end == len(units))
            self._cache.units.extend(units[start:end])
            start = end
        return len(units), len(units) - keep

    def generate(self, prompt: Prompt, options: SamplingOptions, stats: GenerationStats | None = None) -> Iterator[str]:
        """Stream the answer's text. `stats` (if given) is filled as generation proceeds."""
        stats = stats if stats is not None else GenerationStats()
        started = time.perf_counter()
        stats.threads = self._follow_threads()
        stats.prompt_units, stats.decoded_units = self.prefill(prompt)
        stats.prefill_seconds = time.perf_counter() - started
        rng = np.random.default_rng(options.seed)
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        gen_start = time.perf_counter()
        stats.stop_reason = "max_tokens"
        answer: list[int] = []
        for _ in range(options.max_tokens):
            if time.perf_counter() - started > options.timeout:
                stats.stop_reason = "timeout"
                break
            context = self._cache.units if options.penalize_prompt else answer
            recent = [u for u in context[-options.repeat_last_n:] if isinstance(u, int)]
            token = sample_token(self._last_logits(), recent, options, rng)
            if stats.generated_tokens == 0:
                stats.first_token_seconds = time.perf_counter() - started
            if self.is_end(token):
                stats.stop_reason = "eos"
                break
            stats.generated_tokens += 1
            answer.append(token)
            piece = text.decode(self.token_piece(token))
            if piece:
                yield piece
            if ends_in_loop(answer, options.loop_window):
                stats.stop_reason = "loop"
                break
            if len(self._cache.units) + 1 >= self.n_ctx:
                stats.stop_reason = "context"
                break
            if stats.generated_tokens % THREAD_CHECK_TOKENS == 0:
                self._follow_threads()
            self._decode_tokens([token], len(self._cache.units), logits_last=True)
            self._cache.units.append(token)
            stats.generate_seconds = time.perf_counter() - gen_start
        tail = text.decode(b"", final=True)
        if tail:
            yield tail
        stats.generate_seconds = time.perf_counter() - gen_start

    def _follow_threads(self) -> int:
        n = self.threads()
        if n != self._n_threads:
            self._lib.llama_set_n_threads(self._ctx, n, n)
            self._n_threads = n
        return n

    def next_token_logits(self, prompt: Prompt) -> np.ndarray:
        """Logits for the token after `prompt` (decoded from scratch): what the equivalence guard compares."""
        self.reset()
        self.prefill(prompt)
        return self._last_logits().copy()

    def _last_logits(self) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _decode_tokens(self, tokens: list[int], position: int, logits_last: bool) -> None:
        batch = self._token_batch
        for i, token in enumerate(tokens):
            batch.token[i] = token
            self._set_slot(batch, i, position + i, logits_last and i == len(tokens) - 1)
        batch.n_tokens = len(tokens)
        self._decode(batch)

    def _decode_vectors(self, vectors: np.ndarray, position: int) -> None:
        if vectors.shape[1] != self.n_embd:  # llama.cpp does not check: a wrong width is silent garbage
            raise ModelError(f"acoustic tokens have width {vectors.shape[1]}, the LLM expects {self.n_embd}")
        batch = self._embd_batch
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        ctypes.memmove(batch.embd, data.ctypes.data, data.nbytes)
        for i in range(len(vectors)):
            self._set_slot(batch, i, position + i, False)
        batch.n_tokens = len(vectors)
        self._decode(batch)

    @staticmethod
    def _set_slot(batch, i: int, position: int, logits: bool) -> None:
        batch.pos[i] = position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = SEQ
        batch.logits[i] = logits

    def _decode(self, batch) -> None:
        status = self._lib.llama_decode(self._ctx, batch)
        if status != 0:
            self.reset()
            raise ModelError(f"llama_decode failed with status {status}")


def _flatten(prompt: Prompt) -> tuple[list, dict]:
    """One hashable unit per KV position: a token id, or (key, row) for an embedding vector."""
    units: list = []
    rows: dict = {}
    for segment in prompt:
        if isinstance(segment, Embeddings):
            for r, vector in enumerate(segment.vectors):
                unit = (segment.key, r)
                units.append(unit)
                rows[unit] = vector
        else:
            units.extend(int(t) for t in segment)
    return units, rows


def ends_in_loop(tokens: list[int], window: int) -> bool:
    """Whether the last `window` tokens are one span of at most window / 3 tokens repeated (so at least three
    times in a row). A window this long keeps real repeats: digits are single tokens, so "10000" is one
    token said four times."""
    if window <= 0 or len(tokens) < window:
        return False
    tail = tokens[-window:]
    return any(all(tail[i] == tail[i - period] for i in range(period, window)) for period in range(1, window // 3 + 1))


def sample_token(logits: np.ndarray, recent: list[int], options: SamplingOptions, rng: np.random.Generator) -> int:
    """Repetition penalty (llama.cpp/CTRL style), then greedy at temperature 0, else top-k, top-p, sample."""
    logits = np.array(logits, dtype=np.float64)
    if options.repeat_penalty != 1.0 and recent:
        ids = np.unique(recent)
        values = logits[ids]
        logits[ids] = np.where(values > 0, values / options.repeat_penalty, values * options.repeat_penalty)
    if options.temperature <= 0:
        return int(np.argmax(logits))
    k = min(options.top_k, logits.size) if options.top_k > 0 else logits.size
    top = np.argpartition(-logits, k - 1)[:k]
    top = top[np.argsort(-logits[top], kind="stable")]
    scaled = (logits[top] - logits[top[0]]) / options.temperature
    probs = np.exp(scaled)
    probs /= probs.sum()
    keep = int(np.searchsorted(np.cumsum(probs), options.top_p) + 1)  # smallest prefix reaching top_p
    probs = probs[:keep] / probs[:keep].sum()
    return int(top[rng.choice(keep, p=probs)])
