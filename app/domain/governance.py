"""An admin's review tools: package policies, comparison with published environments,
package search terms, search cursors, and which published environments went unused.

Package names are compared canonically (PEP 503) across both managers: a rule "pyyaml<5.4"
matches conda's `pyyaml 5.3` and pip's `PyYAML 5.3.1` alike, since both are the same code.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from app.domain.errors import BadUserInput
from app.domain.requirements import PackageManager
from app.domain.versions import Package, canonical

MAX_RULES = 500
MAX_RULE_LENGTH = 200
MAX_DAYS = 36500
MAX_PAGE = 100
MAX_SEARCH_TEXT = 200

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# A name, then nothing or PEP 440 comparisons; conda's `=v` (the v series) is accepted too.
_RULE = re.compile(rf"^(?P<name>{_NAME.pattern})[ ]*(?P<spec>[=<>!~].*)?$")


# -- policies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One blocked-package entry, as the admin wrote it and as parsed."""

    text: str
    key: str  # canonical name
    specifier: SpecifierSet | None  # None: every version is blocked

    def matches(self, package: Package) -> bool:
        if canonicalize_name(package.name) != self.key:
            return False
        if self.specifier is None:
            return True
        try:
            version = Version(package.version)
        except InvalidVersion:
            # A version PEP 440 cannot order (some conda builds): only a rule that names it
            # exactly can match it.
            return any(
                s.operator in ("==", "===") and s.version == package.version for s in self.specifier
            )
        return self.specifier.contains(version, prereleases=True)


@dataclass(frozen=True, slots=True)
class Violation:
    name: str
    manager: PackageManager
    version: str
    rule: str


def parse_rule(raw: str) -> Rule:
    """One rule; ValueError saying why it is not one."""
    text = raw.strip()
    if not text:
        raise ValueError("a rule is empty")
    if len(text) > MAX_RULE_LENGTH:
        raise ValueError(f"a rule is longer than {MAX_RULE_LENGTH} characters")
    match = _RULE.fullmatch(text)
    if match is None:
        raise ValueError(
            "write a package name, optionally followed by version comparisons "
            "(telnetlib3, pyyaml<5.4, requests>=2.0,<2.31, numpy==1.21.0, numpy=1.21)"
        )
    spec = (match["spec"] or "").replace(" ", "")
    if not spec:
        return Rule(text, canonicalize_name(match["name"]), None)
    if re.fullmatch(r"=[^=<>!~,]+", spec):  # conda's `=v`: v or any release of the v series
        spec = f"=={spec[1:]}.*"
    elif re.fullmatch(r"==[^=<>!~,*]+", spec) and not _is_pep440(spec[2:]):
        spec = f"={spec}"  # a conda version PEP 440 cannot read (1.1.1w): exactly that text
    try:
        specifier = SpecifierSet(spec)
    except InvalidSpecifier:
        raise ValueError(f"{spec!r} is not a valid version specifier") from None
    return Rule(text, canonicalize_name(match["name"]), specifier)


