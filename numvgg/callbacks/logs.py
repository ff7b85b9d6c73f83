"""Values in the logs that callbacks receive.

:class:`NoSamples` is what a loss or metric computed over zero samples logs.
It lives here, below ``models``, because both sides need it: ``fit`` and
``evaluate`` (in :mod:`numvgg.models`) produce it, the callbacks recognise it.
"""

from __future__ import annotations


class NoSamples(float):
    """The value logged for a loss or metric computed over zero samples: NaN,
    marked so callbacks can tell it from a loss that really turned NaN.

    An epoch or an evaluation that got no batch at all (an exhausted
    generator, a dataset whose files were all unreadable) has no loss: a Mean
    over nothing is not 0.0. ``fit`` stops at such an epoch without logging it;
    ``evaluate`` returns ``NoSamples`` for each value (so ``val_loss`` is NaN,
    never an improvement), and ``ModelCheckpoint``, ``EarlyStopping`` and
    ``ReduceLROnPlateau`` skip it with a warning.
    """

    def __new__(cls):
        return super().__new__(cls, "nan")

    def __repr__(self):
        return "nan (no samples)"


def no_sample_logs(logs: dict) -> dict:
    """``logs`` with every value replaced by :class:`NoSamples`."""
    return {name: NoSamples() for name in logs}
