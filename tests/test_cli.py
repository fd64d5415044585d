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


# ------------------------------------------------------------------------------------------------
# one line, exit 2, where a traceback used to be (issue 25, item 7)


@pytest.mark.parametrize("device, message", [
    ("banana", "device 'banana' is not a device"),
    ("meta", "device 'meta': the meta device holds no data"),
    ("mps", "device 'mps': MPS (Apple GPUs) is not available on this machine"),
    ("cuda:7", "device 'cuda:7': "),
])
def test_a_device_this_machine_lacks_is_one_line(device, message, capsys):
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    assert main(["profile", "--model", "stories260K", "--device", device, *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lin-utils: error:") and message in err, err


def test_weights_that_fail_to_unpickle_are_one_line(tmp_path, capsys):
    from lin_utils.models import load_model

    model, tok = load_model("stories260K")
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    for garbage in (b"not a pickle at all" * 8, b"PK\x03\x04" + b"\x00" * 64):
        (folder / "pytorch_model.bin").write_bytes(garbage)
        assert main(["profile", "--model", str(folder), *SMALL]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("lin-utils: error:") and "Traceback" not in err
        assert f"cannot load the weights in {folder}" in err, err


def test_a_binary_text_corpus_is_named(tmp_path, capsys):
    for name, data in (("png.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256))), ("nul.txt", b"text\x00\x00more")):
        corpus = tmp_path / name
        corpus.write_bytes(data)
        assert main(["profile", "--model", "stories260K", "--dataset", str(corpus), *SMALL]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(corpus) in err and "binary" in err, err


@pytest.mark.parametrize("delay", [0.4, 1.2])
def test_ctrl_c_while_the_command_starts_is_one_line_and_130(delay):
    import signal
    import time

    exe = shutil.which("lin-utils", path=str(Path(sys.executable).parent)) or "lin-utils"
    # SIGINT as in a terminal (a background job of a non-interactive shell starts with it ignored)
    proc = subprocess.Popen([exe, "profile", "--model", "stories260K", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(delay)  # imports (torch, transformers) take seconds on this machine
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err == "lin-utils: interrupted\n"
