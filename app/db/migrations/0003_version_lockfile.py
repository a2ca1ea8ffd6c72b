from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_version_heartbeat')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Version',
            name='lockfile',
            field=fields.TextField(null=True),
        ),
        ops.AddField(
            model_name='Version',
            name='channels',
            field=fields.JSONField(null=True),
        ),
    ]
