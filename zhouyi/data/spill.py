"""Rows kept on disk between the cleaning's passes. Cleaning reads every page twice (once to learn each site's
templates, once to strip them) and then reads the kept texts again (near duplicates, the split, the output): held in
memory, a million scraped pages cost gigabytes three times over; here they cost one temporary file, gone when the
cleaning ends, and 8 bytes a row."""

from __future__ import annotations

import pickle
import tempfile
from array import array
from collections.abc import Iterator


class Spill:
    """An append-only list of tuples in an unnamed temporary file: append, len, index, iterate."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._offsets = array("q")

    def append(self, row: tuple) -> int:
        """Store `row`; returns its index."""
        self._offsets.append(self._file.seek(0, 2))
        pickle.dump(row, self._file, pickle.HIGHEST_PROTOCOL)
        return len(self._offsets) - 1

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index: int) -> tuple:
        self._file.seek(self._offsets[index])
        return pickle.load(self._file)

    def __iter__(self) -> Iterator[tuple]:
        """Every row in order (reading sequentially; do not index the spill while iterating it)."""
        self._file.seek(0)
        for _ in range(len(self._offsets)):
            yield pickle.load(self._file)

    def close(self) -> None:
        self._file.close()


class Column:
    """One field of every row of a spill, read lazily: `Column(spill, 2)[i]` is `spill[i][2]`."""

    def __init__(self, spill: Spill, field: int, rows: list[int] | None = None) -> None:
        self._spill, self._field, self._rows = spill, field, rows

    def __len__(self) -> int:
        return len(self._spill) if self._rows is None else len(self._rows)

    def __getitem__(self, index: int):
        return self._spill[index if self._rows is None else self._rows[index]][self._field]
