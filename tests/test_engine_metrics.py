"""Every measured quantity checked on a case where its value is known or independently computed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from engine_helpers import batch_schedule, blobs, probe_indices, reference_model, test_registry

from core.experiment import ExperimentConfig, RunConfig
from core.training import train


def _config(*runs: str, **kw) -> ExperimentConfig:
    base = dict(depth=3, width=16, epochs=2, batch_size=32, snapshots=2)
    base.update(kw)
    return ExperimentConfig(runs=tuple(RunConfig.parse(r, "relu") for r in runs), **base)


def test_zero_init_keeps_every_hidden_unit_identical_and_zero():
    """All-zero weights and biases: every hidden activation is relu(0) = 0 (tanh(0) = 0), so the
    gradient of every weight, output layer included (dL/dW_out = delta_out h^T = 0), is exactly 0;
    only the output bias learns. The weights stay exactly zero and all units stay identical."""
    result = train(_config("zeros@relu", "zeros@tanh", optimizer="adam", lr=0.05), bundle=blobs())
    layers = result.layers
    assert (layers["weight_std"] == 0).all()
    assert (layers["grad_norm"] == 0).all()
    assert (layers[layers["layer"] < 3]["unit_spread"] == 0).all()  # the output units' biases differ
    assert (layers[layers["layer"] < 3]["act_std"] == 0).all()
    for run in result.runs:
        assert run.diagnosis["verdict"] == "symmetry_not_broken"
        assert "identical" in run.diagnosis["message"]
    # Only the output bias moves: the loss falls from ln(4) towards the label entropy, never below it.
    steps = result.steps[result.steps["run"] == "zeros@relu"]["train_loss"]
    assert steps.iloc[0] == pytest.approx(math.log(4), rel=1e-6)


def test_constant_init_stays_symmetric_but_is_not_zero():
    result = train(_config("constant@tanh", epochs=3), bundle=blobs())
    final = result.layers[result.layers["step"] == result.layers["step"].max()]
    assert (final["weight_std"] > 0).any()  # the weights did change...
    assert (final[final["layer"] < 3]["unit_spread"] <= 1e-6).all()  # ...identically for every unit
    assert result.runs[0].diagnosis["verdict"] == "symmetry_not_broken"


def test_layer_statistics_match_an_independent_computation_at_step_0():
    """weight_std, grad_norm, act/pre statistics and pre_grad_norm at step 0 against a plain
    nn.Sequential built from the same initial weights, on the first batch and the probe batch."""
    registry = test_registry()
    bundle = blobs()
    config = _config("he_normal@relu", "xavier_normal@tanh", dtype="float64").validated(registry)
    result = train(config, registry=registry, bundle=bundle)
    first_batch = batch_schedule(bundle.x_train.shape[0], config, 1)[0]
    probe = bundle.x_train[probe_indices(bundle.x_train.shape[0], config.seed)].double()
    for index, rid in enumerate(config.run_ids()):
        model = reference_model(registry, config, index, bundle, torch.float64)
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        pres: list[torch.Tensor] = []
        x = bundle.x_train[first_batch].double()
        h = x
        for module in model:
            h = module(h)
            if isinstance(module, torch.nn.Linear):
                h.retain_grad()
                pres.append(h)
        F.cross_entropy(h, bundle.y_train[first_batch]).backward()
        rows = result.layers[(result.layers["run"] == rid) & (result.layers["step"] == 0)].set_index("layer")
        with torch.no_grad():
            post_probe, pre_probe = [], []
            h = probe
            for module in model:
                h = module(h)
                (pre_probe if isinstance(module, torch.nn.Linear) else post_probe).append(h)
        post_probe.append(pre_probe[-1])  # the output layer's "activation" is its logits
        for layer, lin in enumerate(linears):
            row = rows.loc[layer]
            assert row["weight_std"] == pytest.approx(lin.weight.std(unbiased=False).item(), rel=1e-12)
            assert row["grad_norm"] == pytest.approx(lin.weight.grad.norm().item(), rel=1e-10)
            assert row["pre_grad_norm"] == pytest.approx(pres[layer].grad.norm().item(), rel=1e-10)
            assert row["pre_std"] == pytest.approx(pre_probe[layer].std(unbiased=False).item(), rel=1e-10)
            assert row["pre_mean"] == pytest.approx(pre_probe[layer].mean().item(), rel=1e-9, abs=1e-12)
            assert row["act_mean"] == pytest.approx(post_probe[layer].mean().item(), rel=1e-9, abs=1e-12)
            assert row["act_std"] == pytest.approx(post_probe[layer].std(unbiased=False).item(), rel=1e-10)


def test_histogram_counts_sum_to_the_tensor_size_and_edges_are_shared():
    bundle = blobs()
    result = train(_config("he_normal@relu", "xavier_uniform@tanh", "large_normal@sigmoid"), bundle=bundle)
    width, features, classes, probe = 16, bundle.num_features, bundle.num_classes, 256
    sizes = {
        ("weight", 0): width * features,
        ("weight", 1): width * width,
        ("weight", 3): classes * width,
        ("pre", 0): probe * width,
        ("post", 3): probe * classes,
    }
    h = result.histograms
    assert set(h["kind"]) == {"weight", "grad", "pre", "post"}
    for row in h.itertuples():
        assert len(row.counts) == 40 and len(row.bin_edges) == 41
        assert all(c >= 0 for c in row.counts)
        expected = sizes.get((row.kind if row.kind != "grad" else "weight", row.layer))
        if expected is not None:
            assert sum(row.counts) + row.nan_count == expected
    for _, group in h.groupby(["step", "layer", "kind"]):
        first = group["bin_edges"].iloc[0]
        assert all(edges == first for edges in group["bin_edges"])
        assert len(group) == 3


def test_dead_fraction_is_one_when_every_preactivation_is_negative():
    """Weights ~1e-2, bias -5: every pre-activation is about -5, so ReLU is inactive for the whole
    probe batch in every unit of every hidden layer: dead fraction exactly 1."""
    result = train(_config("small_normal@relu", bias_init="constant", bias_value=-5.0), bundle=blobs())
    hidden = result.layers[result.layers["layer"] < 3]
    assert (hidden["dead_fraction"] == 1.0).all()
    assert result.layers[result.layers["layer"] == 3]["dead_fraction"].isna().all()  # output: not applicable
    assert hidden["saturated_fraction"].isna().all()  # ReLU declares no saturation
    findings = {f["code"] for f in result.runs[0].diagnosis["findings"]}
    assert "dead_units" in findings
    assert result.runs[0].diagnosis["verdict"] == "dead_units"


def test_tanh_with_huge_weights_is_saturated():
    """Weights N(0, 10^2): layer 0's pre-activation has std about 10 * sqrt(16 * E[x^2]) ~ 40 (the
    blobs are standardized), and |tanh(z)| > 0.99 <=> |z| > 2.65, which a N(0, 40^2) value misses with
    probability 2 * Phi(2.65 / 40) - 1 ~ 5%. Deeper layers see inputs of magnitude ~1, std ~40 too.
    So the saturated fraction must be close to 1: > 0.85 leaves room for the finite sample."""
    result = train(_config("std10_normal@tanh", epochs=1), bundle=blobs(), registry=test_registry())
    step0 = result.layers[(result.layers["step"] == 0) & (result.layers["layer"] < 3)]
    assert (step0["saturated_fraction"] > 0.85).all()
    assert step0["dead_fraction"].isna().all()  # tanh declares no inactive mask
    assert result.runs[0].diagnosis["verdict"] in {"saturated", "vanishing_gradients"}
    assert "saturated" in {f["code"] for f in result.runs[0].diagnosis["findings"]}


def test_predicted_variance_follows_the_closed_forms():
    """He on ReLU keeps Var(z) constant: fan_in * (2/fan_in) * E[relu(z)^2] = Var(z). Xavier on square
    hidden layers (Var(W) = 1/width) halves it per ReLU layer. Layer 0: fan_in * Var(W) * E[x^2] with
    E[x^2] measured on the probe batch."""
    bundle = blobs()
    config = _config("he_normal@relu", "xavier_normal@relu", "he_normal@identity", depth=4, width=32)
    result = train(config, bundle=bundle)
    probe = bundle.x_train[probe_indices(bundle.x_train.shape[0], config.seed)]
    m2 = float(probe.double().pow(2).mean())
    step0 = result.layers[result.layers["step"] == 0]
    he = step0[step0["run"] == "he_normal@relu"]["predicted_var"].to_numpy()
    assert he[0] == pytest.approx(16 * (2 / 16) * m2, rel=1e-12)
    np.testing.assert_allclose(he[1:4], he[0], rtol=1e-5)  # quadrature accuracy
    xavier = step0[step0["run"] == "xavier_normal@relu"]["predicted_var"].to_numpy()
    assert xavier[0] == pytest.approx(16 * 2 / (16 + 32) * m2, rel=1e-12)
    np.testing.assert_allclose(xavier[2:4] / xavier[1:3], 0.5, rtol=1e-5)
    linear = step0[step0["run"] == "he_normal@identity"]["predicted_var"].to_numpy()
    np.testing.assert_allclose(linear[1:4] / linear[:3], 2.0, rtol=1e-6)  # identity: x2 per layer
    later = result.layers[result.layers["step"] > 0]
    assert later["predicted_var"].isna().all()


def test_measured_layer0_variance_matches_theory_within_its_sampling_error():
    """Layer 0 with W ~ N(0, s^2), zero bias: unit j's mean square over the probe is w_j^T S w_j with
    S = X^T X / n. Over random w_j, E = s^2 tr(S) and Var = 2 s^4 tr(S^2), so the mean over J units
    has relative standard error sqrt(2 tr(S^2) / J) / tr(S); we allow 5 of them. The pooled
    variance pre_var differs from the mean square by pre_mean^2, which we add back."""
    bundle = blobs(dims=64)
    width = 512
    config = _config("he_normal@relu", depth=1, width=width, epochs=1, dtype="float64")
    result = train(config, bundle=bundle)
    probe = bundle.x_train[probe_indices(bundle.x_train.shape[0], config.seed)].double()
    s = probe.T @ probe / probe.shape[0]
    rel_se = math.sqrt(2 * float(torch.trace(s @ s)) / width) / float(torch.trace(s))
    row = result.layers[(result.layers["step"] == 0) & (result.layers["layer"] == 0)].iloc[0]
    measured = row["pre_var"] + row["pre_mean"] ** 2
    assert abs(measured / row["predicted_var"] - 1) < 5 * rel_se


def test_saturated_fraction_counts_sigmoid_extremes():
    """Sigmoid with N(0, 10^2) weights: |z| > 4.6 (saturation) has probability about
    2 * (1 - Phi(4.6 / 40)) ~ 0.91 at layer 0 (same std as in the tanh case): above 0.8."""
    result = train(_config("std10_normal@sigmoid", epochs=1), bundle=blobs(), registry=test_registry())
    row = result.layers[(result.layers["step"] == 0) & (result.layers["layer"] == 0)].iloc[0]
    assert row["saturated_fraction"] > 0.8


def test_eval_accuracy_is_consistent_with_an_independent_evaluation():
    registry = test_registry()
    bundle = blobs()
    config = _config("he_normal@relu", dtype="float64").validated(registry)
    result = train(config, registry=registry, bundle=bundle)
    model = reference_model(registry, config, 0, bundle, torch.float64)
    with torch.no_grad():
        logits = model(bundle.x_val.double())
    row = result.evals[result.evals["step"] == 0].iloc[0]
    assert row["val_loss"] == pytest.approx(F.cross_entropy(logits, bundle.y_val).item(), rel=1e-12)
    assert row["val_accuracy"] == pytest.approx((logits.argmax(1) == bundle.y_val).double().mean().item())


def test_snapshot_chunking_does_not_change_the_numbers(monkeypatch):
    """Layers are stacked in bounded chunks; one layer per chunk must give the same tables."""
    import core.instrumentation as instrumentation

    config = _config("he_normal@relu", "xavier_uniform@tanh", depth=4)
    whole = train(config, bundle=blobs())
    monkeypatch.setattr(instrumentation, "SNAPSHOT_CHUNK_ELEMENTS", 1)
    chunked = train(config, bundle=blobs())
    assert chunked.to_json() == whole.to_json()
