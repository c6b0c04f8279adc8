"""Training progress as plain lines, read from LLaMA-Factory's `trainer_log.jsonl`.

On a terminal LLaMA-Factory's own progress bar says enough; in CI and logs (stdout not a TTY) its bar is
noise, so zhouyi prints one line per logged step: step, share, loss, elapsed and remaining time.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path


def progress_line(entry: dict) -> str:
    step, total = entry.get("current_steps"), entry.get("total_steps")
    share = f" ({100 * step / total:.0f}%)" if step and total else ""
    loss = f" loss {entry['loss']:.4f}" if isinstance(entry.get("loss"), (int, float)) else ""
    return (f"progress: step {step}/{total}{share}{loss}, elapsed {entry.get('elapsed_time', '?')}, "
            f"remaining {entry.get('remaining_time', '?')}")


class LogWatcher:
    """Follows a trainer_log.jsonl in a thread and echoes a line for each entry, until `stop()`."""

    def __init__(self, log: Path, echo=print, interval: float = 1.0):
        self.log, self.echo, self.interval = log, echo, interval
        self._seen = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LogWatcher:
        self._seen = len(self._complete_lines())  # a resumed run's earlier entries are not news
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self._read()  # what was written after the last poll

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._read()

    def _complete_lines(self) -> list[str]:
        """The log's lines, without a last one still being written."""
        if not self.log.is_file():
            return []
        text = self.log.read_text(encoding="utf-8")
        lines = text.splitlines()
        return lines if text.endswith("\n") else lines[:-1]

    def _read(self) -> None:
        complete = self._complete_lines()
        for line in complete[self._seen:]:
            try:
                self.echo(progress_line(json.loads(line)), flush=True)
            except json.JSONDecodeError:
                pass
        self._seen = max(self._seen, len(complete))
