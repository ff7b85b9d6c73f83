"""``LambdaCallback``: a callback made of plain functions (Keras 3's)."""

from __future__ import annotations

from .callback import HOOK_NAMES, Callback


class LambdaCallback(Callback):
    """Run the given functions at the matching hooks.

    They are called exactly as the hooks are: ``on_epoch_begin/end(epoch, logs)``,
    ``on_train_begin/end(logs)``, ``on_*_batch_begin/end(batch, logs=logs)``::

        LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]),
                       on_train_batch_end=lambda batch, logs: None)

    Any other hook can be given by name (``on_test_end=f``).

    Raises:
        TypeError: a keyword is not a hook name (a typo would otherwise
            silently never run; Keras accepts it).
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(set(kwargs) - set(HOOK_NAMES))
        if unknown:
            raise TypeError(
                f"LambdaCallback: {unknown} are not callback hooks; valid names are {list(HOOK_NAMES)}."
            )
        hooks = dict(
            kwargs,
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
        )
        for name, function in hooks.items():
            if function is not None:
                setattr(self, name, function)  # shadows the do-nothing method
