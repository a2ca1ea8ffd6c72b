"""`envyard kernel ...`: the notebook-side commands (see app/kernels/__init__.py).

Progress goes to standard error; what a script needs (a kernel name, an environment id,
the kernel list) to standard output. A failure is one line, `envyard: ...`, exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.builders import BuildFailed
from app.domain.requirements import PackageManager
from app.domain.versions import Package, diff_packages
from app.kernels import specs
from app.kernels.api import Api, ApiError, KernelError

ME = "query { me { username organization } }"
FIND = """
query { me { username organization } environments {
  id shortName fullName status pythonVersion
  activeVersion { id number } versions { id number status } } }
"""
VERSION = """
query($id: ID!) { version(id: $id) { id number
  packages { name version manager } lockfile(format: LOCK) } }
"""
ACTIVATE = """
mutation($id: ID!) { activateEnvironment(id: $id) { pythonPath image version { id number } } }
"""
# The distributions an interpreter sees, `[name, version]` pairs (any Python 3.8+).
FREEZE = (
    "import json, importlib.metadata as m; print(json.dumps(sorted({d.metadata['Name']: "
    "d.version for d in m.distributions() if d.metadata['Name']}.items())))"
)
CREATE = """
mutation($input: EnvironmentInput!) { createEnvironment(input: $input) { id shortName status } }
"""
BUILD = "mutation($id: ID!) { buildEnvironment(id: $id) { id number status } }"
LAUNCHER = ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
# An activated environment without ipykernel: the kernel's own packages are appended to
# sys.path after the environment's, so the environment's always come first.
OVERLAY_LAUNCHER = (
    "import sys; sys.path.append(sys.argv.pop(1)); "
    "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()"
)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _emit(line: str) -> None:
    _say(f"  {line}")


def _data_dir() -> Path:
    """Where the copies live on this machine (ENVYARD_KERNEL_DATA_DIR)."""
    default = Path.home() / ".local" / "share" / "envyard"
    return Path(os.environ.get("ENVYARD_KERNEL_DATA_DIR") or default).expanduser()


def _environment(api: Api, short_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(me, the environment) for a short name of the caller's organization."""
    found = api(FIND)
    me, environments = found.get("me"), found.get("environments")
    if not isinstance(me, dict) or not isinstance(environments, list):
        raise ApiError(f"envyard at {api.url} answered without me and environments")
    for env in environments:
        if env["shortName"].lower() == short_name.lower():
            return me, env
    raise KernelError(
        f"no environment {short_name!r} that you may use in organization {me['organization']!r}"
    )


def _activation(api: Api, env: dict[str, Any]) -> dict[str, Any]:
    """What activateEnvironment gives the caller: the version they may use (the creator's
    latest successful one, everyone else's the published one), or why there is none."""
    try:
        return api.field(ACTIVATE, "activateEnvironment", id=env["id"])
    except ApiError as exc:
        if exc.code is None:  # no answer of the API's own
            raise
        raise KernelError(
            f"{env['shortName']} has no version you may use (status {env['status']}): {exc}"
        ) from None


def _chosen_version(api: Api, env: dict[str, Any], number: int | None) -> dict[str, Any]:
    """Version `number`, which must have built; by default the one activation gives."""
    if number is None:
        version = _activation(api, env).get("version")
        if not isinstance(version, dict):
            raise ApiError(f"envyard at {api.url} answered an activation without its version")
        return version
    for version in env["versions"]:
        if version["number"] == number:
            if version["status"] != "SUCCEEDED":
                raise KernelError(
                    f"version {number} of {env['shortName']} did not build "
                    f"({version['status']}): pick a version that did"
                )
            return dict(version)
    raise KernelError(f"{env['shortName']} has no version {number}")


def _packages(rows: list[dict[str, str]]) -> list[Package]:
    return [Package(r["name"], r["version"], PackageManager(r["manager"])) for r in rows]


# -- copy-to-local -------------------------------------------------------------------------


