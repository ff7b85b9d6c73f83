"""numvgg.figures: the slide style, the training curves, the teaching diagrams and
``numvgg figures DIR``.

Figures are checked through what they must say: each is a 1280x720 PNG with an SVG
next to it (SVG text stays text, so titles and footers can be searched), the
footer names the weights, epoch ticks are whole numbers, and the numbers drawn
come from numvgg's own ops (the receptive fields are checked by perturbing pixels).
"""

import numpy as np
import pytest
from PIL import Image

from numvgg import initializers
from numvgg.applications.imagenet_utils import imagenet_class_name
from numvgg.applications.vgg16 import VGG16, preprocess_input
from numvgg.callbacks import CSVLogger
from numvgg.cli import main
from numvgg.debug.trace import layer_output
from numvgg.figures import (
    history_from_csv,
    merge_histories,
    plot_history,
    plot_im2col,
    plot_maxpool_backward,
    plot_pretrained_vs_random,
    plot_receptive_field,
    plot_saliency,
    receptive_fields,
    style,
)
from numvgg.layers import Dense, Flatten, Input
from numvgg.models import Sequential


def png_size(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def svg_text(png_path):
    return open(str(png_path)[:-4] + ".svg", encoding="utf-8").read()


@pytest.fixture
def captured(monkeypatch):
    """The figures passed to style.save (still saved), to inspect their axes."""
    figures = []
    real_save = style.save

    def keep(fig, path):
        figures.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(style, "save", keep)
    return figures


PHASE1 = {
    "loss": [0.7, 0.5, 0.4],
    "acc": [0.5, 0.7, 0.8],
    "val_loss": [0.6, 0.5, 0.45],
    "val_acc": [0.55, 0.7, 0.75],
}
PHASE2 = {"loss": [0.3, 0.25], "acc": [0.85, 0.9], "val_loss": [0.4, 0.38], "val_acc": [0.8, 0.82]}


# -- style -----------------------------------------------------------------------------------
def test_weights_labels_say_where_the_weights_came_from():
    assert "random" in style.weights_label("random") and "untrained" in style.weights_label("random")
    assert "ImageNet" in style.weights_label("imagenet")
    assert "HED" in style.weights_label("hed")
    assert style.weights_label("/data/my_run.weights.h5") == "weights: my_run.weights.h5"
    assert "not given" in style.weights_label(None)

    class Base:
        weights_source = "imagenet"
        layers = ()

    class Head:
        layers = ()

    class Model:
        layers = [Base(), Head()]

    assert style.weights_source_of(Model()) == "imagenet"  # found in a nested conv base
    assert style.weights_source_of(Head()) is None


def test_save_writes_png_and_svg_at_slide_size(tmp_path):
    fig, _ = style.new_slide()
    path = style.save(fig, tmp_path / "sub" / "x.png")
    assert path == str(tmp_path / "sub" / "x.png")
    assert png_size(path) == (1280, 720)
    assert "<svg" in svg_text(path)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.png", "x.svg"]  # no leftovers
    with pytest.raises(ValueError, match=r"\.png and \.svg.*x\.jpg"):
        style.save(style.new_slide()[0], tmp_path / "x.jpg")


# -- training curves ---------------------------------------------------------------------------
def test_merge_histories_continues_epochs_and_marks_phases():
    class History:  # what fit returns: .history and .epoch (0-based)
        history = PHASE2
        epoch = [3, 4]

    logs, epochs, starts = merge_histories([PHASE1, History()])
    assert epochs == [1, 2, 3, 4, 5] and starts == [0, 3]
    assert logs["val_acc"] == [0.55, 0.7, 0.75, 0.8, 0.82]
    logs, epochs, _ = merge_histories([{"loss": [1.0]}, {"loss": [0.5], "acc": [0.9]}])
    assert epochs == [1, 2] and logs["acc"] == [None, 0.9]  # a metric missing in phase 1
    with pytest.raises(Exception, match="different numbers of epochs"):
        merge_histories({"loss": [1.0, 2.0], "acc": [0.5]})


def test_plot_history_integer_epochs_labelled_phases_axis_labels(tmp_path, captured):
    path = plot_history([PHASE1, PHASE2], str(tmp_path / "curves.png"), weights_source="imagenet")
    assert png_size(path) == (1280, 720)
    fig = captured[0]
    loss_ax, acc_ax = fig.axes
    for ax in (loss_ax, acc_ax):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
    assert acc_ax.get_ylabel() == "accuracy"
    svg = svg_text(path)
    assert "conv base frozen" in svg and "block5 fine-tuned" in svg
    assert "ImageNet" in svg  # the footer
    with pytest.raises(ValueError, match="empty"):
        plot_history({"loss": []}, str(tmp_path / "empty.png"))


def test_a_short_fine_tuning_phase_keeps_its_label_inside_the_plot(tmp_path, captured):
    """60 frozen epochs then 3 fine-tuning ones (the demo's default): the narrow phase's
    label must not run off the right edge of the panel."""
    long = {k: [v[0]] * 60 for k, v in PHASE1.items()}
    short = {k: v[:1] * 3 for k, v in PHASE2.items()}
    plot_history([long, short], str(tmp_path / "long.png"), weights_source="random")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(captured[0])  # the saved figure, drawn again
    canvas.draw()
    fig, renderer = captured[0], canvas.get_renderer()
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        for text in ax.texts:
            extent = text.get_window_extent(renderer)
            assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, text.get_text()


def test_plot_history_takes_the_weights_source_from_the_history_model(tmp_path):
    class Model:
        weights_source = "random"

    class History:
        history = PHASE1
        epoch = [0, 1, 2]
        model = Model()

    svg = svg_text(plot_history(History(), str(tmp_path / "c.png")))
    assert "random (untrained)" in svg and "phase 1" not in svg  # one phase: no labels


def test_pretrained_vs_random_side_by_side_on_shared_axes(tmp_path, captured):
    random_start = {k: [v * 0.8 for v in vals] for k, vals in PHASE1.items()}
    path = plot_pretrained_vs_random(PHASE1, random_start, str(tmp_path / "pvr.png"))
    assert png_size(path) == (1280, 720)
    axes = captured[0].axes
    assert len(axes) == 4  # loss and accuracy, 2 runs
    assert axes[0].get_ylim() == axes[1].get_ylim()  # same scale side by side
    low, high = axes[2].get_ylim()
    assert low <= min(random_start["acc"]) and high >= max(PHASE1["val_acc"])  # both runs visible
    svg = svg_text(path)
    assert "random initialisation" in svg and "ImageNet weights" in svg
    with pytest.raises(ValueError, match="share no metric"):
        plot_pretrained_vs_random({"loss": [1.0]}, {"acc": [0.5]}, str(tmp_path / "x.png"))


def test_history_from_csv_reads_csv_logger_files(tmp_path):
    logger = CSVLogger(str(tmp_path / "log.csv"))
    logger.on_train_begin()
    for epoch in range(3):
        logger.on_epoch_end(epoch, {k: v[epoch] for k, v in PHASE1.items()})
    logger.on_train_end()
    history = history_from_csv(tmp_path / "log.csv")
    assert history.epoch == [0, 1, 2]
    assert {k: pytest.approx(v) for k, v in history.history.items()} == PHASE1
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv.*epoch"):
        history_from_csv(tmp_path / "bad.csv")


# -- teaching diagrams --------------------------------------------------------------------------
def test_im2col_and_maxpool_diagrams(tmp_path):
    im2col = plot_im2col(str(tmp_path / "im2col.png"))
    pool = plot_maxpool_backward(str(tmp_path / "pool.png"))
    assert png_size(im2col) == png_size(pool) == (1280, 720)
    assert "patch at (0, 1)" in svg_text(im2col) and "no weights" in svg_text(im2col)
    pool_svg = svg_text(pool)
    assert "-0.2" in pool_svg and "FIRST maximum" in pool_svg  # routed dout; the tie rule
    with pytest.raises(ValueError, match="highlight must be in 0..3"):
        plot_im2col(str(tmp_path / "x.png"), highlight=4)


def test_receptive_fields_of_vgg16():
    fields = {f.layer: f for f in receptive_fields()}
    assert len(fields) == 18  # 13 convs + 5 pools
    assert [
        fields[n].size
        for n in (
            "block1_conv1",
            "block1_pool",
            "block2_conv2",
            "block3_conv3",
            "block4_pool",
            "block5_conv3",
            "block5_pool",
        )
    ] == [3, 6, 14, 40, 100, 196, 212]
    assert fields["block5_pool"].jump == 32 and fields["block2_conv2"].start == -6


@pytest.mark.parametrize("layer", ["block2_conv2", "block3_conv1"])
def test_receptive_field_is_exactly_the_pixels_that_change_a_unit(layer):
    """With positive weights and inputs every ReLU is active and every max-pool passes a large
    enough bump on, so a pixel changes a unit exactly when it is inside the unit's field."""
    initializers.set_seed(3)
    model = VGG16(include_top=False, weights=None, input_shape=(48, 48, 3))
    for conv in model.layers:
        if "kernel" in getattr(conv, "params", {}):
            conv.set_weights([np.abs(conv.params["kernel"]), np.abs(conv.params["bias"]) + 0.01])
    x = np.random.default_rng(0).uniform(0.5, 1.0, (1, 48, 48, 3)).astype(np.float32)
    field = {f.layer: f for f in receptive_fields()}[layer]
    unit = 5
    first = field.start + unit * field.jump  # first input row it sees
    last = first + field.size - 1
    assert 0 < first and last < 47  # the test sees both edges
    base = layer_output(model, x, layer)[0, unit, unit]  # (C,)
    for row, inside in ((first - 1, False), (first, True), (last, True), (last + 1, False)):
        bumped = x.copy()
        bumped[0, row, first + 2, :] += 100.0
        changed = np.abs(layer_output(model, bumped, layer)[0, unit, unit] - base).max()
        assert (changed > 1e-3 * np.abs(base).max()) == inside, (row, changed)


def test_receptive_field_figure(tmp_path):
    path = plot_receptive_field(str(tmp_path / "rf.png"))
    assert png_size(path) == (1280, 720)
    svg = svg_text(path)
    assert "block5_pool: 212x212" in svg and "no weights" in svg


# -- saliency with the class names numvgg ships ------------------------------------------------
def test_saliency_title_names_the_imagenet_class_offline(tmp_path):
    initializers.set_seed(4)
    model = Sequential([Input((8, 8, 3)), Flatten(), Dense(1000, activation="softmax")])
    x = preprocess_input(np.random.default_rng(1).uniform(0, 255, (8, 8, 3)))
    top = int(np.argmax(model(x[None])[0]))
    svg = svg_text(plot_saliency(model, x, str(tmp_path / "s.png"), weights_source="random"))
    assert f"'{imagenet_class_name(top)}' (class {top})" in svg
    assert "random (untrained)" in svg


# -- numvgg figures DIR -------------------------------------------------------------------------
@pytest.mark.slow
def test_numvgg_figures_writes_the_lecture_set(tmp_path, capsys):
    initializers.set_seed(5)
    pre, rand = tmp_path / "pre.csv", tmp_path / "rand.csv"
    pre.write_text("epoch,acc,loss,val_acc,val_loss\n0,0.6,0.6,0.6,0.6\n1,0.8,0.4,0.75,0.45\n")
    rand.write_text("epoch,acc,loss,val_acc,val_loss\n0,0.5,0.7,0.5,0.7\n1,0.55,0.68,0.5,0.69\n")
    out = tmp_path / "lecture"
    code = main(
        ["figures", str(out), "--weights", "none", "--input-size", "32", "--curves", str(pre), str(rand)]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    names = [
        "im2col",
        "maxpool_backward",
        "receptive_field",
        "filters_block1_conv1",
        "feature_maps",
        "saliency",
        "pretrained_vs_random",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}.{ext}" for n in names for ext in ("png", "svg")
    )
    progress = [line for line in lines if line.startswith("[")]
    assert [line.split()[1] for line in progress] == [f"{n}.png" for n in names]
    assert all(f"[{k}/7]" in line for k, line in enumerate(progress, start=1))
    assert all(png_size(out / f"{n}.png") == (1280, 720) for n in names)
    assert "random (untrained)" in svg_text(out / "filters_block1_conv1.png")
    assert "block5_conv3" in svg_text(out / "feature_maps.png")


def test_numvgg_figures_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["figures", "--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert "im2col.png" in help_text and "--curves" in help_text
    code = main(
        [
            "figures",
            str(tmp_path / "x"),
            "--weights",
            "none",
            "--input-size",
            "32",
            "--curves",
            str(tmp_path / "missing.csv"),
            str(tmp_path / "missing.csv"),
        ]
    )
    assert code == 1 and "missing.csv" in capsys.readouterr().err
