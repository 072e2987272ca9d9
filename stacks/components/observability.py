"""Observability: kube-prometheus-stack (Prometheus, Alertmanager, Grafana with the dashboard
sidecar) selecting exactly the labels the operator puts on its ServiceMonitors,
PrometheusRules and dashboard ConfigMaps; and logging: Fluent Bit shipping container logs
(JSON parsed) to OpenSearch, with OpenSearch Dashboards."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from stacks.components.common import child, helm_release

MONITORING_NAMESPACE = "monitoring"
LOGGING_NAMESPACE = "logging"
PROMETHEUS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
FLUENT_REPOSITORY = "https://fluent.github.io/helm-charts"
OPENSEARCH_REPOSITORY = "https://opensearch-project.github.io/helm-charts"


def prometheus_values(
    *,
    monitoring_labels: Mapping[str, str],
    dashboard_labels: Mapping[str, str],
    grafana_host: str,
    ingress_class: str,
    prod: bool,
) -> dict[str, object]:
    """kube-prometheus-stack values: Prometheus selects ServiceMonitors, PodMonitors and
    PrometheusRules by ``monitoring_labels`` in every namespace; Grafana's sidecar loads
    dashboard ConfigMaps carrying ``dashboard_labels`` (one label: the sidecar takes one)."""
    if len(dashboard_labels) != 1:
        raise ValueError("dashboard labels: the Grafana sidecar selects exactly one label")
    [(label, label_value)] = dashboard_labels.items()
    selector = {"matchLabels": dict(monitoring_labels)}
    storage = {
        "volumeClaimTemplate": {
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "50Gi"}},
            }
        }
    }
    grafana: dict[str, object] = {
        "sidecar": {
            "dashboards": {
                "enabled": True,
                "label": label,
                "labelValue": label_value,
                "searchNamespace": "ALL",
                "folderAnnotation": "grafana_folder",
                "provider": {"foldersFromFilesStructure": True},
            }
        },
        "admin": {
            "existingSecret": "grafana-admin",
            "userKey": "admin-user",
            "passwordKey": "admin-password",
        },
    }
    if grafana_host:
        grafana["ingress"] = {
            "enabled": True,
            "ingressClassName": ingress_class,
            "hosts": [grafana_host],
        }
    return {
        "prometheus": {
            "prometheusSpec": {
                "serviceMonitorSelector": selector,
                "serviceMonitorNamespaceSelector": {},
                "podMonitorSelector": selector,
                "podMonitorNamespaceSelector": {},
                "ruleSelector": selector,
                "ruleNamespaceSelector": {},
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "retention": "30d" if prod else "7d",
                "replicas": 2 if prod else 1,
                "storageSpec": storage,
            }
        },
        "alertmanager": {"alertmanagerSpec": {"replicas": 2 if prod else 1}},
        "grafana": grafana,
    }


def fluent_bit_config(*, host: str) -> dict[str, str]:
    """Fluent Bit: tail container logs, parse JSON bodies into fields (the kubernetes filter's
    ``Merge_Log``), ship them over TLS to OpenSearch, credentials from the environment."""
    return {
        "inputs": "\n".join(
            [
                "[INPUT]",
                "    Name tail",
                "    Path /var/log/containers/*.log",
                "    multiline.parser docker, cri",
                "    Tag kube.*",
                "    Mem_Buf_Limit 50MB",
                "    Skip_Long_Lines On",
            ]
        ),
        "filters": "\n".join(
            [
                "[FILTER]",
                "    Name kubernetes",
                "    Match kube.*",
                "    Merge_Log On",
                "    Merge_Log_Key log_processed",
                "    Keep_Log Off",
                "    K8S-Logging.Parser On",
                "    K8S-Logging.Exclude On",
            ]
        ),
        "outputs": "\n".join(
            [
                "[OUTPUT]",
                "    Name opensearch",
                "    Match kube.*",
                f"    Host {host}",
                "    Port 443",
                "    tls On",
                "    tls.verify On",
                "    HTTP_User ${OPENSEARCH_USER}",
                "    HTTP_Passwd ${OPENSEARCH_PASSWORD}",
                "    Logstash_Format On",
                "    Logstash_Prefix kube",
                "    Suppress_Type_Name On",
                "    Replace_Dots On",
                "    Trace_Error On",
            ]
        ),
    }


class Observability(pulumi.ComponentResource):
    """Prometheus/Alertmanager/Grafana, and logging when ``opensearch_endpoint`` is given.

    Outputs: ``prometheus_namespace``, ``grafana_url``, ``opensearch_dashboards_url`` (or
    None), ``grafana_password`` (secret)."""

    prometheus_namespace: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
    grafana_password: pulumi.Output[str]
    opensearch_dashboards_url: pulumi.Output[str] | None = None

    def __init__(
        self,
        name: str,
        *,
        prod: bool,
        charts: Mapping[str, str],
        monitoring_labels: Mapping[str, str],
        dashboard_labels: Mapping[str, str],
        ingress_class: str,
        grafana_host: str = "",
        opensearch_endpoint: pulumi.Input[str] | None = None,
        opensearch_password: pulumi.Input[str] | None = None,
        opensearch_dashboards_host: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:observability:Observability", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-monitoring", metadata={"name": MONITORING_NAMESPACE}, opts=child(self)
        )
        password = random.RandomPassword(
            f"{name}-grafana", length=32, special=False, opts=child(self)
        )
        self.grafana_password = pulumi.Output.secret(password.result)
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": "grafana-admin", "namespace": namespace.metadata["name"]},
            string_data={"admin-user": "admin", "admin-password": self.grafana_password},
            opts=child(self),
        )
        helm_release(
            self,
            f"{name}-prometheus",
            release=PROMETHEUS_RELEASE,
            namespace=namespace.metadata["name"],
            chart="kube-prometheus-stack",
            version=charts["kube_prometheus_stack"],
            repository=PROMETHEUS_REPOSITORY,
            values=prometheus_values(
                monitoring_labels=monitoring_labels,
                dashboard_labels=dashboard_labels,
                grafana_host=grafana_host,
                ingress_class=ingress_class,
                prod=prod,
            ),
            depends_on=[admin],
        )
        self.prometheus_namespace = namespace.metadata["name"]
        self.grafana_url = pulumi.Output.from_input(
            f"https://{grafana_host}"
            if grafana_host
            else f"http://{PROMETHEUS_RELEASE}-grafana.{MONITORING_NAMESPACE}.svc"
        )
        if opensearch_endpoint is not None and opensearch_password is not None:
            self._logging(
                name,
                charts,
                opensearch_endpoint,
                opensearch_password,
                opensearch_dashboards_host,
                ingress_class,
            )
        self.register_outputs(
            {
                "grafana_url": self.grafana_url,
                "opensearch_dashboards_url": self.opensearch_dashboards_url,
            }
        )

    def _logging(
        self,
        name: str,
        charts: Mapping[str, str],
        endpoint: pulumi.Input[str],
        password: pulumi.Input[str],
        dashboards_host: str,
        ingress_class: str,
    ) -> None:
        namespace = k8s.core.v1.Namespace(
            f"{name}-logging", metadata={"name": LOGGING_NAMESPACE}, opts=child(self)
        )
        credentials = k8s.core.v1.Secret(
            f"{name}-opensearch-credentials",
            metadata={"name": "opensearch-credentials", "namespace": namespace.metadata["name"]},
            string_data={
                "OPENSEARCH_USER": "mirage_admin",
                "OPENSEARCH_PASSWORD": pulumi.Output.secret(password),
            },
            opts=child(self),
        )
        helm_release(
            self,
            f"{name}-fluent-bit",
            release="fluent-bit",
            namespace=namespace.metadata["name"],
            chart="fluent-bit",
            version=charts["fluent_bit"],
            repository=FLUENT_REPOSITORY,
            values={
                "config": pulumi.Output.from_input(endpoint).apply(
                    lambda h: fluent_bit_config(host=h)
                ),
                "envFrom": [{"secretRef": {"name": "opensearch-credentials"}}],
            },
            depends_on=[credentials],
        )
        dashboards: dict[str, object] = {
            "opensearchHosts": pulumi.Output.concat("https://", endpoint),
        }
        if dashboards_host:
            dashboards["ingress"] = {
                "enabled": True,
                "ingressClassName": ingress_class,
                "hosts": [
                    {
                        "host": dashboards_host,
                        "paths": [{"path": "/", "backend": {"servicePort": 5601}}],
                    }
                ],
            }
        helm_release(
            self,
            f"{name}-opensearch-dashboards",
            release="opensearch-dashboards",
            namespace=namespace.metadata["name"],
            chart="opensearch-dashboards",
            version=charts["opensearch_dashboards"],
            repository=OPENSEARCH_REPOSITORY,
            values=dashboards,
        )
        self.opensearch_dashboards_url = pulumi.Output.from_input(
            f"https://{dashboards_host}"
            if dashboards_host
            else f"http://opensearch-dashboards.{LOGGING_NAMESPACE}.svc:5601"
        )
