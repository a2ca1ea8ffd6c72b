"""Query, Mutation and Subscription: each resolver translates, calls one service, translates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.types.execution import ExecutionContext

from app.domain.errors import BadUserInput
from app.graphql.context import Info
from app.graphql.errors import code_in_place, stream_failure
from app.graphql.limits import RequestGuard
from app.graphql.types import (
    Activation,
    BaseEnvironment,
    Environment,
    EnvironmentInput,
    EnvironmentUpdate,
    LibraryChange,
    LibraryDiff,
    LogLine,
    User,
    Version,
)
from app.services import builds, logs
from app.services import environments as envs


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

    @strawberry.field
    async def environments(self, info: Info) -> list[Environment]:
        user = await info.context.user()
        return [Environment.of(e) for e in await envs.list_environments(user)]

    @strawberry.field
    async def environment(self, info: Info, id: strawberry.ID) -> Environment | None:
        user = await info.context.user()
        return Environment.of(await envs.get_environment(user, id))

    @strawberry.field
    async def pending_environments(self, info: Info) -> list[Environment]:
        user = await info.context.user()
        return [Environment.of(e) for e in await envs.pending_environments(user)]

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
        return Environment.of(await envs.update_environment(user, id, changes))

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
    async def approve_environment(self, info: Info, id: strawberry.ID) -> Environment:
        user = await info.context.user()
        return Environment.of(await envs.approve_environment(user, id))

    @strawberry.mutation
    async def reject_environment(self, info: Info, id: strawberry.ID, feedback: str) -> Environment:
        user = await info.context.user()
        return Environment.of(await envs.reject_environment(user, id, feedback))

    @strawberry.mutation(description="Retire a published environment (admins).")
    async def deprecate_environment(self, info: Info, id: strawberry.ID) -> Environment:
        user = await info.context.user()
        return Environment.of(await envs.deprecate_environment(user, id))

    @strawberry.mutation(
        description="Stop a queued or running build; the version ends FAILED, saying who "
        "cancelled it."
    )
    async def cancel_build(self, info: Info, version_id: strawberry.ID) -> Version:
        user = await info.context.user()
        return Version.of(await builds.cancel_build(info.context.runtime, user, version_id))

    @strawberry.mutation
    async def activate_environment(self, info: Info, id: strawberry.ID) -> Activation:
        user = await info.context.user()
        env, version = await envs.activate_environment(user, id)
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


class EnvyardSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Give every error its contract code (internal ones are logged there, masked)."""
        code_in_place(errors)


schema = EnvyardSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        RequestGuard,
        lambda: QueryDepthLimiter(max_depth=12),
        lambda: MaxAliasesLimiter(max_alias_count=50),
    ],
)
