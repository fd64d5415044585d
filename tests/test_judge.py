"""The judge client against a real HTTP server on the loopback address speaking chat completions."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import math

import pandas as pd

from lin_utils.evaluate.judge import (ALLOW_HTTP_ENV, ASPECTS, KEY_ENV, JudgeClient, JudgeError, JudgeSession,
                                      JudgeStopped, judge_from_env, judge_status, parse_grades, rubric_prompt)

GOOD = 'The completion is fine.\n{"grammar": 8, "creativity": 6, "consistency": 7, "plot": 5}'


class Server:
    """A chat-completions endpoint on 127.0.0.1 whose next replies are scripted per test."""

    def __init__(self):
        self.replies, self.requests = [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # only a client that follows a redirect gets here
                outer.requests.append((self.path, dict(self.headers), None))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"choices": [{"message": {"content": GOOD}}]}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                kind, content = outer.replies.pop(0) if outer.replies else ("ok", GOOD)
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", content)
                    self.end_headers()
                    return
                if kind == "sleep":
                    time.sleep(content)
                    kind, content = "ok", GOOD
                if kind == "status":
                    self.send_response(content)
                    self.end_headers()
                    return
                payload = (json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                           if kind == "ok" else content)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(payload.encode())
                except BrokenPipeError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_grades_come_back_and_the_key_only_in_the_header(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "test-secret-value")
    client = JudgeClient(server.url, "judge-1", timeout=5)
    grades = client.grade("Once upon a time, Tom saw a", " big dog. He was happy.")
    assert grades == {"grammar": 8, "creativity": 6, "consistency": 7, "plot": 5}
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["model"] == "judge-1" and body["temperature"] == 0
    assert headers["Authorization"] == "Bearer test-secret-value"
    assert "***" in body["messages"][0]["content"] and "test-secret-value" not in json.dumps(body)
    assert "test-secret-value" not in repr(client)


def test_malformed_replies_are_errors_not_grades(server):
    client = JudgeClient(server.url, "j", timeout=5, retries=0)
    server.replies = [("ok", "I refuse to grade.")]
    with pytest.raises(JudgeError, match="no JSON object"):
        client.grade("a", "b")
    server.replies = [("ok", '{"grammar": 11, "creativity": 6, "consistency": 7, "plot": 5}')]
    with pytest.raises(JudgeError, match="grammar grade 11"):
        client.grade("a", "b")
    server.replies = [("raw", "<html>not json</html>")]
    with pytest.raises(JudgeError, match="not a chat completion"):
        client.grade("a", "b")
    server.replies = [("status", 401)]
    with pytest.raises(JudgeError, match="HTTP 401"):
        client.grade("a", "b")


def test_timeout_then_retry_succeeds_and_persistent_timeout_fails(server):
    client = JudgeClient(server.url, "j", timeout=0.5, retries=1)
    server.replies = [("sleep", 1.5)]
    assert client.grade("a", "b")["plot"] == 5  # the second attempt is answered
    server.replies = [("sleep", 1.5), ("sleep", 1.5)]
    with pytest.raises(JudgeError, match="no reply within 0.5 s"):
        client.grade("a", "b")
    server.replies = [("status", 503), ("ok", GOOD)]
    assert client.grade("a", "b")["grammar"] == 8


def test_parse_takes_the_last_complete_object_and_the_prompt_marks_the_split():
    reply = 'Example: {"grammar": 1}. Final: {"grammar": 9, "creativity": 9, "consistency": 9, "plot": 9.0}'
    assert parse_grades(reply) == dict.fromkeys(ASPECTS, 9)
    prompt = rubric_prompt("Lily went to the", " park and played.")
    assert "Lily went to the *** park and played." in prompt


def test_no_endpoint_means_no_judge(monkeypatch):
    monkeypatch.delenv("LIN_JUDGE_URL", raising=False)
    assert judge_from_env() is None
    with pytest.raises(Exception, match="LIN_JUDGE_MODEL"):
        monkeypatch.delenv("LIN_JUDGE_MODEL", raising=False)
        judge_from_env(url="http://127.0.0.1:9/v1")


# ------------------------------------------------------------------------------------------------
# trust boundary (issue 25): no redirects, no plain http off the machine


def test_a_redirect_is_an_error_and_the_key_never_leaves(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "test-secret-value")
    elsewhere = Server()  # the address the endpoint redirects to
    try:
        client = JudgeClient(server.url, "j", timeout=5, retries=2)
        server.replies = [("redirect", elsewhere.url + "/steal")]
        with pytest.raises(JudgeError) as err:
            client.grade("a", "b")
        msg = str(err.value)
        assert "HTTP 302" in msg and elsewhere.url + "/steal" in msg and "not followed" in msg
        assert "test-secret-value" not in msg and "\n" not in msg
        assert elsewhere.requests == []  # nothing reached the other address, the key least of all
        assert len(server.requests) == 1  # and a redirect is not retried
    finally:
        elsewhere.close()


@pytest.mark.parametrize("url", ["http://judge.example.com/v1", "http://10.0.0.5:8000/v1", "ftp://127.0.0.1/v1",
                                 "file:///etc/passwd", "https://user:pw@judge.example.com/v1", "not a url"])
def test_plain_http_off_the_machine_and_other_schemes_are_refused(url, monkeypatch):
    monkeypatch.delenv(ALLOW_HTTP_ENV, raising=False)
    with pytest.raises(JudgeError) as err:
        JudgeClient(url, "j")
    assert "\n" not in str(err.value) and "pw" not in str(err.value)
    monkeypatch.setenv("LIN_JUDGE_MODEL", "j")
    with pytest.raises(JudgeError):
        judge_from_env(url)


def test_http_is_fine_on_loopback_and_elsewhere_only_by_opting_in(monkeypatch):
    monkeypatch.delenv(ALLOW_HTTP_ENV, raising=False)
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                "https://judge.example.com/v1"):
        JudgeClient(url, "j")
    assert JudgeClient("http://judge.example.com/v1", "j", allow_http=True).allow_http
    monkeypatch.setenv(ALLOW_HTTP_ENV, "1")
    assert judge_from_env("http://judge.example.com/v1", "j").allow_http


# ------------------------------------------------------------------------------------------------
# a whole run: limits, a run that fails throughout, what the page says


def test_a_run_in_which_every_request_fails_is_an_error(server):
    session = JudgeSession(JudgeClient(server.url, "j", timeout=5, retries=0), max_consecutive_failures=None)
    server.replies = [("status", 500), ("ok", "no grades here"), ("ok", '{"grammar": 0, "creativity": 1, '
                                                                        '"consistency": 1, "plot": 1}')]
    grades, errors = session.grade_all(["a", "b", "c"], ["x", "y", "z"])
    assert all(math.isnan(g["plot"]) for g in grades) and errors[0].endswith("HTTP 500")
    with pytest.raises(JudgeError, match=r"all 3 request\(s\) failed; first error: .*HTTP 500"):
        session.finish()
    ok = JudgeSession(JudgeClient(server.url, "j", timeout=5, retries=0))
    server.replies = [("status", 500)]
    grades, errors = ok.grade_all(["a", "b"], ["x", "y"])
    assert errors[1] == "" and grades[1]["grammar"] == 8
    ok.finish()  # one failure among grades is recorded, not fatal


def test_consecutive_failures_stop_the_run_in_one_line(server):
    session = JudgeSession(JudgeClient(server.url, "j", timeout=5, retries=0), max_consecutive_failures=2)
    server.replies = [("status", 500), ("ok", GOOD), ("status", 401), ("status", 401), ("status", 401)]
    with pytest.raises(JudgeStopped) as err:
        session.grade_all(["a"] * 5, ["b"] * 5)
    msg = str(err.value)
    assert msg.startswith("judge stopped: 2 consecutive failures (1 graded, 3 failed; first error:")
    assert "HTTP 500" in msg and "\n" not in msg
    assert len(server.requests) == 4  # the fifth was never sent


def test_a_hanging_judge_stops_at_the_time_limit(server):
    # every request hangs 3 s; per-request timeout 60 s and 2 retries would take minutes per completion
    session = JudgeSession(JudgeClient(server.url, "j", timeout=60, retries=2), time_limit_s=1.0,
                           max_consecutive_failures=None)
    server.replies = [("sleep", 3)] * 6
    start = time.monotonic()
    with pytest.raises(JudgeStopped, match=r"judge stopped: time limit of 1 s reached \(0 graded, 1 failed"):
        session.grade_all(["a"] * 3, ["b"] * 3)
    assert time.monotonic() - start < 2.5


def test_bad_limits_are_refused(server):
    client = JudgeClient(server.url, "j")
    for kw in ({"time_limit_s": 0}, {"time_limit_s": -5}, {"max_consecutive_failures": 0},
               {"max_consecutive_failures": 1.5}, {"max_consecutive_failures": True}):
        with pytest.raises(JudgeError, match="must be"):
            JudgeSession(client, **kw)


def _items(grammar, errors):
    return pd.DataFrame({"grammar": grammar, "creativity": grammar, "consistency": grammar, "plot": grammar,
                         "judge_error": errors})


def test_judge_status_tells_a_failed_judge_from_no_judge():
    nan = math.nan
    none = judge_status(_items([nan, nan], ["", ""]))
    assert none == dict(configured=False, n=2, graded=0, failed=0, first_error=None, text="no judge configured")
    failed = judge_status(_items([nan, nan, nan], ["judge request failed after 3 attempt(s): HTTP 500", "x", "y"]))
    assert failed["configured"] and failed["failed"] == 3 and failed["graded"] == 0
    assert failed["text"] == ("a judge was configured but failed on all 3 of 3 completions "
                              "(first error: judge request failed after 3 attempt(s): HTTP 500)")
    partial = judge_status(_items([8.0, nan], [nan, "judge reply: grammar grade 11 is not an integer from 1 to 10"]))
    assert partial["text"] == ("the judge graded 1 of 2 completions and failed on 1 (first error: judge reply: "
                               "grammar grade 11 is not an integer from 1 to 10)")
    assert judge_status(_items([8.0, 7.0], ["", ""]))["text"] == "the judge graded all 2 completions"
