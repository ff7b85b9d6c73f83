"""VGG16 with Keras' exact topology, layer names and arguments.

Simonyan & Zisserman (2014): five blocks of 3x3 ``same`` convolutions with
ReLU, each closed by a 2x2 max-pool, then (``include_top``) ``flatten`` and
three dense layers. The architecture is data, the ``ARCH`` tuple below; the
builder turns it into layers named ``block{b}_conv{i}``, ``block{b}_pool``,
``flatten``, ``fc1``, ``fc2``, ``predictions`` as in Keras, chained with the
functional API exactly as Keras' ``vgg16.py`` chains them: so ``model.layers``
starts with the ``InputLayer`` (19 layers without the top, 23 with it), as in
Keras, and code that counts layers from the front picks the same ones.
"""

from __future__ import annotations

import os

from ..errors import WeightFileError
from ..layers import (
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Input,
    KerasTensor,
    MaxPooling2D,
)
from ..models import Functional
from .imagenet_utils import decode_predictions, preprocess_input  # noqa: F401 (Keras' import path)

# (number of 3x3 convolutions, filters) for each of the five blocks
ARCH = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
TOP_UNITS = 4096
POOLINGS = (None, "avg", "max")


def _check_args(include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation):
    if not (
        weights in (None, "imagenet") or isinstance(weights, (str, bytes)) or hasattr(weights, "__fspath__")
    ):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to the weights file to "
            f"be loaded. Received: weights={weights!r}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "If using `weights='imagenet'` with `include_top=True`, `classes` should be "
            f"1000. Received classes={classes}"
        )
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}. Valid choices: None, 'avg', 'max'.")
    if input_tensor is not None and not isinstance(input_tensor, KerasTensor):
        raise ValueError(
            "`input_tensor` must be a symbolic tensor from numvgg.layers.Input(...) "
            f"(or a layer called on one); received {type(input_tensor).__name__}."
        )
    if include_top and classifier_activation not in (None, "softmax", "linear", "sigmoid", "relu", "tanh"):
        raise ValueError(
            f"Unknown classifier_activation {classifier_activation!r}. Valid choices: "
            "'softmax', None, 'linear', 'sigmoid', 'relu', 'tanh'."
        )
    if weights == "imagenet" and include_top and classifier_activation not in ("softmax", None):
        raise ValueError(
            "Only `None` and `softmax` activations are allowed for the "
            "`classifier_activation` argument when using pretrained weights, "
            f"with `include_top=True`; Received: {classifier_activation}"
        )


def _resolve_input_shape(input_shape, include_top, weights):
    """Keras' ``obtain_input_shape`` for VGG16: default 224x224x3, 3 channels,
    sides >= 32, and exactly 224x224 when the top (``fc1``) is included with
    the published weights."""
    if input_shape is None:
        # Keras: without the top the convolutions take any size.
        return (224, 224, 3) if include_top else (None, None, 3)
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"`input_shape` must be a tuple of three integers (height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    h, w, c = shape
    if c != 3 and weights == "imagenet":
        raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
    if c != 3:
        raise ValueError(
            f"VGG16 takes RGB input: the input must have 3 channels; Received `input_shape={input_shape}`"
        )
    if (h is not None and h < 32) or (w is not None and w < 32):
        raise ValueError(f"Input size must be at least 32x32; Received: input_shape={input_shape}")
    if include_top and weights == "imagenet" and (h, w) != (224, 224):
        raise ValueError(
            "When setting `include_top=True` and loading `imagenet` weights, `input_shape` should be "
            f"(224, 224, 3). Received: input_shape={input_shape} (fc1 needs a 7x7x512 = 25088 feature map)"
        )
    if include_top and (h is None or w is None):
        raise ValueError(
            "With include_top=True the input size must be known: fc1's input size "
            f"depends on it. Received input_shape={input_shape}"
        )
    return shape


