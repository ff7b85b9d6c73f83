"""The contract every numvgg optimizer follows (Keras 3's ``BaseOptimizer``).

An optimizer updates a list of model weights **in place**, from a list of
gradients of the same shapes::

    opt = Adam(learning_rate=1e-3)
    opt.apply(grads, weights)                   # or
    opt.apply_gradients(zip(grads, weights))

``weights`` are the layers' own float32 ``np.ndarray`` objects (``layer.params``
values); they are changed with in-place NumPy operations, so every layer, trace
and debugger pane that holds them sees the new values.

The first call (or ``opt.build(weights)``) creates the optimizer's *slots*
(momentum, velocity, ...): one zero-filled array per weight and per slot name.
Slots belong to a weight by **identity**: later calls must pass the very same
array objects -- the same list, or a sub-list of it -- or the optimizer raises
(as Keras does: "This optimizer can only be called for the variables it was
originally built with"). Make a new optimizer for a new set of weights.

One update, in Keras' order (``BaseOptimizer.apply`` and
``_backend_apply_gradients``):

1. ``None`` gradients are skipped (their weights and slots stay as they are);
2. gradients are cast to the weight's dtype and clipped (``clipnorm`` per
   weight, ``global_clipnorm`` over all of them, or ``clipvalue``);
3. the learning rate is read -- a schedule is evaluated at ``iterations``, the
   number of updates already done, so the first update uses ``schedule(0)``;
4. ``weight_decay`` shrinks each weight: ``w -= w * weight_decay * lr``;
5. ``update_step`` applies the optimizer's rule to each (gradient, weight);
6. ``iterations`` grows by one.

Every number is in the weight's dtype (float32 unless the model was made in
float64), like Keras: hyperparameters given as Python floats are cast to the
weight's dtype at the point where Keras casts them, so ``1 - beta_1`` is
computed in double precision and then rounded, exactly as a Python float
meeting a float32 tensor in TensorFlow; see :func:`keras_cast` for the ones
Keras passes through float32 first. The learning rate is kept in
``numvgg.config.floatx()`` of the optimizer's creation (Keras' variable).
"""

from __future__ import annotations

import abc
import inspect
import numbers
import warnings

import numpy as np

from .. import config
from ..errors import ShapeError
from ..naming import to_snake_case
from . import schedules as schedules_module


def keras_cast(value: float, dtype) -> np.floating:
    """A Python float as Keras' ``ops.cast(value, dtype)`` makes it.

    TensorFlow first turns the Python float into a float32 tensor, then casts
    it: in a float64 model ``ops.cast(0.999, 'float64')`` is 0.9990000128746033,
    not 0.999. Keras' optimizers cast some hyperparameters this way (Adam's
    betas, SGD's momentum, the weight decay, a slot's initial value such as
    Adagrad's ``initial_accumulator_value``) and use others directly (``1 - beta``,
    ``epsilon``: exact in float64). In float32 both ways give the same number.
    """
    return np.dtype(dtype).type(np.float32(value))


# -- gradient clipping (Keras: BaseOptimizer._clip_by_norm, clip_by_global_norm) --


def clip_by_norm(grad: np.ndarray, clipnorm: float) -> np.ndarray:
    """Rescale ``grad`` so that its L2 norm (over all its entries) is at most
    ``clipnorm``: ``grad * clipnorm / max(||grad||, clipnorm)``.

    Returns a new array of ``grad``'s shape and dtype; a zero gradient stays zero.
    """
    c = grad.dtype.type(clipnorm)
    l2sum = np.sum(np.square(grad))
    l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
    return grad * c / np.maximum(l2norm, c)


def clip_by_global_norm(grads: list[np.ndarray], clipnorm: float) -> list[np.ndarray]:
    """Scale every gradient by ``min(1, clipnorm / global_norm)``, where
    ``global_norm = sqrt(sum of every entry squared, over all gradients)``.

    A non-finite global norm makes every gradient NaN, as in Keras (better a
    visible NaN than a silent step in a random direction).
    """
    dtype = grads[0].dtype.type
    global_norm = np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads])))
    with np.errstate(divide="ignore"):
        scale = dtype(clipnorm) * np.minimum(dtype(1.0) / global_norm, dtype(1.0 / clipnorm))
    scale = scale + (global_norm - global_norm)  # NaN when the norm is inf or NaN
    return [g * scale for g in grads]


