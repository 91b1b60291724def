"""The sidebar's training length (epochs or exact steps), snapshots and evaluation cadence: their
defaults, what trains, the URL, and presets loaded into the form and retrained from it.

``run_every`` fragments do not tick under AppTest, so the tests join the job's thread and rerun.
"""

from __future__ import annotations

from types import SimpleNamespace

from dashboard_apptest import SMALL, app, job_of, no_errors, open_tab, train

from core.presets import all_presets, get_preset
from core.registry import get_registry
from dashboard import state


def digits_train_size() -> int:
    """Training samples of the digits dataset at its default split (read from the data, not the engine)."""
    spec = get_registry().dataset("digits")
    return int(spec.load().x_train.shape[0])


def evenly_spread(total: int, count: int) -> list[int]:
    """Step 0 and ``count`` more snapshot steps spread evenly to ``total``: i * total / count, rounded."""
    return sorted({round(i * total / count) for i in range(count + 1)})


# -- the form's defaults --------------------------------------------------------------------------------


def test_the_form_shows_the_length_snapshots_and_evaluation_defaults():
    at = app()
    no_errors(at)
    assert at.number_input(key=state.LENGTH).value == 5
    assert at.radio(key=state.LENGTH_UNIT).value == "epochs"
    assert at.number_input(key="cfg.snapshots").value == 10  # explicit: initialization -> end, not the budget
    assert at.number_input(key="cfg.eval_every").value is None  # once per epoch
    help_text = at.number_input(key="cfg.snapshots").proto.help
    assert "cost time" in help_text and "auto" in help_text.lower()


