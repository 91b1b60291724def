"""A plain-words verdict per run, grounded in the snapshot numbers, with documented thresholds.

Every check below that applies becomes a *finding* ``{"code", "label", "message", "value",
"threshold"}``; the verdict is the first finding in this priority order (the order the seed's claims
list them: what stops learning outright first, then what slows it):

1. ``failed`` — a plugin of the run failed (its error is the message).
2. ``diverged`` — the loss became NaN/Inf or exceeded the config's ``divergence_threshold``.
3. ``symmetry_not_broken`` — at the final snapshot, every unit of some hidden layer has the same
   incoming weights and bias: ``unit_spread <= SYMMETRY_TOLERANCE`` (1e-6, relative; 0 = identical) in
   a layer of width >= 2. Such units compute the same function and receive the same gradient forever.
4. ``exploding_gradients`` — at step 0 the back-propagated gradient (norm of dLoss/d(pre-activation))
   at the first layer is more than ``EXPLODING_RATIO`` (1e3) times that at the output layer, or some
   weight-gradient norm at any snapshot is non-finite or above ``EXPLODING_GRAD_NORM`` (1e4).
5. ``vanishing_gradients`` — at step 0 the back-propagated gradient at the first layer is less than
   ``VANISHING_RATIO`` (1e-3) times that at the output layer.
6. ``saturated`` — in some hidden layer more than ``SATURATION_THRESHOLD`` (50%) of the activations
   are saturated (the activation's own ``saturated`` mask, e.g. ``|tanh| > 0.99``), at step 0 or at
   the final snapshot.
7. ``dead_units`` — more than ``DEAD_THRESHOLD`` (75%) of the units of some hidden layer are
   inactive for the whole probe batch (dead ReLUs), at step 0 or at the final snapshot.

Exception to the order: saturation or dead units already present at step 0 rank just before
``vanishing_gradients`` (they are why the gradient vanishes: a saturated or dead unit passes almost
no gradient), so the verdict names the cause; the findings list keeps the symptom.
8. ``healthy`` — none of the above.

Why the back-propagated error and not the weight gradients for vanishing/exploding: a weight
gradient is (error at the layer) x (input of the layer). In a deep ReLU net with Xavier weights both
factors shrink geometrically, the error going down and the signal going up, so the first and last
layers' *weight* gradient norms come out similar (measured on digits, 30 layers: ratio 0.7-5) while
the error reaching the first layer is 1e-5 of the output layer's. The weight-gradient ratio is still
quoted in the message.

Why 75% for dead units: in a deep ReLU net the representations of
different inputs become strongly correlated with depth, so even with He initialization 40-55% of
a deep layer's units have the same sign for all 256 probe inputs at step 0 (measured: 30 layers,
widths 32-128). A threshold of 50% would flag healthy deep networks; 75% is more than 4 standard
deviations above that level at width 32.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

SYMMETRY_TOLERANCE = 1e-6
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
EXPLODING_GRAD_NORM = 1e4
SATURATION_THRESHOLD = 0.5
DEAD_THRESHOLD = 0.75

LABELS = {
    "healthy": "Healthy",
    "symmetry_not_broken": "Symmetry not broken",
    "vanishing_gradients": "Vanishing gradients",
    "exploding_gradients": "Exploding gradients",
    "diverged": "Diverged",
    "saturated": "Saturated units",
    "dead_units": "Dead units",
    "failed": "Failed",
}
PRIORITY = (
    "failed",
    "diverged",
    "symmetry_not_broken",
    "exploding_gradients",
    "vanishing_gradients",
    "saturated",
    "dead_units",
)


def _rank(finding: dict[str, Any]) -> float:
    """Priority of a finding; saturation or dead units already present at step 0 rank just before
    vanishing gradients, which they cause."""
    rank = float(PRIORITY.index(finding["code"]))
    if finding.get("at_init"):
        rank = PRIORITY.index("vanishing_gradients") - 0.5
    return rank


def _finding(code: str, message: str, value: float | None, threshold: float | None) -> dict[str, Any]:
    return {"code": code, "label": LABELS[code], "message": message, "value": value, "threshold": threshold}


def _at(layers: pd.DataFrame, step: int) -> pd.DataFrame:
    return layers[layers["step"] == step].sort_values("layer")


def _ratio(first: float, last: float) -> float:
    if not (math.isfinite(first) and math.isfinite(last)) or last <= 0:
        return math.nan
    return first / last


def _worst_layer(frame: pd.DataFrame, column: str, depth: int) -> tuple[float, int | None]:
    hidden = frame[(frame["layer"] < depth) & frame[column].notna()]
    if hidden.empty:
        return math.nan, None
    row = hidden.loc[hidden[column].idxmax()]
    return float(row[column]), int(row["layer"])


def diagnose(summary: Any, layers: pd.DataFrame, depth: int, width: int) -> dict[str, Any]:
    """The diagnosis of one run: ``summary`` is its :class:`core.results.RunSummary` (status, error,
    diverged_at_step, final_train_loss), ``layers`` its rows of the layers table."""
    findings: list[dict[str, Any]] = []
    if summary.status == "failed":
        findings.append(_finding("failed", f"The run failed: {summary.error}", None, None))
    if summary.status == "diverged":
        loss = summary.final_train_loss
        findings.append(
            _finding(
                "diverged",
                f"The training loss became {loss:.3g} at step {summary.diverged_at_step}, so the run was "
                "stopped there (NaN/Inf or above the divergence threshold).",
                loss,
                None,
            )
        )
    if not layers.empty:
        findings += _snapshot_findings(layers, depth, width)
    findings.sort(key=_rank)
    for f in findings:
        f.pop("at_init", None)
    if findings:
        top = findings[0]
        verdict, message = top["code"], top["message"]
    else:
        verdict = "healthy"
        message = _healthy_message(layers, depth)
    return {"verdict": verdict, "label": LABELS[verdict], "message": message, "findings": findings}


def _snapshot_findings(layers: pd.DataFrame, depth: int, width: int) -> list[dict[str, Any]]:
    findings = []
    first_step, final_step = int(layers["step"].min()), int(layers["step"].max())
    start, final = _at(layers, first_step), _at(layers, final_step)

    if width >= 2:
        hidden = final[final["layer"] < depth]
        symmetric = hidden[hidden["unit_spread"] <= SYMMETRY_TOLERANCE]
        if not symmetric.empty:
            names = ", ".join(str(int(v)) for v in symmetric["layer"])
            spread = float(symmetric["unit_spread"].max())
            findings.append(
                _finding(
                    "symmetry_not_broken",
                    f"At step {final_step} all {width} units of hidden layer(s) {names} still have identical "
                    f"weights (largest relative difference {spread:.2g}, threshold {SYMMETRY_TOLERANCE:g}): "
                    "they compute the same function and get the same gradient, so the layer acts like a "
                    "single unit. Initialize with random weights to break the symmetry.",
                    spread,
                    SYMMETRY_TOLERANCE,
                )
            )

    by_layer = start.set_index("layer")
    if 0 in by_layer.index and depth in by_layer.index:
        signal = _ratio(float(by_layer.at[0, "pre_grad_norm"]), float(by_layer.at[depth, "pre_grad_norm"]))
        weight_ratio = _ratio(float(by_layer.at[0, "grad_norm"]), float(by_layer.at[depth, "grad_norm"]))
        detail = (
            f"At step {first_step} the gradient reaching the first layer's pre-activations "
            f"({by_layer.at[0, 'pre_grad_norm']:.3g}) is {signal:.2g} times the gradient at the output layer "
            f"({by_layer.at[depth, 'pre_grad_norm']:.3g}); the first/last weight-gradient norm ratio is "
            f"{weight_ratio:.2g}."
        )
        if signal > EXPLODING_RATIO:
            findings.append(
                _finding(
                    "exploding_gradients",
                    f"{detail} Gradients grow by orders of magnitude on their way back through the "
                    f"{depth + 1} layers (threshold {EXPLODING_RATIO:g}): the weights are too large.",
                    signal,
                    EXPLODING_RATIO,
                )
            )
        elif signal < VANISHING_RATIO:
            findings.append(
                _finding(
                    "vanishing_gradients",
                    f"{detail} Gradients shrink by orders of magnitude on their way back through the "
                    f"{depth + 1} layers (threshold {VANISHING_RATIO:g}), so the early layers barely learn.",
                    signal,
                    VANISHING_RATIO,
                )
            )
    norms = layers["grad_norm"]
    bad = layers[~norms.apply(math.isfinite) | (norms > EXPLODING_GRAD_NORM)]
    if not bad.empty and not any(f["code"] == "exploding_gradients" for f in findings):
        row = bad.iloc[0]
        findings.append(
            _finding(
                "exploding_gradients",
                f"At step {int(row['step'])} the weight-gradient norm of layer {int(row['layer'])} is "
                f"{row['grad_norm']:.3g} (threshold {EXPLODING_GRAD_NORM:g}): gradients have exploded.",
                float(row["grad_norm"]),
                EXPLODING_GRAD_NORM,
            )
        )

    checks = (
        ("saturated_fraction", "saturated", SATURATION_THRESHOLD, "of the activations are saturated"),
        ("dead_fraction", "dead_units", DEAD_THRESHOLD, "of the units are dead (inactive for every probe input)"),
    )
    for column, code, threshold, what in checks:
        # Present at initialization (then it explains a vanishing gradient and outranks it), else at the end.
        for frame, step in ((start, first_step), (final, final_step)):
            value, layer = _worst_layer(frame, column, depth)
            if layer is not None and value > threshold:
                tail = (
                    "Their gradient is almost zero, so they stop learning."
                    if code == "saturated"
                    else "They pass no gradient, so they cannot recover."
                )
                finding = _finding(
                    code,
                    f"At step {step}, {value:.0%} {what} in hidden layer {layer} (threshold {threshold:.0%}). {tail}",
                    value,
                    threshold,
                )
                finding["at_init"] = step == first_step
                findings.append(finding)
                break
    return findings


def _healthy_message(layers: pd.DataFrame, depth: int) -> str:
    if layers.empty:
        return "No snapshot was taken, so there is nothing to diagnose."
    start = _at(layers, int(layers["step"].min())).set_index("layer")
    if 0 in start.index and depth in start.index:
        ratio = _ratio(float(start.at[0, "pre_grad_norm"]), float(start.at[depth, "pre_grad_norm"]))
        return (
            f"No problem found: at step 0 the gradient reaching the first layer is {ratio:.2g} times the output "
            f"layer's (between {VANISHING_RATIO:g} and {EXPLODING_RATIO:g}), units differ from one another, and no "
            f"layer has more than {SATURATION_THRESHOLD:.0%} saturated or {DEAD_THRESHOLD:.0%} dead units."
        )
    return "No problem found in the recorded snapshots."
