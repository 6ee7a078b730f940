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
    parser.add_argument("--against", metavar="MODEL", help="a second model (the same kinds) "
                        "to compare on the same images: McNemar's exact test on the images "
                        "they disagree on, and a bootstrap interval of the accuracy difference")
    parser.add_argument("--against-weights", help="weights for an --against spec file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    from mnsearch.export.evaluate import EvaluateError, compare_models, evaluate_model

    if args.against_weights is not None and args.against is None:
        raise EvaluateError("--against-weights needs --against (the spec file it belongs to)")
    if args.against is None:
        result = evaluate_model(args.model, args.dataset, args.split, args.weights)
        print(json.dumps(result.as_dict(), indent=2) if args.json else _line(result))
        return 0
    result, other, comparison = compare_models(args.model, args.against, args.dataset,
                                               args.split, args.weights, args.against_weights)
    if args.json:
        print(json.dumps({**result.as_dict(), "against": other.as_dict(),
                          "comparison": comparison.as_dict()}, indent=2))
        return 0
    print(f"A: {_line(result)}\nB: {_line(other)}")
    print(f"A - B: {100 * comparison.difference:+.2f} points "
          f"(95% interval {100 * comparison.low:+.2f} to {100 * comparison.high:+.2f}); "
          f"A alone right on {comparison.a_only:,} images, B alone on {comparison.b_only:,}; "
          f"{comparison.verdict()}")
    return 0


def _line(result: Any) -> str:
    return (f"{result.model} on {result.dataset} {result.split} ({result.images:,} images): "
            f"accuracy {result.accuracy:.4f}, loss {result.loss:.4f}, "
            f"{result.images_per_second:,.0f} images/s")
