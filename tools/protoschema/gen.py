#!/usr/bin/env python3
"""Generates crates/skiff-api/src/protobuf/schema.rs: the protobuf schema of every Kubernetes message.

Inputs (both already in the cargo registry once the workspace has been built):
  * k8s-pb 0.9 (prost-generated): message names, field tags and protobuf types;
  * k8s-openapi 0.29 (v1_33, then newer): the exact JSON field names, which fields are required (non-Option),
    and which apiVersion/kind each top-level message is.

    python3 tools/protoschema/gen.py   # rewrites crates/skiff-api/src/protobuf/schema.rs

POINTER_FIELDS below is hand-kept: Go pointer scalars (and pointer IntOrStrings) whose written zero
value means "explicitly set", because the wire cannot tell them apart from non-pointer zero values.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "skiff-api", "src", "protobuf", "schema.rs")


def registry_dir(name):
    hits = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/" + name)))
    if not hits:
        sys.exit("cannot find %s in ~/.cargo/registry (run `cargo fetch` first)" % name)
    return hits[-1]


PB = os.path.join(registry_dir("k8s-pb-0.9.0"), "src")
# v1_33 first (our API level); later versions only add the names of newer alpha/beta messages.
OA_DIRS = sorted(glob.glob(os.path.join(registry_dir("k8s-openapi-0.29.0"), "src", "v1_*")))

# Go pointer fields (message.field, JSON names) whose zero value is meaningful when present.
POINTER_FIELDS = set("""
api.apps.v1.DeploymentSpec.replicas api.apps.v1.DeploymentSpec.revisionHistoryLimit
api.apps.v1.DeploymentSpec.progressDeadlineSeconds api.apps.v1.StatefulSetSpec.replicas
api.apps.v1.StatefulSetSpec.revisionHistoryLimit api.apps.v1.ReplicaSetSpec.replicas
api.apps.v1.DaemonSetSpec.revisionHistoryLimit api.apps.v1.RollingUpdateStatefulSetStrategy.partition
api.apps.v1.RollingUpdateStatefulSetStrategy.maxUnavailable api.apps.v1.RollingUpdateDeployment.maxUnavailable
api.apps.v1.RollingUpdateDeployment.maxSurge api.apps.v1.RollingUpdateDaemonSet.maxUnavailable
api.apps.v1.RollingUpdateDaemonSet.maxSurge api.apps.v1.DeploymentStatus.collisionCount
api.apps.v1.DaemonSetStatus.collisionCount api.apps.v1.StatefulSetStatus.collisionCount
api.batch.v1.JobSpec.parallelism api.batch.v1.JobSpec.completions api.batch.v1.JobSpec.activeDeadlineSeconds
api.batch.v1.JobSpec.backoffLimit api.batch.v1.JobSpec.backoffLimitPerIndex api.batch.v1.JobSpec.maxFailedIndexes
api.batch.v1.JobSpec.ttlSecondsAfterFinished api.batch.v1.JobSpec.completionMode api.batch.v1.JobSpec.suspend
api.batch.v1.JobSpec.podReplacementPolicy api.batch.v1.JobSpec.manualSelector api.batch.v1.JobSpec.managedBy
api.batch.v1.CronJobSpec.timeZone api.batch.v1.CronJobSpec.startingDeadlineSeconds api.batch.v1.CronJobSpec.suspend
api.batch.v1.CronJobSpec.successfulJobsHistoryLimit api.batch.v1.CronJobSpec.failedJobsHistoryLimit
api.batch.v1.JobStatus.ready api.batch.v1.JobStatus.terminating api.batch.v1.JobStatus.failedIndexes
api.batch.v1.SuccessPolicyRule.succeededIndexes api.batch.v1.SuccessPolicyRule.succeededCount
api.batch.v1.PodFailurePolicyOnExitCodesRequirement.containerName
api.core.v1.PodSpec.terminationGracePeriodSeconds api.core.v1.PodSpec.activeDeadlineSeconds
api.core.v1.PodSpec.automountServiceAccountToken api.core.v1.PodSpec.shareProcessNamespace api.core.v1.PodSpec.priority
api.core.v1.PodSpec.enableServiceLinks api.core.v1.PodSpec.preemptionPolicy api.core.v1.PodSpec.runtimeClassName
api.core.v1.PodSpec.setHostnameAsFQDN api.core.v1.PodSpec.hostUsers api.core.v1.Container.restartPolicy
api.core.v1.EphemeralContainerCommon.restartPolicy
api.core.v1.SecurityContext.privileged api.core.v1.SecurityContext.runAsUser api.core.v1.SecurityContext.runAsGroup
api.core.v1.SecurityContext.runAsNonRoot api.core.v1.SecurityContext.readOnlyRootFilesystem
api.core.v1.SecurityContext.allowPrivilegeEscalation api.core.v1.SecurityContext.procMount
api.core.v1.PodSecurityContext.runAsUser api.core.v1.PodSecurityContext.runAsGroup
api.core.v1.PodSecurityContext.runAsNonRoot api.core.v1.PodSecurityContext.fsGroup
api.core.v1.PodSecurityContext.fsGroupChangePolicy api.core.v1.PodSecurityContext.supplementalGroupsPolicy
api.core.v1.PodSecurityContext.seLinuxChangePolicy
api.core.v1.WindowsSecurityContextOptions.gmsaCredentialSpecName api.core.v1.WindowsSecurityContextOptions.gmsaCredentialSpec
api.core.v1.WindowsSecurityContextOptions.runAsUserName api.core.v1.WindowsSecurityContextOptions.hostProcess
api.core.v1.SeccompProfile.localhostProfile api.core.v1.AppArmorProfile.localhostProfile
api.core.v1.Probe.terminationGracePeriodSeconds api.core.v1.GRPCAction.service api.core.v1.Toleration.tolerationSeconds
api.core.v1.ServiceAccount.automountServiceAccountToken api.core.v1.ConfigMap.immutable api.core.v1.Secret.immutable
api.core.v1.ServiceSpec.allocateLoadBalancerNodePorts api.core.v1.ServiceSpec.loadBalancerClass
api.core.v1.ServiceSpec.internalTrafficPolicy api.core.v1.ServiceSpec.ipFamilyPolicy
api.core.v1.ServiceSpec.trafficDistribution api.core.v1.ClientIPConfig.timeoutSeconds api.core.v1.ServicePort.appProtocol
api.core.v1.EndpointPort.appProtocol api.core.v1.ConfigMapVolumeSource.defaultMode api.core.v1.ConfigMapVolumeSource.optional
api.core.v1.SecretVolumeSource.defaultMode api.core.v1.SecretVolumeSource.optional api.core.v1.KeyToPath.mode
api.core.v1.ProjectedVolumeSource.defaultMode api.core.v1.ServiceAccountTokenProjection.expirationSeconds
api.core.v1.DownwardAPIVolumeSource.defaultMode api.core.v1.DownwardAPIVolumeFile.mode
api.core.v1.ConfigMapKeySelector.optional api.core.v1.SecretKeySelector.optional api.core.v1.ConfigMapEnvSource.optional
api.core.v1.SecretEnvSource.optional api.core.v1.ConfigMapProjection.optional api.core.v1.SecretProjection.optional
api.core.v1.PersistentVolumeClaimSpec.storageClassName api.core.v1.PersistentVolumeClaimSpec.volumeMode
api.core.v1.PersistentVolumeClaimSpec.volumeAttributesClassName api.core.v1.HostPathVolumeSource.type
api.core.v1.CSIVolumeSource.readOnly api.core.v1.CSIVolumeSource.fsType api.core.v1.VolumeMount.mountPropagation
api.core.v1.VolumeMount.recursiveReadOnly api.core.v1.TopologySpreadConstraint.minDomains
api.core.v1.TopologySpreadConstraint.nodeAffinityPolicy api.core.v1.TopologySpreadConstraint.nodeTaintsPolicy
api.core.v1.PodDNSConfigOption.value api.core.v1.ContainerStatus.started

