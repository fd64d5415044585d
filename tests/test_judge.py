"""The judge client against a real HTTP server on the loopback address speaking chat completions."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lin_utils.evaluate.judge import (ASPECTS, KEY_ENV, JudgeClient, JudgeError, judge_from_env,
                                      parse_grades, rubric_prompt)

GOOD = 'The completion is fine.\n{"grammar": 8, "creativity": 6, "consistency": 7, "plot": 5}'


class Server:
    """A chat-completions endpoint on 127.0.0.1 whose next replies are scripted per test."""

    def __init__(self):
        self.replies, self.requests = [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                kind, content = outer.replies.pop(0) if outer.replies else ("ok", GOOD)
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
