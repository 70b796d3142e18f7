"""Offline checker for the Kubernetes Pod Security Standards (baseline + restricted), v1.3x.

Re-implements the checks of k8s.io/pod-security-admission/policy (the code behind the
PodSecurity admission controller) for the *latest* policy version. No Python library
does this (checkov/kube-score/polaris have overlapping but different rule sets; kyverno's
`podSecurity` rule embeds the real library but is a Go binary).

    from pss_check import check_pod_spec, check_manifest
    check_pod_spec(pod_spec, metadata=None, level="restricted") -> list[str]   ([] = allowed)
    check_manifest(doc, level="restricted")  # Pod, Deployment, StatefulSet, DaemonSet,
                                             # ReplicaSet, Job, CronJob, PodTemplate

Containers = spec.containers + spec.initContainers + spec.ephemeralContainers (as upstream).
Not modelled: the opt-in "relax for user-namespace pods" (hostUsers: false) switch, which
an admin can enable to skip runAsNonRoot/runAsUser/procMount for such pods.
"""

from __future__ import annotations

from collections.abc import Iterator

BASELINE_CAPS = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",  # 1.27+
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",  # 1.29+
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",  # 1.29+
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",  # 1.32+
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUME_OK = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}
APPARMOR_OK = {"RuntimeDefault", "Localhost"}


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(c: dict) -> dict:
    return c.get("securityContext") or {}


def _names(cs: list[dict]) -> str:
    return ", ".join(f'"{c.get("name")}"' for c in cs)


