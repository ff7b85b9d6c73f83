"""Layers and models to and from Keras 3's config dicts (``config.json`` of a ``.keras`` file).

Keras describes every layer as::

    {"module": "keras.layers", "class_name": "Conv2D", "config": {...},
     "registered_name": None, "build_config": {"input_shape": [...]}}

and a functional model's ``config`` lists its layers, each with the calls
(``inbound_nodes``) that connect it: every input tensor is named by its
``keras_history`` ``[layer name, node index, tensor index]``. A ``Sequential``
lists its layers in order (an ``InputLayer`` first when it has one).

numvgg's layers already use Keras' argument names in ``get_config()``; this
module adds what Keras writes on top (``data_format``, regularizers,
initializers as dicts, the dtype policy...) and, when reading, checks that
those extras hold the only values numvgg can honour, so a Keras file that
uses something numvgg lacks (a dilated conv, a regularizer) fails with a
message instead of loading into a different model.
"""

from __future__ import annotations

from .. import layers as layers_module
from ..errors import NumvggError
from ..layers.symbolic import KerasTensor


class KerasFileError(NumvggError, ValueError):
    """A ``.keras`` file numvgg cannot read or write (the message says why)."""


# Keras-only config keys and the one value numvgg supports (what Keras
# writes by default). Reading any other value is an error.
_CONV_EXTRAS = {
    "data_format": "channels_last",
    "dilation_rate": (1, 1),
    "groups": 1,
    "kernel_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "kernel_constraint": None,
    "bias_constraint": None,
}
_CHANNELS_LAST = {"data_format": "channels_last"}
KERAS_EXTRAS = {
    "Conv2D": _CONV_EXTRAS,
    "Dense": {
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
        "quantization_config": None,
        "activity_regularizer": None,
        "lora_rank": None,
        "lora_alpha": None,
    },
    "MaxPooling2D": _CHANNELS_LAST,
    "GlobalAveragePooling2D": {"data_format": "channels_last", "keepdims": False},
    "GlobalMaxPooling2D": {"data_format": "channels_last", "keepdims": False},
    "Flatten": _CHANNELS_LAST,
    "Dropout": {"noise_shape": None},
    "BatchNormalization": {
        "beta_regularizer": None,
        "gamma_regularizer": None,
        "beta_constraint": None,
        "gamma_constraint": None,
        "synchronized": False,
        "renorm": False,
        "renorm_clipping": None,
        "renorm_momentum": 0.99,
    },
    "Resizing": {
        "data_format": "channels_last",
        "pad_to_aspect_ratio": False,
        "fill_mode": "constant",
        "fill_value": 0.0,
        "antialias": False,
    },
    "CenterCrop": _CHANNELS_LAST,
    "RandomFlip": _CHANNELS_LAST,
    "RandomRotation": _CHANNELS_LAST,
    "RandomZoom": _CHANNELS_LAST,
    "RandomTranslation": _CHANNELS_LAST,
    "RandomContrast": _CHANNELS_LAST,
    "RandomBrightness": _CHANNELS_LAST,
    "InputLayer": {"sparse": False, "ragged": False, "optional": False},
}
# Keys whose value only affects Keras' bookkeeping, never the numbers.
_IGNORED_KEYS = {"input_dim"}

# numvgg initializer name <-> Keras initializer class.
_INITIALIZERS = {
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "zeros": "Zeros",
    "ones": "Ones",
}
_INITIALIZER_NAMES = {v: k for k, v in _INITIALIZERS.items()}


def layer_classes() -> dict:
    """Keras class name -> numvgg class, for every layer numvgg can rebuild."""
    from ..models import Functional, Sequential

    # Keyed by the class's own name (MaxPool2D is MaxPooling2D in Keras' files too);
    # ResizeLike is numvgg's (HED's upsampling): Keras has no class to load it into.
    names = [n for n in layers_module.__all__ if n not in ("Layer", "Input", "KerasTensor", "ResizeLike")]
    classes = {getattr(layers_module, n).__name__: getattr(layers_module, n) for n in names}
    classes.update({"Functional": Functional, "Model": Functional, "Sequential": Sequential})
    return classes


