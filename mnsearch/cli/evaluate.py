"""`mnsearch evaluate`: accuracy of an exported model or a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_evaluate_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate", help="accuracy of an exported model or checkpoint on a dataset split",
        description="Evaluate a trained model on a dataset split, with the preprocessing it "
        "was trained with (its recorded input contract): accuracy, loss and images/s.")
    parser.add_argument("model", help="an export folder, a `mnsearch train --out` folder, or "
                        "a spec file (with --weights)")
    parser.add_argument("--dataset", required=True,
                        help="fashion-mnist, cifar10:DIR or folder:DIR (the trained dataset)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="test (default) or val: the validation split drawn again from "
                        "the recorded recipe")
    parser.add_argument("--weights", help="checkpoint.npz or weights.npz (or their folder) "
                        "for a spec file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    from mnsearch.export.evaluate import evaluate_model

    result = evaluate_model(args.model, args.dataset, args.split, args.weights)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"{result.model} on {result.dataset} {result.split} ({result.images:,} images): "
              f"accuracy {result.accuracy:.4f}, loss {result.loss:.4f}, "
              f"{result.images_per_second:,.0f} images/s")
    return 0
