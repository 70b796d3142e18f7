"""The names made from a LiveStrategy's name, and so which names a LiveStrategy may have.

The operator names every child after the strategy: the ConfigMap, ServiceAccount, Role,
RoleBinding, the headless Service and the StatefulSet are ``NAME``. Kubernetes then names more
after the StatefulSet: its pod ``NAME-0`` (also the pod's hostname and its
``statefulset.kubernetes.io/pod-name`` label) and its ControllerRevisions ``NAME-HASH``, whose
name the pods carry in their ``controller-revision-hash`` label (HASH: a 32-bit hash written in
at most 10 characters; kubernetes/kubernetes#64023). The name is also the value of the
``livestrat.io/strategy`` label.

A Service's name must be a DNS-1035 label (a letter first), and a label value or a hostname
holds at most 63 characters: so a LiveStrategy's name is a DNS-1035 label short enough for the
longest suffix. :data:`NAME_MAX_LENGTH` is computed from the suffixes, never typed.
"""

from __future__ import annotations

import re

# A DNS label (RFC 1035 and RFC 1123), a label value and a hostname: at most 63 characters.
DNS_LABEL_MAX_LENGTH = 63
# A DNS-1035 label: what a Service's name must be, and so the strategy's.
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# The StatefulSet's only pod, ordinal 0.
POD_SUFFIX = "-0"
# What Kubernetes appends to the StatefulSet's name for a ControllerRevision: "-" and the hash.
REVISION_HASH_LENGTH = 10
# Every suffix appended to the strategy's name for something that must stay a DNS label or a
# label value, by what it names.
SUFFIX_LENGTHS = {
    "the StatefulSet's pod (NAME-0)": len(POD_SUFFIX),
    "the pods' controller-revision-hash label (NAME-HASH)": len("-") + REVISION_HASH_LENGTH,
}
LONGEST_SUFFIX = max(SUFFIX_LENGTHS.values())
NAME_MAX_LENGTH = DNS_LABEL_MAX_LENGTH - LONGEST_SUFFIX
NAME_PATTERN = DNS_1035_LABEL

NAME_MESSAGE = (
    f"the name must be a DNS-1035 label of at most {NAME_MAX_LENGTH} characters: lowercase "
    "letters, digits and '-', starting with a letter and ending with a letter or a digit (for "
    "example ema-cross-btc). livestrat names the strategy's Service, StatefulSet and pod after it, "
    f"and Kubernetes appends up to {LONGEST_SUFFIX} characters within a {DNS_LABEL_MAX_LENGTH}-character "
    "label: pick a name that follows this rule"
)
# The API server's check (a CEL rule at the CRD's root, where metadata.name is visible), and the
# same check here for `livestrat validate` and the operator.
NAME_RULE = f"size(self.metadata.name) <= {NAME_MAX_LENGTH} && self.metadata.name.matches('{NAME_PATTERN}')"


def name_allowed(name: str) -> bool:
    """Whether a LiveStrategy may be called ``name`` (what :data:`NAME_RULE` says)."""
    return len(name) <= NAME_MAX_LENGTH and re.fullmatch(NAME_PATTERN, name) is not None
