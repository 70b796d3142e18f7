"""The ``LiveStrategy`` resource: identity of the API and the whole object."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from livestrat.api import names
from livestrat.api.base import ApiModel
from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import LiveStrategyStatus

GROUP = "livestrat.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LiveStrategy"
PLURAL = "livestrategies"
SINGULAR = "livestrategy"
SHORT_NAMES = ["lstrat"]
CATEGORIES = ["trading"]
CRD_NAME = f"{PLURAL}.{GROUP}"


def _child_names_possible(name: str) -> str:
    # One message, the CRD's (livestrat.api.names), whichever way the name is wrong.
    if not names.name_allowed(name):
        raise ValueError(names.NAME_MESSAGE)
    return name


class ObjectMeta(ApiModel):
    """The part of metadata livestrat reads; everything else passes through untouched."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: Annotated[str, AfterValidator(_child_names_possible)]
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class LiveStrategy(ApiModel):
    """A trading strategy run by livestrat: one pod, one NautilusTrader node."""

    api_version: Literal["livestrat.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["LiveStrategy"]
    metadata: ObjectMeta
    spec: LiveStrategySpec
    status: LiveStrategyStatus | None = None

    @classmethod
    def from_manifest(cls, doc: dict[str, Any]) -> LiveStrategy:
        """Parse a manifest the way the API server would see it: strictly, as JSON."""
        return cls.model_validate_json(json.dumps(doc), strict=True)
