from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


async def backfill(apps, schema_editor):
    """Environments submitted before this migration: their last change is the submission
    (nothing else changes a submitted environment but its review)."""
    await schema_editor.client.execute_script(
        "UPDATE environment SET submitted_at = updated_at WHERE submitted_number IS NOT NULL"
    )


class Migration(migrations.Migration):
    dependencies = [('models', '0005_governance')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Environment',
            name='submitted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.RunPython(backfill, ops.RunPython.noop),
    ]