def VGG16(
    include_top: bool = True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "vgg16",
    dtype=None,
):
    """Build VGG16 like ``keras.applications.VGG16``.

    Args:
        include_top: add ``flatten``, ``fc1``, ``fc2`` and ``predictions``.
        weights: ``None`` (random), ``'imagenet'`` (the published file, from
            Keras' cache or downloaded), or a path to a weights file.
        input_tensor: a symbolic tensor to build on (functional API), e.g. the
            output of an augmentation layer; its source ``Input`` becomes the
            model's input.
        input_shape: ``(H, W, 3)``, sides >= 32; ``(224, 224, 3)`` by default.
        pooling: without the top, ``None`` (4-D output), ``'avg'`` or ``'max'``.
        classes: output units of ``predictions``.
        classifier_activation: activation of ``predictions``.
        dtype: numvgg's option: ``'float64'`` builds a float64 VGG16 (default:
            :func:`numvgg.config.floatx`, ``'float32'``).
    Returns:
        A built functional model (:class:`~numvgg.models.Functional`) named
        ``'vgg16'``; input ``(N, H, W, 3)`` (after :func:`preprocess_input`),
        output ``(N, classes)`` with the top, else ``(N, H/32, W/32, 512)`` or
        ``(N, 512)`` with pooling. ``model.weights_source`` says where its
        weights came from: ``'random'``, ``'imagenet'`` or the file's path.
    """
    _check_args(include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation)
    if weights not in (None, "imagenet") and not os.path.exists(weights):
        # Checked before building: the model with its top holds 138M weights.
        raise WeightFileError(
            "The `weights` argument should be either `None` (random initialization), 'imagenet' "
            "(pre-training on ImageNet), or the path to the weights file to be loaded. The file "
            f"'{os.fspath(weights)}' does not exist."
        )
    if input_tensor is not None and input_shape is None:
        input_shape = input_tensor.shape[1:]
    shape = _resolve_input_shape(input_shape, include_top, weights)

    if input_tensor is None:
        img_input = Input(shape=shape, dtype=dtype)
        inputs = img_input
    else:
        img_input = input_tensor
        inputs = _source_inputs(input_tensor)
    x = img_input
    for block, (n_convs, filters) in enumerate(ARCH, start=1):
        for i in range(1, n_convs + 1):
            x = Conv2D(
                filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}", dtype=dtype
            )(x)
        x = MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool", dtype=dtype)(x)

    if include_top:
        x = Flatten(name="flatten", dtype=dtype)(x)
        x = Dense(TOP_UNITS, activation="relu", name="fc1", dtype=dtype)(x)
        x = Dense(TOP_UNITS, activation="relu", name="fc2", dtype=dtype)(x)
        x = Dense(classes, activation=classifier_activation, name="predictions", dtype=dtype)(x)
    elif pooling == "avg":
        x = GlobalAveragePooling2D(dtype=dtype)(x)
    elif pooling == "max":
        x = GlobalMaxPooling2D(dtype=dtype)(x)

    model = Functional(inputs, x, name=name, dtype=dtype)
    model.weights_source = "random"
    if weights == "imagenet":
        from ..io.download import get_vgg16_weights_path

        model.load_weights(get_vgg16_weights_path(include_top))
        model.weights_source = "imagenet"
    elif weights is not None:
        # VGG16's layers by name wherever the file holds them (a nested model's file, HED's
        # trunk), else Keras' own rule; all or nothing (numvgg.io.weights.load_vgg16_weights).
        from ..io.weights import load_vgg16_weights

        load_vgg16_weights(model, weights)
        model.weights_source = os.fspath(weights)
    return model


def _source_inputs(tensor):
    """The ``Input`` tensor(s) that ``tensor`` was computed from (Keras' get_source_inputs)."""
    found, stack, seen = [], [tensor], set()
    while stack:
        t = stack.pop()
        if t.node.layer.is_input_layer:
            if t.id not in seen:
                seen.add(t.id)
                found.append(t)
            continue
        stack.extend(reversed(t.node.inputs))
    return found[0] if len(found) == 1 else found
