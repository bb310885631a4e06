"""Monitoring: per service, a ServiceMonitor (scrape /metrics on the Service's `http` port) and a
PrometheusRule (components/monitoring/rules.py). Both are prometheus-operator objects (monitoring.coreos.com/v1);
the preview validates them against its CRDs."""

from __future__ import annotations

import pulumi
from pydantic import BaseModel, ConfigDict

from components.monitoring.config import MonitoringConfig
from components.monitoring.rules import rule_groups
from infra.kube import KubeObject
from infra.naming import labels, selector_labels, type_token

API_VERSION = "monitoring.coreos.com/v1"


class MonitoringArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: str
    services: tuple[str, ...]  # workload names (cmp-connector, cmp-provisioner)
    settings: MonitoringConfig


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("Monitoring"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        self.service_monitors, self.rules = {}, {}
        for service in args.services:
            meta = {"name": service, "namespace": args.namespace, "labels": {**labels(service), **s.labels}}
            self.service_monitors[service] = KubeObject(service, {
                "apiVersion": API_VERSION, "kind": "ServiceMonitor", "metadata": meta,
                "spec": {"selector": {"matchLabels": selector_labels(service)},
                         "namespaceSelector": {"matchNames": [args.namespace]},
                         "endpoints": [{"port": "http", "path": "/metrics", "interval": s.scrape_interval}]}},
                opts=child)
            self.rules[service] = KubeObject(service, {
                "apiVersion": API_VERSION, "kind": "PrometheusRule", "metadata": meta,
                "spec": {"groups": rule_groups(service, s.thresholds)}}, opts=child)
        self.register_outputs({"services": list(args.services)})
