"""Learning-rate schedules: the learning rate as a function of the step.

An optimizer given a schedule instead of a float asks it for the rate before
every update, passing ``optimizer.iterations`` -- the number of updates
*already applied* -- so the first update uses ``schedule(0)``, as in Keras
(``BaseOptimizer._get_current_learning_rate`` calls the schedule with
``self._iterations`` before the counter is incremented).

Keras evaluates schedules in float32 (the initial rate becomes a float32
tensor and every other number is cast to its dtype); so does numvgg, so that
``numvgg`` and ``keras`` give the same rate to the last bit or so.
"""

from __future__ import annotations

import abc

import numpy as np


class LearningRateSchedule(abc.ABC):
    """Base class: a callable ``step -> learning rate`` with a config.

    Subclasses implement ``__call__(step)`` returning a ``np.float32`` and
    ``get_config()`` returning the constructor arguments.
    """

    @abc.abstractmethod
    def __call__(self, step) -> np.float32:
        """The learning rate at optimizer step ``step``."""

    @abc.abstractmethod
    def get_config(self) -> dict:
        """The constructor arguments."""

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class _DecaySchedule(LearningRateSchedule):
    """Shared arguments of the two decays below and the exponent ``p``."""

    def __init__(
        self, initial_learning_rate, decay_steps, decay_rate, staircase: bool = False, name: str | None = None
    ):
        if decay_steps <= 0:
            raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = bool(staircase)
        self.name = name or type(self).__name__

    def _progress(self, step) -> np.float32:
        """``p = step / decay_steps`` (floored when ``staircase``), in float32."""
        p = np.float32(step) / np.float32(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class ExponentialDecay(_DecaySchedule):
    """``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is floored, so the rate drops by a
    factor ``decay_rate`` every ``decay_steps`` updates.

    Example::

        schedule = ExponentialDecay(1e-2, decay_steps=1000, decay_rate=0.9)
        opt = numvgg.optimizers.SGD(learning_rate=schedule)
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step) -> np.float32:
        p = self._progress(step)
        return np.float32(self.initial_learning_rate) * np.power(np.float32(self.decay_rate), p)


class InverseTimeDecay(_DecaySchedule):
    """``lr(step) = initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    ``InverseTimeDecay(lr, decay_steps=1, decay_rate=d)`` is what Keras 2's
    ``decay=d`` optimizer argument did (Keras 3 ignores ``decay=``).
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step) -> np.float32:
        p = self._progress(step)
        return np.float32(self.initial_learning_rate) / (np.float32(1) + np.float32(self.decay_rate) * p)


ALL_SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": {...}}``, the shape Keras writes."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize`'s output."""
    name = config.get("class_name")
    if name not in ALL_SCHEDULES:
        raise ValueError(f"Unknown learning rate schedule {name!r}; numvgg knows {sorted(ALL_SCHEDULES)}.")
    return ALL_SCHEDULES[name].from_config(config.get("config", {}))
