"""`python app.py`: the LTU-AS web app (Gradio) and its OpenAI-compatible route, on the embedded models.

Binds 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say otherwise (a Hugging Face Space sets
0.0.0.0). Limits: LTU_AS_MAX_UPLOAD_MB, LTU_AS_MAX_DURATION, LTU_AS_CONCURRENCY (see app/settings.py)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys
import time

import uvicorn

from app.engines import Engines
from app.server import create
from app.settings import AppSettings
from engine.errors import LtuError


def main() -> None:
    settings = AppSettings.from_env()
    engines = Engines(settings)
    clock = time.perf_counter()
    try:  # load the shared models now, so the first visitor does not wait; a failure is shown in the page
        engines.get()
        print(f"models loaded in {time.perf_counter() - clock:.1f} s", file=sys.stderr)
    except LtuError as error:
        print(f"warning: the default models did not load: {error}", file=sys.stderr)
    server = create(settings, engines)
    print(f"LTU-AS on http://{settings.host}:{settings.port} (OpenAI route: /v1/chat/completions)", file=sys.stderr)
    uvicorn.run(server, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