apimachinery.pkg.apis.meta.v1.ObjectMeta.deletionGracePeriodSeconds apimachinery.pkg.apis.meta.v1.OwnerReference.controller
apimachinery.pkg.apis.meta.v1.OwnerReference.blockOwnerDeletion apimachinery.pkg.apis.meta.v1.ListMeta.remainingItemCount
apimachinery.pkg.apis.meta.v1.DeleteOptions.gracePeriodSeconds apimachinery.pkg.apis.meta.v1.DeleteOptions.orphanDependents
apimachinery.pkg.apis.meta.v1.DeleteOptions.propagationPolicy
api.networking.v1.IngressSpec.ingressClassName api.networking.v1.HTTPIngressPath.pathType
api.networking.v1.IngressClassParametersReference.scope api.networking.v1.IngressClassParametersReference.namespace
api.networking.v1.IngressClassParametersReference.apiGroup
api.networking.v1.NetworkPolicyPort.protocol api.networking.v1.NetworkPolicyPort.endPort api.networking.v1.NetworkPolicyPort.port
api.policy.v1.PodDisruptionBudgetSpec.minAvailable api.policy.v1.PodDisruptionBudgetSpec.maxUnavailable
api.policy.v1.PodDisruptionBudgetSpec.unhealthyPodEvictionPolicy
api.scheduling.v1.PriorityClass.preemptionPolicy api.authentication.v1.TokenRequestSpec.expirationSeconds
api.autoscaling.v1.HorizontalPodAutoscalerSpec.minReplicas
api.autoscaling.v1.HorizontalPodAutoscalerSpec.targetCPUUtilizationPercentage
api.autoscaling.v1.HorizontalPodAutoscalerStatus.currentCPUUtilizationPercentage
api.autoscaling.v2.HorizontalPodAutoscalerSpec.minReplicas api.autoscaling.v2.MetricTarget.averageUtilization
api.autoscaling.v2.HPAScalingRules.stabilizationWindowSeconds api.autoscaling.v2.HPAScalingRules.selectPolicy
api.rbac.v1.RoleRef.apiGroup
""".split()) | {
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps." + name
    for name in ("maximum minimum maxLength minLength maxItems minItems multipleOf maxProperties minProperties "
                 "x-kubernetes-preserve-unknown-fields x-kubernetes-list-type x-kubernetes-map-type").split()
}

# JSON names that neither k8s-openapi's field names nor camelCase recover: (message, proto field) -> JSON.
JSON_NAME_OVERRIDES = {
    ("apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps", "r#ref"): "$ref",
    ("apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JsonSchemaProps", "r#ref"): "$ref",
}

SCALARS = {"string": "Str", "bool": "Bool", "int32": "I32", "int64": "I64", "double": "F64", "bytes": "Bytes"}


def snake_to_camel(name):
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def norm(name):
    return name.replace("r#", "").replace("_", "").lower()


def openapi_fields():
    """(module, struct) -> {normalized rust name: (json name, required)}, plus kinds and a global name map."""
    per_type, kinds, global_names = {}, [], {}
    paths = [(oa, p) for oa in OA_DIRS for p in sorted(glob.glob(os.path.join(oa, "**", "*.rs"), recursive=True))]
    for oa, path in paths:
        module = os.path.relpath(os.path.dirname(path), oa).replace(os.sep, ".")
        text = open(path).read()
        m = re.search(r"^pub struct (\w+)\s*\{(.*?)^\}", text, re.M | re.S)
        if not m:
            continue
        struct, body = m.group(1), m.group(2)
        optional = {f: t.startswith("Option<") for f, t in re.findall(r"^\s*pub (\w+): (.*?),\s*$", body, re.M)}
        fields = {}
        for rust, json in re.findall(
                r"if let Some\(value\) = &self\.(\w+) \{\s*crate::serde::ser::SerializeStruct::serialize_field"
                r"\(&mut state, \"([^\"]+)\", value\)", text):
            fields[norm(rust)] = (json, False)
        for json, rust in re.findall(r"serialize_field\(&mut state, \"([^\"]+)\", &self\.(\w+)\)", text):
            fields[norm(rust)] = (json, not optional.get(rust, True))
        if (module, struct.lower()) in per_type:
            continue
        per_type[(module, struct.lower())] = fields
        for key, (json, _) in fields.items():
            global_names.setdefault(key, set()).add(json)
        r = re.search(r"impl crate::Resource for (\w+) \{\s*const API_VERSION: &'static str = \"([^\"]+)\";"
                      r".*?const KIND: &'static str = \"([^\"]+)\";", text, re.S)
        if r and not r.group(1).endswith("List"):
            kinds.append((r.group(2), r.group(3), module + "." + r.group(1).lower()))
    return per_type, kinds, global_names


def resolve(module, type_path):
    """Resolves a prost type path relative to `module` into a dotted message name."""
    parts = type_path.split("::")
    mod = module.split(".")
    while parts and parts[0] == "super":
        parts.pop(0)
        mod.pop()
    return ".".join(mod + parts)


def message_type(module, rust_type):
    t = re.sub(r"\s+", "", rust_type)
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        t = t.replace(wrapper, "")
    t = t.rstrip(">,")
    if "BTreeMap<" in t:
        t = t.split(",")[-1]
    return resolve(module, t)


def pb_messages():
    """dotted name -> [(tag, rust name, prost attr, rust type)]"""
    messages = {}
    for path in glob.glob(os.path.join(PB, "**", "mod.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), PB).replace(os.sep, ".")
        text = open(path).read()
        for m in re.finditer(r"^pub struct (\w+) \{(?:\}|(.*?)^\})", text, re.M | re.S):
            fields = []
            # A field's type may span lines; it ends at the `,` before the next doc, attribute or the end.
            for f in re.finditer(r"#\[prost\((.*?)\)\]\s*pub (r#\w+|\w+):\s*(.*?),\n(?=\s*(?:///|#\[|$))",
                                 (m.group(2) or "") + "\n", re.S):
                attr, rust, rtype = f.groups()
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                fields.append((tag, rust, attr, rtype))
            messages[module + "." + m.group(1)] = fields
    return messages


def field_type(module, attr, rtype):
    """Rust expression of the field's Ty (using the short names in table.rs), and whether it is repeated."""
    kind = attr.split(",")[0].strip()
    repeated = "repeated" in attr
    if kind.startswith("btree_map"):
        value = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
        if value == "message":
            return 'Map(&Msg("%s"))' % message_type(module, rtype), False
        return "Map(&%s)" % SCALARS[value], False
    if kind == "message":
        return 'Msg("%s")' % message_type(module, rtype), repeated
    return SCALARS[kind.split(" ")[0]], repeated


