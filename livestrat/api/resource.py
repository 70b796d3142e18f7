"""The ``LiveStrategy`` resource: identity of the API and the whole object."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

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

# A DNS label: the name becomes a label value and part of child object names. At most 52
# characters: the StatefulSet's controller-revision-hash label is NAME-<10 characters> and
# label values are limited to 63.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 52


class ObjectMeta(ApiModel):
    """The part of metadata livestrat reads; everything else passes through untouched."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)
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
