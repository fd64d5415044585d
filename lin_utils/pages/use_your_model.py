"""Use it on your model: the Python API and the command line on a model you bring, run for real."""
from __future__ import annotations

import contextlib
import io
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import cli
from ..book.glue import figure_page, glue_markdown
from ..experiments.linearity import ProfilesConfig, linearity_profiles
from . import name_of
from ._scans import profile_summary

NAME = name_of(__name__)
CONFIG = ProfilesConfig(models=("stories260K", "random:stories260K"), max_tokens=32768)
TABLE_COLUMNS = ["model", "block", "n_tokens", "d", "chance", "score", "heldout", "score_nores", "heldout_nores",
                 "norm_ratio", "cosine"]
SCORES = ["score", "score_nores", "heldout", "heldout_nores"]
CLAIMS: list = []


def tables(config: ProfilesConfig, *, profile: str, force: bool = False, cache_only: bool = False,
           progress: bool = False) -> pd.DataFrame | None:
    """The scans of ``config.models`` through the book's result cache (the API a user calls is
    :func:`lin_utils.scan.scan_blocks`, which gives the same rows)."""
    return linearity_profiles(config.models, config.params(), profile=profile, force=force, cache_only=cache_only,
                              progress=progress)


def command(config: ProfilesConfig, out: str = "profile.csv", plot: str = "profile.png") -> list[str]:
    """The ``lin-utils`` arguments that run the same scans and draw the figure."""
    return ["profile", *(a for m in config.models for a in ("--model", m)), "--dataset", config.dataset,
            "--split", config.split, "--max-tokens", str(config.max_tokens), "--seq-len", str(config.seq_len),
            "--batch-size", str(config.batch_size), "--device", config.device,
            *(["--exclude-bos"] if config.exclude_bos else []), "--out", out, "--plot", plot]


def run_command(config: ProfilesConfig) -> tuple[pd.DataFrame, bytes, str, float]:
    """Run :func:`command` for real in a scratch folder: ``(its CSV, its PNG, what it printed, seconds)``.

    Its parser must describe exactly the scans of ``config`` (same :class:`~lin_utils.scan.ScanConfig`).
    """
    parsed = cli.build_parser().parse_args(command(config))
    if [cli.scan_config(parsed, m) for m in config.models] != [config.scan(m) for m in config.models]:
        raise AssertionError("the command and the API describe different scans")
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*command(config, str(Path(tmp) / "profile.csv"), str(Path(tmp) / "profile.png")), "--quiet"]
        printed, start = io.StringIO(), time.perf_counter()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            rc = cli.main(argv)
        seconds = time.perf_counter() - start
        if rc != 0:
            raise RuntimeError(printed.getvalue())
        return pd.read_csv(Path(tmp) / "profile.csv"), (Path(tmp) / "profile.png").read_bytes(), printed.getvalue(), seconds


def numbers(table: pd.DataFrame, cli_table: pd.DataFrame, seconds: float) -> dict:
    """The prose's numbers; the command's scores must equal the API's (to float32 noise)."""
    if not cli_table[["model", "block"]].equals(table[["model", "block"]].reset_index(drop=True)):
        raise AssertionError("the command scanned other blocks than the API")
    cli_diff = float(np.nanmax(np.abs(cli_table[SCORES].to_numpy() - table[SCORES].to_numpy())))
    if cli_diff >= 1e-3:
        raise AssertionError(f"the command's scores differ from the API's by {cli_diff:.2e}")
    first = table[table.model == table.model.iloc[0]]
    return dict(model=first.model.iloc[0], score_mean=first.score.mean(), nores_mean=first.score_nores.mean(),
                gap_max=float(np.nanmax([(table.score - table.heldout).max(),
                                         (table.score_nores - table.heldout_nores).max()])),
                chance_max=table.chance.max(), ratio_min=first.norm_ratio.min(), ratio_max=first.norm_ratio.max(),
                cli_seconds=seconds, cli_diff=cli_diff)


def show(config: ProfilesConfig, *, profile: str, force: bool = False) -> pd.DataFrame:
    from IPython.display import Image  # notebook kernels only
    from myst_nb import glue  # heavy (Sphinx): only where a page glues

    table = tables(config, profile=profile, force=force)
    cli_table, png, printed, seconds = run_command(config)
    glue("profile_figure", Image(data=png, format="png"), display=False)
    glue_markdown("cli_command", "```bash\nlin-utils " + shlex.join(command(config)).replace(" --", " \\\n    --") + "\n```")
    glue_markdown("cli_output", "```text\n" + printed.rstrip() + "\n```")
    figure_page(NAME, profile, None, numbers=numbers(table, cli_table, seconds), summary=profile_summary(table),
                prefix="use", table=table[TABLE_COLUMNS])
    return table
