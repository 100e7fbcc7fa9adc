"""A small client for OpenAI-compatible chat-completions servers, over raw HTTP (`requests`, no vendor SDK).

teacher.py asks its teacher LLM through it; nothing here knows about plans. It POSTs
{base_url}/chat/completions, retries what may pass on a second try (timeouts, dropped
connections, 408/409/425/429 and every 5xx, a 200 answer that is not a chat completion) with
exponential backoff, jitter and the server's Retry-After, and stops at once on a rejected key.

The API key comes from CODEPLAN_API_KEY, else OPENAI_API_KEY; it is sent in the Authorization
header and nowhere else (server messages that echo it are redacted).
"""
from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class AuthError(Exception):
    """The server rejected the API key (401): every later request would fail too, so the run stops."""


class RequestFailed(Exception):
    """One request failed for good (non-retryable status, or retries exhausted)."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


def api_key_from_env() -> tuple[str | None, str | None]:
    """(key, name of the variable it came from)."""
    for name in ("CODEPLAN_API_KEY", "OPENAI_API_KEY"):
        if os.environ.get(name):
            return os.environ[name], name
    return None, None


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    usage: dict
    attempts: int


class BadResponse(Exception):
    """A 200 answer that is not a chat completion (truncated JSON, no choices): retried."""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


RETRYABLE_STATUS = {408, 409, 425, 429}  # plus every 5xx
TRANSIENT_ERRORS = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class ChatClient:
    """POST {base_url}/chat/completions with retries. Thread-safe: one Session per thread.

    `config` holds the request settings: base_url, model, temperature, max_tokens, connect_timeout,
    read_timeout (seconds per socket read, not for the whole answer), max_attempts, backoff_base
    (seconds before the second attempt; doubles each retry, with jitter) and backoff_max (the longest
    single sleep, Retry-After included); teacher.TeacherConfig is one."""

    def __init__(self, config, api_key: str | None, sleep=time.sleep):
        self.config, self._key, self._sleep = config, api_key, sleep
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<redacted>") if self._key else text

    def _server_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
            error = body.get("error", body) if isinstance(body, dict) else body
            message = error.get("message", error) if isinstance(error, dict) else error
        except ValueError:
            message = response.text
        return self._redact(str(message).strip()[:300])

    def delay(self, attempt: int, retry_after: float | None) -> float:
        c = self.config
        backoff = min(c.backoff_max, c.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        return min(c.backoff_max, max(backoff, retry_after or 0.0))

    def complete(self, messages: list[dict]) -> Completion:
        c = self.config
        payload = {"model": c.model, "messages": messages, "temperature": c.temperature,
                   "max_tokens": c.max_tokens}
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                response = self._session().post(self.url, json=payload, headers=headers,
                                                 timeout=(c.connect_timeout, c.read_timeout))
            except TRANSIENT_ERRORS as e:
                problem = f"{type(e).__name__}: {self._redact(str(e))[:200]}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return self._parse(response, attempt)
                    except BadResponse as e:
                        problem = str(e)
                elif status == 401:
                    raise AuthError(f"{self.url} rejected the API key (HTTP 401: {self._server_message(response)});"
                                    " set CODEPLAN_API_KEY or OPENAI_API_KEY")
                elif status in RETRYABLE_STATUS or status >= 500:
                    problem = f"HTTP {status}: {self._server_message(response)}"
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                else:
                    raise RequestFailed(f"HTTP {status}: {self._server_message(response)}", attempt)
            if attempt >= c.max_attempts:
                raise RequestFailed(f"gave up after {attempt} attempts; last: {problem}", attempt)
            self._sleep(self.delay(attempt, retry_after))

    def _parse(self, response: requests.Response, attempts: int) -> Completion:
        try:
            body = response.json()
        except ValueError:
            raise BadResponse("malformed JSON in response") from None
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BadResponse("response has no choices")
        message = choices[0].get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        usage = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}
        return Completion(text if isinstance(text, str) else "", choices[0].get("finish_reason"), usage, attempts)