def baseline(spec: dict, meta: dict) -> list[str]:
    errs: list[str] = []
    psc = spec.get("securityContext") or {}
    cs = list(_containers(spec))
    ann = (meta or {}).get("annotations") or {}
    # HostProcess (Windows)
    if (psc.get("windowsOptions") or {}).get("hostProcess") or any(
        (_sc(c).get("windowsOptions") or {}).get("hostProcess") for c in cs
    ):
        errs.append("hostProcess: windowsOptions.hostProcess must be undefined/false")
    # Host namespaces
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(f):
            errs.append(f"host namespaces: spec.{f} must be undefined/false")
    # Privileged
    bad = [c for c in cs if _sc(c).get("privileged")]
    if bad:
        errs.append(f"privileged: containers {_names(bad)} must not set securityContext.privileged=true")
    # Capabilities (baseline)
    bad = [c for c in cs if set((_sc(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPS]
    if bad:
        errs.append(f"capabilities: containers {_names(bad)} add capabilities beyond the default set")
    # HostPath volumes
    hp = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if hp:
        errs.append(f"hostPath volumes: {hp} must not be used")
    # Host ports
    bad = [c for c in cs if any(p.get("hostPort") for p in c.get("ports") or [])]
    if bad:
        errs.append(f"hostPorts: containers {_names(bad)} must not set hostPort (0/undefined only)")
    # AppArmor: annotations + (1.30+) fields
    for k, v in ann.items():
        if (
            k.startswith("container.apparmor.security.beta.kubernetes.io/")
            and v
            and v != "runtime/default"
            and not v.startswith("localhost/")
        ):
            errs.append(f"appArmor: annotation {k}={v!r} (allowed: runtime/default, localhost/*)")
    for who, sc in [("pod", psc)] + [(f'container "{c.get("name")}"', _sc(c)) for c in cs]:
        t = (sc.get("appArmorProfile") or {}).get("type")
        if t is not None and t not in APPARMOR_OK:
            errs.append(f"appArmor: {who} appArmorProfile.type={t!r} (allowed: RuntimeDefault, Localhost)")
    # SELinux
    for who, sc in [("pod", psc)] + [(f'container "{c.get("name")}"', _sc(c)) for c in cs]:
        o = sc.get("seLinuxOptions")
        if o is not None and (o.get("type", "") not in SELINUX_TYPES or o.get("user") or o.get("role")):
            errs.append(f"seLinuxOptions: {who} sets forbidden seLinuxOptions {o}")
    # /proc mount
    bad = [c for c in cs if _sc(c).get("procMount") not in (None, "Default")]
    if bad:
        errs.append(f"procMount: containers {_names(bad)} must not set procMount (only Default)")
    # Seccomp (baseline): no Unconfined anywhere
    for who, sc in [("pod", psc)] + [(f'container "{c.get("name")}"', _sc(c)) for c in cs]:
        t = (sc.get("seccompProfile") or {}).get("type")
        if t is not None and t not in SECCOMP_OK:
            errs.append(f"seccompProfile: {who} must not set seccompProfile.type={t!r}")
    # Sysctls
    bad = [s.get("name") for s in psc.get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS]
    if bad:
        errs.append(f"sysctls: forbidden sysctls {bad}")
    # Probe / lifecycle host (1.34+)
    bad = []
    for c in cs:
        handlers = [c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(h) for h in ("postStart", "preStop")]
        for h in filter(None, handlers):
            if (h.get("httpGet") or {}).get("host") or (h.get("tcpSocket") or {}).get("host"):
                bad.append(c)
                break
    if bad:
        errs.append(f"probe/lifecycle host: containers {_names(bad)} must not set httpGet.host/tcpSocket.host")
    return errs


def restricted_only(spec: dict, meta: dict) -> list[str]:
    errs: list[str] = []
    psc = spec.get("securityContext") or {}
    cs = list(_containers(spec))
    windows = (spec.get("os") or {}).get("name") == "windows"
    # Volume types
    bad = [v.get("name") for v in spec.get("volumes") or [] if not (set(v) - {"name"}) & RESTRICTED_VOLUME_OK]
    if bad:
        errs.append(f"restricted volume types: volumes {bad} (allowed: {sorted(RESTRICTED_VOLUME_OK)})")
    # Privilege escalation (Linux only since 1.25)
    if not windows:
        bad = [c for c in cs if _sc(c).get("allowPrivilegeEscalation") is not False]
        if bad:
            errs.append(
                f"allowPrivilegeEscalation != false: containers {_names(bad)} must set "
                "securityContext.allowPrivilegeEscalation=false"
            )
    # runAsNonRoot: pod-level true covers containers that leave it unset; explicit false anywhere fails
    pod_nr = psc.get("runAsNonRoot")
    bad_explicit = [c for c in cs if _sc(c).get("runAsNonRoot") is False]
    bad_implicit = [c for c in cs if _sc(c).get("runAsNonRoot") is None and pod_nr is not True]
    if pod_nr is False or bad_explicit:
        errs.append(
            "runAsNonRoot != true: "
            + " and ".join(
                (["pod"] if pod_nr is False else []) + ([f"containers {_names(bad_explicit)}"] if bad_explicit else [])
            )
            + " must not set securityContext.runAsNonRoot=false"
        )
    elif bad_implicit:
        errs.append(
            f"runAsNonRoot != true: pod or containers {_names(bad_implicit)} must set securityContext.runAsNonRoot=true"
        )
    # runAsUser != 0
    if psc.get("runAsUser") == 0 or any(_sc(c).get("runAsUser") == 0 for c in cs):
        errs.append("runAsUser=0: pod/containers must not set runAsUser=0")
    # Seccomp (restricted): must be set to RuntimeDefault/Localhost at pod level or on every container
    if not windows:
        pod_ok = (psc.get("seccompProfile") or {}).get("type") in SECCOMP_OK
        bad = [c for c in cs if _sc(c).get("seccompProfile") is None and not pod_ok]
        if bad:
            errs.append(
                f"seccompProfile: pod or containers {_names(bad)} must set "
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
            )
    # Capabilities: drop ALL, add only NET_BIND_SERVICE (Linux only since 1.25)
    if not windows:
        no_drop = [c for c in cs if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])]
        bad_add = [c for c in cs if set((_sc(c).get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}]
        if no_drop:
            errs.append(
                f"unrestricted capabilities: containers {_names(no_drop)} must set "
                'securityContext.capabilities.drop=["ALL"]'
            )
        if bad_add:
            errs.append(f"unrestricted capabilities: containers {_names(bad_add)} may only add NET_BIND_SERVICE")
    return errs


def check_pod_spec(spec: dict, metadata: dict | None = None, level: str = "restricted") -> list[str]:
    errs = baseline(spec, metadata or {})
    if level == "restricted":
        errs += restricted_only(spec, metadata or {})
    return errs


def pod_template(doc: dict) -> tuple[dict, dict]:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc.get("spec") or {}, doc.get("metadata") or {}
    if kind == "CronJob":
        t = doc["spec"]["jobTemplate"]["spec"]["template"]
    elif kind == "PodTemplate":
        t = doc["template"]
    else:  # Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController
        t = doc["spec"]["template"]
    return t.get("spec") or {}, t.get("metadata") or {}


def check_manifest(doc: dict, level: str = "restricted") -> list[str]:
    spec, meta = pod_template(doc)
    return check_pod_spec(spec, meta, level)
