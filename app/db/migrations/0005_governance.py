from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index



async def backfill(apps, schema_editor):
    """Installed rows for the versions built before this migration; published_at from the
    last change of published environments (the best there is). Plain SQL: historical models
    do not insert in bulk on every backend."""
    import json

    from packaging.utils import canonicalize_name

    db = schema_editor.client
    postgres = schema_editor.DIALECT == "postgres"
    marks = ", ".join(f"${i}" if postgres else "?" for i in range(1, 7))
    rows = await db.execute_query_dict(
        "SELECT id, environment_id, number, packages FROM version WHERE status = 'SUCCEEDED'"
    )
    best: dict[int, tuple[int, int]] = {}
    for row in rows:
        env_id, number = row["environment_id"], row["number"]
        if env_id not in best or number > best[env_id][0]:
            best[env_id] = (number, row["id"])
    active_ids = {version_id for _, version_id in best.values()}
    values = []
    for row in rows:
        packages = row["packages"]
        for p in json.loads(packages) if isinstance(packages, str) else packages or []:
            values.append(
                [
                    row["id"],
                    row["environment_id"],
                    p["manager"],
                    canonicalize_name(p["name"]),
                    p["version"],
                    row["id"] in active_ids,
                ]
            )
    if values:
        await db.execute_many(
            "INSERT INTO installed_package"
            " (version_id, environment_id, manager, name, version_text, active)"
            f" VALUES ({marks})",
            values,
        )
    await db.execute_script(
        "UPDATE environment SET published_at = updated_at WHERE published_number IS NOT NULL"
    )


class Migration(migrations.Migration):
    dependencies = [('models', '0004_retention_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Installed',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.ForeignKeyField('models.Version', source_field='version_id', db_constraint=True, to_field='id', related_name='installed', on_delete=OnDelete.CASCADE)),
                ('environment', fields.ForeignKeyField('models.Environment', source_field='environment_id', db_constraint=True, to_field='id', related_name='installed', on_delete=OnDelete.CASCADE)),
                ('manager', fields.CharField(max_length=5)),
                ('name', fields.CharField(max_length=200)),
                ('version_text', fields.CharField(max_length=200)),
                ('active', fields.BooleanField(default=False, db_default=False)),
            ],
            options={'table': 'installed_package', 'app': 'models', 'indexes': [Index(fields=['name', 'active']), Index(fields=['environment_id', 'active']), Index(fields=['version_id'])], 'pk_attr': 'id', 'table_description': 'One installed package of a successful version, for searches by package: the same'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Policy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.OneToOneField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='policy', on_delete=OnDelete.CASCADE)),
                ('blocked_packages', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_by', fields.ForeignKeyField('models.User', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name='policies', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'policy', 'app': 'models', 'pk_attr': 'id', 'table_description': "An organization's package policy, set by its admins."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Environment',
            name='published_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Event',
            index=Index(fields=['environment_id', 'kind']),
        ),
        ops.RunPython(backfill, ops.RunPython.noop),
    ]
