"""`mnsearch dashboard` and `mnsearch report`: browse a sweep's Pareto fronts, or share them.

Both read studies from the sweep's storage (default: the journal file mnsearch.journal in the
working directory) and never import JAX.
"""

from __future__ import annotations

import argparse
from typing import Any

from mnsearch.atomic import write_atomically
from mnsearch.cli.common import tcp_port
from mnsearch.search.storage import DEFAULT_STORAGE

STORAGE_HELP = (f"journal file path (default {DEFAULT_STORAGE}), an RDB URL such as "
                "postgresql://user:password@host/db, or grpc://HOST:PORT (a storage proxy)")


def add_dashboard_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "dashboard", help="web dashboard of sweep results (Pareto plot, trial cards)",
        description="Serve a Dash page to browse studies: WebGL Pareto plot, filters, trial "
        "cards, comparisons, hypervolume. It refreshes while a sweep runs.")
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=tcp_port, default=8050, help="TCP port, 1 to 65535 "
                        "(default %(default)s)")
    parser.add_argument("--study", action="append", default=[],
                        help="study to show first (repeat for several)")
    parser.add_argument("--verbose", action="store_true",
                        help="log every HTTP request (off by default: the page polls every 5 s)")
    parser.set_defaults(handler=dashboard_command)


def add_report_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "report", help="self-contained HTML report of a study (opens offline)",
        description="Write one HTML file with the Pareto front, the V1 paper's Figures 4 and "
        "5, the hypervolume history, a cost breakdown and the Pareto table.")
    parser.add_argument("--study", action="append", required=True,
                        help="study name; repeat to overlay and compare other studies")
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument("--out", default="report.html", help="output file (default "
                        "report.html); an existing file is replaced only with --force")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")
    parser.add_argument("--reference", action="append", default=[],
                        help="CSV of reference points (columns madds, accuracy, optional "
                        "label) to overlay; repeatable")
    parser.set_defaults(handler=report_command)


def dashboard_command(args: argparse.Namespace) -> int:
    from mnsearch.dashboard import create_app, serve
    from mnsearch.dashboard.callbacks import warm
    from mnsearch.dashboard.data import DashboardData

    data = DashboardData(args.storage)
    names = data.names()  # fail here, as one line, when the storage cannot be read
    print(f"storage {data.label}: {len(names)} stud{'y' if len(names) == 1 else 'ies'}"
          + (f" ({', '.join(names[:5])}{', …' if len(names) > 5 else ''})" if names else ""))
    # read the studies shown first and draw what does not depend on the filters now, so that
    # the first page load does not wait for it (100,000 trials: 1 s less)
    warm(data, [name for name in args.study if name in names] or names[:1])
    serve(create_app(data, args.study), args.host, args.port, args.verbose)
    return 0


def report_command(args: argparse.Namespace) -> int:
    from mnsearch.plots.report import study_report
    from mnsearch.plots.study import read_reference_points
    from mnsearch.results.fidelity import fidelity_pair
    from mnsearch.search.options import check_output_file
    from mnsearch.search.storage import load_study, open_existing_storage

    out = check_output_file(args.out, "--out", args.force)  # before reading any study
    references = [read_reference_points(path) for path in args.reference]
    storage = open_existing_storage(args.storage)
    studies = [load_study(storage, name) for name in args.study]
    pair = fidelity_pair(storage, studies[0])  # a proxy with its final study, or the reverse
    if pair is not None and pair[1].study_name not in args.study:
        studies.append(pair[1])  # its front overlaid and compared
    text = study_report(studies, references, pair)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, text.encode())
    print(f"report: {out}")
    return 0
