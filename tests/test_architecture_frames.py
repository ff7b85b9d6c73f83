"""How deep the conv op sits below ``fit``: the call chain a student steps through.

``fit`` (public API) -> ... -> ``numvgg.ops.conv.conv2d_forward``. The count is the
number of Python frames from the op up to ``fit`` (the op's own frame counted,
``fit``'s not), measured by replacing the op with a wrapper that looks at
``inspect.stack()``. docs/architecture.md quotes the numbers; this test keeps
the count from growing silently. Run this file as a script to print them (it
works on older checkouts too: ``PYTHONPATH=<checkout> python tests/test_architecture_frames.py``).
"""

import inspect

import numpy as np

#: Frames from ``fit`` to ``conv2d_forward`` today (docs/architecture.md, "Frames"):
#: fit -> train_step -> Model.__call__ -> Model.forward -> Conv2D.forward -> op.
#: Before the single-path refactor it was 6 (7 with a frozen base), then 12, then 9.
FIT_TO_CONV_FRAMES = 5


def fit_frames_to_conv(frozen_base: bool = False, nesting: int = 1) -> list[int]:
    """Depth of ``conv2d_forward`` below ``Model.fit`` at each conv call of a small fit.

    The model is the transfer-learning shape in miniature: a conv base (frozen or
    not), global average pooling and a sigmoid Dense, one epoch of 2 batches.
    ``nesting`` > 1 wraps the base in that many more ``Sequential`` s.
    """
    from numvgg import initializers
    from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential
    from numvgg.ops import conv as conv_ops

    initializers.set_seed(0)
    base = Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 3)),
            Conv2D(4, 3, padding="same", activation="relu"),
        ],
        name="base",
    )
    for level in range(1, nesting):
        base = Sequential([base], name=f"wrapper_{level}")
    base.trainable = not frozen_base
    model = Sequential([base, GlobalAveragePooling2D(), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 8, 8, 3)).astype(np.float32), rng.integers(0, 2, (8, 1))

    depths = []
    original = conv_ops.conv2d_forward

    def measured(*args, **kwargs):
        frames = [f.function for f in inspect.stack(context=0)]
        depths.append(frames.index("fit"))  # frames[0] is this wrapper: the op's place
        return original(*args, **kwargs)

    conv_ops.conv2d_forward = measured
    try:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    finally:
        conv_ops.conv2d_forward = original
    return depths


def test_fit_reaches_the_conv_op_in_a_fixed_number_of_frames():
    depths = fit_frames_to_conv()
    assert depths and set(depths) == {FIT_TO_CONV_FRAMES}, depths


def test_frozen_base_takes_the_same_path():
    depths = fit_frames_to_conv(frozen_base=True)
    assert depths and set(depths) == {FIT_TO_CONV_FRAMES}, depths


def test_deeper_nesting_adds_no_frame():
    """Nested models are opened up into one run order: three levels deep, the
    conv op is as close to fit as in a flat model."""
    depths = fit_frames_to_conv(nesting=3)
    assert depths and set(depths) == {FIT_TO_CONV_FRAMES}, depths


if __name__ == "__main__":
    for frozen in (False, True):
        print(
            f"frozen_base={frozen}: frames fit -> conv2d_forward per call:",
            sorted(set(fit_frames_to_conv(frozen))),
        )
