"""Provenance against git and /proc/cpuinfo, read independently."""
from pathlib import Path

import lin_utils.provenance as prov


def test_provenance_matches_git_and_the_cpu_read_independently(tmp_path):
    """The provenance's commit, dirty flag, CPU model and flags against git and /proc/cpuinfo."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=prov.REPO_ROOT, capture_output=True, text=True, check=True).stdout

    found = prov.provenance()
    assert found["git"]["commit"] == git("rev-parse", "HEAD").strip() and len(found["git"]["commit"]) == 40
    changed = [ln for ln in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if not ln[3:].startswith("data/results/")]
    assert found["git"]["dirty"] is bool(changed)
    # a tracked file changed outside data/results makes it dirty; result tables do not
    scratch = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(scratch)], check=True)
    for name in ("a.txt", "data/results/t.csv"):
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text("1")
    subprocess.run(["git", "-C", str(scratch), "add", "."], check=True)
    subprocess.run(["git", "-C", str(scratch), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True)
    saved = prov.REPO_ROOT
    try:
        prov.REPO_ROOT = scratch
        (scratch / "data/results/t.csv").write_text("2")
        assert prov.provenance()["git"]["dirty"] is False
        (scratch / "a.txt").write_text("2")
        assert prov.provenance()["git"]["dirty"] is True
        prov.REPO_ROOT = tmp_path / "not-a-repo"
        (tmp_path / "not-a-repo").mkdir()
        assert prov.provenance()["git"] == {"commit": None, "dirty": None}
    finally:
        prov.REPO_ROOT = saved

    import torch

    hw = found["hardware"]
    assert hw["torch"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (hw["torch"]["cuda"] is None) is not torch.cuda.is_available()
    if not Path("/proc/cpuinfo").exists():  # not Linux: no flags to read
        assert hw["cpu_flags"] is None
        return
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), None)
    flags = set(next(ln.split(":", 1)[1].split() for ln in cpuinfo if ln.startswith(("flags", "Features"))))
    assert model is None or hw["cpu_model"] == model
    assert hw["cpu_flags"] == [f for f in prov.KERNEL_CPU_FLAGS if f in flags]