# -- numvgg -> Keras ---------------------------------------------------------------
def _dtype_policy(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def _initializer_config(fn) -> dict:
    name = getattr(fn, "__name__", None)
    if name not in _INITIALIZERS:
        raise KerasFileError(
            f"Cannot write initializer {fn!r} to a .keras file; numvgg writes {sorted(_INITIALIZERS)}."
        )
    config = {"seed": None} if name.startswith(("glorot", "he")) else {}
    return {
        "module": "keras.initializers",
        "class_name": _INITIALIZERS[name],
        "config": config,
        "registered_name": None,
    }


def _initializers_of(layer) -> dict:
    """The layer's initializers under Keras' config keys."""
    if isinstance(getattr(layer, "initializers", None), dict):  # BatchNormalization
        return {f"{k}_initializer": _initializer_config(fn) for k, fn in layer.initializers.items()}
    return {
        key: _initializer_config(getattr(layer, key))
        for key in ("kernel_initializer", "bias_initializer")
        if hasattr(layer, key)
    }


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # NumPy scalars
    return value


def serialize_layer(layer) -> dict:
    """``layer`` as Keras' ``serialize_keras_object`` writes it."""
    from ..models import Model, Sequential

    class_name = type(layer).__name__
    if isinstance(layer, Sequential):
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": _sequential_config(layer),
            "registered_name": None,
            "build_config": {"input_shape": _jsonable(layer.input_shape)},
        }
    if isinstance(layer, Model):
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": _functional_config(layer),
            "registered_name": "Functional",
            "build_config": {"input_shape": None},
        }
    if class_name not in layer_classes():
        raise KerasFileError(
            f"Cannot save layer '{layer.name}': its class {class_name} is not a "
            "Keras layer, so Keras could not load the file."
        )
    config = dict(layer.get_config())
    if class_name != "InputLayer":
        config["dtype"] = _dtype_policy(layer.dtype.name)
        config.update(_initializers_of(layer))
    for key, value in KERAS_EXTRAS.get(class_name, {}).items():
        config.setdefault(key, value)
    out = {
        "module": "keras.layers",
        "class_name": class_name,
        "config": _jsonable(config),
        "registered_name": None,
    }
    if layer.params and layer.input_shape is not None:
        out["build_config"] = {"input_shape": _jsonable(layer.input_shape)}
    return out


def _sequential_config(model) -> dict:
    layers = []
    if model._input_layer is not None:
        layers.append(serialize_layer(model._input_layer))
    layers += [serialize_layer(layer) for layer in model.layers]
    config = {
        "name": model.name,
        "trainable": model.trainable,
        "dtype": _dtype_policy(model.dtype.name),
        "layers": layers,
    }
    if model.built:
        config["build_input_shape"] = _jsonable(model.input_shape)
    return config


def _node_indices(model) -> dict:
    """id(node) -> that node's index among its layer's calls inside ``model``."""
    counts: dict = {}
    index = {}
    for node in model._nodes:
        index[id(node)] = counts.get(id(node.layer), 0)
        counts[id(node.layer)] = index[id(node)] + 1
    return index


def _functional_config(model) -> dict:
    index = _node_indices(model)

    def history(t: KerasTensor):
        return [t.node.layer.name, index[id(t.node)], t.index]

    def tensor(t: KerasTensor) -> dict:
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": _jsonable(t.shape), "dtype": t.dtype, "keras_history": history(t)},
        }

    layers = []
    for layer in model.layers:
        entry = serialize_layer(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {
                "args": [[tensor(t) for t in node.inputs] if node.many_inputs else tensor(node.inputs[0])],
                "kwargs": {},
            }
            for node in model._nodes
            if node.layer is layer and not layer.is_input_layer
        ]
        layers.append(entry)

    def ends(tensors, single):
        items = [history(t) for t in tensors]
        return items[0] if single else items

    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": layers,
        "input_layers": ends(model.inputs, model._single_input),
        "output_layers": ends(model.outputs, model._single_output),
    }


# -- Keras -> numvgg ---------------------------------------------------------------
def _normalize(value):
    return tuple(_normalize(v) for v in value) if isinstance(value, (list, tuple)) else value


def _layer_kwargs(class_name: str, config: dict, where: str) -> dict:
    """Keras' layer config -> numvgg constructor arguments (checking Keras-only keys)."""
    kwargs = {}
    extras = KERAS_EXTRAS.get(class_name, {})
    for key, value in config.items():
        if key in extras:
            if _normalize(value) != _normalize(extras[key]):
                raise KerasFileError(
                    f"{where}: {key}={value!r} is not supported by numvgg "
                    f"(it supports only {key}={extras[key]!r})."
                )
        elif key in _IGNORED_KEYS:
            continue
        elif key == "dtype":
            kwargs[key] = value["config"]["name"] if isinstance(value, dict) else value
        elif key.endswith("_initializer"):
            kwargs[key] = _initializer_name(value, where, key)
        else:
            kwargs[key] = _normalize(value) if isinstance(value, list) else value
    return kwargs


