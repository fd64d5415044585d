"""Profiles are read and checked before any kernel starts (lin_utils.profiles; issue 25, item 6)."""
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from lin_utils import profiles, runner
from lin_utils.errors import LinUtilsError

PARAMETERS = """\
profile = "cpu"
force = False
max_tokens = 16384
seq_len = 256
batch_size = 8
lr = 0.5
heldout_fraction = 0.5
models = ["stories260K"]
dataset = "tinystories"
split = "validation"
device = "cpu"
scan = {"max_tokens": 100, "dataset": "tinystories", "split": "validation", "device": "cpu"}
label = "x"
"""
TOC = {"format": "jb-book", "root": "book/intro",
       "parts": [{"caption": "Figures", "chapters": [{"glob": "book/notebooks/fig*"}]}]}


def _project(tmp_path: Path, profile_text: str) -> dict:
    nb_dir, prof_dir, book = tmp_path / "notebooks", tmp_path / "profiles", tmp_path / "book"
    for d in (nb_dir, prof_dir, book):
        d.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("raise SystemExit('this notebook must not run')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nb_dir / "fig1_a.ipynb")
    (book / "_toc.yml").write_text(yaml.safe_dump(TOC, sort_keys=False))
    (prof_dir / "p.yaml").write_text(profile_text)
    return dict(profiles_dir=prof_dir, notebooks_dir=nb_dir, book_dir=book)


def _params(tmp_path, profile_text: str) -> dict:
    dirs = _project(tmp_path, profile_text)
    return profiles.notebook_parameters("fig1_a", "p", profiles_dir=dirs["profiles_dir"],
                                        notebooks_dir=dirs["notebooks_dir"])


def _refused(tmp_path, profile_text: str) -> str:
    """The one-line error of a run of this profile; no kernel started, no folder made."""
    dirs = _project(tmp_path, profile_text)
    lines = []
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("p", log=lines.append, **dirs)
    assert lines == []  # "running N notebook(s)" is logged just before the first kernel starts
    assert not (dirs["book_dir"] / "notebooks").exists()
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("section, expected", [
    ("max_tokens: -5", "parameter 'max_tokens' must be positive, got -5"),
    ("batch_size: 0", "parameter 'batch_size' must be positive, got 0"),
    ("seq_len: 0", "parameter 'seq_len' must be positive, got 0"),
    ("lr: 0", "parameter 'lr' must be positive, got 0"),
    ("heldout_fraction: 1.0", "parameter 'heldout_fraction' must lie strictly between 0 and 1, got 1.0"),
    ("scan: {max_tokens: 0}", "parameter 'scan'['max_tokens'] must be positive, got 0"),
    ("dataset: imagenet", "parameter 'dataset': unknown dataset 'imagenet'; choose one of: wikitext-2, tinystories"),
    ("split: banana", "parameter 'dataset': unknown split 'banana' for 'tinystories'"),
    ("dataset: no/such/corpus.txt", "parameter 'dataset': text file no/such/corpus.txt not found"),
    ("scan: {dataset: imagenet}", "parameter 'scan': parameter 'dataset': unknown dataset 'imagenet'"),
    ("models: ['zoo:no-such-entry']", "parameter 'models': unknown zoo model 'no-such-entry'"),
    ("models: ['./no/such/model']", "parameter 'models': model spec './no/such/model': no such local path"),
    ("models: ['random:']", "parameter 'models': spec 'random:'"),
    ("device: banana", "parameter 'device': device 'banana' is not a device"),
    ("device: meta", "parameter 'device': device 'meta': the meta device holds no data"),
    ("scan: {device: banana}", "parameter 'scan': parameter 'device': device 'banana' is not a device"),
])
def test_bad_values_are_refused_before_any_kernel_starts(tmp_path, section, expected):
    msg = _refused(tmp_path, f"fig1_a:\n  {section}\n")
    assert msg.startswith("profile p, notebook fig1_a: ") and expected in msg, msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_by_the_run_not_by_the_reader(tmp_path):
    assert _params(tmp_path, "fig1_a:\n  device: cuda\n")["device"] == "cuda"  # claims read gpu profiles here
    msg = _refused(tmp_path, "fig1_a:\n  device: cuda\n")
    assert msg == "profile p, notebook fig1_a: parameter 'device': device 'cuda': CUDA is not available on this machine"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n", "_anchor: &a {seq_len: 3}\n"])
def test_an_empty_profile_is_refused(tmp_path, text):
    msg = _refused(tmp_path, text)
    assert msg.endswith("p.yaml names no notebook: an empty profile would run every notebook with its own "
                        "defaults under the label 'p'; give each notebook a section (`name: {}` for its defaults)")


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    msg = _refused(tmp_path, "fig1_a:\n  seq_len: 8\n  max_tokens: 64\n  seq_len: 16\n")
    assert msg.endswith("p.yaml, line 4, column 3: key 'seq_len' is given twice (first on line 2) (not valid YAML)")
    msg = _refused(tmp_path, "fig1_a: {}\nfig1_a:\n  seq_len: 16\n")
    assert "line 2, column 1: key 'fig1_a' is given twice (first on line 1)" in msg
    # a merge key is not a duplicate, and a key after it overrides the anchor's value
    params = _params(tmp_path, "_s: &s {seq_len: 8, max_tokens: 64}\nfig1_a:\n  <<: *s\n  seq_len: 16\n")
    assert (params["seq_len"], params["max_tokens"]) == (16, 64)


def test_yaml_errors_give_their_line_and_column(tmp_path):
    msg = _refused(tmp_path, "fig1_a:\n  seq_len: 8\n  models: [stories260K\n")
    assert "p.yaml, line 4, column 1: " in msg and msg.endswith("(not valid YAML)")
    msg = _refused(tmp_path, "fig1_a:\n\tseq_len: 8\n")
    assert "p.yaml, line 2, column 1: " in msg


def test_a_binary_profile_is_named(tmp_path):
    dirs = _project(tmp_path, "")
    (dirs["profiles_dir"] / "p.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("p", log=lambda _: None, **dirs)
    msg = str(err.value)
    assert str(dirs["profiles_dir"] / "p.yaml") in msg and "binary" in msg and "\n" not in msg


def test_numbers_written_with_an_exponent(tmp_path):
    # YAML 1.1 reads 1e12 and 3e-4 as strings
    params = _params(tmp_path, "fig1_a:\n  max_tokens: 1.0e6\n  lr: 3e-4\n  scan: {max_tokens: 2.5E3}\n  label: 1e3\n")
    assert params["max_tokens"] == 1_000_000 and type(params["max_tokens"]) is int
    assert params["lr"] == 3e-4 and params["scan"]["max_tokens"] == 2500 and params["label"] == "1e3"
    with pytest.raises(LinUtilsError, match=r"parameter 'max_tokens' must be int like its default 16384, got "
                                            r"'1e-3', which is not a whole number"):
        _params(tmp_path, "fig1_a:\n  max_tokens: 1e-3\n")
    with pytest.raises(LinUtilsError, match=r"got float 1000000000000.0 \(write it as 1000000000000\)"):
        _params(tmp_path, "fig1_a:\n  max_tokens: 1.0e+12\n")  # YAML 1.1 reads this one as a float
    with pytest.raises(LinUtilsError, match="must be int like its default 16384, got str '3'"):
        _params(tmp_path, "fig1_a:\n  max_tokens: '3'\n")  # a quoted number stays text


def test_the_repository_profiles_validate():
    for profile in ("smoke", "gpu", "full"):
        for name in profiles.load_profile(profile):
            profiles.notebook_parameters(name, profile)


def test_the_runner_still_offers_the_profile_functions():
    assert profiles.load_profile is profiles.load_profile
    assert profiles.notebook_parameters is profiles.notebook_parameters
