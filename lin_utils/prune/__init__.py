"""Depth pruning (the paper's Section 5) next to the methods a user would pick instead.

* :mod:`.calibration`: one streaming pass over calibration text (float64 statistics reused by
  every criterion and every number of removed blocks), and the span maps of ReplaceMe's variant.
* :mod:`.criteria`: the order in which blocks go: the paper's linearity, ShortGPT's block
  influence, Gromov et al.'s angular distance, SLEB's greedy calibration loss, last-k, random;
  :data:`CRITERIA`, the registry of them (label, colour, ranking function).
* :mod:`.surgery`: removal (a working model of the same class), linear replacement by closed-form
  affine maps, one map per span; :func:`pruned` for temporary edits.
* :mod:`.distill`: train only the linear replacements with a layerwise MSE against the original.
"""
from .calibration import CalibrationStats, calibrate, fit_span_maps
from .criteria import (CRITERIA, LINEARITY_METRICS, Criterion, RankInputs, Removal, angular_spans, calibration_nll,
                       criterion, last_order, linearity_order, linearity_order_rescored, random_order, removal_sets,
                       shortgpt_order, sleb_order)
from .distill import distill, layerwise_loss
from .surgery import LinearBlock, count_parameters, pruned, remove_blocks, replace_span, replace_with_linear

__all__ = [
    "CRITERIA", "Criterion", "LINEARITY_METRICS", "CalibrationStats", "LinearBlock", "RankInputs", "Removal",
    "angular_spans", "calibrate", "calibration_nll", "count_parameters", "criterion", "distill", "fit_span_maps", "last_order", "layerwise_loss",
    "linearity_order", "linearity_order_rescored", "pruned", "random_order", "removal_sets", "remove_blocks",
    "replace_span", "replace_with_linear", "shortgpt_order", "sleb_order",
]
