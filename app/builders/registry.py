"""The image registry's own API, for what the Docker engine cannot do: deleting a manifest.

A version's image is pinned by digest (`host[:port]/path@sha256:...`); the retention policy
deletes that manifest (`DELETE /v2/<name>/manifests/<digest>`), which removes every tag of
it. A registry answers 405 when deletion is off (distribution's `storage.delete.enabled`):
the image then stays there, which is said in the worker's log. Blobs are freed by the
registry's own garbage collection, never by envyard. Credentials are the configured ones,
sent with HTTP basic authentication, and only to the configured registry; a loopback
registry is tried over HTTP when HTTPS fails, as Docker itself does.
"""

from __future__ import annotations

import ipaddress
import logging

import aiohttp

from app.settings import Settings

log = logging.getLogger(__name__)

MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 else host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


async def delete_manifest(settings: Settings, location: str) -> bool:
    """Delete the manifest `location` (`registry/name@sha256:...`) from the configured
    registry; True when it is gone (deleted now or before), False when the registry keeps
    it (deletion disabled, refused, or unreachable: logged)."""
    registry = settings.registry
    if not registry:
        return False
    host = registry.split("/")[0]
    name, _, digest = location.partition("@")
    if not name.startswith(host + "/") or not digest.startswith("sha256:"):
        log.warning("not deleting %s: it is not an image of the registry %s", location, host)
        return False
    path = f"/v2/{name.removeprefix(host + '/')}/manifests/{digest}"
    auth = (
        aiohttp.BasicAuth(settings.registry_username, settings.registry_password or "")
        if settings.registry_username
        else None
    )
    schemes = ["https", "http"] if _loopback(host) else ["https"]
    failure = "no answer"
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for scheme in schemes:
            try:
                async with session.delete(
                    f"{scheme}://{host}{path}", auth=auth, headers={"Accept": MANIFESTS}
                ) as answer:
                    status = answer.status
            except aiohttp.ClientError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                continue
            if status in (200, 202, 404):
                return True
            failure = (
                "the registry does not allow deleting images (storage.delete.enabled)"
                if status == 405
                else f"the registry answered {status}"
            )
            break
    log.warning("the image %s stays in the registry: %s", location, failure)
    return False
