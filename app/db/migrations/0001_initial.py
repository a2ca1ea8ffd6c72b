from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from app.domain.statuses import EnvironmentStatus, VersionStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Organization',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'organization', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.CASCADE)),
                ('username', fields.CharField(max_length=64)),
                ('is_admin', fields.BooleanField(default=False)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'user', 'app': 'models', 'unique_together': (('organization', 'username'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Environment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='environments', on_delete=OnDelete.CASCADE)),
                ('creator', fields.ForeignKeyField('models.User', source_field='creator_id', db_constraint=True, to_field='id', related_name='environments', on_delete=OnDelete.CASCADE)),
                ('short_name', fields.CharField(max_length=5)),
                ('full_name', fields.CharField(max_length=100)),
                ('description', fields.TextField(null=True, unique=False)),
                ('base_environment', fields.CharField(null=True, max_length=64)),
                ('python_version', fields.CharField(max_length=8)),
                ('conda_libraries', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('pip_libraries', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=EnvironmentStatus.SAVED, description='SAVED: SAVED\nIN_PROGRESS: IN_PROGRESS\nDRAFT: DRAFT\nFAILED: FAILED\nPENDING_APPROVAL: PENDING_APPROVAL\nPUBLISHED: PUBLISHED\nDEPRECATED: DEPRECATED', enum_type=EnvironmentStatus, max_length=20)),
                ('review_feedback', fields.TextField(null=True, unique=False)),
                ('submitted_number', fields.IntField(null=True)),
                ('published_number', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'environment', 'app': 'models', 'unique_together': (('organization', 'short_name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Version',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('environment', fields.ForeignKeyField('models.Environment', source_field='environment_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('attempt', fields.IntField(default=1)),
                ('status', fields.CharEnumField(default=VersionStatus.QUEUED, description='QUEUED: QUEUED\nBUILDING: BUILDING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED', enum_type=VersionStatus, max_length=12)),
                ('conda_libraries', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('pip_libraries', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('packages', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reverted_from', fields.IntField(null=True)),
                ('location', fields.CharField(null=True, max_length=1024)),
                ('log', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'version', 'app': 'models', 'unique_together': (('environment', 'number'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
