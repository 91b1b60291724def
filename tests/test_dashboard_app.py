"""The whole app under Streamlit's AppTest: the form, training to completion, no retraining on view
changes, links, plugin failures and errors shown as messages.

``run_every`` fragments do not tick under AppTest, so the tests join the job's thread and rerun.
"""

from __future__ import annotations

import pytest
from dashboard_apptest import SMALL, app, no_errors, open_tab, train
from streamlit.testing.v1 import AppTest

from dashboard import state


def charts_by_domain(at: AppTest) -> list[dict]:
    import json

    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def colour_domains(spec: dict) -> list[list[str]]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            color = node.get("color")
            if isinstance(color, dict) and "scale" in color and "domain" in color["scale"]:
                found.append(color["scale"]["domain"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


@pytest.mark.slow
def test_defaults_train_to_completion_and_fill_the_tabs():
    at = app()
    no_errors(at)
    # the first-load story: five schemes on tanh, digits, a 5-layer net
    initializers = [at.selectbox(key=f"run{i}.initializer").value for i in range(5)]
    assert initializers == ["zeros", "small_normal", "large_normal", "xavier_uniform", "he_normal"]
    assert {at.selectbox(key=f"run{i}.activation").value for i in range(5)} == {"tanh"}
    assert at.number_input(key="cfg.depth").value == 5
    at = train(at)
    no_errors(at)
    assert any("Trained 5 runs" in s.value for s in at.success)
    labels = ["Reproductions", "Loss & accuracy", "Weights", "Gradients", "Activations", "Diagnosis"]
    assert [t.label for t in at.tabs][:6] == labels
    assert at.session_state["tab"] == "Loss & accuracy"  # Train in the sidebar opens the results
    specs = charts_by_domain(at)
    assert len(specs) >= 2  # loss and accuracy
    expected = ["zeros@tanh", "small_normal@tanh", "large_normal@tanh", "xavier_uniform@tanh", "he_normal@tanh"]
    for spec in specs:
        assert expected in colour_domains(spec)
    summary = at.dataframe[0].value
    assert list(summary["run"]) == expected
    assert set(summary["status"]) <= {"ok", "diverged"}
    by_run = dict(zip(summary["run"], summary["diagnosis"], strict=True))
    assert by_run["zeros@tanh"] == "Symmetry not broken"  # the story the defaults tell
    assert by_run["xavier_uniform@tanh"] == "Healthy"
    # the setup and the job are mirrored in the URL
    assert at.query_params["job"] == at.session_state["job_id"]
    assert len(at.query_params["run"]) == 5


def test_view_changes_and_tab_switches_never_retrain():
    at = train(app(SMALL))
    no_errors(at)
    store = state.job_store()
    started, job_id = store.started, at.session_state["job_id"]
    at.toggle(key="view.loss_log").set_value(True).run()
    loss_spec = charts_by_domain(at)[0]
    assert '"type": "log"' in str(loss_spec).replace("'", '"')
    for tab in ("Weights", "Gradients", "Activations", "Diagnosis", "Data", "Plugins", "Loss & accuracy"):
        open_tab(at, tab)
        no_errors(at)
    open_tab(at, "Weights")
    at.button_group(key="view.weights.layout").set_value("grid").run()
    no_errors(at)
    assert any('"row"' in str(spec).replace("'", '"') for spec in charts_by_domain(at))
    assert store.started == started  # nothing trained again
    assert at.session_state["job_id"] == job_id
    # the view control survived the trip through the other tabs
    open_tab(at, "Loss & accuracy")
    assert at.toggle(key="view.loss_log").value is True


def test_two_sessions_keep_their_own_results():
    first = train(app(SMALL))
    second = train(app({**SMALL, "run": ["he_normal@tanh"]}))
    assert first.session_state["job_id"] != second.session_state["job_id"]
    assert list(first.dataframe[0].value["run"]) == ["zeros@tanh", "xavier_uniform@tanh"]
    assert list(second.dataframe[0].value["run"]) == ["he_normal@tanh"]
    first.run()  # a rerun of the first session still shows its own result
    assert list(first.dataframe[0].value["run"]) == ["zeros@tanh", "xavier_uniform@tanh"]


def test_a_link_rebuilds_the_form_and_bad_values_are_explained():
    at = app(
        {
            "run": ["small_normal(std=0.05)@relu", "nope@tanh"],
            "lr": "0.03",
            "depth": "three",
            "optimizer": "adam",
        }
    )
    no_errors(at)
    assert at.selectbox(key="run0.initializer").value == "small_normal"
    assert at.selectbox(key="run0.activation").value == "relu"
    assert at.number_input(key="run0.init.small_normal.std").value == pytest.approx(0.05)
    assert at.number_input(key="cfg.lr").value == pytest.approx(0.03)
    assert at.selectbox(key="cfg.optimizer").value == "adam"
    assert at.number_input(key="cfg.depth").value == 5  # 'three' was ignored ...
    notes = " ".join(i.value for i in at.info)
    assert "depth='three' is not an integer" in notes  # ... and said so
    assert "nope" in notes  # the unknown scheme was left out, with the reason
    with pytest.raises(KeyError):
        at.selectbox(key="run1.initializer")


def test_a_forgotten_job_in_the_link_is_explained():
    at = app({**SMALL, "job": "feedfacecafe"})
    no_errors(at)
    assert any("no longer in memory" in i.value for i in at.info)
    assert "job_id" not in at.session_state


def test_a_dataset_error_is_a_message_naming_the_cause(tmp_path):
    missing = tmp_path / "no-such-folder"
    at = app({**SMALL, "dataset": "idx", "dataset.path": str(missing)})
    assert at.text_input(key="cfg.dataset_params.idx.path").value == str(missing)
    at.button(key="train").click().run()
    job = state.job_store().get(at.session_state["job_id"])
    job.join(timeout=60)
    at.run()
    assert not at.exception
    messages = " ".join(e.value for e in at.error)
    assert "Training did not finish" in messages and "no-such-folder" in messages


def test_an_experiment_over_the_memory_budget_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("INITLAB_MEMORY_BUDGET_MB", "0.01")
    at = app(SMALL)
    at.button(key="train").click().run()
    state.job_store().get(at.session_state["job_id"]).join(timeout=60)
    at.run()
    assert not at.exception
    messages = " ".join(e.value for e in at.error)
    assert "memory" in messages and "INITLAB_MEMORY_BUDGET_MB" in messages


def test_a_broken_plugin_is_a_warning_and_the_builtins_still_train(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    monkeypatch.setenv("INITLAB_PLUGINS_DIR", str(tmp_path))
    at = app(SMALL)
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "file:broken_plugin" in warnings and "broken on purpose" in warnings
    at = train(at)
    no_errors(at)
    assert any("Trained 2 runs" in s.value for s in at.success)
    open_tab(at, "Plugins")
    assert any("file:broken_plugin" in w.value for w in at.warning)


def test_progress_and_cancel_while_training(monkeypatch):
    """While a job runs the page shows a progress bar, live loss curves and Cancel; Cancel keeps the
    partial result."""
    import threading

    from core import training

    real_train = training.train
    gate = threading.Event()

    def slow_train(config, *, progress, **kwargs):
        def held(update):
            progress(update)
            if update.steps_rows:
                gate.wait(30)  # hold the worker after its first measured step until the test cancels

        return real_train(config, progress=held, **kwargs)

    monkeypatch.setattr(training, "train", slow_train)
    at = app({**SMALL, "epochs": "3"})
    at.button(key="train").click().run()
    job = state.job_store().get(at.session_state["job_id"])
    for _ in range(200):  # wait (at most ~20 s) until the worker has reported its first steps
        if job.live_frame("steps").shape[0]:
            break
        job.join(timeout=0.1)
    at.run()
    assert not at.exception
    assert len(at.get("progress")) == 1 and "Training 2 runs" in at.get("progress")[0].proto.text
    assert any('"split"' in c.proto.spec for c in at.get("vega_lite_chart"))  # the live loss chart
    at.button(key="cancel_job").click().run()
    gate.set()
    assert job.join(timeout=60)
    at.run()
    no_errors(at)
    assert job.snapshot().status == "cancelled"
    assert any("Cancelled at step" in w.value for w in at.warning)
    summary = at.dataframe[0].value
    assert list(summary["run"]) == ["zeros@tanh", "xavier_uniform@tanh"]  # the partial result is shown


def test_a_reload_reattaches_to_the_finished_job():
    first = train(app(SMALL))
    job_id = first.session_state["job_id"]
    started = state.job_store().started
    reloaded = app({**SMALL, "job": job_id})  # a new session from the same URL, as after F5
    no_errors(reloaded)
    assert reloaded.session_state["job_id"] == job_id
    assert list(reloaded.dataframe[0].value["run"]) == ["zeros@tanh", "xavier_uniform@tanh"]
    assert state.job_store().started == started


def test_another_page_can_load_a_config_and_train_it():
    """The hook for the Reproductions page: ``state.request_config(config, train=True)``."""
    from core.experiment import ExperimentConfig, RunConfig

    at = app(SMALL)
    config = ExperimentConfig(
        runs=(RunConfig("he_normal", "relu"), RunConfig("xavier_normal", "relu")), epochs=1, depth=2, width=8
    )
    at.session_state[state.PENDING] = (config, True)  # what request_config stores
    at.run()
    assert at.selectbox(key="run0.initializer").value == "he_normal"
    assert at.selectbox(key="run1.activation").value == "relu"
    assert at.number_input(key="cfg.width").value == 8
    job = state.job_store().get(at.session_state["job_id"])
    assert job.join(timeout=120)
    at.run()
    no_errors(at)
    assert at.session_state["tab"] == "Reproductions"  # the page that asked stays open
    open_tab(at, "Loss & accuracy")
    no_errors(at)
    assert list(at.dataframe[0].value["run"]) == ["he_normal@relu", "xavier_normal@relu"]


BOOM_PLUGIN = """
from core import InitializerSpec, hookimpl


def _boom(tensor, ctx):
    raise ValueError("boom while initializing")


@hookimpl
def register_initializers(register):
    register(InitializerSpec(name="boom", fn=_boom, display_name="Boom", description="Fails when called."))
"""


def test_a_plugin_failing_at_call_time_fails_only_its_run(tmp_path, monkeypatch):
    (tmp_path / "boom_plugin.py").write_text(BOOM_PLUGIN)
    monkeypatch.setenv("INITLAB_PLUGINS_DIR", str(tmp_path))
    at = train(app({**SMALL, "run": ["boom@tanh", "xavier_uniform@tanh"]}))
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "boom@tanh" in errors and "boom while initializing" in errors
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["boom@tanh", "status"] == "failed"
    assert summary.loc["xavier_uniform@tanh", "status"] == "ok"


def test_runs_can_be_added_and_removed_without_training():
    at = app(SMALL)
    started = state.job_store().started
    at.button(key="add_run").click().run()
    assert [s.key for s in at.selectbox if s.key.endswith(".initializer")] == [
        "run0.initializer",
        "run1.initializer",
        "run2.initializer",
    ]
    assert at.selectbox(key="run2.activation").value == "tanh"  # a new run copies the last activation
    at.selectbox(key="run2.initializer").set_value("orthogonal").run()
    assert any(n.key.startswith("run2.init.orthogonal.") for n in at.number_input)  # its Params as widgets
    at.button(key="remove_run0").click().run()
    assert [s.value for s in at.selectbox if s.key.endswith(".initializer")] == ["xavier_uniform", "orthogonal"]
    assert state.job_store().started == started


def test_data_tab_shows_labelled_samples_of_the_chosen_dataset():
    at = app({"dataset": "synthetic", "dataset.n_train": "200", "dataset.n_val": "50", "dataset.dims": "64"})
    open_tab(at, "Data")
    no_errors(at)
    images = at.get("image")
    assert len(images) == 1
    captions = [img.caption for img in images[0].proto.imgs]
    assert len(captions) == 30  # 3 samples for each of the 10 classes
    assert "200 training and 50 validation samples" in " ".join(m.value for m in at.markdown)
