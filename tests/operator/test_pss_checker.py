import copy

import pytest

from tests.support.pss import check_manifest, check_pod_spec

GOOD = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": 10001,
    },
    "containers": [
        {
            "name": "strategy",
            "image": "x:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        }
    ],
    "volumes": [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "catalog", "csi": {"driver": "gcsfuse.csi.storage.gke.io", "volumeAttributes": {"bucketName": "b"}}},
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "p"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "proj", "projected": {"sources": []}},
        {"name": "s", "secret": {"secretName": "s"}},
        {"name": "d", "downwardAPI": {"items": []}},
    ],
}


def bad(mut):
    s = copy.deepcopy(GOOD)
    mut(s)
    return check_pod_spec(s)


C = lambda s: s["containers"][0]["securityContext"]  # noqa: E731


def test_good_restricted():
    assert check_pod_spec(GOOD) == []


@pytest.mark.parametrize(
    "name,mut,expect",
    [
        ("hostPath", lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath volumes"),
        (
            "nfs",
            lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
            "restricted volume types",
        ),
        ("hostNetwork", lambda s: s.update(hostNetwork=True), "host namespaces"),
        ("hostPID", lambda s: s.update(hostPID=True), "host namespaces"),
        ("privileged", lambda s: C(s).update(privileged=True), "privileged"),
        ("ape missing", lambda s: C(s).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
        ("runAsNonRoot missing", lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        ("runAsNonRoot false on container", lambda s: C(s).update(runAsNonRoot=False), "runAsNonRoot"),
        ("runAsUser 0", lambda s: C(s).update(runAsUser=0), "runAsUser=0"),
        ("no seccomp", lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
        ("unconfined container", lambda s: C(s).update(seccompProfile={"type": "Unconfined"}), "seccompProfile"),
        ("no drop ALL", lambda s: C(s).update(capabilities={"drop": ["NET_RAW"]}), "capabilities.drop"),
        ("add SYS_ADMIN", lambda s: C(s)["capabilities"].update(add=["SYS_ADMIN"]), "capabilities"),
        ("hostPort", lambda s: s["containers"][0]["ports"][0].update(hostPort=80), "hostPorts"),
        ("procMount", lambda s: C(s).update(procMount="Unmasked"), "procMount"),
        ("sysctl", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "sysctls"),
        ("selinux user", lambda s: C(s).update(seLinuxOptions={"user": "root"}), "seLinuxOptions"),
        ("apparmor unconfined", lambda s: C(s).update(appArmorProfile={"type": "Unconfined"}), "appArmor"),
        (
            "probe host",
            lambda s: s["containers"][0]["livenessProbe"]["httpGet"].update(host="10.0.0.1"),
            "probe/lifecycle host",
        ),
        ("init container", lambda s: s.update(initContainers=[{"name": "init", "image": "x"}]), '"init"'),
    ],
)
def test_violations(name, mut, expect):
    errs = bad(mut)
    assert any(expect in e for e in errs), errs


def test_allowed_variants():
    assert bad(lambda s: C(s)["capabilities"].update(add=["NET_BIND_SERVICE"])) == []
    assert (
        bad(lambda s: s["securityContext"].update(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]))
        == []
    )

    # container-level seccomp/runAsNonRoot instead of pod-level
    def per_container(s):
        s["securityContext"] = {}
        C(s).update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})

    assert bad(per_container) == []


def test_manifest_kinds():
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"template": {"spec": GOOD}}}
    assert check_manifest(sts) == []
    cj = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}
    assert check_manifest(cj, "baseline") == [] and len(check_manifest(cj)) >= 3
