"""The worker pool of the zoo and the scaling study, on real processes."""
from lin_utils.jobs import Job, last_line, run_jobs


def test_failed_jobs_are_reported_with_their_logs_last_line(tmp_path):
    ok = Job("ok", "json.tool", ("--help",), tmp_path / "a" / "ok.log")
    bad = Job("bad", "json.tool", (str(tmp_path / "missing.json"),), tmp_path / "b" / "bad.log")
    failed = run_jobs([ok, bad, ok], jobs=2, desc="t", progress=False, poll_s=0.05)
    assert failed == [bad]
    assert "usage" in ok.log.read_text()
    assert "missing.json" in last_line(bad)
    assert last_line(Job("x", "m", (), tmp_path / "none.log")) == ""
