"""A bounded load test of a live LTU-AS server, over loopback only.

    .venv/bin/python scripts/loadtest.py                       # starts its own `app.py` on a free port
    .venv/bin/python scripts/loadtest.py --url http://127.0.0.1:7860 --clients 4 --requests 25 --soak 300

Phases: `clients` concurrent clients send `requests` chat completions each to the OpenAI route (the same
short clip, `max_tokens` tokens: after the first request its analysis is cached, so this measures the route,
the queue and the LLM); then `gradio` sessions each run /analyze + /ask through gradio_client; then a soak of
`soak` sequential small requests, sampling the server's RSS. Prints throughput, p50/p95 latency, errors and
RSS before/after. Refuses any URL that is not loopback. Also used by tests/test_load.py and test_hostile.py.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
QUESTION = "What is said?"
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


# -- the server -----------------------------------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(log: Path, env: dict[str, str] | None = None, start_timeout: float = 240) -> Iterator[Server]:
    """`python app.py` on a free port of 127.0.0.1 (GRADIO_SERVER_NAME unset: the default host), stopped after."""
    port = free_port()
    environment = {**os.environ, "GRADIO_SERVER_PORT": str(port), **(env or {})}
    environment.pop("GRADIO_SERVER_NAME", None)
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer within {start_timeout:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def listening_addresses(pid: int) -> list[str]:
    """The TCP addresses `pid` listens on (host:port), from /proc: its socket inodes matched to /proc/net/tcp*."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.is_file():
            continue
        for row in path.read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                address, port = cols[1].split(":")
                found.append(f"{_ip(address, width)}:{int(port, 16)}")
    return found


def _ip(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


# -- the load ---------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (f"{self.name}: {len(self.latencies)} ok, {len(self.errors)} errors in {self.seconds:.1f} s -> "
                f"{self.throughput:.2f} req/s, p50 {self.percentile(50):.2f} s, p95 {self.percentile(95):.2f} s, "
                f"max {max(self.latencies, default=float('nan')):.2f} s")


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"refusing {url}: the load test only targets loopback ({', '.join(LOOPBACK)})")


def chat_body(audio: bytes, question: str = QUESTION, max_tokens: int = 8, **extra) -> dict:
    data = base64.b64encode(audio).decode()
    return {"model": "ltu-as", "max_tokens": max_tokens, "temperature": 0, **extra,
            "messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
                {"type": "text", "text": question}]}]}


def openai_load(url: str, body: dict, clients: int, requests: int, timeout: float = 300,
                name: str = "openai") -> Result:
    """`clients` threads, each sending `requests` completions one after another; every non-200 is an error."""
    import httpx

    check_loopback(url)
    result = Result(name)
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=timeout) as http:
            for _ in range(requests):
                started = time.perf_counter()
                try:
                    response = http.post(f"{url}/v1/chat/completions", json=body)
                    ok = response.status_code == 200 and response.json()["choices"][0]["message"]["content"] is not None
                    problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except Exception as error:  # counted, not raised: the report says how many and which
                    problem = f"{type(error).__name__}: {error}"
                with lock:
                    if problem:
                        result.errors.append(problem)
                    else:
                        result.latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    clock = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * requests)
    result.seconds = time.perf_counter() - clock
    return result


def gradio_load(url: str, clip: Path, sessions: int, asks: int = 1, max_tokens: int = 8) -> tuple[Result, Result]:
    """`sessions` concurrent gradio_client sessions: /analyze the clip, then `asks` questions each (the page's
    max-tokens slider starts at 16)."""
    from gradio_client import Client, handle_file

    check_loopback(url)
    analyze, ask = Result("gradio /analyze"), Result("gradio /ask")
    lock = threading.Lock()

    def session() -> None:
        try:
            c = Client(url, verbose=False, download_files=False)  # gradio_client would leave /tmp/<hex> dirs
        except Exception as error:
            with lock:
                analyze.errors.append(f"connect: {error}")
            return
        started = time.perf_counter()
        try:
            status = c.predict(handle_file(str(clip)), api_name="/analyze")[0]
            problem = None if status.startswith("Heard") else status
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        with lock:
            (analyze.errors.append(problem) if problem else analyze.latencies.append(time.perf_counter() - started))
        for _ in range(asks):
            started = time.perf_counter()
            try:
                _chat, _box, status = c.predict(QUESTION, "soft", 0.0, max(16, max_tokens), api_name="/ask")
                problem = None if "tok/s" in status else status
            except Exception as error:
                problem = f"{type(error).__name__}: {error}"
            with lock:
                (ask.errors.append(problem) if problem else ask.latencies.append(time.perf_counter() - started))

    threads = [threading.Thread(target=session) for _ in range(sessions)]
    clock = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    analyze.seconds = ask.seconds = time.perf_counter() - clock
    return analyze, ask


def soak(server: Server, body: dict, requests: int, every: int = 25) -> tuple[Result, list[tuple[int, float]]]:
    """`requests` sequential completions; the server's RSS after each `every`."""
    samples = [(0, server.rss_mb())]
    result = Result("soak")
    clock = time.perf_counter()
    for start in range(0, requests, every):
        part = openai_load(server.url, body, 1, min(every, requests - start), name="soak")
        result.latencies += part.latencies
        result.errors += part.errors
        samples.append((start + len(part.latencies) + len(part.errors), server.rss_mb()))
    result.seconds = time.perf_counter() - clock
    return result, samples


