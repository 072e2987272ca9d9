"""DataStores: RDS PostgreSQL, DocumentDB, ElastiCache Redis, Amazon MQ for RabbitMQ and
OpenSearch, each switchable off. Private subnets only, encrypted at rest (one rotated KMS key)
and in transit, reachable from the cluster's security group only; Multi-AZ, deletion
protection and ``protect`` in prod; passwords from ``pulumi_random``, kept as secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from stacks.components.common import child, kms_key, named, policy_document

T = TypeVar("T", aws.rds.SubnetGroup, aws.docdb.SubnetGroup, aws.elasticache.SubnetGroup)

PORTS: Mapping[str, int] = {
    "postgres": 5432,
    "mongodb": 27017,
    "redis": 6379,
    "rabbitmq": 5671,
    "opensearch": 443,
}
"""The port each store listens on (TLS ports only)."""

POSTGRES_ADMIN = "mirage_admin"


@dataclass(frozen=True)
class Sizing:
    """Instance classes and counts of one environment."""

    postgres: str
    mongodb: str
    mongodb_instances: int
    redis: str
    redis_nodes: int
    rabbitmq: str
    opensearch: str
    opensearch_nodes: int


DEV = Sizing(
    "db.t4g.medium", "db.t4g.medium", 1, "cache.t4g.small", 1, "mq.t3.micro", "t3.medium.search", 1
)
PROD = Sizing(
    "db.r6g.large", "db.r6g.large", 3, "cache.r6g.large", 3, "mq.m5.large", "r6g.large.search", 3
)


class DataStores(pulumi.ComponentResource):
    """The enabled stores of ``stores`` (names of :data:`PORTS`).

    Outputs: ``endpoints`` (store to ``host:port`` or URL), ``postgres_admin`` and
    ``postgres_password`` (secret; Vault's database engine logs in with them),
    ``opensearch_endpoint``, ``opensearch_password`` (secret), ``opensearch_dashboards``."""

    endpoints: dict[str, pulumi.Output[str]]
    postgres_host: pulumi.Output[str] | None = None
    postgres_password: pulumi.Output[str] | None = None
    opensearch_endpoint: pulumi.Output[str] | None = None
    opensearch_password: pulumi.Output[str] | None = None
    opensearch_dashboards: pulumi.Output[str] | None = None

    def __init__(
        self,
        name: str,
        *,
        stores: frozenset[str],
        prod: bool,
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[str]],
        cluster_security_group_id: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:data:DataStores", name, None, opts)
        self._name = name
        self._prod = prod
        self._tags = tags
        self._subnets = subnet_ids
        self.endpoints = {}
        sizing = PROD if prod else DEV
        if not stores:
            self.register_outputs({"endpoints": {}})
            return
        self._key = kms_key(
            self, f"{name}-data", purpose=f"{name}: encryption at rest of the data stores",
            tags=tags,
        )  # fmt: skip
        groups = {
            store: aws.ec2.SecurityGroup(
                f"{name}-{store}",
                vpc_id=vpc_id,
                description=f"{store}: from the cluster only",
                ingress=[
                    {
                        "protocol": "tcp",
                        "from_port": PORTS[store],
                        "to_port": PORTS[store],
                        "security_groups": [cluster_security_group_id],
                        "description": "the EKS cluster",
                    }
                ],
                egress=[],
                tags=named(tags, f"{name}-{store}"),
                opts=child(self),
            )
            for store in sorted(stores)
        }
        if "postgres" in stores:
            self._postgres(sizing, groups["postgres"])
        if "mongodb" in stores:
            self._mongodb(sizing, groups["mongodb"])
        if "redis" in stores:
            self._redis(sizing, groups["redis"])
        if "rabbitmq" in stores:
            self._rabbitmq(sizing, groups["rabbitmq"])
        if "opensearch" in stores:
            self._opensearch(sizing, groups["opensearch"])
        self.register_outputs({"endpoints": self.endpoints})

    def _opts(self, **kwargs: object) -> pulumi.ResourceOptions:
        # In prod a data store cannot be deleted by a `pulumi up` or `destroy` by mistake.
        return child(self, protect=self._prod, **kwargs)

    def _subnet_group(self, kind: type[T], store: str) -> T:
        # The store's subnet group: the private subnets.
        name = f"{self._name}-{store}"
        return kind(name, subnet_ids=self._subnets, tags=named(self._tags, name), opts=child(self))

    def _password(self, store: str, *, special: bool = False) -> pulumi.Output[str]:
        password = random.RandomPassword(
            f"{self._name}-{store}",
            length=40,
            special=special,
            opts=child(self),
        )
        return pulumi.Output.secret(password.result)

    def _postgres(self, sizing: Sizing, group: aws.ec2.SecurityGroup) -> None:
        name, tags = self._name, self._tags
        subnets = self._subnet_group(aws.rds.SubnetGroup, "postgres")
        parameters = aws.rds.ParameterGroup(
            f"{name}-postgres",
            family="postgres17",
            parameters=[{"name": "rds.force_ssl", "value": "1"}],
            tags=named(tags, f"{name}-postgres"),
            opts=child(self),
        )
        self.postgres_password = self._password("postgres")
        db = aws.rds.Instance(
            f"{name}-postgres",
            engine="postgres",
            engine_version="17",
            instance_class=sizing.postgres,
            allocated_storage=50 if self._prod else 20,
            max_allocated_storage=500 if self._prod else 100,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=self._key.arn,
            username=POSTGRES_ADMIN,
            password=self.postgres_password,
            db_subnet_group_name=subnets.name,
            parameter_group_name=parameters.name,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            multi_az=self._prod,
            deletion_protection=self._prod,
            backup_retention_period=30 if self._prod else 7,
            copy_tags_to_snapshot=True,
            skip_final_snapshot=not self._prod,
            final_snapshot_identifier=f"{name}-postgres-final" if self._prod else None,
            auto_minor_version_upgrade=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self._key.arn,
            iam_database_authentication_enabled=True,
            tags=named(tags, f"{name}-postgres"),
            opts=self._opts(),
        )
        self.postgres_host = db.address
        self.endpoints["postgres"] = pulumi.Output.concat(db.address, ":", db.port.apply(str))

    def _mongodb(self, sizing: Sizing, group: aws.ec2.SecurityGroup) -> None:
        name, tags = self._name, self._tags
        subnets = self._subnet_group(aws.docdb.SubnetGroup, "mongodb")
        parameters = aws.docdb.ClusterParameterGroup(
            f"{name}-mongodb",
            family="docdb5.0",
            parameters=[{"name": "tls", "value": "enabled"}],
            tags=named(tags, f"{name}-mongodb"),
            opts=child(self),
        )
        cluster = aws.docdb.Cluster(
            f"{name}-mongodb",
            engine="docdb",
            master_username="mirage_admin",
            master_password=self._password("mongodb"),
            db_subnet_group_name=subnets.name,
            db_cluster_parameter_group_name=parameters.name,
            vpc_security_group_ids=[group.id],
            storage_encrypted=True,
            kms_key_id=self._key.arn,
            deletion_protection=self._prod,
            backup_retention_period=30 if self._prod else 7,
            skip_final_snapshot=not self._prod,
            final_snapshot_identifier=f"{name}-mongodb-final" if self._prod else None,
            enabled_cloudwatch_logs_exports=["audit", "profiler"],
            tags=named(tags, f"{name}-mongodb"),
            opts=self._opts(),
        )
        for index in range(sizing.mongodb_instances):
            aws.docdb.ClusterInstance(
                f"{name}-mongodb-{index}",
                cluster_identifier=cluster.id,
                instance_class=sizing.mongodb,
                auto_minor_version_upgrade=True,
                tags=named(tags, f"{name}-mongodb-{index}"),
                opts=self._opts(),
            )
        self.endpoints["mongodb"] = pulumi.Output.concat(
            cluster.endpoint, ":", cluster.port.apply(str)
        )

    def _redis(self, sizing: Sizing, group: aws.ec2.SecurityGroup) -> None:
        name, tags = self._name, self._tags
        subnets = self._subnet_group(aws.elasticache.SubnetGroup, "redis")
        redis = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            description=f"{name}: Redis",
            engine="redis",
            engine_version="7.1",
            node_type=sizing.redis,
            num_cache_clusters=sizing.redis_nodes,
            port=PORTS["redis"],
            subnet_group_name=subnets.name,
            security_group_ids=[group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=self._key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=self._password("redis"),
            automatic_failover_enabled=self._prod,
            multi_az_enabled=self._prod,
            snapshot_retention_limit=7 if self._prod else 1,
            auto_minor_version_upgrade=True,
            tags=named(tags, f"{name}-redis"),
            opts=self._opts(),
        )
        self.endpoints["redis"] = pulumi.Output.concat(
            "rediss://", redis.primary_endpoint_address, ":", str(PORTS["redis"])
        )

    def _rabbitmq(self, sizing: Sizing, group: aws.ec2.SecurityGroup) -> None:
        # Amazon MQ for RabbitMQ encrypts at rest with an AWS-owned key (it takes no customer
        # key) and speaks AMQPS only; it has no deletion protection, hence `protect` in prod.
        name, tags = self._name, self._tags
        subnets = pulumi.Output.from_input(self._subnets).apply(
            lambda ids: list(ids) if self._prod else list(ids)[:1]
        )
        broker = aws.mq.Broker(
            f"{name}-rabbitmq",
            broker_name=f"{name}-{pulumi.get_stack()}-rabbitmq",
            engine_type="RabbitMQ",
            engine_version="3.13",
            auto_minor_version_upgrade=True,
            host_instance_type=sizing.rabbitmq,
            deployment_mode="CLUSTER_MULTI_AZ" if self._prod else "SINGLE_INSTANCE",
            publicly_accessible=False,
            subnet_ids=subnets,
            security_groups=[group.id],
            users=[{"username": "mirage_admin", "password": self._password("rabbitmq")}],
            logs={"general": True},
            tags=named(tags, f"{name}-rabbitmq"),
            opts=self._opts(),
        )
        self.endpoints["rabbitmq"] = broker.instances.apply(
            lambda instances: (
                instances[0]["endpoints"][0]
                if isinstance(instances[0], dict)
                else instances[0].endpoints[0]
            )
        )

    def _opensearch(self, sizing: Sizing, group: aws.ec2.SecurityGroup) -> None:
        name, tags = self._name, self._tags
        self.opensearch_password = self._password("opensearch", special=True)
        zones = 3 if self._prod else 1
        subnets = pulumi.Output.from_input(self._subnets).apply(lambda ids: list(ids)[:zones])
        domain = aws.opensearch.Domain(
            f"{name}-opensearch",
            domain_name=f"{name}-{pulumi.get_stack()}-logs",
            engine_version="OpenSearch_2.19",
            cluster_config={
                "instance_type": sizing.opensearch,
                "instance_count": sizing.opensearch_nodes,
                "zone_awareness_enabled": self._prod,
                "zone_awareness_config": {"availability_zone_count": 3} if self._prod else None,
                "dedicated_master_enabled": self._prod,
                "dedicated_master_type": sizing.opensearch if self._prod else None,
                "dedicated_master_count": 3 if self._prod else None,
            },
            ebs_options={"ebs_enabled": True, "volume_type": "gp3", "volume_size": 100},
            vpc_options={"subnet_ids": subnets, "security_group_ids": [group.id]},
            encrypt_at_rest={"enabled": True, "kms_key_id": self._key.arn},
            node_to_node_encryption={"enabled": True},
            domain_endpoint_options={
                "enforce_https": True,
                "tls_security_policy": "Policy-Min-TLS-1-2-2019-07",
            },
            advanced_security_options={
                "enabled": True,
                "internal_user_database_enabled": True,
                "master_user_options": {
                    "master_user_name": "mirage_admin",
                    "master_user_password": self.opensearch_password,
                },
            },
            # Inside the VPC and behind fine-grained access control: the domain policy may name
            # every principal, the security group and the internal users do the gating.
            access_policies=policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "es:ESHttp*",
                    "Resource": "*",
                }
            ),
            tags=named(tags, f"{name}-opensearch"),
            opts=self._opts(),
        )
        self.opensearch_endpoint = domain.endpoint
        self.opensearch_dashboards = pulumi.Output.concat("https://", domain.dashboard_endpoint)
        self.endpoints["opensearch"] = pulumi.Output.concat("https://", domain.endpoint)
