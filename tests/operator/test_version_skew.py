"""Version skew between the CRD and the operator: a CRD-first upgrade adds a defaulted field while the old operator
runs (docs/install.md, "Upgrades"). The API server shows the default in every object it reads from then on; the
old operator cannot read it (a field it does not know may be a limit it cannot honour), so it applies nothing of
such a spec, stops nothing that runs, starts nothing new, and halts all the same (architecture decision 11)."""

from __future__ import annotations

import copy

import pytest

from livestrat.api.admission import policy
from livestrat.api.crd import build_crd
from livestrat.api.resource import CRD_NAME
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example, paper
from tests.support.kube import ADMISSION_PLURALS, wait_for
from tests.support.operator import fast_settings, running_operator

NAME = "ema-cross-btc"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


def newer_crd() -> dict:
    """The CRD of a later livestrat: the same API version, one more field, with a default that keeps the
    behaviour from before it (the only way a field may be added within an API version)."""
    crd = copy.deepcopy(build_crd())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["fillReporting"] = {"type": "string", "enum": ["Immediate", "Batched"], "default": "Immediate"}
    return crd


async def test_a_crd_first_upgrade_stops_nothing_starts_nothing_new_and_halts_still_act(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        [pod] = desk.pods(NAME)
        applied = desk.statefulset(NAME)["spec"]
        configuration = desk.child("ConfigMap", NAME)["data"]

        emulator.patch_object(CRDS, CRD_NAME, newer_crd())
        assert desk.get(NAME)["spec"]["fillReporting"] == "Immediate"  # as the API server now reads it
        await desk.annotate(NAME, "desk.example/note", "any-write")  # the operator sees it with its next event
        await wait_for(lambda: desk.condition(NAME, "InvalidSpec").get("reason") == "SpecInvalid")
        await operator.processed(emulator, NAME)
        invalid = desk.condition(NAME, "InvalidSpec")["message"]
        assert "spec.fillReporting" in invalid and "the CRD installed is newer than this operator" in invalid
        assert "The running pod keeps the configuration it was started with" in invalid
        assert desk.phase(NAME) == "Running" and desk.statefulset(NAME)["spec"] == applied
        assert desk.child("ConfigMap", NAME)["data"] == configuration
        assert [p["metadata"]["uid"] for p in desk.pods(NAME)] == [pod["metadata"]["uid"]]
        # Events are posted after the condition is written (kopf posts them in the background): wait for it, then once.
        await wait_for(lambda: "SpecInvalid" in desk.events(NAME))
        assert desk.events(NAME).count("SpecInvalid") == 1

        # A strategy created under the newer CRD is refused by the release's admission policy, which does not know
        # the field either; where there is none (before Kubernetes 1.30), it gets no pod from this operator.
        with pytest.raises(AssertionError, match=r"spec\.fillReporting: unknown field"):
            await desk.apply(paper("created-after"))
        for kind, plural in ADMISSION_PLURALS.items():
            emulator.delete_object(plural, next(d for d in policy() if d["kind"] == kind)["metadata"]["name"])
        await desk.apply(paper("created-after"))
        await wait_for(lambda: desk.phase("created-after") == "Invalid")
        await operator.processed(emulator, "created-after")
        assert desk.pods("created-after") == []
        assert (desk.statefulset("created-after") or {"spec": {"replicas": 0}})["spec"]["replicas"] == 0

        # Halts act all the same: through the scale subresource, as the desk halts.
        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.statefulset(NAME)["spec"]["replicas"] == 0 and not desk.pods(NAME))
