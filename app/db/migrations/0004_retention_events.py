from tortoise import migrations
from tortoise.migrations import operations as ops
from app.domain.statuses import EventKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_version_lockfile')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Event',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('environment', fields.ForeignKeyField('models.Environment', source_field='environment_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('kind', fields.CharEnumField(description='CREATED: CREATED\nUPDATED: UPDATED\nBUILD_QUEUED: BUILD_QUEUED\nBUILD_SUCCEEDED: BUILD_SUCCEEDED\nBUILD_FAILED: BUILD_FAILED\nBUILD_CANCELLED: BUILD_CANCELLED\nREVERTED: REVERTED\nSUBMITTED: SUBMITTED\nAPPROVED: APPROVED\nREJECTED: REJECTED\nDEPRECATED: DEPRECATED\nACTIVATED: ACTIVATED\nARCHIVED: ARCHIVED\nRESTORED: RESTORED', enum_type=EventKind, max_length=20)),
                ('actor', fields.ForeignKeyField('models.User', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.SET_NULL)),
                ('version_number', fields.IntField(null=True)),
                ('note', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One change of an environment, written in the transaction that made it.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Version',
            name='archived',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Version',
            name='size_bytes',
            field=fields.BigIntField(null=True),
        ),
    ]
