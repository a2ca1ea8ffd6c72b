"""Query, Mutation and Subscription: each resolver translates, calls one service, translates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache
from strawberry.types.execution import ExecutionContext
from tortoise.queryset import QuerySet

from app.db import models
from app.domain.errors import BadUserInput, InvalidState, Unauthenticated
from app.eventbus import Lagging
from app.graphql.context import Info
from app.graphql.errors import code_in_place, stream_failure
from app.graphql.execution import FastListsContext
from app.graphql.limits import CachedValidation, RequestGuard, shape_rules
from app.graphql.listing import Edges, Listing
from app.graphql.types import (
    Activation,
    AfterEnvironment,
    AfterPending,
    BaseEnvironment,
    Environment,
    EnvironmentConnection,
    EnvironmentEdge,
    EnvironmentEvent,
    EnvironmentFilter,
    EnvironmentInput,
    EnvironmentUpdate,
    First,
    LibraryChange,
    LibraryDiff,
    LogLine,
    PageInfo,
    Policy,
    PolicyInput,
    PublishedComparison,
    User,
    Version,
)
from app.services import builds, events, governance, logs, policies
from app.services import environments as envs


def _listing(query: QuerySet[models.Environment]) -> list[Environment]:
    """The environments of `query`, completed from rows where the selection allows
    (app/graphql/listing.py), else as Environment objects."""
    made = Listing(query, lambda found: [Environment.of(e) for e in found])
    return cast(list[Environment], made)


def _given(value: Any) -> Any:
    """None for a field left out of an input (UNSET), else the value."""
    return None if value is strawberry.UNSET else value


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Info) -> User:
        return User.of(await info.context.user())

    @strawberry.field
    async def base_environments(self, info: Info) -> list[BaseEnvironment]:
        await info.context.user()
        return [BaseEnvironment.of(b) for b in await info.context.runtime.base_environments()]

    @strawberry.field(
        description="The environments the caller may see, by short name: all of them, or "
        "a page of `first` after the environment `after`."
    )
    async def environments(
        self,
        info: Info,
        first: First = None,
        after: AfterEnvironment = None,
    ) -> list[Environment]:
        user = await info.context.user()
        return _listing(await envs.environments_query(user, first, after))

    @strawberry.field
    async def environment(self, info: Info, id: strawberry.ID) -> Environment | None:
        user = await info.context.user()
        return Environment.of(await envs.get_environment(user, id))

    @strawberry.field(
        description="Admins: the environments waiting for review, oldest submission first: "
        "all of them, or a page of `first` after the environment `after`."
    )
    async def pending_environments(
        self,
        info: Info,
        first: First = None,
        after: AfterPending = None,
    ) -> list[Environment]:
        user = await info.context.user()
        return _listing(await envs.pending_query(user, first, after))

    @strawberry.field(description="One version, by id; NOT_FOUND if the caller may not see it.")
    async def version(self, info: Info, id: strawberry.ID) -> Version:
        user = await info.context.user()
        return Version.of(await envs.get_version(user, id))

    @strawberry.field
    async def library_diff(
        self, info: Info, from_version: strawberry.ID, to_version: strawberry.ID
    ) -> LibraryDiff:
        user = await info.context.user()
        changes = await envs.library_diff(user, from_version, to_version)
        return LibraryDiff(changes=[LibraryChange.of(c) for c in changes])

    @strawberry.field(
        description="Environments the caller may see, filtered, by short name, a page at a "
        "time (first: 1 to 100; after: a cursor from a previous page)."
    )
    async def search_environments(
        self,
        info: Info,
        filter: EnvironmentFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> EnvironmentConnection:
        user = await info.context.user()
        where = governance.SearchFilter()
        if filter is not None:
            where = governance.SearchFilter(
                status=filter.status,
                search=filter.search,
                creator=filter.creator,
                contains_package=filter.contains_package,
            )
        page = await governance.search_environments(user, where, first, after)
        cursors = [page.cursor(env) for env in page.environments]
        # Nodes completed from rows where the selection allows (app/graphql/listing.py).
        edges = Edges(
            ids=[env.id for env in page.environments],
            cursors=cursors,
            objects=lambda: [
                EnvironmentEdge(cursor=cursor, node=Environment.of(env))
                for cursor, env in zip(cursors, page.environments, strict=True)
            ],
        )
        return EnvironmentConnection(
            total_count=page.total_count,
            edges=cast(list[EnvironmentEdge], edges),
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=cursors[-1] if cursors else None,
            ),
        )

    @strawberry.field(
        description="Every published environment of the version's organization but its "
        "own, most similar first (the version's creator and admins). The list grows with "
        "the published environments: a dashboard passes first."
    )
    async def compare_with_published(
        self,
        info: Info,
        version_id: strawberry.ID,
        first: Annotated[
            int | None,
            strawberry.argument(
                description="Only the most similar ones (1 to 1000); all when null."
            ),
        ] = None,
    ) -> list[PublishedComparison]:
        user = await info.context.user()
        found = await governance.compare_with_published(user, version_id, first)
        return [PublishedComparison.of(f) for f in found]

    @strawberry.field(
        description="Every successful version the caller may see that has the package "
        'installed, optionally within a version specifier such as "<2.31".'
    )
    async def versions_with_package(
        self, info: Info, name: str, spec: str | None = None
    ) -> list[Version]:
        user = await info.context.user()
        return [Version.of(v) for v in await governance.versions_with_package(user, name, spec)]

    @strawberry.field(
        description="Admins: published environments nobody activated for that many days."
    )
    async def deprecation_candidates(
        self, info: Info, unused_for_days: int = 90
    ) -> list[Environment]:
        user = await info.context.user()
        found = await governance.deprecation_candidates(user, unused_for_days)
        return [Environment.of(e) for e in found]

    @strawberry.field(description="The organization's package policy.")
    async def policy(self, info: Info) -> Policy:
        user = await info.context.user()
        found = await policies.get_policy(user)
        return Policy(blocked_packages=found.blocked_packages, updated_at=found.updated_at)

    @strawberry.field(description="The newest events the caller may see, newest first.")
    async def events(self, info: Info, first: int = 100) -> list[EnvironmentEvent]:
        user = await info.context.user()
        return [EnvironmentEvent.of(e) for e in await events.latest(user, first)]


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_environment(self, info: Info, input: EnvironmentInput) -> Environment:
        user = await info.context.user()
        data = envs.EnvironmentData(
            short_name=input.short_name,
            full_name=input.full_name,
            description=_given(input.description),
            base_environment=_given(input.base_environment),
            python_version=_given(input.python_version),
            conda_libraries=input.conda_libraries,
            pip_libraries=input.pip_libraries,
        )
        return Environment.of(await envs.create_environment(info.context.runtime, user, data))

    @strawberry.mutation
    async def update_environment(
        self, info: Info, id: strawberry.ID, input: EnvironmentUpdate
    ) -> Environment:
        user = await info.context.user()
        if input.full_name is None:
            raise BadUserInput("fullName", "Full name cannot be null; leave it out to keep it.")
        changes = envs.EnvironmentChanges(
            full_name=_given(input.full_name),
            description=_given(input.description),
            clear_description=input.description is None,
            conda_libraries=_given(input.conda_libraries),
            pip_libraries=_given(input.pip_libraries),
        )
        return Environment.of(
            await envs.update_environment(info.context.runtime, user, id, changes)
        )

    @strawberry.mutation
    async def build_environment(self, info: Info, id: strawberry.ID) -> Version:
        user = await info.context.user()
        return Version.of(await envs.build_environment(info.context.runtime, user, id))

    @strawberry.mutation
    async def revert_environment(self, info: Info, id: strawberry.ID, version: int) -> Version:
        user = await info.context.user()
        return Version.of(await envs.revert_environment(info.context.runtime, user, id, version))

    @strawberry.mutation
    async def submit_environment(self, info: Info, id: strawberry.ID) -> Environment:
        user = await info.context.user()
        return Environment.of(await envs.submit_environment(info.context.runtime, user, id))

    @strawberry.mutation
    async def approve_environment(
        self, info: Info, id: strawberry.ID, acknowledge_violations: bool = False
    ) -> Environment:
        user = await info.context.user()
        return Environment.of(
            await envs.approve_environment(info.context.runtime, user, id, acknowledge_violations)
        )

    @strawberry.mutation
    async def reject_environment(self, info: Info, id: strawberry.ID, feedback: str) -> Environment:
        user = await info.context.user()
        return Environment.of(
            await envs.reject_environment(info.context.runtime, user, id, feedback)
        )

    @strawberry.mutation(description="Retire a published environment (admins).")
    async def deprecate_environment(self, info: Info, id: strawberry.ID) -> Environment:
        user = await info.context.user()
        return Environment.of(await envs.deprecate_environment(info.context.runtime, user, id))

    @strawberry.mutation(
        description="Stop a queued or running build; the version ends FAILED, saying who "
        "cancelled it."
    )
    async def cancel_build(self, info: Info, version_id: strawberry.ID) -> Version:
        user = await info.context.user()
        return Version.of(await builds.cancel_build(info.context.runtime, user, version_id))

    @strawberry.mutation(description="Admins: set the organization's package policy.")
    async def set_policy(self, info: Info, input: PolicyInput) -> Policy:
        user = await info.context.user()
        found = await policies.set_policy(user, input.blocked_packages)
        return Policy(blocked_packages=found.blocked_packages, updated_at=found.updated_at)

    @strawberry.mutation
    async def activate_environment(self, info: Info, id: strawberry.ID) -> Activation:
        user = await info.context.user()
        env, version = await envs.activate_environment(info.context.runtime, user, id)
        local = info.context.runtime.builder.kind == "local"
        return Activation(
            environment=Environment.of(env),
            version=Version.of(version),
            python_path=version.location if local else None,
            image=None if local else version.location,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def build_log(
        self, info: Info, version_id: strawberry.ID
    ) -> AsyncGenerator[LogLine, None]:
        user = await info.context.user()
        lines = await logs.follow_log(info.context.runtime, user, version_id)
        try:
            async for number, text in lines:
                yield LogLine(number=number, text=text)
        except Exception as exc:
            raise stream_failure(exc) from exc

    @strawberry.subscription(
        description="Every event the caller may see from now on (dashboards): builds, "
        "reviews, activations."
    )
    async def environment_events(self, info: Info) -> AsyncGenerator[EnvironmentEvent, None]:
        user = await info.context.user()
        try:
            async for event in events.follow(info.context.runtime.events, user):
                await info.context.user()  # still this token's? (checked again now and then)
                yield EnvironmentEvent.of(event)
        except Unauthenticated:
            raise
        except Lagging as exc:
            raise InvalidState(str(exc)) from None
        except Exception as exc:
            raise stream_failure(exc) from exc


class EnvyardSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Give every error its contract code (internal ones are logged there, masked)."""
        code_in_place(errors)


schema = EnvyardSchema(
    execution_context_class=FastListsContext,
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        lambda: ParserCache(maxsize=256),
        RequestGuard,
        shape_rules,
        lambda: CachedValidation(maxsize=256),
    ],
)
