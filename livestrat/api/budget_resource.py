"""The ``RiskBudget`` resource: identity of the API and the whole object."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from livestrat.api import names
from livestrat.api.base import ApiModel
from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from livestrat.api.contract import BUDGET_HALT_PREFIX
from livestrat.api.resource import API_VERSION, GROUP, VERSION

KIND = "RiskBudget"
PLURAL = "riskbudgets"
SINGULAR = "riskbudget"
SHORT_NAMES = ["rbudget"]
CATEGORIES = ["trading"]
CRD_NAME = f"{PLURAL}.{GROUP}"

# The operator marks each member a breach halts with the annotation BUDGET_HALT_PREFIX + the budget's name, whose
# name part (after the "/") Kubernetes limits to 63 characters: so a budget's name is a DNS-1035 label this short.
NAME_MAX_LENGTH = names.DNS_LABEL_MAX_LENGTH - len(BUDGET_HALT_PREFIX.split("/", 1)[1])
NAME_MESSAGE = (
    f"the name must be a DNS-1035 label of at most {NAME_MAX_LENGTH} characters: lowercase letters, digits and '-', "
    "starting with a letter and ending with a letter or a digit (for example account-binance-main). The operator "
    f"marks each member a breach halts with the annotation {BUDGET_HALT_PREFIX}NAME, whose name Kubernetes limits "
    f"to {names.DNS_LABEL_MAX_LENGTH} characters"
)
NAME_RULE = f"size(self.metadata.name) <= {NAME_MAX_LENGTH} && self.metadata.name.matches('{names.DNS_1035_LABEL}')"


def name_allowed(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and re.fullmatch(names.DNS_1035_LABEL, name) is not None


def _name_allowed(name: str) -> str:
    if not name_allowed(name):
        raise ValueError(NAME_MESSAGE)
    return name


__all__ = ["API_VERSION", "CRD_NAME", "GROUP", "KIND", "PLURAL", "VERSION", "BudgetMeta", "RiskBudget"]


class BudgetMeta(ApiModel):
    """The part of metadata livestrat reads; everything else passes through untouched."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: Annotated[str, AfterValidator(_name_allowed)]
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