class Optimizer(abc.ABC):
    """Base class. Subclasses implement ``build`` (call ``super().build`` and
    create slots with ``_add_slots``), ``update_step`` and ``get_config``.

    Args:
        learning_rate: a float, a :class:`~numvgg.optimizers.schedules.LearningRateSchedule`
            (evaluated at ``iterations`` before each update) or a callable with
            no arguments returning the rate.
        name: a name for messages and configs (default: the class name in snake case).
        weight_decay: if set, each update first does ``w -= w * weight_decay * lr``.
        clipnorm: if set, each gradient is rescaled so its L2 norm is at most this.
        clipvalue: if set, each gradient entry is clipped to ``[-clipvalue, clipvalue]``.
        global_clipnorm: if set, all gradients are rescaled together so that
            their joint L2 norm is at most this. At most one of the three
            clipping arguments may be set.
        lr: Keras 2's spelling of ``learning_rate``, accepted with a
            ``DeprecationWarning`` (Keras 3 rejects it).
        decay: Keras 2's time-based decay; Keras 3 ignores it with a warning,
            and so does numvgg (use ``schedules.InverseTimeDecay`` instead).

    Any other keyword raises ``ValueError: Argument(s) not recognized: {...}``.
    """

    def __init__(
        self,
        learning_rate,
        name: str | None = None,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        **kwargs,
    ):
        learning_rate = self._pop_legacy_arguments(learning_rate, kwargs)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        n_clip = sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm))
        if n_clip > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.name = name or to_snake_case(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self._learning_rate = self._checked_learning_rate(learning_rate)
        self._iterations = 0
        self.built = False
        self._variables: list[np.ndarray] = []
        self._index_of: dict[int, int] = {}  # id(weight) -> position at build
        self._slots: dict[str, list[np.ndarray]] = {}  # slot name -> one array per weight
        self._slot_order: list[tuple[str, int]] = []  # creation order, as Keras lists them

    # -- constructor helpers --------------------------------------------
    def _pop_legacy_arguments(self, learning_rate, kwargs: dict):
        """Handle Keras 2 spellings that old tutorials still use."""
        if "lr" in kwargs:
            lr = kwargs.pop("lr")
            parameter = inspect.signature(type(self).__init__).parameters.get("learning_rate")
            default = parameter.default if parameter is not None else None
            if learning_rate is not default and learning_rate != default:
                raise ValueError(
                    f"{type(self).__name__}: got both `learning_rate={learning_rate}` "
                    f"and its old alias `lr={lr}`; pass only `learning_rate`."
                )
            # stacklevel 4: this helper <- Optimizer.__init__ <- Adam.__init__ <- the user's line.
            warnings.warn(
                f"{type(self).__name__}: argument `lr` is deprecated (Keras 3 rejects it); "
                f"use `learning_rate={lr!r}` instead.",
                DeprecationWarning,
                stacklevel=4,
            )
            learning_rate = lr
        if kwargs.pop("decay", None) is not None:
            warnings.warn(
                "Argument `decay` is no longer supported and will be ignored (as in Keras 3). "
                "For Keras 2's behaviour use learning_rate=numvgg.optimizers.schedules."
                "InverseTimeDecay(initial_learning_rate, decay_steps=1, decay_rate=decay).",
                UserWarning,
                stacklevel=4,
            )
        return learning_rate

    @staticmethod
    def _checked_learning_rate(learning_rate):
        if isinstance(learning_rate, schedules_module.LearningRateSchedule) or callable(learning_rate):
            return learning_rate
        if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
            # Keras keeps it in a variable of backend.floatx() at the optimizer's creation
            return np.dtype(config.floatx()).type(learning_rate)
        raise ValueError(
            "Argument `learning_rate` should be float, or an instance of "
            "LearningRateSchedule, or a callable (that takes in the current iteration "
            "value and returns the corresponding learning rate value). "
            f"Received instead: learning_rate={learning_rate!r}"
        )

    # -- public state ----------------------------------------------------
    @property
    def iterations(self) -> int:
        """How many updates have been applied (Keras' ``optimizer.iterations``)."""
        return self._iterations

    @property
    def learning_rate(self) -> float:
        """The rate the next update will use, as a Python float (float32-rounded).

        Settable with a float (e.g. by ``ReduceLROnPlateau``) or a schedule;
        an optimizer built with a schedule cannot be given a float, as in Keras.
        """
        return float(self._current_learning_rate())

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if (
            isinstance(self._learning_rate, schedules_module.LearningRateSchedule)
            and not isinstance(value, schedules_module.LearningRateSchedule)
            and not callable(value)
        ):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument."
            )
        self._learning_rate = self._checked_learning_rate(value)

    def _current_learning_rate(self) -> np.float32:
        if isinstance(self._learning_rate, schedules_module.LearningRateSchedule):
            return np.float32(self._learning_rate(self._iterations))
        if callable(self._learning_rate):
            return np.float32(self._learning_rate())
        return self._learning_rate

    # -- building --------------------------------------------------------
    def build(self, variables) -> None:
        """Remember ``variables`` (a list of float ``np.ndarray``) and let the
        subclass create its slots. Does nothing when already built."""
        if self.built:
            return
        variables = list(variables)
        for i, v in enumerate(variables):
            if not isinstance(v, np.ndarray) or not np.issubdtype(v.dtype, np.floating):
                raise TypeError(
                    f"{type(self).__name__}: variable #{i} must be a float numpy array "
                    f"(a layer weight), got {type(v).__name__}"
                    f"{' of dtype ' + str(v.dtype) if isinstance(v, np.ndarray) else ''}."
                )
            if id(v) in self._index_of:
                raise ValueError(
                    f"{type(self).__name__}: variable #{i} is the same array as "
                    f"variable #{self._index_of[id(v)]}; each weight may appear once."
                )
            self._index_of[id(v)] = i
        self._variables = variables
        self.built = True

    def _add_slots(self, variables, names, initial_value: float = 0.0):
        """Create one array per variable for each slot name, filled with
        ``initial_value`` and shaped and typed like the variable.

        Returns one list (for a single name) or a tuple of lists. Slots are
        recorded variable by variable, then name by name, which is the order in
        which Keras lists ``optimizer.variables``.
        """
        single = isinstance(names, str)
        names = [names] if single else list(names)
        out: tuple[list[np.ndarray], ...] = tuple([] for _ in names)
        for i, v in enumerate(variables):
            for slots, name in zip(out, names):
                # Keras fills slots with initializers.Constant: ops.cast of a Python float.
                slots.append(np.full(v.shape, keras_cast(initial_value, v.dtype), dtype=v.dtype))
                self._slot_order.append((name, i))
        for slots, name in zip(out, names):
            self._slots[name] = slots
        return out[0] if single else out

    def _position(self, variable, where: int) -> int:
        try:
            return self._index_of[id(variable)]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__}: variable #{where} (shape {getattr(variable, 'shape', '?')}) is "
                f"not one of the {len(self._variables)} arrays this optimizer was built with. It can "
                "only update the weights it was first called with (the same array objects); for a new "
                "set of weights, create a new optimizer (e.g. compile the model again)."
            ) from None

    # -- applying gradients ------------------------------------------------
    def apply_gradients(self, grads_and_vars) -> int:
        """Keras' spelling: ``apply_gradients(zip(grads, variables))``.
        Returns the new ``iterations``."""
        pairs = list(grads_and_vars)
        if not pairs:
            return self._iterations
        grads, variables = zip(*pairs)
        self.apply(list(grads), list(variables))
        return self._iterations

    def apply(self, grads, variables=None) -> None:
        """Update ``variables`` in place from ``grads`` (same order, same shapes).

        ``variables`` may be omitted once built; the gradients then match the
        build list one to one. A ``None`` gradient leaves its weight untouched.
        """
        grads = list(grads)
        if not grads:
            return
        if variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already "
                    "be built on a list of variables. Call `optimizer.build(variables)` first."
                )
            variables = self._variables
        else:
            variables = list(variables)
            self.build(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"{type(self).__name__}: got {len(grads)} gradient(s) for {len(variables)} variable(s)."
            )
        positions = [self._position(v, k) for k, v in enumerate(variables)]

        kept = [(k, g, v, i) for k, (g, v, i) in enumerate(zip(grads, variables, positions)) if g is not None]
        if not kept:
            raise ValueError("No gradients provided for any variable.")
        if len(kept) < len(grads):
            missing = [k for k, g in enumerate(grads) if g is None]
            warnings.warn(
                f"Gradients do not exist for variables {missing} (positions in the list); "
                "they are left unchanged.",
                stacklevel=2,
            )
        grads = [self._checked_gradient(g, v, k) for k, g, v, _ in kept]
        variables = [v for _, _, v, _ in kept]
        positions = [i for _, _, _, i in kept]

        grads = self._clip_gradients(grads)
        lr = self._current_learning_rate()
        self._apply_weight_decay(variables, lr)
        for g, v, i in zip(grads, variables, positions):
            self.update_step(g, v, v.dtype.type(lr), i)
        self._iterations += 1

    @staticmethod
    def _checked_gradient(grad, variable: np.ndarray, k: int) -> np.ndarray:
        grad = np.asarray(grad)
        if grad.shape != variable.shape:
            raise ShapeError(
                f"Gradient #{k} has shape {grad.shape} but its variable has shape {variable.shape}."
            )
        return grad.astype(variable.dtype, copy=False)  # Keras casts gradients to the weight dtype

    def _clip_gradients(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipnorm and self.clipnorm > 0:
            return [clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            return [np.clip(g, -g.dtype.type(self.clipvalue), g.dtype.type(self.clipvalue)) for g in grads]
        return grads

    def _apply_weight_decay(self, variables, lr: np.float32) -> None:
        if self.weight_decay is None:
            return
        for v in variables:
            f = v.dtype.type
            v -= v * keras_cast(self.weight_decay, v.dtype) * f(lr)

    @abc.abstractmethod
    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate, index: int) -> None:
        """Apply the optimizer's rule to one weight, in place.

        Args:
            gradient: same shape and dtype as ``variable`` (already clipped).
            variable: the weight to change in place.
            learning_rate: the current rate, as a scalar of ``variable``'s dtype.
            index: the weight's position in the build list (selects its slots).
        """

    # -- config and checkpoints ---------------------------------------------
    def get_config(self) -> dict:
        """Constructor arguments, like Keras' ``optimizer.get_config()``."""
        lr: object
        if isinstance(self._learning_rate, schedules_module.LearningRateSchedule):
            lr = schedules_module.serialize(self._learning_rate)
        elif callable(self._learning_rate):
            lr = self._learning_rate
        else:
            lr = float(self._learning_rate)
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_module.deserialize(config["learning_rate"])
        return cls(**config)

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything an update depends on besides the config, as copies.

        Keys, in the order of Keras' ``optimizer.variables``: ``"iterations"``
        (int64 scalar), ``"learning_rate"`` (float32 scalar; absent when the
        rate comes from a schedule or a callable), then one entry per slot and
        weight, ``"<slot>/<position>"`` such as ``"momentum/0"``, ``"velocity/0"``.
        """
        state = {"iterations": np.array(self._iterations, dtype=np.int64)}
        if isinstance(self._learning_rate, np.floating):
            state["learning_rate"] = np.array(self._learning_rate, dtype=np.float32)
        for name, i in self._slot_order:
            state[f"{name}/{i}"] = self._slots[name][i].copy()
        return state

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`get_state` returned. The optimizer must be built
        on weights of the same shapes (call ``build(weights)`` first). Every key
        and shape is checked before anything changes."""
        if not self.built:
            raise ValueError(
                f"{type(self).__name__}.set_state: the optimizer is not built yet; call "
                "`optimizer.build(weights)` with the model's trainable weights first."
            )
        expected = self.get_state()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise ValueError(
                f"{type(self).__name__}.set_state: state does not fit this optimizer; "
                f"missing keys {missing}, unexpected keys {unexpected}."
            )
        new = {}
        for key, current in expected.items():
            value = np.asarray(state[key])
            if value.shape != current.shape:
                raise ShapeError(
                    f"{type(self).__name__}.set_state: '{key}' has shape {value.shape}, "
                    f"expected {current.shape}."
                )
            new[key] = value
        self._iterations = int(new.pop("iterations"))
        if "learning_rate" in new:
            self._learning_rate = np.float32(new.pop("learning_rate"))
        for key, value in new.items():
            name, i = key.rsplit("/", 1)
            self._slots[name][int(i)][...] = value

    def __repr__(self) -> str:
        lr = (
            repr(self._learning_rate)
            if not isinstance(self._learning_rate, np.floating)
            else f"{float(self._learning_rate):g}"
        )
        return f"<{type(self).__name__} learning_rate={lr} iterations={self._iterations}>"