def _is_pep440(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def parse_rules(field: str, raws: Sequence[str], *, strict: bool = True) -> list[Rule]:
    """The whole list; BadUserInput names the field and the offending entry. With
    strict=False (rules read back from storage, which may predate a check) a rule that
    repeats an earlier one is dropped rather than refused, and the length is not checked."""
    if strict and len(raws) > MAX_RULES:
        raise BadUserInput(field, f"{field}: at most {MAX_RULES} rules")
    rules: list[Rule] = []
    seen: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(raws):
        try:
            rule = parse_rule(raw)
        except ValueError as exc:
            raise BadUserInput(
                field, f"{field}[{index}] {raw!r}: {exc}.", index=index, entry=raw
            ) from None
        same = (rule.key, str(rule.specifier or ""))  # SpecifierSet's str is sorted
        if same in seen:
            if not strict:
                continue
            raise BadUserInput(
                field,
                f"{field}[{index}] {raw!r} is the same rule as {seen[same]!r}.",
                index=index,
                entry=raw,
            )
        seen[same] = raw
        rules.append(rule)
    return rules


def violations(packages: Iterable[Package], rules: Sequence[Rule]) -> list[Violation]:
    """Every installed package that matches a rule (one entry per package and rule), by
    name, manager, then rule."""
    by_key: dict[str, list[Rule]] = {}
    for rule in rules:
        by_key.setdefault(rule.key, []).append(rule)
    found = [
        Violation(p.name, p.manager, p.version, rule.text)
        for p in packages
        for rule in by_key.get(canonicalize_name(p.name), ())
        if rule.matches(p)
    ]
    return sorted(found, key=lambda v: (canonicalize_name(v.name), v.manager.value, v.rule))


def describe(found: Sequence[Violation]) -> str:
    """Violations as a person reads them, for an error or an event."""
    return "; ".join(
        f"{v.name} {v.version} ({v.manager.value.lower()}) matches {v.rule!r}" for v in found
    )


# -- comparison with published environments ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Similarity:
    similarity: float  # Jaccard of installed (manager, canonical name) sets
    same_versions: int  # packages installed at the same version in both


Installed = Mapping[tuple[str, str], str]  # (manager, canonical name) -> version


def installed(records: Iterable[Mapping[str, str]]) -> Installed:
    """A version's packages as Version.packages records them, keyed for comparison."""
    return {(r["manager"], canonical(r["name"])): r["version"] for r in records}


def compare(published: Installed, compared: Installed) -> Similarity:
    """How alike two installed sets are. The change list, which is longer to make and to
    send, is diff_packages of the same versions, made when asked for."""
    shared = published.keys() & compared.keys()
    union = len(published) + len(compared) - len(shared)
    return Similarity(
        similarity=len(shared) / union if union else 1.0,
        same_versions=sum(1 for key in shared if published[key] == compared[key]),
    )


def most_similar_first(found: Sequence[tuple[str, Similarity]]) -> list[int]:
    """Indexes of (short name, similarity) pairs, most similar first: an exact duplicate
    first of all, then most packages at the same version, then by short name."""
    return sorted(
        range(len(found)),
        key=lambda i: (-found[i][1].similarity, -found[i][1].same_versions, found[i][0]),
    )


# -- package search ------------------------------------------------------------------------


def check_package_name(field: str, value: str) -> str:
    """A package name to look for, canonical."""
    text = value.strip()
    if len(text) > MAX_RULE_LENGTH or not _NAME.fullmatch(text):
        raise BadUserInput(field, f"{field} {value!r} is not a package name.")
    return canonicalize_name(text)


def check_specifier(field: str, value: str | None) -> SpecifierSet | None:
    """A version specifier such as "<2.31" or ">=1,<2"; None or empty: any version."""
    if value is None or not value.strip():
        return None
    text = value.replace(" ", "")
    if len(text) > MAX_RULE_LENGTH:
        raise BadUserInput(field, f"{field} is longer than {MAX_RULE_LENGTH} characters.")
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise BadUserInput(
            field, f"{field} {value!r} is not a version specifier (e.g. <2.31 or >=1.0,<2)."
        ) from None


def in_specifier(version: str, specifier: SpecifierSet | None) -> bool:
    if specifier is None:
        return True
    try:
        return specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


# -- search --------------------------------------------------------------------------------


def check_first(value: int) -> int:
    if not 1 <= value <= MAX_PAGE:
        raise BadUserInput("first", f"first must be between 1 and {MAX_PAGE}.")
    return value


def check_search_text(field: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > MAX_SEARCH_TEXT or not text.isprintable():
        raise BadUserInput(
            field, f"{field} must be one line of at most {MAX_SEARCH_TEXT} characters."
        )
    return text


_CURSOR_PREFIX = "env:"


def cursor(short_name: str, env_id: int) -> str:
    """An opaque position after which the next page starts (results are ordered by short
    name, unique in an organization, then id)."""
    raw = f"{_CURSOR_PREFIX}{short_name}:{env_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(value: str) -> tuple[str, int]:
    """(short name, id) of a cursor; BadUserInput("after") for anything else."""
    invalid = BadUserInput("after", "This cursor is not one this server gave out.")
    if len(value) > 100:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if not raw.startswith(_CURSOR_PREFIX):
        raise invalid
    short_name, _, number = raw.removeprefix(_CURSOR_PREFIX).rpartition(":")
    if not short_name or not number.isdigit():
        raise invalid
    return short_name, int(number)


# -- deprecation ---------------------------------------------------------------------------


def check_days(value: int) -> int:
    if not 0 <= value <= MAX_DAYS:
        raise BadUserInput("unusedForDays", f"unusedForDays must be between 0 and {MAX_DAYS}.")
    return value


def unused_since(
    published_at: datetime, last_activated: datetime | None, now: datetime, days: int
) -> bool:
    """Whether a published environment went unused for `days`: its last activation, or
    its (latest) publication when nobody activated it since, is at least that long ago."""
    since = published_at if last_activated is None else max(published_at, last_activated)
    return now - since >= timedelta(days=days)
