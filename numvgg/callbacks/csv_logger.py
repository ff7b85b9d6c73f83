"""``CSVLogger``: one CSV row per epoch (Keras 3's format, byte for byte)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable

import numpy as np

from .callback import Callback


def _csv_value(value):
    """Strings and scalars as they are; a list or array as ``"[1, 2]"``, as Keras writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, flushed after every epoch.

    Args:
        filename: path of the CSV file.
        separator: the column separator.
        append: add to an existing file (the header is written only if the
            file is empty) instead of overwriting it.

    The columns are ``epoch`` (0-based) then the log keys sorted, fixed at the
    first epoch. When that epoch has no ``val_`` key, ``val_`` columns are added
    anyway and hold ``NA`` (Keras does this so that a later validation run does
    not change the header). Lines end with ``\\r\\n`` (the ``csv`` module's
    default dialect, as in Keras).
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8") as f:
                    self.append_header = not f.readline()
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        # newline="" lets the csv module write its own line ends.
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:
            dialect = type("CSVLoggerDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _csv_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
