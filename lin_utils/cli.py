"""The ``lin-utils`` command.

    lin-utils profile --model SPEC [--model SPEC ...] [--dataset tinystories --split validation --max-tokens N \\
        --seq-len T --batch-size B --dtype float32 --device cpu --precision float64] [--out profile.csv] [--exclude-bos] \\
        [--plot profile.png|.svg]
    lin-utils book run --profile {smoke,cpu,gpu,full} [--only NAMES] [--force]
    lin-utils book build
    lin-utils book verify --profile {smoke,cpu,gpu,full} [--only NAMES] [--keep DIR]

Bad arguments, an unknown model or a missing dataset give a one-line message on stderr and
exit code 2; no traceback. ``book verify`` exits 0 when every re-computed table matches the
committed one within tolerance, 1 when one differs or has no committed counterpart.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

# nothing heavy at import time: Ctrl-C while torch loads is caught in main()
from .errors import LinUtilsError, Terminated, one_line
from .runner import run_profile
from .site import build_book

if TYPE_CHECKING:
    from .scan import ScanConfig

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage block too)
        raise SystemExit(_fail(f"{self.prog}: {message}"))


def _fail(message) -> int:
    print(f"lin-utils: error: {one_line(message, None) or 'failed'}", file=sys.stderr)
    return 2


def _positive(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be positive, got {value}")
        return value
    return parse


def _blocks(text):
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--blocks must be comma-separated block indices, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lin-utils", description="Linearity of transformer blocks (arXiv 2405.12250).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    # heavy (torch): imported in main(), where Ctrl-C while torch loads is caught
    from .linearity import PRECISIONS
    from .scan import DTYPES, ScanConfig

    d = {f.name: f.default for f in dataclasses.fields(ScanConfig) if f.name != "model"}
    p = sub.add_parser("profile", help="score every block of a model on a text corpus",
                       description="Defaults are those of lin_utils.scan.ScanConfig, shared with the book's figures.")
    p.add_argument("--model", required=True, action="append",
                   help="stories260K, minilm, zoo:NAME, random:SPEC, a local dir or .gguf, or a hub id[@revision]; "
                        "repeat for several models (one scan each, one line each in --plot)")
    p.add_argument("--dataset", default=d["dataset"], help="wikitext-2, tinystories, or a path to a .txt file of your own")
    p.add_argument("--split", default=d["split"])
    p.add_argument("--max-tokens", type=_positive("--max-tokens"), default=d["max_tokens"])
    p.add_argument("--seq-len", type=_positive("--seq-len"), default=d["seq_len"])
    p.add_argument("--batch-size", type=_positive("--batch-size"), default=d["batch_size"])
    p.add_argument("--dtype", choices=DTYPES, default=d["dtype"])
    p.add_argument("--device", default=d["device"])
    p.add_argument("--seed", type=int, default=d["seed"], help="seed of random-init models (random:SPEC)")
    p.add_argument("--precision", choices=PRECISIONS, default=d["precision"],
                   help="Gram precision: float64 (exact reference) or mixed (float32 products, float64 sums)")
    p.add_argument("--blocks", "--layers", dest="blocks", type=_blocks, default=None,
                   help="comma-separated block indices (default: all; --layers is the old name)")
    p.add_argument("--no-bos", action="store_true", help="do not start each chunk with BOS")
    p.add_argument("--exclude-bos", action="store_true", help="leave position 0 out of the statistics")
    p.add_argument("--out", default=None, help="write the table as CSV here")
    p.add_argument("--plot", default=None, type=_plot_path,
                   help="draw the profile here (.png or .svg): score with and without the residual, held-out R², "
                        "chance band, block/stream norm ratio; one line per --model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    b = sub.add_parser("book", help="run the notebooks of a profile and build the book")
    bsub = b.add_subparsers(dest="book_command", required=True, parser_class=_Parser)
    r = bsub.add_parser("run", help="execute the notebooks with papermill")
    r.add_argument("--profile", default="cpu", help="a profile of profiles/ (smoke, cpu, gpu, full)")
    r.add_argument("--only", default=None, help="comma-separated notebook names")
    r.add_argument("--force", action="store_true", help="recompute cached results")
    bsub.add_parser("build", help="render the executed notebooks with Jupyter Book (warnings are errors)")
    v = bsub.add_parser("verify", help="re-run notebooks in a scratch folder; compare their tables with the committed ones",
                        description="Recompute the tables of the selected notebooks (forced, in a scratch result "
                                    "folder and book folder) and compare each with the committed table of the same "
                                    "computation and parameters under $LIN_RESULTS_DIR (default data/results), "
                                    "within the tolerances of lin_utils.verify. Exit 0 only if all agree.")
    v.add_argument("--profile", default="cpu", help="a profile of profiles/ (smoke, cpu, gpu, full)")
    v.add_argument("--only", default=None, help="comma-separated notebook names")
    v.add_argument("--keep", default=None, help="keep the re-computed tables and notebooks in this (new or empty) folder")
    return parser


def _plot_path(text):
    from .plots_profile import check_plot_path  # heavy (matplotlib): only when --plot is given

    try:
        return check_plot_path(text)
    except LinUtilsError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--plot ")) from None


def _models(args) -> list[str]:
    """The ``--model`` values, in order, each once."""
    return list(dict.fromkeys([args.model] if isinstance(args.model, str) else args.model))


def scan_config(args, model: str | None = None) -> "ScanConfig":
    """The :class:`~lin_utils.scan.ScanConfig` that ``lin-utils profile`` arguments describe
    (for ``model``, default the first ``--model``)."""
    from .scan import ScanConfig  # heavy (torch): see build_parser

    return ScanConfig(model=model or _models(args)[0], dataset=args.dataset, split=args.split, seq_len=args.seq_len,
                      max_tokens=args.max_tokens, batch_size=args.batch_size, dtype=args.dtype,
                      device=args.device, seed=args.seed, add_bos=not args.no_bos,
                      exclude_bos=args.exclude_bos, precision=args.precision, blocks=args.blocks)


def _profile(args) -> int:
    # heavy (torch, transformers, pandas): imported in main(), where Ctrl-C while they load is caught
    import transformers

    from .linearity import LinearityWarning
    from .results import atomic_write_text
    from .scan import scan_blocks

    import pandas as pd

    transformers.utils.logging.disable_progress_bar()  # weight-loading bars; ours is enough
    cols = ["block", "n_tokens", "d", "chance", "score", "score_nores", "heldout", "heldout_nores", "cosine", "norm_ratio"]
    tables, notes = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LinearityWarning)
        for model in _models(args):  # one scan per model; the CSV and the figure share its table
            cfg = scan_config(args, model)
            start = time.perf_counter()
            table, acc = scan_blocks(cfg, progress=not args.quiet)
            seconds = time.perf_counter() - start
            tables.append(table)
            print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
            notes.append(f"# {model} on {args.dataset}/{args.split}: {acc.n_tokens} tokens, d={acc.dim}, {seconds:.1f} s")
            print(notes[-1])
    table = pd.concat(tables, ignore_index=True)
    if args.out:
        atomic_write_text(Path(args.out), table.to_csv(index=False))
        print(f"# wrote {args.out}")
    if args.plot:
        from .plots_profile import save_profile  # heavy (matplotlib): only when --plot is given

        save_profile(table, args.plot, title=f"{args.dataset}/{args.split}")
        print(f"# drew {args.plot}")
    for w in dict.fromkeys(str(w.message).split(": ", 1)[-1] for w in caught if issubclass(w.category, LinearityWarning)):
        print(f"# warning: {w}", file=sys.stderr)
    return 0


def _book(args) -> int:
    if args.book_command == "run":
        only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
        run_profile(args.profile, only=only, force=args.force)
    elif args.book_command == "verify":
        from .verify import report, verify_profile  # heavy (numpy, pandas): only for `book verify`

        only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
        checks = verify_profile(args.profile, only=only, keep=args.keep)
        return report(checks, args.profile)
    else:
        print(build_book())
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _profile(args) if args.command == "profile" else _book(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else _fail(str(exc.code))
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):  # SIGTERM during `book run`: cleaned up as after Ctrl-C
            print("lin-utils: terminated", file=sys.stderr)
            return 143
        print("lin-utils: interrupted", file=sys.stderr)
        return 130
    except (LinUtilsError, ValueError, FileNotFoundError, OSError) as exc:
        return _fail(exc)


if __name__ == "__main__":
    sys.exit(main())
