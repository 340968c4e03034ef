"""One server: FastAPI with the OpenAI-compatible route, and the Gradio app mounted at `/`."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from . import openai_api, ui
from .engines import Engines
from .settings import AppSettings


def create(settings: AppSettings, engines: Engines | None = None) -> FastAPI:
    engines = engines or Engines(settings)
    # no Swagger page: it loads its scripts from a CDN, and this server works offline
    server = FastAPI(title="LTU-AS", docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json")
    server.include_router(openai_api.router(engines, settings))  # before the mount: `/` catches everything else
    demo = ui.build(engines, settings)
    app = gr.mount_gradio_app(server, demo, path="/", server_name=settings.host, server_port=settings.port,
                              max_file_size=settings.max_upload_bytes, show_error=True, run_history=False,
                              footer_links=["api", "gradio", "settings"])
    # Gradio checks that a file named in an API call was uploaded only once the Blocks "has launched", which
    # mount_gradio_app never sets: without this, a hand-made call could make the app read any file on the server.
    demo.has_launched = True
    return app
