"""Storage: the stack's KMS key and its three buckets, locked down.

Each bucket gets all four public-access-block flags, owner-enforced object
ownership, SSE-KMS with the stack's key, versioning and a TLS-only policy.
Inference logs expire by lifecycle rule. In prod the data buckets are
protected and retained on delete, so `pulumi destroy` cannot lose data.
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from cloudguard_platform import constants as c
from cloudguard_platform.policies import tls_only_bucket_policy
from cloudguard_platform.settings import Settings

PURPOSES = (c.BUCKET_RAW, c.BUCKET_ARTIFACTS, c.BUCKET_INFERENCE)


@dataclass(frozen=True)
class StorageArgs:
    """Inputs of `Storage`."""

    settings: Settings


class Storage(pulumi.ComponentResource):
    """KMS key plus the raw-data, artifact and inference-log buckets."""

    key_arn: pulumi.Output[str]
    bucket_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudguard:storage:Storage", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        key = aws.kms.Key(
            f"{name}-key",
            description=f"CloudGuard {settings.stack} data at rest",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect_data),
        )
        aws.kms.Alias(
            f"{name}-key",
            name=f"alias/cloudguard-{settings.stack}",
            target_key_id=key.key_id,
            opts=child,
        )
        self.key_arn = key.arn
        self.bucket_arns = {
            purpose: self._create_bucket(name, purpose, settings, key)
            for purpose in PURPOSES
        }

        self.register_outputs({"keyArn": key.arn, "bucketArns": self.bucket_arns})

    def _create_bucket(
        self, name: str, purpose: str, s: Settings, key: aws.kms.Key
    ) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{name}-{purpose}"
        bucket = aws.s3.Bucket(
            prefix,
            bucket=s.bucket_name(purpose),
            force_destroy=False,
            tags={"cloudguard:stack": s.stack, "cloudguard:purpose": purpose},
            opts=pulumi.ResourceOptions(
                parent=self, protect=s.protect_data, retain_on_delete=s.protect_data
            ),
        )
        block = aws.s3.BucketPublicAccessBlock(
            prefix,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            prefix,
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            prefix,
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            prefix,
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketPolicy(
            prefix,
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(tls_only_bucket_policy(arn))
            ),
            # Public-access-block first, or AWS may evaluate the policy alone.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        if purpose == c.BUCKET_INFERENCE:
            self._expire_inference_logs(prefix, bucket, s.inference_log_retention_days)
        return bucket.arn

    def _expire_inference_logs(
        self, prefix: str, bucket: aws.s3.Bucket, days: int
    ) -> None:
        aws.s3.BucketLifecycleConfiguration(
            prefix,
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-inference-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": days},
                    "noncurrent_version_expiration": {"noncurrent_days": 7},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 2},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
