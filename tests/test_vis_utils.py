"""cs231n.vis_utils: the numbers behind the notebook's figures, and figures with alt text."""

from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cs231n import vis_utils  # noqa: E402


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2e-5, "2e-5"),
        (1e-7, "1e-7"),
        (3e-6, "3e-6"),
        (1.0, "1e0"),
        (1000.0, "1e3"),
        (2.5e4, "2.5e4"),
        (5e-7, "5e-7"),
        (-3e-3, "-3e-3"),
    ],
)
def test_sci_writes_short_tick_labels(value, text):
    assert vis_utils.sci(value) == text


def test_confusion_fractions_on_a_hand_made_example():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 2, 1, 0, 2])
    expected = np.array([[0.5, 0.25, 0.25, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(vis_utils.confusion_fractions(y_true, y_pred, 4), expected)


def test_reliability_bins_by_the_largest_probability():
    probs = np.array(
        [
            [0.95, 0.05],  # bin 9, right
            [0.05, 0.95],  # bin 9, wrong
            [0.55, 0.45],  # bin 5, right
            [0.65, 0.35],  # bin 6, wrong
            [1.0, 0.0],  # confidence exactly 1 goes in the last bin, right
        ]
    )
    y = np.array([0, 0, 0, 1, 0])
    mean_conf, accuracy, count = vis_utils.reliability(probs, y, num_bins=10)
    np.testing.assert_array_equal(count, [0, 0, 0, 0, 0, 1, 1, 0, 0, 3])
    np.testing.assert_allclose(mean_conf[[5, 6, 9]], [0.55, 0.65, (0.95 + 0.95 + 1.0) / 3])
    np.testing.assert_allclose(accuracy[[5, 6, 9]], [1.0, 0.0, 2 / 3])
    assert np.isnan(mean_conf[0]) and np.isnan(accuracy[0])


def test_template_images_undo_the_flattening_and_drop_the_bias():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 4, 5, 2))  # C=3 templates of 4x5 pixels, 2 channels
    W = np.vstack([images.reshape(3, -1).T, np.ones((1, 3))])  # rows as preprocess flattens
    np.testing.assert_array_equal(vis_utils.template_images(W, (4, 5, 2)), images)


def test_show_publishes_the_png_with_its_alt_text_and_closes_the_figure(monkeypatch):
    shown = []
    monkeypatch.setattr(vis_utils, "display", lambda data, **kw: shown.append((data, kw)))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    vis_utils.show(fig, 'A line falling from 1 to 0, "quoted" & <escaped>.')
    ((data, kw),) = shown
    alt = 'A line falling from 1 to 0, "quoted" & <escaped>.'
    assert data["text/plain"] == alt and kw["metadata"] == {"image/png": {"alt": alt}}
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert data["text/html"].startswith(
        '<img alt="A line falling from 1 to 0, &quot;quoted&quot; &amp; &lt;escaped&gt;." '
    )
    assert not plt.fignum_exists(fig.number)
    with pytest.raises(ValueError, match="alt must describe the figure"):
        vis_utils.show(plt.figure(), "  ")
    plt.close("all")
