"""The MLflow backend: PostgreSQL on RDS, reachable only from the VPC.

RDS manages the master password itself and keeps it in Secrets Manager
(`manage_master_user_password`), so no password passes through Pulumi config
or state; MLflow's IRSA role may read that one secret.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from cloudguard_platform.settings import Settings


@dataclass(frozen=True)
class MlflowDatabaseArgs:
    """Inputs of `MlflowDatabase`."""

    settings: Settings
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    key_arn: pulumi.Input[str]


class MlflowDatabase(pulumi.ComponentResource):
    """Encrypted, private PostgreSQL instance with a managed master secret."""

    endpoint: pulumi.Output[str]
    secret_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: MlflowDatabaseArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cloudguard:mlflow:MlflowDatabase", name, None, opts)
        s = args.settings
        db = s.database
        child = pulumi.ResourceOptions(parent=self)
        prod = s.stack == "prod"

        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=args.subnet_ids, opts=child
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="PostgreSQL for MLflow, from inside the VPC only",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-postgres",
            security_group_id=group.id,
            cidr_ipv4=s.vpc_cidr,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            opts=child,
        )
        instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=f"cloudguard-{s.stack}-mlflow",
            engine="postgres",
            engine_version=db.engine_version,
            instance_class=db.instance_class,
            allocated_storage=db.allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.key_arn,
            db_name="mlflow",
            username="mlflow",
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.key_arn,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            multi_az=db.multi_az,
            backup_retention_period=db.backup_retention_days,
            deletion_protection=prod,
            skip_final_snapshot=not prod,
            final_snapshot_identifier=f"cloudguard-{s.stack}-mlflow-final"
            if prod
            else None,
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
            opts=pulumi.ResourceOptions(parent=self, protect=s.protect_data),
        )
        self.endpoint = instance.endpoint
        self.secret_arn = instance.master_user_secrets.apply(
            lambda secrets: (secrets[0].secret_arn or "") if secrets else ""
        )

        self.register_outputs({"endpoint": self.endpoint, "secretArn": self.secret_arn})
