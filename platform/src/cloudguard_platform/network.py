"""Network and cluster: VPC with private node subnets, EKS, managed nodes.

The EKS control plane comes from pulumi-eks (a multi-language component); the
node group is a plain `aws.eks.NodeGroup` with our own launch template so the
IMDSv2 settings (tokens required, hop limit 1) are explicit inputs that the
offline tests and the policy pack can see.
"""

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from cloudguard_platform.policies import assume_role_policy
from cloudguard_platform.settings import Settings

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
_NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)


@dataclass(frozen=True)
class NetworkClusterArgs:
    """Inputs of `NetworkCluster`."""

    settings: Settings


def node_policy_arns() -> list[str]:
    """Managed policies every worker node role needs."""
    return [f"arn:aws:iam::aws:policy/{name}" for name in _NODE_POLICIES]


class NetworkCluster(pulumi.ComponentResource):
    """VPC, subnets, NAT, the EKS cluster, its OIDC provider and node group."""

    cluster_name: str
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: NetworkClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cloudguard:network:NetworkCluster", name, None, opts)
        settings = args.settings
        self.cluster_name = f"cloudguard-{settings.stack}"
        child = pulumi.ResourceOptions(parent=self)

        self._create_vpc(name, settings, child)
        self._create_cluster(name, settings, child)
        self._create_node_group(name, settings, child)

        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "vpcId": self.vpc_id,
                "oidcProviderArn": self.oidc_provider_arn,
            }
        )

    def _create_vpc(
        self, name: str, s: Settings, child: pulumi.ResourceOptions
    ) -> None:
        tags = {"Name": name, "cloudguard:stack": s.stack}
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=s.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags,
            opts=child,
        )
        self.vpc_id = vpc.id
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=child
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=tags,
            opts=child,
        )

        # /20 blocks: the first per zone for nodes and pods, the next for load
        # balancers. Nodes never get public addresses.
        blocks = list(ipaddress.ip_network(s.vpc_cidr).subnets(new_prefix=20))
        zones = s.availability_zones
        self.private_subnet_ids = []
        nat_ids: list[pulumi.Output[str]] = []
        for index, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[len(zones) + index]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tags | {"kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            # dev shares one NAT gateway; staging and prod keep one per zone.
            if index == 0 or s.stack != "dev":
                eip = aws.ec2.Eip(
                    f"{name}-nat-{zone}", domain="vpc", tags=tags, opts=child
                )
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=public.id,
                    tags=tags,
                    opts=child,
                )
                nat_ids.append(nat.id)
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[index]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tags
                | {
                    "kubernetes.io/role/internal-elb": "1",
                    "karpenter.sh/discovery": self.cluster_name,
                },
                opts=child,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat_ids[-1]}],
                tags=tags,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=child,
            )
            self.private_subnet_ids.append(private.id)

    def _create_cluster(
        self, name: str, s: Settings, child: pulumi.ResourceOptions
    ) -> None:
        public_cidrs = list(s.api_public_cidrs)
        cluster = eks.Cluster(
            f"{name}-eks",
            name=self.cluster_name,
            version=s.kubernetes_version,
            vpc_id=self.vpc_id,
            private_subnet_ids=self.private_subnet_ids,
            node_associate_public_ip_address=False,
            # Private endpoint always; public only for the listed CIDRs, and
            # never 0.0.0.0/0 (the settings refuse it).
            endpoint_private_access=True,
            endpoint_public_access=bool(public_cidrs),
            public_access_cidrs=public_cidrs or None,
            enabled_cluster_log_types=list(LOG_TYPES),
            create_oidc_provider=True,
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode.API,
            deletion_protection=s.stack == "prod",
            tags={"cloudguard:stack": s.stack},
            opts=child,
        )
        self.kubeconfig = cluster.kubeconfig_json
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.oidc_issuer = cluster.oidc_issuer
        self.cluster_security_group_id = cluster.cluster_security_group_id
        self._cluster = cluster

    def _create_node_group(
        self, name: str, s: Settings, child: pulumi.ResourceOptions
    ) -> None:
        group = s.node_group
        role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=pulumi.Output.json_dumps(
                assume_role_policy("ec2.amazonaws.com")
            ),
            opts=child,
        )
        for index, arn in enumerate(node_policy_arns()):
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{index}", role=role.name, policy_arn=arn, opts=child
            )
        template = aws.ec2.LaunchTemplate(
            f"{name}-node",
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": group.disk_gib,
                        "volume_type": "gp3",
                        "encrypted": "true",
                    },
                }
            ],
            opts=child,
        )
        aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=self.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=self.private_subnet_ids,
            instance_types=list(group.instance_types),
            scaling_config={
                "min_size": group.min_size,
                "desired_size": group.desired_size,
                "max_size": group.max_size,
            },
            update_config={"max_unavailable": 1},
            launch_template={
                "id": template.id,
                "version": template.latest_version.apply(str),
            },
            labels={"cloudguard.io/pool": "system"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._cluster]),
        )
