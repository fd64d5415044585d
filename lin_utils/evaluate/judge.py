"""Judging story completions with an LLM (Table 3), through any OpenAI-compatible chat endpoint.

The rubric is the TinyStories paper's (Eldan & Li, 2023, Section 3): the judge sees the story's
beginning and the model's completion separated by ``***`` and grades the completion for
grammar, creativity, consistency with the beginning, and whether the plot makes sense, each
from 1 to 10. We ask for the four grades as a JSON object so that the reply can be checked.

Configuration comes from parameters and the environment, never from files in the project:

* ``LIN_JUDGE_URL``: the endpoint's base URL (``.../v1``); ``/chat/completions`` is appended.
* ``LIN_JUDGE_MODEL``: the judge model's name.
* ``LIN_JUDGE_API_KEY``: the secret key. It is read from the environment at request time, sent
  only in the ``Authorization`` header, and never stored on the client, logged, or returned.

With no endpoint configured, :func:`judge_from_env` returns None and the Table 3 notebook
reports clearly labelled automatic proxies instead (:mod:`lin_utils.evaluate.stories`).
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ..errors import LinUtilsError, one_line

__all__ = ["ASPECTS", "JudgeClient", "JudgeError", "judge_from_env", "rubric_prompt"]

ASPECTS = ("grammar", "creativity", "consistency", "plot")
URL_ENV, MODEL_ENV, KEY_ENV = "LIN_JUDGE_URL", "LIN_JUDGE_MODEL", "LIN_JUDGE_API_KEY"

_INSTRUCTIONS = (
    "In the following exercise, the student is given a beginning of a story. The student needs to "
    "complete it into a full story. The exercise tests the student's language abilities and creativity. "
    "The symbol *** marks the separator between the prescribed beginning and the student's completion:\n\n"
    "{story}\n\n"
    "Please provide your general assessment about the part written by the student (the one after the *** "
    "symbol). Is it grammatically correct? Is it consistent with the beginning of the story? Pay special "
    "attention to whether the student manages to complete the sentence which is split in the middle by the "
    "separator ***.\n\n"
    "Now, grade the student's completion in terms of grammar, creativity, consistency with the story's "
    "beginning and whether the plot makes sense, each on a scale from 1 to 10. End your answer with one line "
    'holding only a JSON object of the form {{"grammar": G, "creativity": C, "consistency": S, "plot": P}} '
    "with integer grades."
)


class JudgeError(LinUtilsError):
    """The judge gave no usable grades (timeout, HTTP error, malformed reply)."""


def rubric_prompt(beginning: str, completion: str) -> str:
    """The judge's user message for one completion (TinyStories rubric, JSON grades)."""
    return _INSTRUCTIONS.format(story=f"{beginning.rstrip()} ***{completion.rstrip()}")


def parse_grades(reply: str) -> dict[str, int]:
    """The four grades from the judge's reply: the last JSON object in it with all four keys.

    Raises:
        JudgeError: no such object, a missing aspect, or a grade that is not an integer in 1..10.
    """
    for candidate in reversed(re.findall(r"\{[^{}]*\}", reply)):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not set(ASPECTS) <= set(obj):
            continue
        grades = {}
        for aspect in ASPECTS:
            value = obj[aspect]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not 1 <= value <= 10:
                raise JudgeError(f"judge reply: {aspect} grade {value!r} is not an integer from 1 to 10")
            grades[aspect] = int(value)
        return grades
    raise JudgeError(f"judge reply has no JSON object with {', '.join(ASPECTS)}: {one_line(reply, 120)}")


@dataclass(frozen=True)
class JudgeClient:
    """A chat-completions client for one judge model.

    Attributes:
        url: base URL of an OpenAI-compatible API (``https://host/v1``).
        model: the judge model's name.
        timeout: seconds per request.
        retries: extra attempts after a timeout, connection error or 5xx reply.
        temperature: sampling temperature of the judge (0 for repeatable grades).
    """

    url: str
    model: str
    timeout: float = 60.0
    retries: int = 2
    temperature: float = 0.0

    def _request(self, messages: list[dict]) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url.rstrip("/") + "/chat/completions", data=body, headers=headers)
        last = "no attempt"
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                return payload["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
                if e.code < 500 and e.code != 429:
                    break
            except (TimeoutError, socket.timeout):
                last = f"no reply within {self.timeout:g} s"
            except urllib.error.URLError as e:
                last = f"cannot reach the endpoint ({one_line(e.reason, 80)})"
            except (json.JSONDecodeError, KeyError, IndexError, TypeError, UnicodeDecodeError):
                raise JudgeError("judge endpoint sent a reply that is not a chat completion") from None
            if attempt < self.retries:
                time.sleep(min(2.0**attempt, 10.0) * 0.1)
        raise JudgeError(f"judge request failed after {self.retries + 1} attempt(s): {last}")

    def grade(self, beginning: str, completion: str) -> dict[str, int]:
        """Grades (1-10) for grammar, creativity, consistency and plot of one completion."""
        reply = self._request([{"role": "user", "content": rubric_prompt(beginning, completion)}])
        return parse_grades(reply)


def judge_from_env(url: str | None = None, model: str | None = None, **kwargs) -> JudgeClient | None:
    """A :class:`JudgeClient` from parameters, else ``$LIN_JUDGE_URL`` / ``$LIN_JUDGE_MODEL``; None if unset."""
    url = url or os.environ.get(URL_ENV)
    model = model or os.environ.get(MODEL_ENV)
    if not url:
        return None
    if not model:
        raise LinUtilsError(f"a judge URL is configured but no model: set {MODEL_ENV} or pass judge_model")
    return JudgeClient(url=url, model=model, **kwargs)
