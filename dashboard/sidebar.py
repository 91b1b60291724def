"""The sidebar: choose the dataset and runs, set every value in one form, press Train.

Picking the dataset or a run's initializer/activation sits above the form and only reruns this
sidebar fragment (so the form can show the widgets of the newly chosen plugin); every value is
inside ``st.form`` and nothing trains until its one submit button is pressed.
"""

from __future__ import annotations

import logging

import streamlit as st

from core.experiment import BIAS_INITS, LIMITS, MAX_RUNS, OPTIMIZERS
from core.registry import Registry
from dashboard import param_widgets, state, views

log = logging.getLogger(__name__)
FORM = "experiment_form"
TRAIN_BUTTON = "train"
ADD_RUN_BUTTON = "add_run"


def _add_run(reg: Registry) -> None:
    slots = state.slots()
    if len(slots) >= MAX_RUNS:
        return
    slot = st.session_state.get(state.NEXT_SLOT, len(slots))
    st.session_state[state.NEXT_SLOT] = slot + 1
    last = slots[-1] if slots else None
    initializer = next(iter(reg.initializers), "")
    activation = (
        state.DEFAULT_ACTIVATION if state.DEFAULT_ACTIVATION in reg.activations else next(iter(reg.activations), "")
    )
    if last is not None:
        activation = st.session_state.get(state.run_key(last, "activation"), activation)
    st.session_state[state.run_key(slot, "initializer")] = initializer
    st.session_state[state.run_key(slot, "activation")] = activation
    st.session_state[state.SLOTS] = [*slots, slot]


def _remove_run(slot: int) -> None:
    st.session_state[state.SLOTS] = [s for s in state.slots() if s != slot]


def _number(name: str, label: str, *, integer: bool, help_text: str = "", fmt: str | None = None) -> None:
    """A ranged number input for a config field (its range from ``core.experiment.LIMITS``).

    The state is only written when missing or out of range: writing it on every run would reset
    an edited, not yet submitted value in the form.
    """
    lo, hi = LIMITS[name]
    k = state.key(name)
    cast = int if integer else float
    current = st.session_state.get(k)
    if not isinstance(current, int | float) or isinstance(current, bool) or not lo <= current <= hi:
        st.session_state[k] = cast(getattr(state.DEFAULT_CONFIG, name))
    elif type(current) is not cast:
        st.session_state[k] = cast(current)
    if integer:
        st.number_input(label, min_value=int(lo), max_value=int(hi), step=1, key=k, help=help_text or None)
    else:
        st.number_input(
            label, min_value=float(lo), max_value=float(hi), key=k, help=help_text or None, format=fmt or "%g"
        )


def _optional_number(name: str, label: str, *, min_value: int, placeholder: str, help_text: str) -> None:
    """An integer input that may be left empty (None: the engine's default); its top from ``LIMITS``."""
    k = state.key(name)
    hi = int(LIMITS[name][1])
    current = st.session_state.get(k, getattr(state.DEFAULT_CONFIG, name))
    valid = current is None or (
        isinstance(current, int) and not isinstance(current, bool) and min_value <= current <= hi
    )
    st.session_state[k] = current if valid else getattr(state.DEFAULT_CONFIG, name)
    st.number_input(
        label,
        min_value=min_value,
        max_value=hi,
        value=None,
        step=1,
        key=k,
        placeholder=placeholder,
        help=help_text,
    )


def _training_length() -> None:
    """How long to train: one number, counted in epochs or in exact optimizer steps."""
    lo, hi = LIMITS["steps"]
    current = st.session_state.get(state.LENGTH)
    if not isinstance(current, int) or isinstance(current, bool) or not lo <= current <= hi:
        st.session_state[state.LENGTH] = state.DEFAULT_CONFIG.epochs
    if st.session_state.get(state.LENGTH_UNIT) not in state.LENGTH_UNITS:
        st.session_state[state.LENGTH_UNIT] = state.LENGTH_UNITS[0]
    a, b = st.columns(2, vertical_alignment="bottom")
    with a:
        st.number_input(
            "train for",
            min_value=int(lo),
            max_value=int(hi),
            step=1,
            key=state.LENGTH,
            help=(
                f"In epochs: whole passes over the training set ({LIMITS['epochs'][0]:g} to "
                f"{LIMITS['epochs'][1]:,.0f}). In steps: exactly that many optimizer steps (mini-batches), "
                "as the presets are defined."
            ),
        )
    with b:
        st.radio("counted in", state.LENGTH_UNITS, key=state.LENGTH_UNIT, horizontal=True)