def _initializer_name(value, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    class_name = value.get("class_name") if isinstance(value, dict) else None
    if class_name not in _INITIALIZER_NAMES:
        raise KerasFileError(
            f"{where}: {key} {class_name or value!r} is not one numvgg has "
            f"({', '.join(sorted(_INITIALIZER_NAMES))})."
        )
    return _INITIALIZER_NAMES[class_name]


def deserialize_layer(entry: dict):
    """A numvgg layer (or model) from one Keras layer entry; nothing is called yet."""
    from ..models import Functional, Sequential

    class_name = entry.get("class_name")
    config = entry.get("config") or {}
    name = config.get("name", entry.get("name", "?"))
    where = f"layer '{name}' ({class_name})"
    classes = layer_classes()
    if class_name not in classes:
        raise KerasFileError(
            f"Layer '{name}' is a {class_name}, a class numvgg does not have. numvgg can load "
            f"these layer classes: {', '.join(sorted(classes))}."
        )
    cls = classes[class_name]
    if cls is Sequential:
        return sequential_from_config(config)
    if cls is Functional:
        return functional_from_config(config)
    kwargs = _layer_kwargs(class_name, config, where)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise KerasFileError(f"{where}: numvgg cannot build it from the saved config: {e}") from e


def sequential_from_config(config: dict):
    from ..models import Sequential

    model = Sequential(name=config.get("name"), trainable=config.get("trainable", True))
    for entry in config.get("layers", []):
        layer = deserialize_layer(entry)
        model.add(layer)
    shape = config.get("build_input_shape")
    if not model.built and shape is not None and model.layers:
        model.build(tuple(shape))
    return model


def _tensor_key(arg, where: str) -> tuple:
    if not (isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__"):
        raise KerasFileError(
            f"{where}: an input of this call is not a tensor ({arg!r}); numvgg "
            "supports layers called on tensors only."
        )
    return tuple(arg["config"]["keras_history"])


def functional_from_config(config: dict):
    """Rebuild a functional model: make every layer, then replay its calls in
    an order where each call's inputs exist (Keras' ``functional_from_config``)."""
    from ..models import Functional

    built = {}
    tensors: dict = {}  # (layer name, node index, tensor index) -> KerasTensor
    pending = []  # (layer, node index, args) still to call
    for entry in config.get("layers", []):
        layer = deserialize_layer(entry)
        name = entry.get("name", layer.name)
        built[name] = layer
        if layer.is_input_layer:
            tensors[(name, 0, 0)] = layer.output
        for i, node in enumerate(entry.get("inbound_nodes", [])):
            # Keras records training=False on a call made without it; the model's
            # own training flag overrides it when the model runs (Keras'
            # functional.operation_fn), so only other values change anything.
            kwargs = {
                k: v
                for k, v in (node.get("kwargs") or {}).items()
                if v is not None and not (k == "training" and v is False)
            }
            if kwargs:
                raise KerasFileError(
                    f"layer '{name}' is called with {sorted(kwargs)}; numvgg "
                    "replays only plain calls layer(x)."
                )
            args = node.get("args", [])
            if len(args) != 1:
                raise KerasFileError(
                    f"layer '{name}' is called with {len(args)} positional "
                    "arguments; numvgg layers take one (a tensor or a list)."
                )
            pending.append((layer, name, i, args[0]))
    while pending:
        progress = []
        for item in pending:
            layer, name, i, arg = item
            where = f"layer '{name}'"
            keys = (
                [_tensor_key(a, where) for a in arg] if isinstance(arg, list) else [_tensor_key(arg, where)]
            )
            if not all(k in tensors for k in keys):
                continue
            inputs = [tensors[k] for k in keys] if isinstance(arg, list) else tensors[keys[0]]
            out = layer(inputs)
            for j, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(name, i, j)] = t
            progress.append(item)
        if not progress:
            missing = sorted(
                {
                    k[0]
                    for _, _, _, a in pending
                    for k in (
                        [_tensor_key(x, "") for x in a] if isinstance(a, list) else [_tensor_key(a, "")]
                    )
                    if k not in tensors
                }
            )
            raise KerasFileError(
                f"The saved graph refers to layer(s) {missing} that are not in the file, or is disconnected."
            )
        pending = [p for p in pending if p not in progress]

    def ends(spec):
        single = bool(spec) and not isinstance(spec[0], list)
        items = [spec] if single else spec
        try:
            found = [tensors[tuple(k)] for k in items]
        except KeyError as e:
            raise KerasFileError(
                f"The saved model's inputs/outputs name {e.args[0]}, which the graph does not make."
            ) from None
        return found[0] if single else found

    model = Functional(ends(config["input_layers"]), ends(config["output_layers"]), name=config.get("name"))
    if config.get("trainable") is False:
        model.trainable = False
    return model
