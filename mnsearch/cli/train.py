"""`mnsearch train` and `mnsearch bench`: argument parsing, progress display, output folder."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mnsearch.atomic import write_atomically
from mnsearch.cli.common import add_arch_arguments, positive_int
from mnsearch.spec.blocks import SpecError
from mnsearch.spec.families import PRESETS
from mnsearch.spec.io import resolve_arch, save_spec
from mnsearch.train.config import config_from_settings, recipe_fields


def add_train_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "train", help="train an architecture and report its test accuracy",
        description="Train ARCH on a dataset; writes spec.yaml, metrics.json and a checkpoint.")
    add_arch_arguments(parser)
    parser.add_argument("--dataset", default="fashion-mnist",
                        help="fashion-mnist (default), cifar10:PATH or folder:PATH")
    parser.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST (checksummed) if it is not installed")
    # Recipe flags default to None: TrainConfig holds the defaults, in one place.
    parser.add_argument("--epochs", type=int, help="epochs (default 10)")
    parser.add_argument("--batch-size", type=int, help="batch size (default 64)")
    parser.add_argument("--optimizer", help="adamw (default), sgd or rmsprop")
    parser.add_argument("--lr", type=float, help="peak learning rate (default 2e-3)")
    parser.add_argument("--weight-decay", type=float, help="default 0.05")
    parser.add_argument("--lr-schedule", help="cosine (default), step or constant, after the "
                        "warm-up (warmup_epochs, default 1)")
    parser.add_argument("--label-smoothing", type=float, help="default 0.1")
    parser.add_argument("--bn-momentum", type=float,
                        help="BatchNorm momentum while training (Flax/Keras convention; "
                        "default 0.99)")
    parser.add_argument("--no-augment", action="store_true", help="no random crops or flips")
    parser.add_argument("--erasing", type=float, metavar="P",
                        help="random erasing: with probability P, set a random rectangle "
                        "(2-40%% of the image) to the mean (default 0: off)")
    parser.add_argument("--ema", type=float, metavar="DECAY",
                        help="evaluate and save an EMA of the weights (e.g. 0.999)")
    parser.add_argument("--bf16", action="store_true",
                        help="compute in bfloat16 (parameters and loss stay float32)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any recipe field, e.g. --set warmup_epochs=0.5 (repeatable; "
                        f"fields: {', '.join(recipe_fields())})")
    parser.add_argument("--init", metavar="PATH",
                        help="start from the model weights of a checkpoint.npz/weights.npz "
                             "or a folder holding one (optimizer state is not loaded)")
    parser.add_argument("--subset", type=_subset,
                        help="stratified training subset: a count (5000) or a fraction (0.1)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", help="output folder (default runs/train-ARCH)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.set_defaults(handler=train_command)


def add_bench_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bench", help="steady-state training or inference images per second",
        description="Images per second after compilation and warm-up (median of 3 repeats).")
    add_arch_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps per repeat "
                        "(>= 1, default %(default)s)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    from mnsearch.cli.allocator import active_allocator
    from mnsearch.nn.ops import depthwise_implementation
    from mnsearch.train.benchmark import throughput

    spec = resolve_arch(args.arch, args.alpha, args.resolution,
                        num_classes=args.num_classes, in_channels=args.in_channels,
                        stride_schedule=args.stride_schedule)
    rate = throughput(spec, args.batch_size, args.mode, args.steps)
    result = {"name": spec.name, "alpha": spec.alpha, "resolution": spec.resolution,
              "batch_size": args.batch_size, "mode": args.mode,
              "depthwise": depthwise_implementation(), "allocator": active_allocator(),
              "images_per_second": rate}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{spec.name} α={spec.alpha:g} {spec.resolution}px batch {args.batch_size} "
              f"{args.mode}: {rate:,.1f} images/s (depthwise: {result['depthwise']}, "
              f"allocator: {result['allocator']})")
    return 0


def train_command(args: argparse.Namespace) -> int:
    from mnsearch.data.load import load_dataset
    from mnsearch.train.compilation import enable_compilation_cache
    from mnsearch.train.loop import train_and_evaluate

    enable_compilation_cache()  # a rerun or --resume loads the compiled step from disk
    out = _output_folder(args)  # before loading data: a bad --out costs nothing
    config = config_from_settings(_flag_values(args), args.set)
    dataset = load_dataset(args.dataset, args.data_dir, download=args.download)
    spec = resolve_arch(args.arch, args.alpha, _train_resolution(args, dataset.image_size[0]),
                        num_classes=args.num_classes or dataset.num_classes,
                        in_channels=args.in_channels or dataset.in_channels,
                        stride_schedule=args.stride_schedule)
    console = Console()
    with TrainingProgress(console) as (progress, task):
        def show(update: dict[str, Any]) -> None:
            description = f"epoch {update['epoch']}/{config.epochs} loss {update['loss']:.3f}"
            total = config.epochs * update["steps"]
            progress.update(task, total=total, description=description,
                            completed=(update["epoch"] - 1) * update["steps"] + update["step"])

        result = train_and_evaluate(spec, dataset, config, out, args.resume, progress=show,
                                    init=args.init)
    metrics = {"spec": spec.name, "dataset": dataset.name, "config": asdict(config),
               "init": args.init, **result.as_dict()}
    out.mkdir(parents=True, exist_ok=True)  # may not exist if the run failed in epoch 1
    trained = spec if config.bn_momentum is None else spec.replace(bn_momentum=config.bn_momentum)
    save_spec(trained, out / "spec.yaml")  # as trained
    text = json.dumps(metrics, indent=2).encode()
    write_atomically(out / "metrics.json", text)
    if result.status == "failed":
        raise SpecError(f"training failed: {result.error} (metrics in {out / 'metrics.json'})")
    accuracies = ", ".join(f"{value:.4f}" for value in result.val_accuracy)
    console.print(f"[bold]{spec.name}[/] α={spec.alpha:g} {spec.resolution}px: test accuracy "
                  f"{result.test_accuracy:.4f}; validation by epoch {accuracies}; "
                  f"{result.images_per_second:,.0f} images/s; "
                  f"{result.train_seconds / max(result.epochs_done, 1):.1f} s/epoch; "
                  f"wall {result.wall_seconds:.0f} s → {out}")
    return 0


def _output_folder(args: argparse.Namespace) -> Path:
    """--out (default runs/train-ARCH): a folder that can be written, and empty unless the
    run resumes (a file, a read-only folder or a full one used to fail after training)."""
    from mnsearch.search.options import check_writable_folder

    out = check_writable_folder(args.out or f"runs/train-{Path(args.arch).stem}", "--out")
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise SpecError(f"--out '{out}' is not empty: pass --resume to continue it, "
                        "or choose another --out")
    return out


def _train_resolution(args: argparse.Namespace, image_size: int) -> int | None:
    """--resolution if given; else a preset trains at the dataset's image size, and a spec file
    at its own resolution (None keeps it), so `mnsearch train exported/spec.yaml` trains the
    network that was exported, not a resized one."""
    if args.resolution is not None:
        return int(args.resolution)
    return image_size if args.arch in PRESETS else None


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe fields the user gave as flags (the rest keep TrainConfig's defaults)."""
    values = {"epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
              "learning_rate": args.lr, "weight_decay": args.weight_decay,
              "schedule": args.lr_schedule, "label_smoothing": args.label_smoothing,
              "seed": args.seed, "subset": args.subset, "bn_momentum": args.bn_momentum,
              "ema_decay": args.ema, "erasing": args.erasing}
    values = {name: value for name, value in values.items() if value is not None}
    if args.no_augment:
        values["augment"] = False
    if args.bf16:
        values["compute_dtype"] = "bfloat16"
    return values


def _subset(text: str) -> float | int:
    """'5000' is a count of images, '0.1' or '1.0' a fraction of the training split."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got '{text}'") from None


class TrainingProgress:
    """A rich progress bar with step, loss, images/s and ETA, as a context manager."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total} steps"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console)

    def __enter__(self) -> tuple[Progress, Any]:
        self.progress.__enter__()
        return self.progress, self.progress.add_task("compiling", total=None)

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