async def copy_to_local(args: argparse.Namespace) -> int:
    from app.kernels.copy_local import Sources, check_space, new_prefix, read_lock, recreate

    chosen_name = specs.kernel_name(args.name) if args.name else None  # before any request
    api = Api.configured(args.url, args.token)
    me, env = _environment(api, args.short_name)
    chosen = _chosen_version(api, env, args.version)
    version = api.field(VERSION, "version", id=chosen["id"])
    if not version.get("lockfile"):
        raise KernelError(f"version {version['number']} of {env['shortName']} has no lock file")
    name = chosen_name or specs.kernel_name(f"{env['shortName']}-v{version['number']}")
    specs.check_free(name, args.prefix, args.force)
    recorded = await read_lock(version["lockfile"])
    environments = _data_dir() / "environments"
    previous = _copy_of(specs.installed(name, args.prefix), environments)
    prefix = new_prefix(environments, name)
    _say(
        f"Copying {env['shortName']} version {version['number']}"
        f"{'' if args.version is not None else ' (the one activation gives you)'} "
        f"({len(recorded.conda)} conda, {len(recorded.pypi)} pip packages) to {prefix}"
    )
    channels = args.channel or os.environ.get("ENVYARD_CONDA_CHANNELS", "").split()
    extra = args.extra_index_url or os.environ.get("ENVYARD_EXTRA_INDEX_URLS", "").split()
    sources = Sources(
        args.index_url or os.environ.get("ENVYARD_INDEX_URL"),
        extra,
        channels,
        verify_hashes=not args.no_verify_hashes,
    )
    try:
        check_space(prefix, previous)
        try:
            await recreate(
                recorded, env["pythonVersion"], prefix, sources, _data_dir() / "cache", _emit
            )
        except BuildFailed as exc:
            raise KernelError(f"the copy failed: {exc}") from None
        python = str(prefix / "bin" / "python")
        where = specs.install(
            name,
            [python, *LAUNCHER],
            args.display_name or f"{env['fullName']} ({env['shortName']} v{version['number']})",
            {
                "url": api.url,
                "organization": me["organization"],
                "shortName": env["shortName"],
                "environmentId": env["id"],
                "version": version["number"],
                "versionId": version["id"],
                "mode": "copy",
            },
            {"PATH": f"{prefix / 'bin'}:${{PATH}}"},
            args.prefix,
        )
    except BaseException:
        # The kernel of that name (if any) still runs its own copy: only the new one goes.
        shutil.rmtree(prefix, ignore_errors=True)
        raise
    _say(f"Kernel {name} registered at {where}")
    if previous is not None and previous != prefix:
        _remove_copy(previous)
    print(name)
    return 0


def _copy_of(kernel: specs.Kernel | None, environments: Path) -> Path | None:
    """The directory under `environments` holding the copy a kernel runs, if it does."""
    if kernel is None or not kernel.spec.get("argv"):
        return None
    interpreter = Path(os.path.abspath(kernel.interpreter))
    if not interpreter.is_relative_to(environments):
        return None
    parts = interpreter.relative_to(environments).parts
    return environments / parts[0] if len(parts) > 1 else None


def _remove_copy(directory: Path) -> None:
    """Remove a replaced copy, unless another kernel still runs it."""
    environments = directory.parent
    if any(_copy_of(kernel, environments) == directory for kernel in specs.kernels()):
        _say(f"The previous copy {directory} stays: another kernel runs it")
        return
    try:
        shutil.rmtree(directory)
    except OSError as exc:
        _say(f"The previous copy {directory} could not be removed ({exc}): remove it by hand")
    else:
        _say(f"Removed the previous copy {directory}")


# -- copy-to-dataflow ----------------------------------------------------------------------


async def copy_to_dataflow(args: argparse.Namespace) -> int:
    from app.kernels.copy_dataflow import inspect

    kernel = specs.find(args.kernel)
    interpreter = kernel.python_interpreter()
    api = Api.configured(args.url, args.token)
    origin = kernel.origin
    came_from = _origin_version(api, origin) if origin and origin.get("versionId") else None
    recorded = _packages(came_from["packages"]) if came_from else []
    found = await inspect(interpreter, recorded)
    if origin is not None and came_from is not None:
        _say_changes(origin, came_from["number"], recorded, found.installed, found.kernel_closure)
    for item in found.left_out:
        _say(f"left out: {item.manager.value.lower()} {item.name} {item.version}: {item.why}")
    _say(
        f"Python {found.python_version}; conda libraries: {', '.join(found.conda) or 'none'}; "
        f"pip libraries: {', '.join(found.pip) or 'none'}"
    )
    created = api.field(
        CREATE,
        "createEnvironment",
        input={
            "shortName": args.short_name,
            "fullName": args.full_name or f"{kernel.display_name} (from kernel {kernel.name})",
            "pythonVersion": found.python_version,
            "condaLibraries": found.conda,
            "pipLibraries": found.pip,
        },
    )
    _say(f"Created environment {created['shortName']} ({created['status']})")
    if args.build:
        version = api.field(BUILD, "buildEnvironment", id=created["id"])
        _say(f"Build of version {version['number']} queued ({version['status']})")
    print(created["id"])
    return 0


