"""``initlab run``: every bad-input path (exit 2, a message naming the field), a small real run writing
JSON and CSVs, ``--config`` round trip with flag overrides, run-spec splitting, Ctrl-C."""

from __future__ import annotations

import _thread
import csv
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from core.cli import main
from core.commands import run_cmd
from core.errors import ConfigError
from core.experiment import ExperimentConfig, RunConfig

TINY = ["--dataset", "digits", "--depth", "2", "--width", "16", "--batch-size", "64", "--seed", "0"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(code: int, err: str, *needles: str) -> None:
    """Exit 2, one ``initlab: error:`` line naming what was wrong, no traceback."""
    assert code == 2, err
    assert err.startswith("initlab: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


# -- run-spec splitting ---------------------------------------------------------------------------


def test_split_runs_respects_parentheses():
    text = "he_normal(mode=fan_out,negative_slope=0.1)@leaky_relu(negative_slope=0.1), xavier_uniform,zeros@tanh"
    assert run_cmd.split_runs(text) == [
        "he_normal(mode=fan_out,negative_slope=0.1)@leaky_relu(negative_slope=0.1)",
        "xavier_uniform",
        "zeros@tanh",
    ]


def test_parse_runs_reads_params_and_default_activation():
    runs = run_cmd.parse_runs(
        ["he_normal(mode=fan_out,negative_slope=0.1)@leaky_relu(negative_slope=0.1),zeros"], "tanh"
    )
    assert runs == (
        RunConfig("he_normal", "leaky_relu", {"mode": "fan_out", "negative_slope": "0.1"}, {"negative_slope": "0.1"}),
        RunConfig("zeros", "tanh"),
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("he_normal(mode=fan_out", "unclosed '('"),
        ("he_normal)@relu", "unbalanced ')'"),
        ("he_normal,,zeros", "empty run"),
        ("he_normal,", "empty run"),
    ],
)
def test_split_runs_rejects_malformed_lists(text, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        run_cmd.split_runs(text)


def test_print_config_resolves_params_from_comma_separated_schemes(capsys):
    code, out, err = run_cli(
        capsys,
        "--schemes",
        "he_normal(mode=fan_out,negative_slope=0.1)@leaky_relu(negative_slope=0.1),xavier_uniform",
        "--activation",
        "tanh",
        "--print-config",
    )
    assert code == 0, err
    data = tomllib.loads(out)
    first, second = data["runs"]
    assert (first["initializer"], first["activation"]) == ("he_normal", "leaky_relu")
    assert first["init_params"]["mode"] == "fan_out"
    assert first["init_params"]["negative_slope"] == pytest.approx(0.1)  # coerced from the string "0.1"
    assert first["activation_params"] == {"negative_slope": pytest.approx(0.1)}
    assert (second["initializer"], second["activation"]) == ("xavier_uniform", "tanh")
    assert "gain" in second["init_params"]  # defaults are filled in: the config is resolved


# -- bad input: exit 2 and a message naming the field ----------------------------------------------


def test_unknown_scheme_suggests_close_names(capsys):
    code, _, err = run_cli(capsys, "--schemes", "xavier_uniform,he_nromal")
    assert_bad_input(code, err, "runs[1].initializer", "'he_nromal'", "Did you mean", "'he_normal'")


def test_unknown_activation_suggests_close_names(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal@rleu")
    assert_bad_input(code, err, "runs[0].activation", "'rleu'", "'relu'")


def test_unknown_default_activation_is_reported(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal", "--activation", "tanhh")
    assert_bad_input(code, err, "activation", "'tanhh'", "'tanh'")


@pytest.mark.parametrize(
    ("flag", "value", "field", "allowed"),
    [
        ("--depth", "0", "depth (--depth)", "[1, 100]"),
        ("--depth", "101", "depth (--depth)", "[1, 100]"),
        ("--width", "0", "width (--width)", "[1, 4096]"),
        ("--width", "5000", "width (--width)", "[1, 4096]"),
        ("--lr", "0", "lr (--lr)", "[1e-06, 10]"),
        ("--lr", "11", "lr (--lr)", "[1e-06, 10]"),
        ("--batch-size", "0", "batch_size (--batch-size)", "[1, 65536]"),
        ("--momentum", "1.5", "momentum (--momentum)", "[0, 0.999]"),
        ("--optimizer", "rmsprop", "optimizer (--optimizer)", "sgd, adam"),
        ("--dtype", "float16", "dtype (--dtype)", "float32, float64"),
    ],
)
def test_out_of_range_values_name_the_field_and_range(capsys, flag, value, field, allowed):
    code, _, err = run_cli(capsys, "--schemes", "he_normal", flag, value)
    assert_bad_input(code, err, field, allowed, f"got {value}" if value[0].isdigit() else f"got {value!r}")


def test_non_numeric_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--schemes", "he_normal", "--depth", "five"])
    assert exc.value.code == 2
    assert "--depth" in capsys.readouterr().err


def test_missing_runs_is_reported(capsys):
    code, _, err = run_cli(capsys, "--depth", "3")
    assert_bad_input(code, err, "schemes (--schemes)", "--config")


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("he_normal(mode)", ("schemes (--schemes)", "expected key=value", "'mode'")),
        ("he normal", ("schemes (--schemes)", "cannot read run", "initializer[(k=v,...)]")),
        ("he_normal(mode=fan_out", ("schemes (--schemes)", "unclosed '('")),
        ("he_normal,,zeros", ("schemes (--schemes)", "empty run")),
    ],
)
def test_malformed_run_spec(capsys, spec, needles):
    code, _, err = run_cli(capsys, "--schemes", spec)
    assert_bad_input(code, err, *needles)


def test_bad_initializer_param_value_lists_the_choices(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal(mode=sideways)")
    assert_bad_input(code, err, "runs[0].he_normal.mode", "'sideways'", "'fan_in'", "'fan_out'")


def test_unknown_initializer_param_lists_the_known_ones(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal(slope=0.1)")
    assert_bad_input(code, err, "runs[0].he_normal.slope", "unknown parameter", "negative_slope")


def test_bad_activation_param_value(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal@leaky_relu(negative_slope=lots)")
    assert_bad_input(code, err, "negative_slope", "'lots'", "a number")


def test_missing_idx_folder_is_a_dataset_error(capsys, tmp_path):
    missing = tmp_path / "no-such-folder"
    code, _, err = run_cli(
        capsys, "--schemes", "he_normal", "--dataset", "idx", "--dataset-param", f"path={missing}", "--steps", "1"
    )
    assert_bad_input(code, err, "idx", "no-such-folder", "does not exist")


def test_unknown_dataset_suggests_close_names(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal", "--dataset", "digit")
    assert_bad_input(code, err, "dataset (--dataset)", "'digits'")


def test_malformed_dataset_param(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal", "--dataset-param", "val_fraction")
    assert_bad_input(code, err, "dataset_params (--dataset-param)", "KEY=VALUE")


def test_memory_estimate_over_budget_says_the_estimate(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal,xavier_uniform", "--depth", "100", "--width", "4096")
    config = ExperimentConfig(runs=(RunConfig("he_normal", "relu"),) * 2, depth=100, width=4096)
    estimate_mib = config.estimate_memory_bytes(64, 10) / 2**20  # digits: 64 features, 10 classes
    assert_bad_input(code, err, "memory", f"{estimate_mib:,.0f} MiB", "4,096 MiB", "INITLAB_MEMORY_BUDGET_MB")


def test_memory_budget_comes_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("INITLAB_MEMORY_BUDGET_MB", "1")
    code, _, err = run_cli(capsys, "--schemes", "he_normal", "--width", "1024", "--depth", "4")
    assert_bad_input(code, err, "memory", "budget of 1 MiB")


def test_malformed_config_file(capsys, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("depth = [1,\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(path))
    assert_bad_input(code, err, "config", "broken.toml is not valid TOML")


def test_malformed_json_config_file(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"runs": [', encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(path))
    assert_bad_input(code, err, "config", "broken.json is not valid JSON")


def test_unknown_config_key_lists_the_allowed_ones(capsys, tmp_path):
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"runs": ["he_normal@relu"], "learning_rate": 0.1}), encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(path))
    assert_bad_input(code, err, "learning_rate", "unknown setting", "lr", "batch_size")


def test_unknown_run_key_in_config(capsys, tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[[runs]]\ninitializer = "he_normal"\nactivation = "relu"\ngain = 2\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(path))
    assert_bad_input(code, err, "runs[0].gain", "unknown run setting")


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--config", str(tmp_path / "nope.toml"))
    assert_bad_input(code, err, "config", "does not exist")


def test_out_in_a_missing_folder_is_rejected_before_training(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--schemes", "he_normal", "--out", str(tmp_path / "missing" / "r.json"))
    assert_bad_input(code, err, "out (--out)", "does not exist")


def test_bad_thread_count(capsys):
    code, _, err = run_cli(capsys, "--schemes", "he_normal", "--threads", "0")
    assert_bad_input(code, err, "threads (--threads)", "[1, 1024]")


# -- successful runs ------------------------------------------------------------------------------

SCHEMES = "he_normal(mode=fan_out),xavier_uniform@tanh,zeros"
RUN_IDS = ["he_normal(mode=fan_out)@relu", "xavier_uniform@tanh", "zeros@relu"]


def test_small_run_writes_json_and_csvs_with_the_expected_runs(capsys, tmp_path):
    out, folder = tmp_path / "results.json", tmp_path / "csv"
    steps = 12
    code, stdout, err = run_cli(
        capsys, *TINY, "--schemes", SCHEMES, "--steps", str(steps), "--out", str(out), "--csv", str(folder), "--quiet"
    )
    assert code == 0, err
    assert "Traceback" not in err
    # Summary table: one row per run with its diagnosis label.
    data = json.loads(out.read_text(encoding="utf-8"))
    ids = [run["id"] for run in data["runs"]]
    assert ids == RUN_IDS
    for run in data["runs"]:
        assert run["id"] in stdout
        assert run["diagnosis"]["label"] in stdout
        assert run["status"] in stdout
    # zero init: every hidden unit stays identical, so the diagnosis must say so (or it diverged/failed).
    assert data["runs"][2]["diagnosis"]["verdict"] == "symmetry_not_broken"
    assert data["config"]["steps"] == steps and data["config"]["width"] == 16
    steps_rows = data["metrics"]["steps"]
    for run_id in RUN_IDS:  # one loss per optimizer step, consecutive steps
        trained = sorted(r["step"] for r in steps_rows if r["run"] == run_id)
        assert trained == list(range(trained[0], trained[0] + steps))
    # The final line is printed even without a terminal (no progress bar here: stderr is captured).
    assert f"trained 3 runs, {steps} steps" in err
    # One CSV per table; each parses and names the same runs as the JSON.
    files = sorted(folder.glob("*.csv"))
    assert {f.stem for f in files} >= {"steps", "evals", "layers", "histograms"}
    for f in files:
        with f.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows, f
        assert {row["run"] for row in rows} == set(RUN_IDS), f
    with (folder / "steps.csv").open(newline="", encoding="utf-8") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert len(csv_rows) == len(steps_rows)


def test_config_round_trip_and_flag_overrides(capsys, tmp_path):
    config = ExperimentConfig(
        runs=(RunConfig("he_normal", "relu", {"mode": "fan_out"}), RunConfig("xavier_normal", "tanh")),
        dataset="digits",
        dataset_params={"val_fraction": 0.25},
        depth=2,
        width=12,
        optimizer="adam",
        lr=0.01,
        steps=6,
        seed=3,
        name="round trip",
    )
    path = tmp_path / "experiment.toml"
    path.write_text(config.to_toml(), encoding="utf-8")

    # The file alone resolves to the same experiment.
    code, out, err = run_cli(capsys, "--config", str(path), "--print-config")
    assert code == 0, err
    from core.registry import get_registry

    expected = config.validated(get_registry()).to_dict()
    assert tomllib.loads(out) == expected

    # Explicit flags override the file; everything else comes from the file.
    code, out, err = run_cli(
        capsys,
        "--config",
        str(path),
        "--depth",
        "3",
        "--lr",
        "0.05",
        "--dataset-param",
        "split_seed=7",
        "--print-config",
    )
    assert code == 0, err
    data = tomllib.loads(out)
    assert data == {**expected, "depth": 3, "lr": 0.05, "dataset_params": {"val_fraction": 0.25, "split_seed": 7}}

    # --epochs clears the file's `steps`; --activation (without --schemes) replaces every run's activation.
    code, out, err = run_cli(capsys, "--config", str(path), "--epochs", "2", "--activation", "selu", "--print-config")
    assert code == 0, err
    data = tomllib.loads(out)
    assert data["epochs"] == 2 and "steps" not in data
    assert [r["activation"] for r in data["runs"]] == ["selu", "selu"]
    assert [r["label"] for r in data["runs"]] == ["he_normal(mode=fan_out)@selu", "xavier_normal@selu"]
    assert data["runs"][0]["init_params"]["mode"] == "fan_out"

    # A file written by --print-config carries each run's label (its id); a changed activation updates it.
    printed = tmp_path / "printed.toml"
    printed.write_text(tomli_w.dumps(expected), encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(printed), "--activation", "selu", "--print-config")
    assert code == 0, err
    data = tomllib.loads(out)
    assert [r["label"] for r in data["runs"]] == ["he_normal(mode=fan_out)@selu", "xavier_normal@selu"]

    # --schemes replaces the file's runs; --dataset to another dataset drops the file's dataset params.
    code, out, err = run_cli(
        capsys, "--config", str(path), "--schemes", "lecun_normal", "--dataset", "synthetic", "--print-config"
    )
    assert code == 0, err
    data = tomllib.loads(out)
    assert [(r["initializer"], r["activation"]) for r in data["runs"]] == [("lecun_normal", "relu")]
    assert "val_fraction" not in data["dataset_params"]

    # And it trains: the results carry the file's config with the overrides.
    results = tmp_path / "r.json"
    code, _, err = run_cli(capsys, "--config", str(path), "--width", "8", "--out", str(results), "--quiet")
    assert code == 0, err
    saved = json.loads(results.read_text(encoding="utf-8"))
    assert saved["config"] == {**expected, "width": 8}
    assert [r["id"] for r in saved["runs"]] == ["he_normal(mode=fan_out)@relu", "xavier_normal@tanh"]


def test_json_config_file_is_read_too(capsys, tmp_path):
    path = tmp_path / "experiment.json"
    path.write_text(ExperimentConfig(runs=(RunConfig("orthogonal", "tanh"),), depth=4).to_json(), encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(path), "--print-config")
    assert code == 0, err
    data = tomllib.loads(out)
    assert data["depth"] == 4 and data["runs"][0]["initializer"] == "orthogonal"


def test_ctrl_c_cancels_and_saves_partial_results(capsys, tmp_path, monkeypatch):
    """The first progress update raises KeyboardInterrupt in the main thread, as Ctrl-C would."""
    interrupted = []
    original = run_cmd._Progress.__call__

    def interrupt_once(self, update):
        original(self, update)
        if not interrupted:
            interrupted.append(update.step)
            _thread.interrupt_main()

    monkeypatch.setattr(run_cmd._Progress, "__call__", interrupt_once)
    out = tmp_path / "partial.json"
    total = 20_000  # far more than can run before the cancel lands
    code, _, err = run_cli(
        capsys, *TINY, "--schemes", "he_normal,lecun_normal", "--steps", str(total), "--out", str(out)
    )
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and "cancelled after" in err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {run["status"] for run in data["runs"]} == {"cancelled"}
    last = max(row["step"] for row in data["metrics"]["steps"])
    assert 1 <= last < total


@pytest.mark.slow  # two interpreter start-ups with torch
def test_console_script_smoke():
    script = Path(sys.executable).with_name("initlab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "core"]
    env_args = {"capture_output": True, "text": True, "timeout": 120}
    ok = subprocess.run(
        [
            *command,
            "run",
            "--schemes",
            "he_normal,zeros@tanh",
            "--depth",
            "1",
            "--width",
            "8",
            "--steps",
            "3",
            "--threads",
            "1",
        ],
        **env_args,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "he_normal@relu" in ok.stdout and "zeros@tanh" in ok.stdout
    assert "trained 2 runs, 3 steps" in ok.stderr
    bad = subprocess.run([*command, "run", "--schemes", "he_nromal"], **env_args, check=False)
    assert bad.returncode == 2
    assert "Did you mean 'he_normal'" in bad.stderr and "Traceback" not in bad.stderr
