"""The ``lin-utils`` command: output, and every error path (one line, exit 2, no traceback)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lin_utils.cli import main

SMALL = ["--max-tokens", "1200", "--seq-len", "128", "--batch-size", "4", "--quiet"]


def run_cli(args, env=None):
    exe = shutil.which("lin-utils", path=str(Path(sys.executable).parent)) or "lin-utils"
    return subprocess.run([exe, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_profile_writes_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "profile.csv"
    rc = main(["profile", "--model", "stories260K", "--dataset", "tinystories", "--split", "validation",
               "--exclude-bos", "--out", str(out), *SMALL])
    assert rc == 0
    table = pd.read_csv(out)
    assert table.block.tolist() == [0, 1, 2, 3, 4]
    assert {"score", "score_nores", "heldout", "chance", "n_tokens", "d", "cosine", "norm_resid", "norm_block"} <= set(table)
    assert (table.d == 64).all() and (table.n_tokens > 1000).all()
    printed = capsys.readouterr()
    assert "score_nores" in printed.out and "stories260K" in printed.out


def test_too_few_tokens_for_the_width_is_warned(capsys):
    assert main(["profile", "--model", "stories260K", "--max-tokens", "400", "--seq-len", "100", "--quiet"]) == 0
    warning_lines = [l for l in capsys.readouterr().err.splitlines() if "warning" in l]
    assert len(warning_lines) == 1 and "n_tokens=" in warning_lines[0] and "< 10*d=640" in warning_lines[0]


def test_layers_option_scores_only_those_blocks(tmp_path):
    out = tmp_path / "p.csv"
    assert main(["profile", "--model", "stories260K", "--dataset", "wikitext-2", "--blocks", "1,3", "--out", str(out), *SMALL]) == 0
    assert pd.read_csv(out).block.tolist() == [1, 3]


@pytest.mark.parametrize(
    "args, message",
    [
        (["profile", "--model", "no-such-model-xyz"], "no-such-model-xyz"),
        (["profile", "--model", "./missing/dir"], "missing/dir"),
        (["profile", "--model", "stories260K", "--dataset", "imagenet"], "imagenet"),
        (["profile", "--model", "stories260K", "--split", "banana"], "banana"),
        (["profile", "--model", "stories260K", "--max-tokens", "0"], "--max-tokens must be positive"),
        (["profile", "--model", "stories260K", "--seq-len", "abc"], "--seq-len must be an integer"),
        (["profile", "--model", "stories260K", "--dtype", "int8"], "invalid choice"),
        (["profile", "--model", "stories260K", "--layers", "9", *SMALL], "out of range"),
        (["profile", "--model", "stories260K", "--max-tokens", "40", "--seq-len", "20"], "n_tokens="),
        (["profile"], "--model"),
        (["frobnicate"], "invalid choice"),
        (["book", "run", "--profile", "huge"], "huge"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("lin-utils: error:") and message in err and "Traceback" not in err


def test_missing_dataset_names_local_path_and_hub(tmp_path, capsys):
    os.environ["LIN_DATA_DIR"], saved = str(tmp_path), os.environ["LIN_DATA_DIR"]
    try:
        assert main(["profile", "--model", "minilm", "--dataset", "wikitext-2", "--split", "test"]) == 2
    finally:
        os.environ["LIN_DATA_DIR"] = saved
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "wikitext" in err and len(err.strip().splitlines()) == 1


def test_console_script_exit_code_and_no_traceback():
    proc = run_cli(["profile", "--model", "definitely/not-a-model"], env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("lin-utils: error:")


def test_profile_on_a_text_file_of_ones_own(tmp_path):
    corpus = tmp_path / "mine.txt"
    source = Path(os.environ["LIN_DATA_DIR"]) / "tinystories" / "tinystories_validation_head.txt"
    corpus.write_text(source.read_text()[:20000])
    out = tmp_path / "p.csv"
    assert main(["profile", "--model", "stories260K", "--dataset", str(corpus), "--out", str(out), *SMALL]) == 0
    assert pd.read_csv(out).n_tokens.iloc[0] > 1000
    assert main(["profile", "--model", "stories260K", "--dataset", str(tmp_path / "absent.txt")]) == 2
