"""Short explanations the Diagnosis tab links each verdict to, in the dashboard's own words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Explanation:
    key: str
    title: str
    body: str  # Markdown
    where_to_look: str  # which tab/chart shows it


EXPLANATIONS: dict[str, Explanation] = {
    e.key: e
    for e in (
        Explanation(
            "zero_init",
            "Why zero (or constant) initialization fails",
            "If every weight of a layer starts with the same value, every unit of that layer computes the "
            "same function of its input and receives the same gradient. The update keeps them identical, so "
            "the layer behaves like a single unit however wide it is: the *symmetry* between units is never "
            "broken. With all-zero weights it is worse: a tanh layer outputs zeros, so the gradients of the "
            "hidden weights are exactly zero and only the output biases learn. The loss then stalls near "
            "log(number of classes), the value of guessing uniformly.",
            "Gradients tab: gradient norms of hidden layers at exactly zero (crosses at the bottom of the "
            "gradient-flow chart). Weights tab: histograms collapsed to a single bin.",
        ),
        Explanation(
            "vanishing",
            "What vanishing gradients look like",
            "Backpropagation multiplies the gradient by each layer's weights and the activation's derivative. "
            "When those factors are below one on average (weights too small, or saturated tanh/sigmoid units "
            "whose derivative is nearly zero), the gradient shrinks geometrically on its way back: the layers "
            "next to the input barely move and the loss falls slowly or not at all. Forward, the activations "
            "shrink the same way, so deep layers see almost constant inputs.",
            "Gradients tab: the gradient-flow line drops by orders of magnitude from the output layer (right) "
            "to the input side (left). Activations tab: the activation std falls with depth.",
        ),
        Explanation(
            "exploding",
            "What exploding gradients look like",
            "When the per-layer factor is above one (weights too large for the activation), the signal and "
            "the gradient grow geometrically with depth. Updates become huge, the loss jumps around or turns "
            "into infinity/NaN: the run *diverges*. With tanh or sigmoid the forward signal cannot grow past "
            "the activation's range, so large weights show up as saturation instead (units stuck at ±1).",
            "Gradients tab: gradient norms rising towards the input side. Loss tab: a cross where the run "
            "diverged. Activations tab: saturated fraction near 1 for tanh/sigmoid.",
        ),
        Explanation(
            "xavier_tanh",
            "Why Xavier suits tanh and sigmoid",
            "Xavier (Glorot) initialization draws weights with variance about 2/(fan_in + fan_out). For an "
            "activation that is close to the identity near zero, like tanh, this keeps the variance of the "
            "signal roughly constant going forward (each unit sums fan_in inputs) and of the gradient going "
            "backward (each input collects fan_out gradients). Neither vanishes nor explodes, and units stay "
            "in tanh's linear, non-saturated region where learning is fast.",
            "Activations tab: the measured std stays flat with depth and follows the dashed theory line.",
        ),
        Explanation(
            "he_relu",
            "Why He suits ReLU",
            "ReLU sets every negative input to zero, which halves the second moment of the signal at each "
            "layer. With Xavier's variance the signal therefore halves layer after layer in a deep ReLU net. "
            "He (Kaiming) initialization doubles the variance, 2/fan_in, to compensate exactly, keeping the "
            "signal and the gradient at a steady scale in any depth.",
            "Activations tab (with a ReLU run): He's std stays level while Xavier's decays with depth.",
        ),
        Explanation(
            "saturation",
            "Saturated units",
            "A tanh unit whose input is large sits at ±1 where its derivative is nearly zero; a sigmoid unit "
            "at 0 or 1 likewise. Gradients through saturated units vanish even when the weights are large, "
            "so a network that starts saturated learns very slowly.",
            "Activations tab: the saturated-units chart and activation histograms piled up at ±1.",
        ),
        Explanation(
            "dead_units",
            "Dead units",
            "A ReLU unit whose input is negative for every example outputs zero and passes no gradient: it "
            "is dead and, unless its inputs change, stays dead. Too large a learning rate or badly scaled "
            "weights and biases can kill a large share of a layer.",
            "Activations tab: the dead-units chart.",
        ),
        Explanation(
            "divergence",
            "Diverged runs",
            "A run is marked diverged when its loss becomes NaN/Inf or passes the divergence threshold. "
            "The usual causes are weights so large that activations and gradients explode, or a learning "
            "rate too large for the scale the initialization produced.",
            "Loss tab: a dashed rule and a cross at the step where it diverged.",
        ),
        Explanation(
            "healthy",
            "A healthy run",
            "Signals keep a similar scale from layer to layer, gradients reach the first layer with a "
            "comparable size, and the loss falls steadily. That is what a well-matched initialization and "
            "activation give you.",
            "Gradients tab: a fairly flat gradient-flow line; Loss tab: a steadily falling curve.",
        ),
    )
}

# Each diagnosis verdict (core.diagnosis) -> the explanations that tell its story.
VERDICT_EXPLANATIONS: dict[str, tuple[str, ...]] = {
    "healthy": ("healthy", "xavier_tanh", "he_relu"),
    "symmetry_not_broken": ("zero_init",),
    "vanishing_gradients": ("vanishing", "xavier_tanh", "he_relu"),
    "exploding_gradients": ("exploding", "divergence"),
    "diverged": ("divergence", "exploding"),
    "saturated": ("saturation", "exploding", "xavier_tanh"),
    "dead_units": ("dead_units", "he_relu"),
    "failed": (),
}


def for_verdict(verdict: str) -> list[Explanation]:
    """The explanations linked to a verdict (unknown verdicts from a newer engine get none)."""
    return [EXPLANATIONS[k] for k in VERDICT_EXPLANATIONS.get(verdict, ())]