def test_defaults_record_snapshots_from_initialization_to_the_end():
    """With the explicit default of 10 snapshots, the ~110-step first-load experiment (for which the
    engine's 15% budget would keep only step 0) is recorded at 11 evenly spread steps, and the Weights
    tab's step slider offers all of them."""
    at = train(app())
    no_errors(at)
    result = job_of(at).snapshot().result
    total = 5 * (digits_train_size() // 64)  # 5 epochs of full batches of 64 (the last partial one dropped)
    assert int(result.table("evals")["step"].max()) == total  # evaluated after the last update
    layer_steps = sorted(int(s) for s in result.table("layers")["step"].unique())
    assert len(layer_steps) >= 5
    assert layer_steps == evenly_spread(total, 10)
    assert layer_steps[0] == 0 and layer_steps[-1] == total
    at = open_tab(at, "Weights")
    no_errors(at)
    slider = at.select_slider(key="view.weights.step")
    assert slider.options == [str(s) for s in layer_steps]  # more than one step: init -> end of training
    assert slider.value == 0  # the Weights tab opens at initialization
    assert not any("the only snapshot" in c.value for c in at.caption)


# -- steps, snapshots, evaluation cadence --------------------------------------------------------------------


def test_steps_mode_trains_exactly_n_steps_with_the_chosen_snapshots_and_evaluations():
    at = app(SMALL)
    at.radio(key=state.LENGTH_UNIT).set_value("steps")
    at.number_input(key=state.LENGTH).set_value(37)
    at.number_input(key="cfg.snapshots").set_value(3)
    at.number_input(key="cfg.eval_every").set_value(10)
    at = train(at)
    no_errors(at)
    result = job_of(at).snapshot().result
    assert (result.config.steps, result.config.snapshots, result.config.eval_every) == (37, 3, 10)
    steps = result.table("steps")
    for run in ("zeros@tanh", "xavier_uniform@tanh"):
        # exactly 37 updates: one mini-batch loss per update, at steps 0..36 (core.results: the loss at
        # step s is measured before update s + 1)
        assert sorted(steps.loc[steps["run"] == run, "step"]) == list(range(37))
    # 37 steps and 3 snapshots: 37/3 = 12.3 -> 12, 74/3 = 24.7 -> 25, 37
    assert sorted(result.table("layers")["step"].unique()) == [0, 12, 25, 37]
    # evaluations at step 0, every 10 steps and at the last step
    assert sorted(result.table("evals")["step"].unique()) == [0, 10, 20, 30, 37]
    # the URL carries the new fields
    assert [at.query_params[name] for name in ("steps", "snapshots", "eval_every")] == ["37", "3", "10"]


def test_epochs_mode_ignores_steps_and_zero_evaluate_every_means_once_per_epoch():
    at = app({**SMALL, "steps": "9"})  # a link in steps mode ...
    assert at.radio(key=state.LENGTH_UNIT).value == "steps" and at.number_input(key=state.LENGTH).value == 9
    at.radio(key=state.LENGTH_UNIT).set_value("epochs")  # ... switched back to epochs
    at.number_input(key=state.LENGTH).set_value(2)
    at.number_input(key="cfg.eval_every").set_value(0)
    at = train(at)
    no_errors(at)
    config = job_of(at).snapshot().config
    assert (config.epochs, config.steps, config.eval_every) == (2, None, None)
    result = job_of(at).snapshot().result
    per_epoch = digits_train_size() // 64
    assert len(result.table("steps").query("run == 'zeros@tanh'")) == 2 * per_epoch
    assert sorted(result.table("evals")["step"].unique()) == [0, per_epoch, 2 * per_epoch]
    assert "steps" not in at.query_params and "eval_every" not in at.query_params


def test_epochs_over_their_limit_are_refused_with_the_allowed_range():
    at = app(SMALL)
    at.number_input(key=state.LENGTH).set_value(5000)  # allowed as steps, not as epochs
    at.button(key="train").click().run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "epochs" in message and "5000" in message and "1000" in message
    assert "job_id" not in at.session_state


def test_auto_snapshots_survive_the_form_and_the_url():
    at = app(SMALL)
    at.number_input(key="cfg.snapshots").set_value(None)  # emptied: the engine's budget decides
    at = train(at)
    no_errors(at)
    assert job_of(at).snapshot().config.snapshots is None
    assert at.query_params["snapshots"] == "auto"
    reloaded = app({**SMALL, "snapshots": "auto"})  # a new session from that link
    no_errors(reloaded)
    assert reloaded.number_input(key="cfg.snapshots").value is None


def test_a_link_sets_the_new_fields_and_explains_bad_ones():
    at = app({**SMALL, "steps": "40", "snapshots": "7", "eval_every": "8"})
    no_errors(at)
    assert at.radio(key=state.LENGTH_UNIT).value == "steps"
    assert at.number_input(key=state.LENGTH).value == 40
    assert at.number_input(key="cfg.snapshots").value == 7
    assert at.number_input(key="cfg.eval_every").value == 8
    bad = app({**SMALL, "snapshots": "lots"})
    assert bad.number_input(key="cfg.snapshots").value == 10  # the default kept ...
    assert any("snapshots='lots' is not an integer or 'auto'" in i.value for i in bad.info)  # ... and said why


# -- presets loaded into the form ---------------------------------------------------------------------------


def test_every_preset_loaded_into_the_form_is_retrained_as_itself(monkeypatch):
    """Load each preset (and variant) with request_config, press Train in the form: the job's config is
    the preset's experiment (``Preset.mismatch`` finds nothing), with its snapshots and evaluations."""
    from core import training

    real_train = training.train

    def cancelled_at_once(config, *, cancel, **kwargs):  # only the config matters here: stop at once
        cancel.set()
        return real_train(config, cancel=cancel, **kwargs)

    monkeypatch.setattr(training, "train", cancelled_at_once)
    at = app()
    for preset in all_presets():
        for variant in (None, *(v.slug for v in preset.variants)):
            expected = preset.config(variant)
            at.session_state[state.PENDING] = (expected, False)  # what request_config(config) stores
            at.run()
            assert at.radio(key=state.LENGTH_UNIT).value == "steps"
            assert at.number_input(key=state.LENGTH).value == expected.steps
            at.button(key="train").click().run()
            no_errors(at)
            job = job_of(at)
            assert job.join(timeout=120)
            config = job.snapshot().config
            assert preset.mismatch(SimpleNamespace(config=config, cancelled=False), variant) == "", preset.slug
            assert (config.steps, config.snapshots, config.eval_every) == (
                expected.steps,
                expected.snapshots,
                expected.eval_every,
            ), preset.slug


def test_a_preset_retrained_from_the_form_matches_and_passes_its_checks():
    preset = get_preset("zero_constant")  # the quickest preset (under a second of training)
    at = app()
    at.session_state[state.PENDING] = (preset.config(), False)
    at.run()
    at = train(at)  # Train in the sidebar form, not the Reproductions page's Run
    no_errors(at)
    result = job_of(at).snapshot().result
    assert preset.mismatch(result) == ""
    outcomes = preset.check(result)
    assert outcomes and all(o.passed for o in outcomes), [o for o in outcomes if not o.passed]
    assert sorted(result.table("layers")["step"].unique()) == evenly_spread(
        preset.config().steps, preset.config().snapshots
    )
