"""Serving a trained run: LLaMA-Factory's API server (server.py) behind `api`, `ask` and `chat` (chat.py), and its
web UI in a prepared folder (webui.py)."""
