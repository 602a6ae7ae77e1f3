//! Column definitions per kind, as upstream's printers declare them (names, types, formats and
//! priorities exact; descriptions from the same sources, shortened where upstream quotes long
//! API docs).

use serde_json::{json, Value};

use crate::registry::ResourceDef;

/// One `TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Col {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Col {
    pub(crate) fn to_json(self) -> Value {
        json!({"name": self.name, "type": self.ty, "format": self.format,
               "description": self.description, "priority": self.priority})
    }
}

const fn c(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A priority-1 (`-o wide`) column.
const fn w(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DOC,
    priority: 0,
};
const AGE: Col = c("Age", "string", CREATED_DOC);
const CONTAINERS: Col = w("Containers", "string", CONTAINERS_DOC);
const IMAGES: Col = w("Images", "string", IMAGES_DOC);
const SELECTOR: Col = w(
    "Selector",
    "string",
    "A label query over pods that should match the replicas count.",
);

const POD: &[Col] = &[
    NAME,
    c("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    c("Status", "string", "The aggregate status of the containers in this pod."),
    c("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    AGE,
    w("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
    w("Node", "string", "NodeName indicates in which node this pod is scheduled."),
    w("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods."),
    w("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness."),
];

const REPLICAS: &[Col] = &[
    NAME,
    c("Desired", "integer", "Replicas is the number of desired replicas."),
    c(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    c("Ready", "integer", "The number of ready replicas for this replica set."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const DEPLOYMENT: &[Col] = &[
    NAME,
    c("Ready", "string", "Number of the pod with ready state"),
    c("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    c("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE,
    CONTAINERS,
    IMAGES,
    w("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
];

const STATEFUL_SET: &[Col] = &[
    NAME,
    c("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

const DAEMON_SET: &[Col] = &[
    NAME,
    c("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
    c("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
    c("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
    c("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    c("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    c("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE,
    CONTAINERS,
    IMAGES,
    w("Selector", "string", "A label query over pods that are managed by the daemon set."),
];

const JOB: &[Col] = &[
    NAME,
    c("Status", "string", "Status of the job."),
    c(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    c("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    w(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

const CRON_JOB: &[Col] = &[
    NAME,
    c("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    c("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    c("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions."),
    c("Active", "integer", "A list of pointers to currently running jobs."),
    c("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    w("Selector", "string", "A label query over pods that should match the pod count."),
];

const SERVICE: &[Col] = &[
    NAME,
    c("Type", "string", "type determines how the Service is exposed."),
    c("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
    c("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    c("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE,
    w("Selector", "string", "Route service traffic to pods with label keys and values matching this selector."),
];

const INGRESS: &[Col] = &[
    NAME,
    c(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    c(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    c(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    c("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

const ENDPOINTS: &[Col] = &[
    NAME,
    c(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE,
];

const ENDPOINT_SLICE: &[Col] = &[
    NAME,
    c(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    c(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    c(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];

const NODE: &[Col] = &[
    NAME,
    c("Status", "string", "The status of the node"),
    c("Roles", "string", "The roles of the node"),
    AGE,
    c("Version", "string", "Kubelet Version reported by the node."),
    w("Internal-IP", "string", "List of addresses reachable to the node."),
    w("External-IP", "string", "List of addresses reachable to the node."),
    w(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    w(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    w(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

const EVENT: &[Col] = &[
    c("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    c("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    c("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    c("Object", "string", "The object that this event is about."),
    w("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]."),
    w("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
    c("Message", "string", "A human-readable description of the status of this operation."),
    w("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    w("Count", "string", "The number of times this event has occurred."),
    Col { name: "Name", ty: "string", format: "name", description: NAME_DOC, priority: 1 },
];

const NAMESPACE: &[Col] = &[NAME, c("Status", "string", "The status of the namespace"), AGE];

const SECRET: &[Col] = &[
    NAME,
    c(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    c("Data", "string", "Data contains the secret data."),
    AGE,
];

const SERVICE_ACCOUNT: &[Col] = &[
    NAME,
    c("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
    AGE,
];

const PERSISTENT_VOLUME: &[Col] = &[
    NAME,
    c("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
    c("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
    c("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
    c("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    c("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    c("StorageClass", "string", "StorageClass of the pv"),
    c("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    c("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    AGE,
    w("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state."),
];

const PERSISTENT_VOLUME_CLAIM: &[Col] = &[
    NAME,
    c(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    c(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    c(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    c(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    c("StorageClass", "string", "StorageClass of the pvc"),
    c("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    AGE,
    w(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];

const STORAGE_CLASS: &[Col] = &[
    NAME,
    c("Provisioner", "string", "provisioner indicates the type of the provisioner."),
    c("ReclaimPolicy", "string", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
    c("VolumeBindingMode", "string", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
    c("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand."),
    AGE,
];

const CONFIG_MAP: &[Col] = &[NAME, c("Data", "string", "Data contains the configuration data."), AGE];

const HPA: &[Col] = &[
    NAME,
    c("Reference", "string", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
    c("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count."),
    c("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
    c("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."),
    c("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
    AGE,
];

const LEASE: &[Col] = &[
    NAME,
    c(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];

const CONTROLLER_REVISION: &[Col] = &[
    NAME,
    c("Controller", "string", "Controller of the object"),
    c(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

const RESOURCE_QUOTA: &[Col] = &[
    NAME,
    c("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    c("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    AGE,
];

/// kube-aggregator's APIService table (`pkg/registry/apiservice/etcd`).
const API_SERVICE: &[Col] = &[
    NAME,
    c(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    c("Available", "string", "Whether this service is available."),
    AGE,
];

/// Upstream's default table (`rest.DefaultTableConvertor`) for kinds without a printer.
const DEFAULT: &[Col] = &[NAME, c("Created At", "date", CREATED_DOC)];

/// The printer a kind uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Printer {
    Pod,
    ReplicaSet,
    ReplicationController,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    Endpoints,
    EndpointSlice,
    Node,
    Event,
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    ConfigMap,
    Hpa,
    Lease,
    ControllerRevision,
    ResourceQuota,
    ApiService,
    Default,
}

/// Which printer serves this resource.
pub(crate) fn printer(def: &ResourceDef) -> Printer {
    match (def.group, def.kind) {
        ("", "Pod") => Printer::Pod,
        ("apps", "ReplicaSet") => Printer::ReplicaSet,
        ("", "ReplicationController") => Printer::ReplicationController,
        ("apps", "Deployment") => Printer::Deployment,
        ("apps", "StatefulSet") => Printer::StatefulSet,
        ("apps", "DaemonSet") => Printer::DaemonSet,
        ("batch", "Job") => Printer::Job,
        ("batch", "CronJob") => Printer::CronJob,
        ("", "Service") => Printer::Service,
        ("networking.k8s.io", "Ingress") => Printer::Ingress,
        ("", "Endpoints") => Printer::Endpoints,
        ("discovery.k8s.io", "EndpointSlice") => Printer::EndpointSlice,
        ("", "Node") => Printer::Node,
        ("" | "events.k8s.io", "Event") => Printer::Event,
        ("", "Namespace") => Printer::Namespace,
        ("", "Secret") => Printer::Secret,
        ("", "ServiceAccount") => Printer::ServiceAccount,
        ("", "PersistentVolume") => Printer::PersistentVolume,
        ("", "PersistentVolumeClaim") => Printer::PersistentVolumeClaim,
        ("storage.k8s.io", "StorageClass") => Printer::StorageClass,
        ("", "ConfigMap") => Printer::ConfigMap,
        ("autoscaling", "HorizontalPodAutoscaler") => Printer::Hpa,
        ("coordination.k8s.io", "Lease") => Printer::Lease,
        ("apps", "ControllerRevision") => Printer::ControllerRevision,
        ("", "ResourceQuota") => Printer::ResourceQuota,
        ("apiregistration.k8s.io", "APIService") => Printer::ApiService,
        _ => Printer::Default,
    }
}

/// The column definitions of a printer.
pub(crate) fn columns_of(p: Printer) -> &'static [Col] {
    match p {
        Printer::Pod => POD,
        Printer::ReplicaSet | Printer::ReplicationController => REPLICAS,
        Printer::Deployment => DEPLOYMENT,
        Printer::StatefulSet => STATEFUL_SET,
        Printer::DaemonSet => DAEMON_SET,
        Printer::Job => JOB,
        Printer::CronJob => CRON_JOB,
        Printer::Service => SERVICE,
        Printer::Ingress => INGRESS,
        Printer::Endpoints => ENDPOINTS,
        Printer::EndpointSlice => ENDPOINT_SLICE,
        Printer::Node => NODE,
        Printer::Event => EVENT,
        Printer::Namespace => NAMESPACE,
        Printer::Secret => SECRET,
        Printer::ServiceAccount => SERVICE_ACCOUNT,
        Printer::PersistentVolume => PERSISTENT_VOLUME,
        Printer::PersistentVolumeClaim => PERSISTENT_VOLUME_CLAIM,
        Printer::StorageClass => STORAGE_CLASS,
        Printer::ConfigMap => CONFIG_MAP,
        Printer::Hpa => HPA,
        Printer::Lease => LEASE,
        Printer::ControllerRevision => CONTROLLER_REVISION,
        Printer::ResourceQuota => RESOURCE_QUOTA,
        Printer::ApiService => API_SERVICE,
        Printer::Default => DEFAULT,
    }
}
