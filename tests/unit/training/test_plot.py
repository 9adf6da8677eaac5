from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from modelhub.errors import InvalidInput
from modelhub.training.plot import MetricPoint, draw_figure, group_metrics, plot_curves


def curves() -> list[MetricPoint]:
    points: list[MetricPoint] = []
    for step in range(0, 100, 10):
        points.append(MetricPoint("loss", step, 3.0 / (1 + step)))
        points.append(MetricPoint("learning_rate", step, 1e-3))
        points.append(MetricPoint("samples_per_s", step, 500.0 + step))
        if step % 20 == 0:
            points.append(MetricPoint("val_loss", step, 3.5 / (1 + step)))
    return points


def test_group_metrics_puts_splits_of_one_metric_together() -> None:
    points = [
        MetricPoint("loss", 1, 1.0),
        MetricPoint("learning_rate", 1, 1e-3),
        MetricPoint("val_loss", 1, 1.2),
        MetricPoint("train_accuracy", 1, 0.5),
        MetricPoint("samples_per_s", 1, 100.0),
        MetricPoint("val_accuracy", 1, 0.4),
        MetricPoint("loss", 2, 0.9),
        MetricPoint("val_", 2, 0.9),
    ]
    assert group_metrics(points) == {
        "loss": ["loss", "val_loss"],
        "learning_rate": ["learning_rate"],
        "accuracy": ["train_accuracy", "val_accuracy"],
        "samples_per_s": ["samples_per_s"],
        "val_": ["val_"],
    }


def test_one_axes_per_panel_with_loss_and_val_loss_together() -> None:
    figure = draw_figure(curves(), title="run r1")
    assert len(figure.axes) == 3
    loss_axes = figure.axes[0]
    assert loss_axes.get_ylabel() == "loss"
    assert [line.get_label() for line in loss_axes.get_lines()] == ["loss", "val_loss"]
    assert figure.get_suptitle() == "run r1"


def test_writes_a_real_png(tmp_path: Path) -> None:
    out = plot_curves(curves(), tmp_path / "loss.png", title="run r1")
    assert out == tmp_path / "loss.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(out)
    height, width = image.shape[:2]
    assert width == 800
    assert 600 <= height <= 900
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 10


def test_writes_svg_when_asked(tmp_path: Path) -> None:
    out = plot_curves(curves(), tmp_path / "loss.SVG")
    text = out.read_text()
    assert text.lstrip().startswith("<?xml")
    assert "<svg" in text


def test_non_finite_values_leave_a_gap_and_the_first_is_marked() -> None:
    points = [
        MetricPoint("loss", 0, 2.0),
        MetricPoint("loss", 1, 1.5),
        MetricPoint("loss", 3, math.inf),
        MetricPoint("loss", 2, math.nan),
        MetricPoint("loss", 4, 1.0),
        MetricPoint("val_loss", 4, math.nan),
    ]
    axes = draw_figure(points).axes[0]
    lines = {str(line.get_label()): line for line in axes.get_lines()}
    assert list(lines) == ["loss", "loss = nan at step 2", "val_loss = nan at step 4"]
    assert np.asarray(lines["loss"].get_xdata()).tolist() == [0, 1, 2, 3, 4]
    loss = np.asarray(lines["loss"].get_ydata(), dtype=float)
    assert np.isnan(loss).tolist() == [False, False, True, True, False]
    assert np.asarray(lines["loss = nan at step 2"].get_xdata()).tolist() == [2, 2]


def test_a_lone_value_is_drawn_as_a_dot() -> None:
    figure = draw_figure([MetricPoint("val_loss", 10, 0.5)])
    assert figure.axes[0].get_lines()[0].get_marker() == "o"


def test_non_finite_values_still_make_a_picture(tmp_path: Path) -> None:
    points = [MetricPoint("loss", step, math.nan) for step in range(5)]
    out = plot_curves(points, tmp_path / "loss.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_points_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^no metrics yet$"):
        plot_curves([], tmp_path / "loss.png")
    assert not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize(
    ("name", "suffix", "shown"), [("loss.jpg", ".jpg", ".jpg"), ("loss", "", "(none)")]
)
def test_unsupported_suffix_is_invalid(tmp_path: Path, name: str, suffix: str, shown: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(f"{shown}; supported: .png, .svg")) as caught:
        plot_curves(curves(), tmp_path / name)
    assert caught.value.details == {"suffix": suffix, "supported": [".png", ".svg"]}