def is_inline(messages, module, attr, rtype, parent_names):
    """Go embeds some structs with `json:",inline"` (Volume.VolumeSource, Probe.ProbeHandler, ...): the proto has
    a message field the JSON lacks, whose own fields appear in the parent's JSON fields instead."""
    if not attr.startswith("message") or "repeated" in attr:
        return False
    child = messages.get(message_type(module, rtype), [])
    hits = sum(1 for _, rust, _, _ in child if norm(rust) in parent_names)
    return bool(child) and hits * 2 >= len(child)


def reachable(messages, roots):
    """Names of the messages reachable from `roots` through message fields."""
    seen, todo = set(), [r for r in roots if r in messages]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for _, _, attr, rtype in messages[name]:
            if attr.startswith("message") or 'string, message"' in attr:
                todo.append(message_type(name.rsplit(".", 1)[0], rtype))
    return seen


def main():
    per_type, kinds, global_names = openapi_fields()
    messages = pb_messages()
    by_lower = {m.lower(): m for m in messages}
    kinds = sorted({(v, k, by_lower[m]) for v, k, m in kinds if m in by_lower})
    keep = reachable(messages, [m for _, _, m in kinds])
    out = [
        "//! The protobuf schema of the Kubernetes API kinds. @generated by tools/protoschema/gen.py from the",
        "//! k8s-pb and k8s-openapi crates: do not edit by hand; rerun `python3 tools/protoschema/gen.py`.",
        "",
        "use super::table::Ty::{Bool, Bytes, Map, Msg, Str, F64, I32, I64};",
        "use super::table::{f, Kind, Message, I, K, P, R};",
        "",
        "/// Every message reachable from a kind, sorted by name; fields sorted by tag.",
        "pub(super) static MESSAGES: &[Message] = &[",
    ]
    unmatched, seen, orders = 0, set(), []
    pointers = {p.lower() for p in POINTER_FIELDS}
    for name in sorted(keep):
        module, struct = name.rsplit(".", 1)
        names = per_type.get((module, struct.lower()), {})
        out.append('    Message { name: "%s", fields: &[' % name)
        for tag, rust, attr, rtype in sorted(messages[name]):
            json, required = names.get(norm(rust), (None, False))
            json = JSON_NAME_OVERRIDES.get((name, rust), json)
            ty, repeated = field_type(module, attr, rtype)
            if json is None and names and is_inline(messages, module, attr, rtype, names):
                out.append('        f(%d, "", %s, I),' % (tag, ty))
                continue
            if json is None:
                candidates = global_names.get(norm(rust), set())
                json = next(iter(candidates)) if len(candidates) == 1 else snake_to_camel(rust.replace("r#", ""))
                unmatched += 1
            pointer_key = (name + "." + json).lower()
            seen.add(pointer_key)
            flags = "R" if repeated else ("K" if required or pointer_key in pointers else "P")
            out.append('        f(%d, "%s", %s, %s),' % (tag, json, ty, flags))
        out.append("    ] },")
        # prost keeps the .proto's field order, which go-to-protobuf writes in Go struct order: the order
        # encoding/json writes the fields in.
        by_tag = [tag for tag, _, _, _ in sorted(messages[name])]
        orders.append([by_tag.index(tag) for tag, _, _, _ in messages[name]])
    out.append("];")
    out.append("")
    out.append("/// For each message of MESSAGES (same index): its fields' indices in Go struct order.")
    out.append("pub(super) static GO_ORDER: &[&[u8]] = &[")
    for order in orders:
        out.append("    &[%s]," % ", ".join(str(i) for i in order))
    out.append("];")
    out.append("")
    out.append("/// Top-level kinds: (apiVersion, kind) -> message, sorted.")
    out.append("pub(super) static KINDS: &[Kind] = &[")
    for api_version, kind, msg in kinds:
        out.append('    Kind { api_version: "%s", kind: "%s", message: "%s" },' % (api_version, kind, msg))
    out.append("];")
    for p in sorted(pointers - seen):
        print("warning: POINTER_FIELDS entry matches no field:", p, file=sys.stderr)
    with open(OUT, "w") as out_file:
        out_file.write("\n".join(out) + "\n")
    # Keep the file as `cargo fmt` (workspace rustfmt.toml: max_width = 120) would leave it.
    subprocess.run(["rustfmt", "--edition", "2021", "--config", "max_width=120", OUT], check=True)
    print("wrote %s: %d messages, %d kinds, %d fields named by fallback" % (OUT, len(keep), len(kinds), unmatched))


if __name__ == "__main__":
    main()