def _choose_runs(reg: Registry) -> None:
    """The run list: one row per run with its initializer and activation, plus add/remove."""
    init_names = list(reg.initializers)
    act_names = list(reg.activations)
    for n, slot in enumerate(state.slots(), start=1):
        ikey, akey = state.run_key(slot, "initializer"), state.run_key(slot, "activation")
        if st.session_state.get(ikey) not in reg.initializers:
            st.session_state[ikey] = init_names[0]
        if st.session_state.get(akey) not in reg.activations:
            st.session_state[akey] = act_names[0]
        left, middle, right = st.columns([0.52, 0.34, 0.14], vertical_alignment="bottom")
        with left:
            st.selectbox(
                f"Run {n}: initializer", init_names, key=ikey, format_func=lambda x: reg.initializers[x].display_name
            )
        with middle:
            st.selectbox("activation", act_names, key=akey, format_func=lambda x: reg.activations[x].display_name)
        with right:
            st.button(
                "",
                icon=":material/close:",
                key=f"remove_run{slot}",
                help=f"remove run {n}",
                on_click=_remove_run,
                args=(slot,),
                disabled=len(state.slots()) <= 1,
            )
    st.button(
        "Add run",
        icon=":material/add:",
        key=ADD_RUN_BUTTON,
        on_click=_add_run,
        args=(reg,),
        disabled=len(state.slots()) >= MAX_RUNS,
        help=f"at most {MAX_RUNS} runs",
    )


def _run_params(reg: Registry) -> None:
    """Per run: the scheme's description, recommended activations, and its parameters as widgets."""
    for n, slot in enumerate(state.slots(), start=1):
        initializer = st.session_state[state.run_key(slot, "initializer")]
        activation = st.session_state[state.run_key(slot, "activation")]
        init_spec = reg.initializers[initializer]
        act_spec = reg.activations[activation]
        st.markdown(f"**Run {n}** · {init_spec.display_name} @ {act_spec.display_name}")
        recommended = ", ".join(init_spec.recommended_activations) or "any"
        note = (
            ""
            if not init_spec.recommended_activations or activation in init_spec.recommended_activations
            else (f" — {activation} is not among them")
        )
        st.caption(f"{init_spec.description}  \nRecommended activations: {recommended}{note}.")
        if init_spec.params:
            param_widgets.render_params(init_spec.params, state.init_prefix(slot, initializer))
        if act_spec.params:
            param_widgets.render_params(act_spec.params, state.act_prefix(slot, activation))


@st.fragment
def render(reg: Registry) -> None:
    """Draw the whole sidebar (call inside ``with st.sidebar``); a failure becomes a message."""
    try:
        _render(reg)
    except Exception as exc:
        log.exception("the sidebar failed")
        st.error(f"The experiment form could not be drawn: {type(exc).__name__}: {exc}")


def _render(reg: Registry) -> None:
    st.header("Experiment")
    datasets = list(reg.datasets)
    if not datasets or not reg.initializers or not reg.activations:
        st.error("No dataset, initializer or activation is registered: check the plugin errors on the page.")
        return
    dkey = state.key("dataset")
    if st.session_state.get(dkey) not in reg.datasets:
        st.session_state[dkey] = datasets[0]
    st.selectbox("Dataset", datasets, key=dkey, format_func=lambda x: reg.datasets[x].display_name)
    dataset = reg.datasets[st.session_state[dkey]]
    st.caption(dataset.description)
    st.subheader("Runs to compare")
    _choose_runs(reg)

    with st.form(FORM, border=True):
        if dataset.params:
            st.markdown("**Dataset settings**")
            param_widgets.render_params(dataset.params, state.dataset_prefix(dataset.name))
        st.markdown("**Network and training**")
        a, b = st.columns(2)
        with a:
            _number("depth", "hidden layers", integer=True)
        with b:
            _number("width", "units per layer", integer=True)
        a, b = st.columns(2)
        with a:
            opt = state.key("optimizer")
            st.selectbox("optimizer", OPTIMIZERS, key=opt)
        with b:
            _number("lr", "learning rate", integer=False, fmt="%g")
        a, b = st.columns(2)
        with a:
            _number("momentum", "momentum (sgd)", integer=False)
        with b:
            _number("batch_size", "batch size", integer=True)
        _training_length()
        a, b = st.columns(2)
        with a:
            _number("seed", "seed", integer=True, help_text="same seed = same data order and same draws")
        with b:
            _optional_number(
                "snapshots",
                "snapshots",
                min_value=int(LIMITS["snapshots"][0]),
                placeholder="auto",
                help_text=(
                    "How many times during training, after step 0 (initialization), the weight, gradient "
                    "and activation histograms and per-layer statistics are recorded, spread evenly up to "
                    "the last step: the positions of the step sliders. More snapshots cost time (each "
                    "costs several training steps). 0: step 0 only. Empty (auto): as many as fit in 15% "
                    "of the training time, which for a short training is step 0 only."
                ),
            )
        with st.expander("Advanced"):
            a, b = st.columns(2)
            with a:
                st.selectbox("bias init", BIAS_INITS, key=state.key("bias_init"))
            with b:
                _number("bias_value", "bias value", integer=False, help_text="used when bias init is 'constant'")
            _optional_number(
                "eval_every",
                "evaluate every N steps",
                min_value=0,
                placeholder="once per epoch",
                help_text=(
                    "Train and validation loss and accuracy are measured at step 0, every N steps and at "
                    "the last step. Empty or 0: once per epoch. Small N costs time."
                ),
            )
        st.markdown("**Run parameters**")
        _run_params(reg)
        submitted = st.form_submit_button("Train", type="primary", key=TRAIN_BUTTON, width="stretch")
    if submitted:
        outcome = state.start_training(state.read_config(reg), reg)
        if outcome.error:
            st.error(f"Not started: {outcome.error}")
        else:
            views.open_results_tab()  # the curves of what was just started, not the presets page
            st.rerun()
