"""The ``RiskBudget`` resource: identity of the API and the whole object."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from livestrat.api.base import ApiModel
from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from livestrat.api.resource import API_VERSION, GROUP, VERSION

KIND = "RiskBudget"
PLURAL = "riskbudgets"
SINGULAR = "riskbudget"
SHORT_NAMES = ["rbudget"]
CATEGORIES = ["trading"]
CRD_NAME = f"{PLURAL}.{GROUP}"

__all__ = ["API_VERSION", "CRD_NAME", "GROUP", "KIND", "PLURAL", "VERSION", "BudgetMeta", "RiskBudget"]


class BudgetMeta(ApiModel):
    """The part of metadata livestrat reads; everything else passes through untouched."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: str
    namespace: str | None = None
    generation: int | None = None
    annotations: dict[str, str] | None = None


class RiskBudget(ApiModel):
    """Limits across several LiveStrategies trading one venue account."""

    api_version: Literal["livestrat.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["RiskBudget"]
    metadata: BudgetMeta
    spec: RiskBudgetSpec
    status: RiskBudgetStatus | None = None

    @classmethod
    def from_manifest(cls, doc: dict[str, Any]) -> RiskBudget:
        """Parse a manifest the way the API server would see it: strictly, as JSON."""
        return cls.model_validate_json(json.dumps(doc), strict=True)
