"""The web face of the engine: a Gradio app (ui.py) and an OpenAI-compatible route (openai_api.py) on one server.

    settings.py  what the server is allowed to do (limits, host, port), read once from the environment
    engines.py   the shared, lazily loaded Engine(s) every session and request uses
    plots.py     waveform + spectrogram with the events on the time axis, the events as a table for a bar chart
    ui.py        the Blocks: per-session clip, context and chat; streamed answers
    openai_api.py  POST /v1/chat/completions (input_audio parts, stream true/false)
    server.py    FastAPI app with the route, Gradio mounted at /
"""
