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

The endpoint is not trusted. The client never follows a redirect (a 3xx is an error naming the
status and the location, so the key never travels to an address the user did not name), refuses
any scheme but ``https``, and ``http`` except to a loopback address unless the user opts in
(``allow_http=True`` or ``LIN_JUDGE_ALLOW_HTTP=1``). Grades are accepted only as integers 1-10.
A :class:`JudgeSession` bounds a whole run: an overall time limit and a limit on consecutive
failed completions stop it with one line (:class:`JudgeStopped`), and :meth:`JudgeSession.finish`
fails a run in which every request failed. :func:`judge_status` says what happened, for the page.
"""
from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from ..errors import LinUtilsError, one_line

__all__ = ["ASPECTS", "JudgeClient", "JudgeError", "JudgeSession", "JudgeStopped", "judge_from_env",
           "judge_status", "rubric_prompt"]

ASPECTS = ("grammar", "creativity", "consistency", "plot")
URL_ENV, MODEL_ENV, KEY_ENV = "LIN_JUDGE_URL", "LIN_JUDGE_MODEL", "LIN_JUDGE_API_KEY"
ALLOW_HTTP_ENV = "LIN_JUDGE_ALLOW_HTTP"  # "1": plain http to a non-loopback host is allowed
DEFAULT_TIME_LIMIT_S = 3 * 3600.0  # a whole judging run (JudgeSession)
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5

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
    """The judge gave no usable grades (timeout, HTTP error, redirect, malformed reply)."""


class JudgeStopped(JudgeError):
    """A :class:`JudgeSession` hit its time limit or its consecutive-failure limit: the run stops."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Every 3xx becomes an HTTPError: a redirect would carry the key to another address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, msg, headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirect)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_http: bool = False) -> None:
    """Refuse a judge URL that is not ``https`` (``http`` only to a loopback address, or with
    ``allow_http``), or that carries credentials. Raises :class:`JudgeError` (one line)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        raise JudgeError(f"judge URL {one_line(url, 80)!r} is not a URL: {one_line(e)}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise JudgeError(f"judge URL {one_line(url, 80)!r}: only https:// URLs with a host are accepted")
    if parts.username or parts.password:
        raise JudgeError(f"judge URL of host {host!r} carries credentials; give the key in ${KEY_ENV} instead")
    if parts.scheme == "http" and not allow_http and not _is_loopback(host):
        raise JudgeError(f"judge URL {one_line(url, 80)!r}: plain http would send the key unencrypted; use "
                         f"https, a loopback address, or opt in with {ALLOW_HTTP_ENV}=1")


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
        url: base URL of an OpenAI-compatible API (``https://host/v1``; see :func:`check_url`).
        model: the judge model's name.
        timeout: seconds per request.
        retries: extra attempts after a timeout, connection error or 5xx reply.
        temperature: sampling temperature of the judge (0 for repeatable grades).
        allow_http: accept plain ``http`` to a host that is not a loopback address.
    """

    url: str
    model: str
    timeout: float = 60.0
    retries: int = 2
    temperature: float = 0.0
    allow_http: bool = False

    def __post_init__(self):
        check_url(self.url, self.allow_http)

    def _request(self, messages: list[dict], deadline: float | None = None) -> str:
        """The reply's text. ``deadline`` (``time.monotonic()``) caps every attempt's timeout and
        the retries; past it, :class:`JudgeStopped`."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url.rstrip("/") + "/chat/completions", data=body, headers=headers,
                                     method="POST")
        last = "no attempt"
        for attempt in range(self.retries + 1):
            timeout = self.timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JudgeStopped(f"judge time limit reached (last error: {last})")
                timeout = min(timeout, left)
            try:
                with _OPENER.open(req, timeout=timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                return payload["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as e:
                if 300 <= e.code < 400:
                    where = one_line(e.headers.get("Location", "") if e.headers else "", 120) or "nowhere"
                    raise JudgeError(f"judge endpoint answered HTTP {e.code} (redirect to {where}); "
                                     "redirects are not followed") from None
                last = f"HTTP {e.code}"
                if e.code < 500 and e.code != 429:
                    break
            except (TimeoutError, socket.timeout):
                last = f"no reply within {timeout:g} s"
            except urllib.error.URLError as e:
                last = f"cannot reach the endpoint ({one_line(e.reason, 80)})"
            except (json.JSONDecodeError, KeyError, IndexError, TypeError, UnicodeDecodeError):
                raise JudgeError("judge endpoint sent a reply that is not a chat completion") from None
            if attempt < self.retries:
                time.sleep(min(2.0**attempt, 10.0) * 0.1)
        raise JudgeError(f"judge request failed after {self.retries + 1} attempt(s): {last}")

    def grade(self, beginning: str, completion: str, *, deadline: float | None = None) -> dict[str, int]:
        """Grades (1-10) for grammar, creativity, consistency and plot of one completion."""
        reply = self._request([{"role": "user", "content": rubric_prompt(beginning, completion)}], deadline)
        return parse_grades(reply)


@dataclass
class JudgeSession:
    """One judging run, bounded: grade completions until done, the time limit, or too many
    consecutive failures.

    ``time_limit_s`` bounds the whole run (every request's timeout is cut to what is left);
    ``max_consecutive_failures`` completions in a row without grades stop it. Either raises
    :class:`JudgeStopped` with one line. ``None`` turns a limit off. :meth:`finish` raises
    :class:`JudgeError` when requests were made and none gave grades.
    """

    client: JudgeClient
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S
    max_consecutive_failures: int | None = DEFAULT_MAX_CONSECUTIVE_FAILURES
    graded: int = 0
    failed: int = 0
    first_error: str | None = None
    _consecutive: int = field(default=0, repr=False)
    _deadline: float | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.time_limit_s is not None:
            if isinstance(self.time_limit_s, bool) or not self.time_limit_s > 0:
                raise JudgeError(f"judge time limit must be positive seconds or None, got {self.time_limit_s!r}")
            self._deadline = time.monotonic() + float(self.time_limit_s)
        m = self.max_consecutive_failures
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise JudgeError(f"judge consecutive-failure limit must be a positive integer or None, got {m!r}")

    def grade(self, beginning: str, completion: str) -> dict[str, int]:
        """Grades of one completion. A failed completion raises :class:`JudgeError` (record it and
        go on); a limit reached raises :class:`JudgeStopped` (stop the run)."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise JudgeStopped(self._stop_message(f"time limit of {self.time_limit_s:g} s reached"))
        try:
            grades = self.client.grade(beginning, completion, deadline=self._deadline)
        except JudgeStopped as e:
            self._record(str(e))
            raise JudgeStopped(self._stop_message(f"time limit of {self.time_limit_s:g} s reached")) from None
        except JudgeError as e:
            self._record(str(e))
            if self.max_consecutive_failures is not None and self._consecutive >= self.max_consecutive_failures:
                raise JudgeStopped(self._stop_message(f"{self._consecutive} consecutive failures")) from None
            raise
        self.graded += 1
        self._consecutive = 0
        return grades

    def _record(self, error: str) -> None:
        self.failed += 1
        self._consecutive += 1
        if self.first_error is None:
            self.first_error = one_line(error)

    def _stop_message(self, why: str) -> str:
        return (f"judge stopped: {why} ({self.graded} graded, {self.failed} failed; "
                f"first error: {self.first_error or 'none'})")

    def finish(self) -> None:
        """Raise :class:`JudgeError` when every request of the run failed."""
        if self.failed and not self.graded:
            raise JudgeError(f"judge configured, but all {self.failed} request(s) failed; "
                             f"first error: {self.first_error}")

    def grade_all(self, openings, completions) -> tuple[list[dict[str, float]], list[str]]:
        """Grades (NaN where the judge failed) and error texts ("" where it did not), per completion."""
        grades, errors = [], []
        for o, c in zip(openings, completions, strict=True):
            try:
                grades.append({k: float(v) for k, v in self.grade(o, c).items()})
                errors.append("")
            except JudgeStopped:
                raise
            except JudgeError as e:
                grades.append(dict.fromkeys(ASPECTS, math.nan))
                errors.append(one_line(e))
        return grades, errors


def judge_status(items) -> dict:
    """What the judge did for a Table 3 items table (columns ``grammar`` ... and ``judge_error``).

    Returns ``{"configured", "n", "graded", "failed", "first_error", "text"}``; ``text`` is one
    sentence for the page: no judge configured; a judge configured that failed (with the count and
    the first error); or how many completions it graded.
    """
    n = int(len(items))
    graded = int(items["grammar"].notna().sum()) if "grammar" in items else 0
    errors = []
    if "judge_error" in items:
        errors = [str(e) for e in items["judge_error"] if isinstance(e, str) and e.strip()]
    failed = len(errors)
    first = one_line(errors[0]) if errors else None
    configured = bool(graded or failed)
    if not configured:
        text = "no judge configured"
    elif not graded:
        text = f"a judge was configured but failed on all {failed} of {n} completions (first error: {first})"
    elif failed:
        text = (f"the judge graded {graded} of {n} completions and failed on {failed} "
                f"(first error: {first})")
    else:
        text = f"the judge graded all {n} completions"
    return dict(configured=configured, n=n, graded=graded, failed=failed, first_error=first, text=text)


def judge_from_env(url: str | None = None, model: str | None = None, **kwargs) -> JudgeClient | None:
    """A :class:`JudgeClient` from parameters, else ``$LIN_JUDGE_URL`` / ``$LIN_JUDGE_MODEL``; None if unset.

    ``$LIN_JUDGE_ALLOW_HTTP=1`` (or ``allow_http=True``) accepts plain http to a non-loopback host.
    """
    url = url or os.environ.get(URL_ENV)
    model = model or os.environ.get(MODEL_ENV)
    if not url:
        return None
    if not model:
        raise LinUtilsError(f"a judge URL is configured but no model: set {MODEL_ENV} or pass judge_model")
    kwargs.setdefault("allow_http", os.environ.get(ALLOW_HTTP_ENV, "").strip().lower() in ("1", "true", "yes"))
    return JudgeClient(url=url, model=model, **kwargs)