def _origin_version(api: Api, origin: dict[str, Any]) -> dict[str, Any] | None:
    """The envyard version a kernel came from, if it came from this envyard and the caller
    may still see it (version ids of another envyard mean nothing here)."""
    if origin.get("url") != api.url:
        _say(
            f"came from {origin.get('shortName')} version {origin.get('version')} of another "
            f"envyard ({origin.get('url')}): its packages are not compared"
        )
        return None
    try:
        version = api.field(VERSION, "version", id=origin["versionId"])
    except ApiError as exc:
        if exc.code is None:  # no answer of the API's own
            raise
        _say(f"came from {origin.get('shortName')} version {origin.get('version')} ({exc})")
        return None
    return version


def _say_changes(
    origin: dict[str, Any],
    number: int,
    recorded: list[Package],
    installed: list[Package],
    kernel_closure: set[str],
) -> None:
    """Say which envyard version a kernel came from and what changed in it since."""
    kept = {p.key for p in recorded}
    # What the copy added for the kernel itself is not a change of the environment.
    now = [
        p
        for p in installed
        if p.key in kept or not (p.manager is PackageManager.PIP and p.key[1] in kernel_closure)
    ]
    said = ", ".join(
        f"{c.kind.value.lower()} {c.name} {c.before or ''}{' -> ' if c.before and c.after else ''}"
        f"{c.after or ''}".strip()
        for c in diff_packages(recorded, now)
    )
    _say(
        f"came from {origin.get('shortName')} version {number} "
        f"({origin.get('organization')}); changed since: {said or 'nothing'}"
    )


# -- list ----------------------------------------------------------------------------------


async def list_kernels(args: argparse.Namespace) -> int:
    activity = _Activity.connect(args)
    for kernel in specs.kernels():
        origin = kernel.origin
        where = kernel.interpreter if kernel.spec.get("argv") else "(no argv)"
        gone = "" if Path(where).is_file() else "  [interpreter gone]"
        if origin is None:
            print(f"{kernel.name}\t{kernel.display_name}\tlocal\t{where}{gone}")
            continue
        print(
            f"{kernel.name}\t{kernel.display_name}\tenvyard {origin.get('organization')}/"
            f"{origin.get('shortName')} v{origin.get('version')} ({origin.get('mode', 'copy')}), "
            f"{activity.state(origin)}\t{where}{gone}"
        )
    return 0


class _Activity:
    """Whether the version a kernel came from is the one activation gives the caller now
    (the API's own answer, once per environment). A kernel is matched by the envyard it
    came from (url), its organization and the environment's id: short names are reused."""

    def __init__(self, api: Api | None, me: dict[str, Any] | None) -> None:
        self.api, self.me = api, me
        self._activated: dict[str, dict[str, Any] | str] = {}

    @classmethod
    def connect(cls, args: argparse.Namespace) -> _Activity:
        try:
            api = Api.configured(args.url, args.token)
            me = api.field(ME, "me")
        except KernelError as exc:
            _say(f"without the envyard API ({exc}), whether versions are active is not shown")
            return cls(None, None)
        return cls(api, me)

    def state(self, origin: dict[str, Any]) -> str:
        if self.api is None or self.me is None:
            return "unknown"
        if origin.get("url") != self.api.url:
            return f"unknown (from another envyard, {origin.get('url')})"
        if origin.get("organization") != self.me.get("organization"):
            return f"unknown (not your organization, {self.me.get('organization')})"
        env_id = origin.get("environmentId")
        if not isinstance(env_id, str):
            return "unknown (its kernelspec names no environment id)"
        if env_id not in self._activated:
            self._activated[env_id] = self._activate(env_id)
        activated = self._activated[env_id]
        if isinstance(activated, str):
            return activated
        if activated["id"] == origin.get("versionId"):
            return "active"
        return f"not active (active: v{activated['number']})"

    def _activate(self, env_id: str) -> dict[str, Any] | str:
        """The version activation gives, or the state to show instead."""
        assert self.api is not None
        try:
            activation = self.api.field(ACTIVATE, "activateEnvironment", id=env_id)
        except ApiError as exc:
            if exc.code == "NOT_FOUND":
                return "no longer visible"
            return f"not active ({exc})" if exc.code else f"unknown ({exc})"
        version = activation.get("version")
        return version if isinstance(version, dict) else "unknown (no version in the answer)"


