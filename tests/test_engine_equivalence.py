"""Stacking must not change the mathematics: stacked runs against each run trained alone.

"Alone" is the reference in ``engine_helpers``: one ``nn.Sequential`` + ``torch.optim`` (default,
non-fused implementation) + ``F.cross_entropy``, from the same initial weights and on the same
batches. Tolerances:

- float64, well-conditioned runs (Xavier/He/LeCun): the two computations differ only in the order of
  a few floating-point operations (fused vs per-tensor optimizer kernels, log-softmax + gather vs
  ``cross_entropy``), i.e. a few ulps (~1e-16) per step. Over one epoch of a stable training these
  do not grow, so 1e-12 relative leaves a 1e4 margin; measured here: <= 4e-16.
- float32, same runs: the same few ulps are ~1e-7; 1e-5 relative (measured <= 2.3e-7).
- Chaotic runs (large-normal init, deep tanh, SGD with a large step): a trajectory's sensitivity to
  a perturbation can grow by a factor e^(lambda t) (a positive Lyapunov exponent), so one ulp at step 1
  may become a visible difference after some hundred steps. We assert the first steps tightly
  (nothing has been amplified yet) and the rest of the epoch only to 1e-3 relative, which still
  fails on any real mistake (a wrong batch, a wrong gradient, a mixed-up run: differences of order 1).
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import reference_losses, test_registry

from core.experiment import ExperimentConfig, RunConfig
from core.training import load_bundle, train

STABLE = ("xavier_uniform@tanh", "he_normal@relu", "lecun_normal@tanh", "xavier_normal@relu", "he_uniform@relu")


def _compare(config: ExperimentConfig, registry, indices=None) -> dict[str, np.ndarray]:
    config = config.validated(registry)
    bundle = load_bundle(config, registry)
    result = train(config, registry=registry, bundle=bundle)
    out = {}
    for i, rid in enumerate(config.run_ids()):
        if indices is not None and i not in indices:
            continue
        engine = result.steps[result.steps["run"] == rid]["train_loss"].to_numpy()
        assert len(engine) == config.total_steps(bundle.x_train.shape[0])
        alone = np.array(reference_losses(registry, config, i, bundle, len(engine)))
        out[rid] = np.abs(engine - alone) / np.abs(alone)
    return out


@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    [("float64", 1e-12), ("float32", 1e-5)],
)
@pytest.mark.parametrize(("optimizer", "lr", "momentum"), [("sgd", 0.05, 0.9), ("sgd", 0.1, 0.0), ("adam", 1e-3, 0.0)])
def test_stacked_matches_each_run_alone(dtype, tolerance, optimizer, lr, momentum):
    registry = test_registry()
    config = ExperimentConfig(
        runs=tuple(RunConfig.parse(s, "relu") for s in STABLE),
        dataset="digits",
        depth=3,
        width=32,
        epochs=1,  # 1,437 training images / 64 = 22 steps
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        dtype=dtype,
        snapshots=1,
    )
    for rid, rel in _compare(config, registry).items():
        assert rel.max() < tolerance, f"{rid}: stacked and alone differ by {rel.max():.2e} relative"


def test_chaotic_runs_agree_until_rounding_is_amplified():
    registry = test_registry()
    config = ExperimentConfig(
        runs=tuple(RunConfig.parse(s, "tanh") for s in ("large_normal", "std10_normal", "xavier_uniform")),
        depth=8,
        width=32,
        epochs=1,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        dtype="float32",
        snapshots=1,
    )
    for rid, rel in _compare(config, registry).items():
        assert rel[:5].max() < 1e-5, f"{rid}: the first steps already differ ({rel[:5].max():.2e})"
        assert rel.max() < 1e-3, f"{rid}: differs by {rel.max():.2e}, more than rounding can explain"
