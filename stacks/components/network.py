"""Network: a VPC across N availability zones, public and private subnets, NAT, flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from stacks.components.common import allow, child, kms_key, named, service_role


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private and public subnet CIDRs, one each per zone, from a /16: private subnets are
    /19s from the start (nodes and pods need the room), public ones /22s from the last /18."""
    network = ipaddress.IPv4Network(vpc_cidr)
    private = list(network.subnets(new_prefix=19))[:zones]
    public_block = list(network.subnets(new_prefix=18))[-1]
    public = list(public_block.subnets(new_prefix=22))[:zones]
    return [str(c) for c in private], [str(c) for c in public]


class Network(pulumi.ComponentResource):
    """VPC, an internet gateway, per zone a public and a private subnet, NAT gateways (one per
    zone with ``nat_per_zone``, else one), and VPC flow logs to a KMS-encrypted log group.

    Outputs: ``vpc_id``, ``private_subnet_ids``, ``public_subnet_ids``, ``vpc_cidr``."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    vpc_cidr: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cidr: str,
        zones: int,
        nat_per_zone: bool,
        log_retention_days: int,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:network:Network", name, None, opts)
        available = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=named(tags, f"{name}-vpc"),
            opts=child(self),
        )
        # The default security group of a VPC allows all traffic between its members: empty it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags=named(tags, f"{name}-default"),
            opts=child(self),
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=named(tags, f"{name}-igw"), opts=child(self)
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=named(tags, f"{name}-public"),
            opts=child(self),
        )
        private_cidrs, public_cidrs = subnet_cidrs(cidr, zones)
        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nats: list[aws.ec2.NatGateway] = []
        for index in range(zones):
            zone = available.names[index]
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**named(tags, f"{name}-public-{index}"), "kubernetes.io/role/elb": "1"},
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child(self),
            )
            public_subnets.append(public)
            if index == 0 or nat_per_zone:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{index}",
                    domain="vpc",
                    tags=named(tags, f"{name}-nat-{index}"),
                    opts=child(self),
                )
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{index}",
                        subnet_id=public.id,
                        allocation_id=eip.id,
                        tags=named(tags, f"{name}-nat-{index}"),
                        opts=child(self, depends_on=[gateway]),
                    )
                )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[index],
                availability_zone=zone,
                tags={
                    **named(tags, f"{name}-private-{index}"),
                    "kubernetes.io/role/internal-elb": "1",
                },
                opts=child(self),
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[-1].id}],
                tags=named(tags, f"{name}-private-{index}"),
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=child(self),
            )
            private_subnets.append(private)
        self._flow_logs(name, vpc, log_retention_days, tags)
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )

    def _flow_logs(
        self, name: str, vpc: aws.ec2.Vpc, retention_days: int, tags: Mapping[str, str]
    ) -> None:
        key = kms_key(
            self, f"{name}-flow-logs", purpose=f"{name}: VPC flow log encryption", tags=tags,
            for_logs=True,
        )  # fmt: skip
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=retention_days,
            kms_key_id=key.arn,
            tags=named(tags, f"{name}-flow-logs"),
            opts=child(self),
        )
        role, _ = service_role(
            self, f"{name}-flow-logs", service="vpc-flow-logs.amazonaws.com",
            managed_policies=(), tags=tags,
        )  # fmt: skip
        allow(
            self,
            f"{name}-flow-logs",
            role=role,
            actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[group.arn, pulumi.Output.concat(group.arn, ":*")],
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            tags=named(tags, f"{name}-flow-logs"),
            opts=child(self),
        )