# -- activate ------------------------------------------------------------------------------


async def activate(args: argparse.Namespace) -> int:
    chosen_name = specs.kernel_name(args.name) if args.name else None  # before any request
    api = Api.configured(args.url, args.token)
    me, env = _environment(api, args.short_name)
    activation = _activation(api, env)
    python, number = activation["pythonPath"], activation["version"]["number"]
    if not python:
        raise KernelError(
            f"{env['shortName']} is built as Docker image {activation['image']}, not on this "
            "host: use envyard kernel copy-to-local"
        )
    if not Path(python).exists():
        raise KernelError(
            f"{env['shortName']} version {number} lives at {python}, which this machine "
            "cannot see: use envyard kernel copy-to-local"
        )
    name = chosen_name or specs.kernel_name(f"{env['shortName']}-v{number}-in-place")
    specs.check_free(name, args.prefix, args.force)
    previous = _copy_of(specs.installed(name, args.prefix), _data_dir() / "environments")
    argv = [python, *LAUNCHER]
    if not await _imports(python, "ipykernel"):
        overlay = await _kernel_overlay(python, args.index_url)
        argv = [python, "-c", OVERLAY_LAUNCHER, str(overlay), "-f", "{connection_file}"]
    bin_dir = str(Path(python).parent)
    where = specs.install(
        name,
        argv,
        args.display_name or f"{env['fullName']} ({env['shortName']} v{number}, in place)",
        {
            "url": api.url,
            "organization": me["organization"],
            "shortName": env["shortName"],
            "environmentId": env["id"],
            "version": number,
            "versionId": activation["version"]["id"],
            "mode": "in-place",
        },
        {"PATH": f"{bin_dir}:${{PATH}}"},
        args.prefix,
    )
    _say(f"Kernel {name} registered at {where}, running {python}")
    if previous is not None:  # it replaced (--force) a kernel that ran a copy
        _remove_copy(previous)
    print(name)
    return 0


async def _imports(python: str, module: str) -> bool:
    """Whether that Python (isolated from the user's site and PYTHONPATH) imports it."""
    proc = await asyncio.create_subprocess_exec(
        python, "-I", "-c", f"import {module}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await proc.wait() == 0


async def _kernel_overlay(python: str, index_url: str | None) -> Path:
    """ipykernel and what it needs, for that Python, in a directory of their own (made once
    per interpreter and set of distributions): the activated environment itself is never
    changed. Its distributions constrain the install, so that what the kernel needs and the
    environment has too is the environment's version (which comes first on sys.path)."""
    from uv import find_uv_bin

    from app.builders.local import LocalHost
    from app.builders.steps import run_step
    from app.kernels.copy_local import client_env

    host = LocalHost(client_env(), "/")
    freeze = await _freeze(host, python)
    digest = hashlib.sha256("\n".join([python, *freeze]).encode()).hexdigest()[:16]
    overlays = _data_dir() / "kernel-overlays"
    overlay = overlays / digest
    if (overlay / ".complete").exists():
        return overlay
    index = index_url or os.environ.get("ENVYARD_INDEX_URL")
    _say(f"The environment has no ipykernel: installing one beside it, in {overlay}")
    try:
        overlays.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=overlays))
    except OSError as exc:
        raise KernelError(f"no directory for ipykernel under {overlays}: {exc}") from None
    try:
        (work / ".constraints.txt").write_text("".join(f"{line}\n" for line in freeze))
        command = [find_uv_bin(), "pip", "install", "--python", python, "--target", str(work)]
        command += [*(["--index-url", index] if index else [])]
        command += ["--constraint", str(work / ".constraints.txt"), "ipykernel"]
        try:
            await run_step(
                host,
                _emit,
                "uv pip install ipykernel",
                command,
                f"the package index {index or 'PyPI'}",
            )
        except BuildFailed as exc:
            raise KernelError(str(exc)) from None
        (work / ".complete").touch()
        try:
            work.rename(overlay)
        except OSError:  # another activation made it first
            if not (overlay / ".complete").exists():
                raise KernelError(f"{overlay} is incomplete: remove it") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return overlay


