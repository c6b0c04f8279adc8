"""Training progress as plain lines, read from LLaMA-Factory's `trainer_log.jsonl`.

On a terminal LLaMA-Factory's own progress bar says enough; in CI and logs (stdout not a TTY) its bar is
noise, so zhouyi prints one line per logged step: step, share, loss, elapsed and remaining time.
"""

from __future__ import annotations

import threading
from pathlib import Path

from zhouyi.runs import read_trainer_log


def progress_line(entry: dict) -> str:
    step, total = entry.get("current_steps"), entry.get("total_steps")
    share = f" ({100 * step / total:.0f}%)" if step and total else ""
    loss = f" loss {entry['loss']:.4f}" if isinstance(entry.get("loss"), (int, float)) else ""
    return (f"progress: step {step}/{total}{share}{loss}, elapsed {entry.get('elapsed_time', '?')}, "
            f"remaining {entry.get('remaining_time', '?')}")


class LogWatcher:
    """Follows a run's trainer_log.jsonl in a thread and echoes a line for each new entry, until the block ends."""

    def __init__(self, run_dir: Path, echo=print, interval: float = 1.0):
        self.run_dir, self.echo, self.interval = run_dir, echo, interval
        self._seen = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LogWatcher:
        # a resumed run's earlier entries are not news
        self._seen = len(read_trainer_log(self.run_dir, complete_only=True))
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self._read()  # what was written after the last poll

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._read()

    def _read(self) -> None:
        entries = read_trainer_log(self.run_dir, complete_only=True)
        for entry in entries[self._seen:]:
            self.echo(progress_line(entry), flush=True)
        self._seen = max(self._seen, len(entries))