def speech_clip(path: Path, sentence: str = SENTENCE) -> Path:
    """A short espeak-ng sentence at 16 kHz (by default the clip every request sends)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), sentence], check=True, capture_output=True, timeout=60)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(path)], check=True, capture_output=True, timeout=60)
    raw.unlink()
    return path


def run(server: Server, clip: Path, clients: int, requests: int, sessions: int, soak_requests: int,
        max_tokens: int) -> dict:
    body = chat_body(clip.read_bytes(), max_tokens=max_tokens)
    report: dict = {"rss_start_mb": server.rss_mb()}
    warm = openai_load(server.url, body, 1, 1, name="warm-up")  # analyzes the clip once; later requests reuse it
    report["warm_up_s"] = warm.latencies[0] if warm.latencies else None
    report["errors"] = list(warm.errors)
    report["rss_warm_mb"] = server.rss_mb()
    load = openai_load(server.url, body, clients, requests, name=f"openai x{clients}")
    report["openai"] = load
    report["errors"] += load.errors
    report["rss_after_load_mb"] = server.rss_mb()
    if sessions:
        analyze, ask = gradio_load(server.url, clip, sessions, max_tokens=max_tokens)
        report["gradio_analyze"], report["gradio_ask"] = analyze, ask
        report["errors"] += analyze.errors + ask.errors
    report["rss_before_soak_mb"] = server.rss_mb()
    if soak_requests:
        soaked, samples = soak(server, body, soak_requests)
        report["soak"], report["soak_rss"] = soaked, samples
        report["errors"] += soaked.errors
    report["rss_end_mb"] = server.rss_mb()
    report["alive"] = server.alive()
    return report


def save_figures(path: Path, name: str, figures: dict, command: str) -> None:
    """Add `figures` under `name` to a reliability JSON (the evaluation report shows them), with when, what and
    how loaded the machine was."""
    import json
    from datetime import datetime, timezone

    saved = json.loads(path.read_text()) if path.is_file() else {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    saved[name] = {"command": command, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "commit": commit.strip(), "cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2),
                   **figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1))


def figures(report: dict) -> dict:
    """The report's numbers, as JSON."""
    out = {k: round(v, 1) for k, v in report.items() if k.startswith("rss_") or k == "warm_up_s"}
    for key in ("openai", "gradio_analyze", "gradio_ask", "soak"):
        if key in report:
            r = report[key]
            out[key] = {"requests": len(r.latencies) + len(r.errors), "errors": len(r.errors),
                        "throughput_per_s": round(r.throughput, 2), "p50_s": round(r.percentile(50), 3),
                        "p95_s": round(r.percentile(95), 3)}
    if "soak_rss" in report:
        out["soak_rss_mb"] = [[n, round(mb)] for n, mb in report["soak_rss"]]
    out["errors"] = len(report["errors"])
    out["alive"] = report["alive"]
    return out


def print_report(report: dict) -> None:
    print(f"server RSS: start {report['rss_start_mb']:.0f} MB, after warm-up {report['rss_warm_mb']:.0f} MB "
          f"(first request {report['warm_up_s']:.2f} s), after load {report['rss_after_load_mb']:.0f} MB, "
          f"end {report['rss_end_mb']:.0f} MB")
    for key in ("openai", "gradio_analyze", "gradio_ask", "soak"):
        if key in report:
            print("  " + report[key].line())
    if "soak_rss" in report:
        print("  soak RSS (requests, MB): " + ", ".join(f"{n}:{mb:.0f}" for n, mb in report["soak_rss"]))
    print(f"errors: {len(report['errors'])}" + "".join(f"\n  {e}" for e in report["errors"][:10]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server on loopback (default: start app.py on a free port)")
    parser.add_argument("--clip", help="the audio every request sends (default: an espeak-ng sentence)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=10, help="per client")
    parser.add_argument("--gradio", type=int, default=2, help="concurrent gradio_client sessions")
    parser.add_argument("--soak", type=int, default=200, help="sequential requests in the soak")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--save", type=Path, help="add the figures to this reliability JSON (docs/results/...)")
    args = parser.parse_args()
    if args.clients * args.requests > 2000 or args.soak > 5000:
        raise SystemExit("keep it bounded: at most 2000 load requests and 5000 soak requests")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ltu-load-") as tmp:
        clip = Path(args.clip) if args.clip else speech_clip(Path(tmp) / "speech.wav")
        if args.url:
            check_loopback(args.url)
            pid = _pid_listening(urlparse(args.url).port)
            server = Server(args.url.rstrip("/"), _Attached(pid), Path("/dev/null"))
            report = run(server, clip, args.clients, args.requests, args.gradio, args.soak, args.max_tokens)
        else:
            with serve(Path(tmp) / "app.log") as server:
                report = run(server, clip, args.clients, args.requests, args.gradio, args.soak, args.max_tokens)
    print_report(report)
    if args.save:
        command = " ".join(["scripts/loadtest.py", *sys.argv[1:]])
        save_figures(args.save, "load", {"clients": args.clients, "requests_per_client": args.requests,
                                         "gradio_sessions": args.gradio, "soak_requests": args.soak,
                                         **figures(report)}, command)
    return 0 if not report["errors"] and report["alive"] else 1


class _Attached:
    """Enough of Popen for a server this script did not start: its pid, and whether it still runs."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        return None if Path(f"/proc/{self.pid}").exists() else 0


def _pid_listening(port: int | None) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if any(a.endswith(f":{port}") for a in listening_addresses(int(proc.name))):
                    return int(proc.name)
            except OSError:
                continue
    raise SystemExit(f"no local process listens on port {port} (needed to read its RSS)")


if __name__ == "__main__":
    sys.exit(main())
