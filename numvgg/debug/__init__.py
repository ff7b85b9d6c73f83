"""Debugging and checking tools: traces, stepping, gradient checks, the Keras parity report.

``with numvgg.debug.trace(model) as t: ...`` records every layer by its Keras
name; ``step(model, x)`` runs one layer per ``next()``.
"""

from .compare import LayerComparison, compare_with_keras
from .gradcheck import check_all_layers, check_layer, check_op, numerical_gradient_array, rel_error
from .parity import parity_report
from .receptive_field import receptive_fields
from .trace import Trace, layer_output, step, step_backward, trace

__all__ = [
    "trace",
    "Trace",
    "step",
    "step_backward",
    "layer_output",
    "parity_report",
    "check_op",
    "check_layer",
    "check_all_layers",
    "numerical_gradient_array",
    "rel_error",
    "compare_with_keras",
    "LayerComparison",
    "receptive_fields",
]
