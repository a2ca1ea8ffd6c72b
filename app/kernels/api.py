"""The envyard API as the notebook-side commands use it: GraphQL over HTTP, with a token.

Configuration: ENVYARD_URL (the /graphql address) and ENVYARD_TOKEN, or --url / --token.
Only the standard library: the notebook server needs nothing more to talk to envyard.
Whatever answers at that address, a failure is an ApiError with one line saying what went
wrong (unreachable, cut off, not JSON, not a GraphQL response, the API's own refusal).
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class KernelError(Exception):
    """A failure the command reports as one line and exit status 1."""


class ApiError(KernelError):
    """The API refused a request (`code`: its extensions.code), or did not answer as a
    GraphQL API does (`code` None)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class Api:
    url: str
    token: str
    timeout: float = 60.0

    @classmethod
    def configured(cls, url: str | None, token: str | None) -> Api:
        url = url or os.environ.get("ENVYARD_URL")
        token = token or os.environ.get("ENVYARD_TOKEN")
        if not token:
            raise KernelError("no API token: set ENVYARD_TOKEN or pass --token")
        if not url:
            raise KernelError(
                "no envyard address: set ENVYARD_URL (for example "
                "http://envyard.example.com/graphql) or pass --url"
            )
        if not url.startswith(("http://", "https://")):
            raise KernelError(f"the envyard address must be an http(s) URL, not {url!r}")
        return cls(url, token)

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a request; ApiError for the API's first error or any other answer."""
        status, body = self._post(json.dumps({"query": query, "variables": variables}).encode())
        answered = f"envyard at {self.url} answered" + (f" HTTP {status}" if status else "")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(f"{answered} with something that is not JSON") from None
        if not isinstance(answer, dict):
            raise ApiError(f"{answered} with JSON that is not a GraphQL response")
        errors = answer.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) else errors
            if not isinstance(first, dict):
                raise ApiError(f"{answered} with an error that says nothing: {_one_line(first)}")
            extensions = first.get("extensions")
            code = extensions.get("code") if isinstance(extensions, dict) else None
            message = _one_line(first.get("message") or "the request failed")
            raise ApiError(message, code if isinstance(code, str) else None)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"{answered} without data")
        return data

    def field(self, query: str, name: str, **variables: Any) -> dict[str, Any]:
        """The object the query's top-level field `name` answered; ApiError when it is not
        one (null, missing, a list...)."""
        value = self(query, **variables).get(name)
        if not isinstance(value, dict):
            raise ApiError(f"envyard at {self.url} answered without {name}")
        return value

    def _post(self, body: bytes) -> tuple[int | None, bytes]:
        """(HTTP status when it is an error, the answer's body)."""
        try:
            request = urllib.request.Request(
                self.url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.token}",
                },
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return None, bytes(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    return exc.code, bytes(exc.read())
                except (http.client.HTTPException, OSError):
                    raise ApiError(f"envyard at {self.url} answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise ApiError(
                f"envyard at {self.url} is not reachable: {_one_line(exc.reason)}"
            ) from None
        except (ValueError, http.client.InvalidURL) as exc:  # a URL urllib cannot use
            raise ApiError(f"{self.url} is not a usable address: {_one_line(exc)}") from None
        except (http.client.HTTPException, OSError) as exc:
            what = _one_line(exc) or type(exc).__name__
            raise ApiError(f"envyard at {self.url} broke off its answer: {what}") from None
