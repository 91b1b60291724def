"""The widget builder: each Param type gets the right widget, range and value type."""

from __future__ import annotations

import math

import pytest

from core.errors import ParamError
from core.registry import get_registry
from core.specs import Param
from dashboard.param_widgets import plan_widget, widget_value


def test_float_param_gets_a_ranged_number_input():
    plan = plan_widget(Param("std", "float", 0.01, min=1e-6, max=10.0, log_scale=True, help="standard deviation"))
    assert plan.widget == "number_input"
    assert plan.kwargs["min_value"] == 1e-6 and plan.kwargs["max_value"] == 10.0
    assert isinstance(plan.kwargs["min_value"], float)
    assert plan.kwargs["step"] == pytest.approx(0.001)  # a tenth of the default's decade (log scale)
    assert plan.kwargs["format"] == "%g"
    assert "standard deviation" in plan.kwargs["help"] and "[1e-06, 10]" in plan.kwargs["help"]


def test_linear_float_steps_by_a_tenth_of_a_decade_of_its_span():
    plan = plan_widget(Param("gain", "float", 1.0, min=0.0, max=10.0))
    assert plan.kwargs["step"] == pytest.approx(1.0)  # span 10 -> steps of 10**floor(log10(1)) = 1


def test_int_param_rounds_its_bounds_inwards():
    plan = plan_widget(Param("n", "int", 3, min=0.5, max=9.7))
    assert plan.widget == "number_input"
    assert (plan.kwargs["min_value"], plan.kwargs["max_value"], plan.kwargs["step"]) == (1, 9, 1)
    assert all(isinstance(plan.kwargs[k], int) for k in ("min_value", "max_value", "step"))


def test_bool_choice_str_and_path_widgets():
    assert plan_widget(Param("flag", "bool", True)).widget == "checkbox"
    choice = plan_widget(Param("mode", "choice", "fan_in", choices=("fan_in", "fan_out")))
    assert choice.widget == "selectbox" and choice.kwargs["options"] == ["fan_in", "fan_out"]
    assert plan_widget(Param("name", "str", "x")).widget == "text_input"
    path = plan_widget(Param("path", "path", "", help="IDX folder"))
    assert path.widget == "text_input"
    assert "folder" in path.kwargs["placeholder"] and "nothing is uploaded" in path.kwargs["help"]


def test_labels_are_readable():
    assert plan_widget(Param("negative_slope", "float", 0.0)).kwargs["label"] == "negative slope"
    assert plan_widget(Param("negative_slope", "float", 0.0), label="slope").kwargs["label"] == "slope"


def test_widget_value_coerces_and_rejects():
    assert widget_value(Param("std", "float", 0.1, min=0.0), "0.5") == 0.5
    assert isinstance(widget_value(Param("std", "float", 1.0), 2), float)
    assert widget_value(Param("n", "int", 1), "4") == 4
    with pytest.raises(ParamError):
        widget_value(Param("std", "float", 0.1, min=0.0), -1)
    with pytest.raises(ParamError):
        widget_value(Param("mode", "choice", "a", choices=("a", "b")), "c")


def test_every_builtin_parameter_gets_a_widget_its_default_fits():
    registry = get_registry()
    specs = [*registry.initializers.values(), *registry.activations.values(), *registry.datasets.values()]
    count = 0
    for spec in specs:
        for param in spec.params:
            plan = plan_widget(param)
            value = widget_value(param, param.default)
            lo, hi = plan.kwargs.get("min_value", -math.inf), plan.kwargs.get("max_value", math.inf)
            if plan.widget == "number_input":
                assert lo <= value <= hi, f"{spec.name}.{param.name}"
            if plan.widget == "selectbox":
                assert value in plan.kwargs["options"]
            count += 1
    assert count > 10
