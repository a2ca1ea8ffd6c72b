"""The envyard API as the notebook-side commands use it: GraphQL over HTTP, with a token.

Configuration: ENVYARD_URL (the /graphql address) and ENVYARD_TOKEN, or --url / --token.
Only the standard library: the notebook server needs nothing more to talk to envyard.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class KernelError(Exception):
    """A failure the command reports as one line and exit status 1."""


class ApiError(KernelError):
    """The API refused a request; `code` is its extensions.code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


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
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                raise ApiError(f"envyard at {self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"envyard at {self.url} is not reachable: {reason}") from None
        except ValueError:
            raise ApiError(f"envyard at {self.url} did not answer with JSON") from None
        errors = answer.get("errors")
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code")
            raise ApiError(str(first.get("message", "the request failed")), code)
        data: dict[str, Any] = answer.get("data") or {}
        return data
