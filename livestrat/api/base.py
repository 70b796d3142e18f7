"""The base model every API object derives from: camelCase in YAML, strict like the API server."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """Attach Kubernetes CEL validation rules to a model's schema (``x-kubernetes-validations``).

    Each rule is ``{"rule": ..., "message": ..., "fieldPath": ...}``: the API server
    evaluates them on admission and ``livestrat validate`` evaluates the very same text
    offline, so a rule is written once.
    """
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """Fields are snake_case in Python and camelCase on the wire.

    ``extra="forbid"`` makes a misspelt field an error instead of a silently ignored
    setting: a typo in ``maxDailyLoss`` must not mean "no loss limit".
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in a manifest (camelCase, unset optionals left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
