"""The LiveStrategy API (livestrat.io/v1alpha1): the models shared by the operator and the runtime."""

from livestrat.api.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION, LiveStrategy
from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import LiveStrategyStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "LiveStrategy",
    "LiveStrategySpec",
    "LiveStrategyStatus",
]
