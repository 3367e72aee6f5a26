"""The dashboard that ``cdk synth`` produced: its ``DashboardBody``, with the template's tokens resolved to local names.

The body is read from the synthesized template (``cdk.out/<env>/*.template.json``), never rebuilt from
``infra/dashboard.py``: what is rendered locally is what CloudFormation would create. Its ``Fn::Join`` holds
``Ref``/``Fn::GetAtt`` tokens for the queue, the dead-letter queue, the batcher function and the region; each
resolves to the name the local pipeline uses. The self-metrics' ``service`` dimension is the deployed function's
``POWERTOOLS_SERVICE_NAME``; locally the batcher runs under another service name, so that value is mapped too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metricbatch import env as env_names
from metricbatch.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

DASHBOARD_TYPE = "AWS::CloudWatch::Dashboard"
QUEUE_TYPE = "AWS::SQS::Queue"
FUNCTION_TYPE = "AWS::Lambda::Function"
SERVICE_NAME_VARIABLE = env_names.POWERTOOLS_SERVICE_NAME


@dataclass(frozen=True, kw_only=True)
class LocalNames:
    """What the deployed resources are called in the local pipeline."""

    queue_name: str
    dlq_name: str
    function_name: str
    region: str
    service_name: str | None = None  # the self-metrics' service dimension locally (None: as deployed)
    account_id: str = "123456789012"


@dataclass(frozen=True)
class DashboardBody:
    """A parsed dashboard body and where it came from."""

    body: dict[str, Any]
    template: Path
    dashboard_id: str
    # deployed value -> local value, for dimension values that are literals in the body (the service name)
    dimension_values: dict[str, str] = field(default_factory=dict)

    @property
    def widgets(self) -> list[dict[str, Any]]:
        widgets: list[dict[str, Any]] = self.body.get("widgets", [])
        return widgets


def find_template(assembly: Path) -> Path:
    """The template in a cloud assembly folder that defines a dashboard."""
    if not assembly.is_dir():
        raise ConfigurationError(
            f"no cloud assembly at {assembly}: synthesize it first (make synth, or npx cdk synth -o {assembly})"
        )
    for template in sorted(assembly.glob("*.template.json")):
        resources = json.loads(template.read_text()).get("Resources", {})
        if any(r.get("Type") == DASHBOARD_TYPE for r in resources.values()):
            return template
    raise ConfigurationError(f"no template in {assembly} defines an {DASHBOARD_TYPE}")


def load_body(template: Path, names: LocalNames) -> DashboardBody:
    """The template's one dashboard body, every token resolved through ``names``."""
    resources: dict[str, Any] = json.loads(template.read_text()).get("Resources", {})
    dashboards = [(rid, r) for rid, r in resources.items() if r.get("Type") == DASHBOARD_TYPE]
    if len(dashboards) != 1:
        raise ConfigurationError(f"{template} defines {len(dashboards)} dashboards; expected one")
    dashboard_id, dashboard = dashboards[0]
    text = _resolve(dashboard["Properties"]["DashboardBody"], resources, names)
    dimension_values: dict[str, str] = {}
    if names.service_name:
        for resource in resources.values():
            if resource.get("Type") == FUNCTION_TYPE:
                variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
                deployed = variables.get(SERVICE_NAME_VARIABLE)
                if isinstance(deployed, str) and deployed != names.service_name:
                    dimension_values[deployed] = names.service_name
    return DashboardBody(json.loads(text), template, dashboard_id, dimension_values)


def _resolve(value: Any, resources: dict[str, Any], names: LocalNames) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_resolve(part, resources, names) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        ref = value["Ref"]
        pseudo = {"AWS::Region": names.region, "AWS::AccountId": names.account_id, "AWS::URLSuffix": "amazonaws.com"}
        if ref in pseudo:
            return pseudo[ref]
        if resources.get(ref, {}).get("Type") == FUNCTION_TYPE:
            return names.function_name
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource_id, attribute = value["Fn::GetAtt"]
        resource = resources.get(resource_id, {})
        if resource.get("Type") == QUEUE_TYPE and attribute == "QueueName":
            is_dlq = _is_dead_letter_queue(resource_id, resources)
            return names.dlq_name if is_dlq else names.queue_name
    raise ConfigurationError(f"the dashboard body refers to {json.dumps(value)}, which has no local name")


def _is_dead_letter_queue(queue_id: str, resources: dict[str, Any]) -> bool:
    """A queue is the dead-letter queue when another queue's RedrivePolicy targets it."""
    for resource in resources.values():
        target = resource.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if isinstance(target, dict) and target.get("Fn::GetAtt", [None])[0] == queue_id:
            return True
    return False
