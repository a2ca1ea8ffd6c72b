"""Thin arq job functions: each calls one service with the runtime kept in ctx."""

from __future__ import annotations

from typing import Any

from app.services.builds import run_build


async def build_version(ctx: dict[str, Any], version_id: int, attempt: int) -> None:
    await run_build(ctx["runtime"], version_id, attempt)
