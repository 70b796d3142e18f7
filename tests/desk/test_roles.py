"""The plugin's table of rights (``livestrat.desk.roles``): every verb has the chart role that grants it, and a 403
names the role of the verb the user ran (the chart's rules are checked against this table in tests/chart/)."""

from __future__ import annotations

import argparse

from livestrat.desk import plugin, roles

PATCH_LIVE = "/apis/livestrat.io/v1alpha1/namespaces/trading-live/livestrategies/ema-cross-btc-live"


def plugin_verbs() -> set[str]:
    (verbs,) = [a for a in plugin.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(verbs.choices)


def test_every_verb_of_the_plugin_has_the_chart_role_that_grants_it():
    assert set(roles.VERB_ROLES) == plugin_verbs()
    assert set(roles.VERB_ROLES.values()) <= set(roles.ROLES)
    assert roles.VERB_ROLES["promote"] == roles.PROMOTER


def test_a_refused_promote_names_the_promoter_role_even_where_another_role_also_grants_the_right():
    advice = roles.forbidden_advice("PATCH", PATCH_LIVE, "denied", verb="promote")
    assert "you may not patch livestrategies in namespace 'trading-live'" in advice
    assert "--clusterrole=livestrat-operator-promoter" in advice and "-trader" not in advice
    # the same right refused to halt (its annotation) is the trader's
    halt = roles.forbidden_advice("PATCH", PATCH_LIVE, "denied", verb="halt")
    assert "--clusterrole=livestrat-operator-trader" in halt
    # and a right outside the verb's role (kill-switch naming the strategies it halts) is the role that has it
    listing = roles.forbidden_advice(
        "GET", "/apis/livestrat.io/v1alpha1/namespaces/x/livestrategies", "", verb="kill-switch"
    )
    assert "--clusterrole=livestrat-operator-desk" in listing


def test_the_promoter_role_aggregates_no_other_role():
    assert roles.INCLUDES[roles.PROMOTER] == (roles.PROMOTER,)
    assert roles.rights_of(roles.PROMOTER) == {
        roles.Right("get", "livestrat.io", "livestrategies"),
        roles.Right("create", "livestrat.io", "livestrategies"),
        roles.Right("patch", "livestrat.io", "livestrategies"),
        roles.Right("create", "authentication.k8s.io", "selfsubjectreviews"),
    }