async def _freeze(host: Any, python: str) -> list[str]:
    """`name==version` of every distribution that Python sees."""
    from app.builders.process import ChildFailed

    try:
        out = await host.output([python, "-I", "-c", FREEZE])
        pairs = json.loads(out.strip().splitlines()[-1])
        return [f"{name}=={version}" for name, version in pairs]
    except (ChildFailed, OSError) as exc:
        raise KernelError(f"{python} cannot be run: {exc}") from None
    except (ValueError, TypeError, IndexError):
        raise KernelError(f"{python} did not say which distributions it has") from None


# -- the parser ----------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    kernel = commands.add_parser(
        "kernel",
        help="envyard environments as Jupyter kernels (on a notebook server)",
        description="Run on the notebook server; talk to envyard at ENVYARD_URL (its /graphql "
        "address) with ENVYARD_TOKEN, or --url and --token. Needs envyard[kernel].",
    ).add_subparsers(dest="kernel_command", required=True, metavar="KERNEL_COMMAND")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", default=None, help="envyard's /graphql address")
        parser.add_argument("--token", default=None, help="your envyard API token")
        parser.set_defaults(no_settings=True)

    def naming(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default=None, help="the kernel's name")
        parser.add_argument("--display-name", default=None, help="the name Jupyter shows")
        parser.add_argument(
            "--prefix", default=None, help="install the kernelspec under this prefix"
        )
        parser.add_argument("--force", action="store_true", help="replace a kernel of that name")

    local = kernel.add_parser(
        "copy-to-local", help="recreate an envyard version here as a Jupyter kernel"
    )
    local.add_argument("short_name", metavar="SHORT_NAME", help="the environment's short name")
    local.add_argument("--version", type=int, default=None, help="default: the active one")
    local.add_argument("--index-url", default=None, help="default: ENVYARD_INDEX_URL or PyPI")
    local.add_argument(
        "--extra-index-url",
        action="append",
        default=None,
        help="another pip index (repeatable); default: ENVYARD_EXTRA_INDEX_URLS",
    )
    local.add_argument(
        "--channel",
        action="append",
        default=None,
        help="conda channel (repeatable); default: ENVYARD_CONDA_CHANNELS or the version's",
    )
    local.add_argument(
        "--no-verify-hashes",
        action="store_true",
        help="install pip files without checking them against the recorded sha256 (an index "
        "that serves other files for the same versions, another platform's wheels)",
    )
    naming(local)
    common(local)
    local.set_defaults(run=_sync(copy_to_local))

    dataflow = kernel.add_parser(
        "copy-to-dataflow", help="make a Saved envyard environment of a local kernel"
    )
    dataflow.add_argument("kernel", metavar="KERNEL", help="the local kernel's name")
    dataflow.add_argument("--short-name", required=True, help="the new environment's")
    dataflow.add_argument(
        "--full-name", default=None, help="default: the kernel's display name and name"
    )
    dataflow.add_argument("--build", action="store_true", help="queue its first build")
    common(dataflow)
    dataflow.set_defaults(run=_sync(copy_to_dataflow))

    listing = kernel.add_parser("list", help="local kernels and the envyard versions they are")
    common(listing)
    listing.set_defaults(run=_sync(list_kernels))

    active = kernel.add_parser(
        "activate", help="a kernel that runs the activated version in place (no copy)"
    )
    active.add_argument("short_name", metavar="SHORT_NAME", help="the environment's short name")
    active.add_argument("--index-url", default=None, help="for ipykernel, if it lacks one")
    naming(active)
    common(active)
    active.set_defaults(run=_sync(activate))


def _sync(command: Any) -> Any:
    def run(args: argparse.Namespace, settings: object) -> int:
        try:
            return int(asyncio.run(command(args)))
        except KernelError as exc:
            print(f"envyard: {exc}", file=sys.stderr, flush=True)
            return 1
        except OSError as exc:  # a file this machine would not write or read
            print(f"envyard: {exc}", file=sys.stderr, flush=True)
            return 1

    return run
