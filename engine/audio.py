"""Audio in: any common file, bytes or array -> 16 kHz mono float32, and the 10 s windows LTU-AS works on.

Files and bytes are untrusted input for two large C parsers (FFmpeg and libsndfile), so they are decoded in a
short-lived child process with hard limits: its address space (DECODE_HEADROOM plus twice the largest clip
allowed), wall and CPU time (decode_timeout), no new file or socket (it reads its stdin, writes its stdout),
no core dump, and only the demuxers in DEMUXERS (no playlists or concat scripts that open other files). It
sends back raw float32 samples behind a fixed header, never a pickle. A crash, hang, memory bomb or exploited
parser costs that one child; the caller gets one InputError line. Arrays from Python code are trusted and
converted in-process."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

SAMPLE_RATE = 16000
WINDOW_SECONDS = 10  # LTU-AS's unit: one window gives 25 acoustic tokens
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE  # 160000 samples in a 10-second window
SILENCE_PEAK = 10 ** (-70 / 20)  # a peak below -70 dBFS carries nothing to listen to
MIN_SAMPLES = SAMPLE_RATE // 100  # 10 ms: shorter is not a clip
RATES = (1000, 768000)  # Hz: outside, a header is lying (and resampling 1 Hz to 16 kHz takes gigabytes)
SOUNDFILE_MAGIC = (b"RIFF", b"RIFX", b"fLaC", b"OggS")  # wav, flac, ogg: read by libsndfile

MB = 1 << 20
BYTES_PER_SECOND = SAMPLE_RATE * 4  # 64000 bytes of float32 mono per decoded second
BLOCK_VALUES = 1 << 20  # samples x channels per block read from libsndfile: 4 MB, whatever the channel count
DECODE_HEADROOM = 256 * MB  # address space the decoder may map beyond its code and the samples it returns
DECODE_TIMEOUT = 30.0  # wall seconds any decode may take, plus DECODE_SECONDS_PER_HOUR per hour allowed
DECODE_SECONDS_PER_HOUR = 120.0  # an hour of MP3 decoded in 6-10 s on a busy core (360-600x); this allows 30x
DECODERS = max(1, os.cpu_count() or 1)  # decoder processes at once; more callers wait for a slot
# FFmpeg demuxers a file may be read with: audio containers, video containers (their audio track), single
# images (told "no audio track"). Not hls, dash, concat, image2, tee...: they open other files or URLs.
DEMUXERS = ("wav,w64,mp3,ogg,flac,mov,matroska,aac,avi,asf,amr,aiff,au,caf,wv,ape,mpc,mpc8,tta,mpegts,mpeg,flv,"
            "ac3,eac3,dts,truehd,loas,rm,voc,xwma,png_pipe,jpeg_pipe,gif,webp_pipe,bmp_pipe,tiff_pipe")
HEADER = struct.Struct("<4sBQ")  # magic, status (0 samples, 1 message), payload bytes
MAGIC = b"LTU1"

AudioSource = str | Path | bytes | np.ndarray
_decoders = threading.BoundedSemaphore(int(os.environ.get("LTU_AS_DECODERS") or DECODERS))


@dataclass(frozen=True)
class Window:
    index: int
    start: float  # seconds
    end: float  # seconds of real audio in the window (the last one is padded past this)


def load_audio(source: AudioSource, max_duration: float = 3600.0, sample_rate: int | None = None,
               name: str | None = None, isolate: bool = True) -> np.ndarray:
    """Decode `source` to 16 kHz mono float32 in [-1, 1].

    A numpy array is taken as mono (or (samples, channels)) at `sample_rate` (default 16 kHz). `name` is how
    error messages call bytes input. Raises InputError with one line for anything that is not usable audio.
    `isolate=False` decodes files and bytes in this process, without the decoder's limits: only for files you
    made yourself (a training set), where it saves the ~0.15 s of starting the decoder process.
    """
    if isinstance(source, np.ndarray):
        audio = _from_array(source, sample_rate or SAMPLE_RATE, max_duration)
    elif isinstance(source, bytes):
        if not source:
            raise InputError(f"{_display(name or 'the audio')} is empty")
        audio = (_decode_isolated if isolate else _decode_here)(source, _display(name or "the audio"), max_duration)
    else:
        path = Path(source)
        if not path.is_file():
            problem = "is not a regular file" if path.exists() else "not found"  # a directory, a device, a FIFO
            raise InputError(f"audio file {problem}: {_display(str(path))}")
        if path.stat().st_size == 0:
            raise InputError(f"audio file is empty: {_display(path.name)}")
        audio = (_decode_isolated if isolate else _decode_here)(path, _display(path.name), max_duration)
    return _check(audio, max_duration)


def decode_timeout(max_duration: float) -> float:
    """Wall seconds a decode of at most `max_duration` seconds may take (LTU_AS_DECODE_TIMEOUT overrides)."""
    override = os.environ.get("LTU_AS_DECODE_TIMEOUT")
    return float(override) if override else DECODE_TIMEOUT + DECODE_SECONDS_PER_HOUR * max_duration / 3600


def decode_memory(max_duration: float) -> int:
    """Bytes of address space the decoder may add to its own code (LTU_AS_DECODE_MEMORY_MB overrides)."""
    override = os.environ.get("LTU_AS_DECODE_MEMORY_MB")
    if override:
        return int(float(override) * MB)
    return DECODE_HEADROOM + 2 * _max_bytes(max_duration)


def _max_bytes(max_duration: float) -> int:
    return int((max_duration + 1) * BYTES_PER_SECOND)  # one second of slack for a resampler's tail


def _display(name: str) -> str:
    """A name fit for a one-line message: no control characters (a file may be called "a\\nb.wav"), bounded."""
    name = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", "?", name)
    return name if len(name) <= 120 else name[:57] + "..." + name[-60:]


# -- the parent's side ---------------------------------------------------------------------------------------------
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); "
          "from engine.audio import _decoder_main; _decoder_main(sys.argv[2:])")
_ROOT = str(Path(__file__).resolve().parent.parent)


def _decode_isolated(source: Path | bytes, name: str, max_duration: float) -> np.ndarray:
    """Run the decoder child on a file (given as its stdin) or bytes (piped in); its samples, or InputError."""
    timeout = decode_timeout(max_duration)
    cap = _max_bytes(max_duration)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MALLOC_ARENA_MAX": "2"}  # one thread and few malloc arenas: the address-space cap measures data
    command = [sys.executable, "-I", "-c", _CHILD, _ROOT, repr(float(max_duration)),
               str(decode_memory(max_duration)), str(int(timeout) + 1), name]
    with _decoders:
        try:
            stdin = open(source, "rb") if isinstance(source, Path) else subprocess.PIPE
        except OSError as error:
            raise InputError(f"cannot read {name}: {error.strerror or type(error).__name__}") from None
        try:
            child = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, cwd="/" if os.name == "posix" else None)
        finally:
            if stdin is not subprocess.PIPE:
                stdin.close()  # the child holds its own copy of the descriptor
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            child.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            if isinstance(source, bytes):
                try:
                    child.stdin.write(source)
                    child.stdin.close()
                except (BrokenPipeError, OSError):
                    pass  # the child died or was killed: its exit status says why
            status, payload = _receive(child.stdout, cap)
            child.stdout.close()
            code = child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:
                child.kill()
                child.wait()
            for pipe in (child.stdin, child.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
    if status == 0 and code == 0:
        return payload
    if status == 1:
        raise InputError(payload)
    if expired.is_set():
        raise InputError(f"{name} took over {timeout:g} s to decode; it was stopped")
    if code == -9 or code == -24:  # SIGKILL (memory or watchdog), SIGXCPU (the CPU-time cap)
        raise InputError(f"{name} could not be decoded within the decoder's limits; it was stopped")
    if code is not None and code < 0:
        raise InputError(f"{name} crashed the audio decoder (signal {-code}); it is not a readable audio file")
    raise InputError(f"{name} is not a readable audio file (the decoder exited with status {code})")


def _decode_here(source: Path | bytes, name: str, max_duration: float) -> np.ndarray:
    with open(source, "rb") if isinstance(source, Path) else io.BytesIO(source) as file:
        return np.concatenate(_decode(file, name, max_duration))


def decode_trusted(source: Path | bytes, max_duration: float = 3600.0) -> np.ndarray:
    """The same decoder as `load_audio`, for files this project made or unpacked itself (training and evaluation
    data): in this process, the samples as decoded (no DC removal, no silence check). InputError if unreadable."""
    source = Path(source) if isinstance(source, str) else source
    return _decode_here(source, _display(source.name) if isinstance(source, Path) else "the audio", max_duration)


def _receive(pipe, cap: int) -> tuple[int | None, object]:
    """Read the child's reply: (0, samples) or (1, message); (None, None) if it broke off or broke the rules."""
    header = _read_exactly(pipe, HEADER.size)
    if header is None:
        return None, None
    magic, status, size = HEADER.unpack(header)
    if magic != MAGIC or status not in (0, 1) or size > (cap if status == 0 else 4096) or size % 4 and status == 0:
        return None, None
    if status == 1:
        body = _read_exactly(pipe, size)
        return (1, body.decode("utf-8", "replace").splitlines()[0][:500]) if body else (None, None)
    samples = np.empty(size // 4, np.float32)  # written once, in place: no second copy of a long clip
    view = memoryview(samples).cast("B")
    got = 0
    while got < size:
        n = pipe.readinto(view[got:])
        if not n:
            return None, None
        got += n
    return 0, samples


def _read_exactly(pipe, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = pipe.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# -- the child's side ----------------------------------------------------------------------------------------------
def _decoder_main(args: list[str]) -> None:
    """Entry point of the decoder process: limits itself, decodes stdin, answers on stdout, exits."""
    max_duration, memory, cpu_seconds, name = float(args[0]), int(args[1]), int(args[2]), args[3]
    import importlib
    import pkgutil

    import av
    import soundfile  # noqa: F401

    # every module before the limits: PyAV imports some lazily (opening a file then would need a descriptor),
    # and mapping the libraries is not the input's doing. 57 small modules, ~15 ms.
    for module in pkgutil.walk_packages(av.__path__, "av."):
        if module.name not in ("av.__main__", "av.datasets"):
            importlib.import_module(module.name)
    _limit_self(memory, cpu_seconds)
    out = os.fdopen(1, "wb", closefd=False)
    try:
        if _is_regular_file(0):
            source: io.BufferedReader | io.BytesIO = os.fdopen(0, "rb", closefd=False)
        else:
            source = io.BytesIO(sys.stdin.buffer.read())
        chunks = _decode(source, name, max_duration)
        size = sum(c.nbytes for c in chunks)
        out.write(HEADER.pack(MAGIC, 0, size))
        for chunk in chunks:
            out.write(memoryview(np.ascontiguousarray(chunk, np.float32)).cast("B"))
    except InputError as error:
        _reply_error(out, str(error))
    except MemoryError:
        _reply_error(out, f"{name} needs more memory to decode than allowed ({memory // MB} MB); it was stopped")
    except Exception as error:  # anything else the parsers raise: the file is the problem
        _reply_error(out, f"{name} is not a readable audio file ({_reason(error)})")
    out.flush()
    os._exit(0)  # no interpreter teardown: nothing is left to clean, and a corrupted heap cannot crash it


def _limit_self(memory: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # not POSIX: the timeout still applies
        return
    limits = [(resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, 0)]
    try:
        with open("/proc/self/statm") as f:  # current address space, in pages: the limit is on top of it
            limits.append((resource.RLIMIT_AS, int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") + memory))
    except OSError:  # not Linux: nothing to measure from (and macOS does not enforce RLIMIT_AS); time still holds
        pass
    lowest_free = os.dup(0)  # a new descriptor is always the lowest free number: with the limit there, none opens
    os.close(lowest_free)
    limits.append((resource.RLIMIT_NOFILE, lowest_free))
    for limit, value in limits:
        resource.setrlimit(limit, (value, value))


def _is_regular_file(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def _reply_error(out, message: str) -> None:
    body = message.replace("\n", " ").encode("utf-8")[:4096]
    out.write(HEADER.pack(MAGIC, 1, len(body)) + body)


def _reason(error: Exception) -> str:
    """FFmpeg's and libsndfile's words for what is wrong, without errno numbers or paths."""
    reason = getattr(error, "strerror", None) or (str(error).splitlines() or [type(error).__name__])[0]
    return {"Invalid argument": "unrecognised or unsupported format"}.get(reason, reason)


def _decode(file: io.IOBase, name: str, max_duration: float) -> list[np.ndarray]:
    """soundfile for wav/flac/ogg (fast, exact); PyAV (FFmpeg inside the wheel) for everything else. The
    container is told by its magic bytes, not its name (libsndfile's mp3 reader prints to stderr). Returns
    16 kHz mono float32 chunks; never more than `max_duration` seconds of them."""
    import soundfile

    magic = file.read(4)
    file.seek(0)
    sink = _Sink(name, max_duration)
    if magic in SOUNDFILE_MAGIC:
        try:
            with soundfile.SoundFile(file) as f:
                _check_rate(f.samplerate, name)
                if f.frames / f.samplerate > max_duration:
                    seconds = f.frames / f.samplerate
                    raise InputError(f"{name} lasts {seconds:.0f} s, over the {max_duration:.0f} s limit")
                resample = _Resampler(f.samplerate)
                block = max(256, BLOCK_VALUES // f.channels)
                for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                    sink.add(resample(_finite(data).mean(axis=1, dtype=np.float32)))
                sink.add(resample.flush())
                if not sink.chunks:
                    raise InputError(f"{name} contains no audio samples")
                return sink.chunks
        except InputError:
            raise
        except Exception:  # e.g. a truncated header: FFmpeg is more forgiving, or gives the better message
            file.seek(0)
            sink = _Sink(name, max_duration)
    return _decode_av(file, sink)


def _decode_av(file: io.IOBase, sink: "_Sink") -> list[np.ndarray]:
    import av

    name = sink.name
    try:
        with av.open(file, mode="r", options={"format_whitelist": DEMUXERS, "protocol_whitelist": "none"}) as container:
            if not container.streams.audio:
                raise InputError(f"{name} has no audio track")
            stream = container.streams.audio[0]
            _check_rate(stream.rate, name)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            broken, first_error = 0, None
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as error:  # a damaged frame: skip it, as FFmpeg's CLI does
                    broken, first_error = broken + 1, first_error or error
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        sink.add(_finite(out.to_ndarray().reshape(-1)))  # stops an endless or huge stream
            for out in resampler.resample(None):
                sink.add(_finite(out.to_ndarray().reshape(-1)))
    except (InputError, MemoryError):
        raise
    except Exception as error:  # FFmpeg's errors name the problem; keep its words, not its errno and path
        raise InputError(f"{name} is not a readable audio file ({_reason(error)})") from None
    if not sink.chunks:
        if first_error is not None:
            raise InputError(f"{name} is not a readable audio file ({_reason(first_error)})")
        raise InputError(f"{name} contains no audio samples")
    return sink.chunks


def _check_rate(rate: int | None, name: str) -> None:
    if rate and not RATES[0] <= rate <= RATES[1]:
        raise InputError(f"{name} claims a sample rate of {rate} Hz; audio is {RATES[0]}-{RATES[1]} Hz")


class _Sink:
    """Decoded chunks, refusing the stream as soon as it passes the duration limit."""

    def __init__(self, name: str, max_duration: float):
        self.name, self.max_duration = name, max_duration
        self.limit = int(max_duration * SAMPLE_RATE)
        self.chunks: list[np.ndarray] = []
        self.total = 0

    def add(self, chunk: np.ndarray) -> None:
        if not chunk.size:
            return
        self.total += chunk.size
        if self.total > self.limit + SAMPLE_RATE // 10:  # a resampler's tail is not over the limit
            raise InputError(f"{self.name} is longer than the {self.max_duration:.0f} s limit")
        self.chunks.append(np.ascontiguousarray(chunk, np.float32))


class _Resampler:
    """Streaming resampling to 16 kHz with FFmpeg's swr (band-limited, unlike linear interpolation)."""

    def __init__(self, sample_rate: int):
        import av

        self.sample_rate = sample_rate
        self._swr = None if sample_rate == SAMPLE_RATE else av.AudioResampler(format="flt", layout="mono",
                                                                               rate=SAMPLE_RATE)

    def __call__(self, mono: np.ndarray) -> np.ndarray:
        if self._swr is None or not mono.size:
            return mono.astype(np.float32, copy=False)
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono, np.float32)[None, :], format="flt",
                                           layout="mono")
        frame.sample_rate = self.sample_rate
        return _join(self._swr.resample(frame))

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32) if self._swr is None else _join(self._swr.resample(None))


def _join(frames) -> np.ndarray:
    out = [f.to_ndarray().reshape(-1) for f in frames]
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def _finite(values: np.ndarray) -> np.ndarray:
    """NaN and infinities (a float file can hold them) become silence, before they spread through a filter.
    In place, a block at a time (nan_to_num makes masks as large as its input)."""
    flat = values.reshape(-1)
    for start in range(0, flat.size, BLOCK_VALUES):
        np.nan_to_num(flat[start : start + BLOCK_VALUES], copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return values


# -- arrays and the final checks (in-process) -----------------------------------------------------------------------
def _from_array(array: np.ndarray, sample_rate: int, max_duration: float) -> np.ndarray:
    audio = np.asarray(array)
    if audio.ndim == 2:
        audio = audio.mean(axis=1 if audio.shape[1] < audio.shape[0] else 0)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.number) or np.iscomplexobj(audio):
        raise InputError(f"audio array must be 1-D or (samples, channels) real numbers, got shape {array.shape}")
    _check_rate(sample_rate, "the audio array")
    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, not {sample_rate}")
    if audio.size / sample_rate > max_duration:
        raise InputError(f"the audio lasts {audio.size / sample_rate:.0f} s, over the {max_duration:.0f} s limit")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio / float(np.iinfo(audio.dtype).max + 1)
    audio = _finite(audio.astype(np.float32))  # a copy: the caller's array is never changed
    resample = _Resampler(sample_rate)
    return np.concatenate([resample(audio), resample.flush()])


def _check(audio: np.ndarray, max_duration: float) -> np.ndarray:
    """Refuse unusable audio; remove DC and keep the peak within [-1, 1]. Works in place on `audio`, which is
    always this module's own buffer (a long clip is not copied three more times)."""
    _finite(audio)  # again: the child's reply is checked, not trusted
    if audio.size < MIN_SAMPLES:
        raise InputError(f"the audio is too short ({audio.size / SAMPLE_RATE * 1000:.0f} ms); give at least 10 ms")
    if audio.size > max_duration * SAMPLE_RATE + SAMPLE_RATE // 10:
        raise InputError(f"the audio lasts {audio.size / SAMPLE_RATE:.0f} s, over the {max_duration:.0f} s limit")
    peak = _peak(audio)
    if peak > 1.0:  # first, so that removing the mean cannot overflow float32
        audio /= peak
    audio -= np.float32(audio.mean(dtype=np.float64))  # a DC offset is not sound
    peak = _peak(audio)
    if peak < SILENCE_PEAK:
        raise InputError("the audio is silent (peak below -70 dBFS)")
    if peak > 1.0:
        audio /= peak
    return np.ascontiguousarray(audio, dtype=np.float32)


def _peak(audio: np.ndarray) -> float:
    return max(float(audio.max()), -float(audio.min()))  # np.abs would make a copy as large as the clip


def windows(audio: np.ndarray) -> list[Window]:
    """The 10 s windows covering `audio`; the last one is partial (padded by `window_samples`)."""
    n = max(1, -(-audio.size // WINDOW_SAMPLES))
    duration = audio.size / SAMPLE_RATE
    return [Window(i, i * WINDOW_SECONDS, min((i + 1) * WINDOW_SECONDS, duration)) for i in range(n)]


def window_samples(audio: np.ndarray, window: Window) -> np.ndarray:
    """The samples of one window, zero-padded to exactly WINDOW_SAMPLES."""
    chunk = audio[window.index * WINDOW_SAMPLES : (window.index + 1) * WINDOW_SAMPLES]
    return np.pad(chunk, (0, WINDOW_SAMPLES - chunk.size))
