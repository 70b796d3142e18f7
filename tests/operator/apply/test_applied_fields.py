"""The three-way merge of a child: what the operator applied before and no longer wants goes, nothing else."""

from __future__ import annotations

from strategy_operator.apply.applied_fields import LEGACY_SHAPE, merged, recorded, removals, shape, with_record
from strategy_operator.build.labels import APPLIED_FIELDS_ANNOTATION


def container(**resources):
    return {"name": "strategy", "image": "runtime:1", "resources": resources}


def statefulset(annotations, resources):
    return {
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"containers": [container(**resources)]},
            }
        },
    }


def test_a_key_applied_before_and_no_longer_desired_is_nulled_and_others_keys_stay():
    before = statefulset({"livestrat.io/restart-nonce": "a", "livestrat.io/config-hash": "1"}, {})
    after = statefulset({"livestrat.io/config-hash": "2"}, {})
    existing = statefulset(
        {"livestrat.io/restart-nonce": "a", "livestrat.io/config-hash": "1", "kubectl.kubernetes.io/restartedAt": "t"},
        {},
    )
    nulls, resend = removals(shape(before), after, existing)
    assert nulls == {"spec": {"template": {"metadata": {"annotations": {"livestrat.io/restart-nonce": None}}}}}
    assert not resend
    patch = merged(after, nulls)
    assert patch["spec"]["template"]["metadata"]["annotations"] == {
        "livestrat.io/config-hash": "2",
        "livestrat.io/restart-nonce": None,
    }


def test_a_map_of_annotations_the_operator_no_longer_sets_loses_only_its_keys():
    before = {"metadata": {"annotations": {"iam.gke.io/gcp-service-account": "a@b.iam.gserviceaccount.com"}}}
    existing = {"metadata": {"annotations": {"iam.gke.io/gcp-service-account": "a@b", "team": "desk-a"}}}
    nulls, _ = removals(shape(before), {"metadata": {"labels": {"app": "x"}}}, existing)
    assert nulls == {"metadata": {"annotations": {"iam.gke.io/gcp-service-account": None}}}


def test_a_key_removed_inside_a_list_element_sends_the_list_again():
    before = statefulset({}, {"limits": {"memory": "2Gi"}, "requests": {"cpu": "1"}})
    after = statefulset({}, {"requests": {"cpu": "1"}})
    existing = statefulset({}, {"limits": {"memory": "2Gi"}, "requests": {"cpu": "1"}})
    assert removals(shape(before), after, existing) == ({}, True)


def test_what_the_server_defaults_or_others_add_is_never_removed():
    desired = statefulset({"livestrat.io/config-hash": "1"}, {"requests": {"cpu": "1"}})
    existing = statefulset({"livestrat.io/config-hash": "1", "deployment.kubernetes.io/revision": "3"}, {})
    existing["spec"]["revisionHistoryLimit"] = 10  # a server default
    existing["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    existing["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert removals(shape(desired), desired, existing) == ({}, False)


def test_the_record_is_read_back_and_a_child_without_one_stands_on_the_legacy_keys():
    manifest = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "s", "labels": {"a": "b"}}}
    written = with_record(manifest, {"metadata": {"labels": {"a": "b"}}})
    assert recorded(written) == {"metadata": {"labels": {"a": 1}}}
    assert recorded(manifest) == LEGACY_SHAPE
    assert recorded({"metadata": {"annotations": {APPLIED_FIELDS_ANNOTATION: "not json"}}}) == LEGACY_SHAPE
