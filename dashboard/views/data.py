"""Data: sample images of the chosen dataset with their labels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

from core.errors import InitlabError
from dashboard import state
from dashboard.views import View, ViewContext

SAMPLES_PER_CLASS = 3
MAX_CLASSES = 10
TILE = 84  # pixels per image on screen


@st.cache_data(show_spinner="Loading the dataset…", max_entries=4)
def load_samples(name: str, params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """A few training images per class (as float arrays) plus the dataset's sizes."""
    reg = state.registry()
    bundle = reg.dataset(name).load(**dict(params))
    y = bundle.y_train.numpy()
    x = bundle.x_train.numpy()
    picks = []
    for label in range(min(bundle.num_classes, MAX_CLASSES)):
        picks.extend(np.flatnonzero(y == label)[:SAMPLES_PER_CLASS].tolist())
    return {
        "images": x[picks],
        "labels": [bundle.class_names[int(y[i])] for i in picks],
        "image_shape": tuple(bundle.image_shape),
        "n_train": int(x.shape[0]),
        "n_val": int(bundle.x_val.shape[0]),
        "classes": list(bundle.class_names),
    }


def to_tile(vector: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A (H, W) image in [0, 1], high values dark, upscaled by pixel repetition to about TILE pixels.

    None when the inputs are not images (not 2-D and not a perfect square).
    """
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side != shape[0]:
            return None
        shape = (side, side)
    if len(shape) == 3 and shape[-1] in (1, 3):
        shape = shape[:2]
        vector = vector.reshape(*shape, -1).mean(axis=-1)
    if len(shape) != 2:
        return None
    img = vector.reshape(shape).astype(np.float64)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    img = 1.0 - img  # dark strokes on white, like ink on paper
    factor = max(1, TILE // max(shape))
    return np.kron(img, np.ones((factor, factor)))


def render(ctx: ViewContext) -> None:
    if ctx.result is not None:
        name, params = ctx.result.config.dataset, dict(ctx.result.config.dataset_params)
        st.caption("The dataset of the last experiment.")
    else:
        config = state.read_config(ctx.registry)
        name, params = config.dataset, dict(config.dataset_params)
        st.caption("The dataset chosen in the sidebar.")
    try:
        data = load_samples(name, tuple(sorted(params.items())))
    except (InitlabError, ValueError, OSError) as exc:
        st.error(f"Dataset {name!r} could not be loaded: {exc}")
        return
    spec = ctx.registry.datasets.get(name)
    title = spec.display_name if spec else name
    st.markdown(
        f"**{title}** — {data['n_train']:,} training and {data['n_val']:,} validation samples, "
        f"{len(data['classes'])} classes, inputs of shape {data['image_shape']}."
    )
    tiles = [to_tile(v, data["image_shape"]) for v in data["images"]]
    if any(t is None for t in tiles):
        st.info("These inputs are not images; the first samples are listed instead.")
        st.dataframe(np.asarray(data["images"])[:, :20], width="stretch")
        return
    st.image(tiles, caption=data["labels"], width=TILE, clamp=True, output_format="PNG")


VIEW = View("Data", render, order=60, needs_result=False)
