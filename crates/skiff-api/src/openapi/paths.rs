//! The REST paths and operations of each served resource, in a form neutral to the OpenAPI
//! version; `v2` and `v3` render them.

use super::kinds::{self, Gvk};
use crate::registry::{ResourceDef, Subresource};

/// One path and its operations.
pub(crate) struct PathSpec {
    pub path: String,
    /// Whether the path has a `{namespace}` parameter.
    pub namespaced: bool,
    /// The kind for the `{name}` parameter's description, when the path has one.
    pub named: Option<&'static str>,
    pub ops: Vec<OpSpec>,
}

/// The request body of an operation.
pub(crate) struct Body {
    /// Definition name of its schema.
    pub schema: String,
    pub content_types: &'static [&'static str],
    pub required: bool,
}

/// One operation.
pub(crate) struct OpSpec {
    /// HTTP method in lower case.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    /// `x-kubernetes-action`.
    pub action: &'static str,
    pub gvk: Gvk,
    pub query: &'static [&'static str],
    pub body: Option<Body>,
    /// (status code, description, definition name).
    pub responses: Vec<(&'static str, &'static str, String)>,
    /// Whether the response may be a watch stream.
    pub watch: bool,
}

/// The tag of a group version (`core_v1`, `apps_v1`, `networking_v1`).
pub(crate) fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", group_word(group))
}

fn group_word(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    }
}

fn camel(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Query parameters of each kind of operation, as upstream lists them.
const LIST_QUERY: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_QUERY: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_QUERY: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_QUERY: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_QUERY: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

/// Content types of a PATCH body. Strategic merge patch is left out on purpose: kubectl would
/// then compute apply patches from the v3 schemas instead of its compiled-in merge metadata.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
const WRITE_TYPES: &[&str] = &["*/*"];
const DELETE_TYPES: &[&str] = &["*/*"];

/// Type and description of a query parameter.
pub(crate) fn query_param(name: &str) -> (&'static str, &'static str) {
    match name {
        "allowWatchBookmarks" => ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored."),
        "continue" => ("string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize."),
        "fieldSelector" => ("string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        "labelSelector" => ("string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        "limit" => ("integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results."),
        "resourceVersion" => ("string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset"),
        "resourceVersionMatch" => ("string", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset"),
        "sendInitialEvents" => ("boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection."),
        "timeoutSeconds" => ("integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
        "watch" => ("boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
        "dryRun" => ("string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"),
        "fieldManager" => ("string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."),
        "fieldValidation" => ("string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
        "force" => ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."),
        "gracePeriodSeconds" => ("integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately."),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => ("boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error."),
        "orphanDependents" => ("boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned."),
        "propagationPolicy" => ("string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground."),
        _ => ("string", ""),
    }
}

/// Description of the `pretty` parameter every path has.
pub(crate) const PRETTY: &str = "If 'true', then the output is pretty printed.";
/// Description of the `{namespace}` parameter.
pub(crate) const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";

struct Ctx<'a> {
    r: &'a ResourceDef,
    prefix: String,
    id: String,
    kind_def: String,
    gvk: Gvk,
}

impl Ctx<'_> {
    fn has(&self, verb: &str) -> bool {
        self.r.verbs.contains(&verb)
    }

    fn op_id(&self, verb: &str, namespaced: bool, suffix: &str) -> String {
        let ns = if namespaced && self.r.namespaced {
            "Namespaced"
        } else {
            ""
        };
        format!("{verb}{}{ns}{}{suffix}", self.id, self.r.kind)
    }
}

fn ok(def: &str) -> Vec<(&'static str, &'static str, String)> {
    vec![("200", "OK", def.to_string())]
}

fn op(method: &'static str, action: &'static str, id: String, description: String, gvk: Gvk) -> OpSpec {
    OpSpec {
        method,
        id,
        description,
        action,
        gvk,
        query: &[],
        body: None,
        responses: Vec::new(),
        watch: false,
    }
}

/// Every path of one resource: collection, object, all-namespaces list, subresources.
pub(crate) fn resource_paths(r: &'static ResourceDef) -> Vec<PathSpec> {
    let Some(kind) = kinds::find(r.group, r.version, r.kind) else {
        return Vec::new();
    };
    let root = if r.group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let ns_part = if r.namespaced { "/namespaces/{namespace}" } else { "" };
    let c = Ctx {
        r,
        prefix: format!("{root}{ns_part}/{}", r.plural),
        id: format!("{}{}", camel(group_word(r.group)), camel(r.version)),
        kind_def: (kind.name)().into_owned(),
        gvk: kind.gvk,
    };
    let list_def = format!("{}List", c.kind_def);
    let mut out = Vec::new();

    let mut collection = Vec::new();
    if c.has("list") {
        let mut o = op(
            "get",
            "list",
            c.op_id("list", true, ""),
            format!("list or watch objects of kind {}", r.kind),
            c.gvk,
        );
        o.query = LIST_QUERY;
        o.responses = ok(&list_def);
        o.watch = true;
        collection.push(o);
    }
    if c.has("create") {
        let mut o = op(
            "post",
            "post",
            c.op_id("create", true, ""),
            format!("create a {}", r.kind),
            c.gvk,
        );
        o.query = WRITE_QUERY;
        o.body = Some(Body {
            schema: c.kind_def.clone(),
            content_types: WRITE_TYPES,
            required: true,
        });
        o.responses = vec![
            ("200", "OK", c.kind_def.clone()),
            ("201", "Created", c.kind_def.clone()),
            ("202", "Accepted", c.kind_def.clone()),
        ];
        collection.push(o);
    }
    if c.has("deletecollection") {
        let mut o = op(
            "delete",
            "deletecollection",
            c.op_id("deleteCollection", true, ""),
            format!("delete collection of {}", r.kind),
            c.gvk,
        );
        o.query = DELETE_COLLECTION_QUERY;
        o.body = Some(Body {
            schema: kinds::DELETE_OPTIONS.into(),
            content_types: DELETE_TYPES,
            required: false,
        });
        o.responses = ok(kinds::STATUS);
        collection.push(o);
    }
    out.push(PathSpec {
        path: c.prefix.clone(),
        namespaced: r.namespaced,
        named: None,
        ops: collection,
    });

    let object_ops = object_ops(&c, "", c.gvk, &c.kind_def, r.verbs, true);
    out.push(PathSpec {
        path: format!("{}/{{name}}", c.prefix),
        namespaced: r.namespaced,
        named: Some(r.kind),
        ops: object_ops,
    });

    for s in r.subresources.iter().filter(|s| !s.is_connect()) {
        if let Some(path) = subresource_path(&c, s) {
            out.push(path);
        }
    }

    if r.namespaced && c.has("list") {
        let mut o = op(
            "get",
            "list",
            format!("list{}{}ForAllNamespaces", c.id, r.kind),
            format!("list or watch objects of kind {}", r.kind),
            c.gvk,
        );
        o.query = LIST_QUERY;
        o.responses = ok(&list_def);
        o.watch = true;
        out.push(PathSpec {
            path: format!("{root}/{}", r.plural),
            namespaced: false,
            named: None,
            ops: vec![o],
        });
    }
    out
}

/// get/put/patch/delete on an object or a subresource (`suffix` is `Status`, `Scale` or empty).
fn object_ops(c: &Ctx, suffix: &str, gvk: Gvk, def: &str, verbs: &[&str], delete: bool) -> Vec<OpSpec> {
    let what = if suffix.is_empty() {
        format!("the specified {}", c.r.kind)
    } else {
        format!("{} of the specified {}", suffix.to_ascii_lowercase(), c.r.kind)
    };
    let mut ops = Vec::new();
    if verbs.contains(&"get") {
        let mut o = op("get", "get", c.op_id("read", true, suffix), format!("read {what}"), gvk);
        o.responses = ok(def);
        ops.push(o);
    }
    if verbs.contains(&"update") {
        let mut o = op(
            "put",
            "put",
            c.op_id("replace", true, suffix),
            format!("replace {what}"),
            gvk,
        );
        o.query = WRITE_QUERY;
        o.body = Some(Body {
            schema: def.to_string(),
            content_types: WRITE_TYPES,
            required: true,
        });
        o.responses = vec![("200", "OK", def.to_string()), ("201", "Created", def.to_string())];
        ops.push(o);
    }
    if verbs.contains(&"patch") {
        let mut o = op(
            "patch",
            "patch",
            c.op_id("patch", true, suffix),
            format!("partially update {what}"),
            gvk,
        );
        o.query = PATCH_QUERY;
        o.body = Some(Body {
            schema: kinds::PATCH.into(),
            content_types: PATCH_TYPES,
            required: true,
        });
        o.responses = vec![("200", "OK", def.to_string()), ("201", "Created", def.to_string())];
        ops.push(o);
    }
    if delete && verbs.contains(&"delete") {
        let mut o = op(
            "delete",
            "delete",
            c.op_id("delete", true, suffix),
            format!("delete a {}", c.r.kind),
            gvk,
        );
        o.query = DELETE_QUERY;
        o.body = Some(Body {
            schema: kinds::DELETE_OPTIONS.into(),
            content_types: DELETE_TYPES,
            required: false,
        });
        o.responses = vec![
            ("200", "OK", kinds::STATUS.into()),
            ("202", "Accepted", kinds::STATUS.into()),
        ];
        ops.push(o);
    }
    ops
}

fn subresource_path(c: &Ctx, s: &Subresource) -> Option<PathSpec> {
    let k = kinds::find(s.group, s.version, s.kind)?;
    let def = (k.name)().into_owned();
    let suffix = camel(s.name);
    let ops = if s.verbs.contains(&"create") {
        let mut o = op(
            "post",
            "post",
            c.op_id("create", true, &suffix),
            format!("create {} of a {}", s.name, c.r.kind),
            k.gvk,
        );
        o.query = WRITE_QUERY;
        o.body = Some(Body {
            schema: def.clone(),
            content_types: WRITE_TYPES,
            required: true,
        });
        o.responses = vec![
            ("200", "OK", def.clone()),
            ("201", "Created", def.clone()),
            ("202", "Accepted", def),
        ];
        vec![o]
    } else {
        object_ops(c, &suffix, k.gvk, &def, s.verbs, false)
    };
    Some(PathSpec {
        path: format!("{}/{{name}}/{}", c.prefix, s.name),
        namespaced: c.r.namespaced,
        named: Some(s.kind),
        ops,
    })
}

/// Every path of a group version.
pub(crate) fn group_version_paths(group: &str, version: &str) -> Vec<PathSpec> {
    crate::registry::RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(resource_paths)
        .collect()
}

/// The definitions the paths reference directly.
pub(crate) fn referenced_definitions(paths: &[PathSpec]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        for o in &p.ops {
            out.extend(o.body.iter().map(|b| b.schema.clone()));
            out.extend(o.responses.iter().map(|(_, _, d)| d.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;

    #[test]
    fn deployment_paths_follow_upstream_names() {
        let paths = resource_paths(find("apps", "v1", "deployments").unwrap());
        let ids: Vec<(String, String)> = paths
            .iter()
            .flat_map(|p| p.ops.iter().map(|o| (p.path.clone(), o.id.clone())))
            .collect();
        let cases = [
            (
                "/apis/apps/v1/namespaces/{namespace}/deployments",
                "listAppsV1NamespacedDeployment",
            ),
            (
                "/apis/apps/v1/namespaces/{namespace}/deployments",
                "deleteCollectionAppsV1NamespacedDeployment",
            ),
            (
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                "patchAppsV1NamespacedDeployment",
            ),
            (
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
                "patchAppsV1NamespacedDeploymentScale",
            ),
            (
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
                "readAppsV1NamespacedDeploymentStatus",
            ),
            ("/apis/apps/v1/deployments", "listAppsV1DeploymentForAllNamespaces"),
        ];
        for (path, id) in cases {
            assert!(ids.contains(&(path.to_string(), id.to_string())), "{path} {id}");
        }
        let scale = paths.iter().find(|p| p.path.ends_with("/scale")).unwrap();
        assert_eq!(scale.ops[0].gvk.kind, "Scale");
    }

    #[test]
    fn cluster_scoped_and_special_verbs() {
        let ns = resource_paths(find("", "v1", "namespaces").unwrap());
        assert_eq!(ns[0].path, "/api/v1/namespaces");
        assert!(
            ns[0].ops.iter().all(|o| o.action != "deletecollection"),
            "namespaces have no deletecollection"
        );
        assert!(ns.iter().all(|p| !p.path.ends_with("ForAllNamespaces")));
        let pods = resource_paths(find("", "v1", "pods").unwrap());
        let binding = pods.iter().find(|p| p.path.ends_with("/binding")).unwrap();
        assert_eq!(binding.ops[0].id, "createCoreV1NamespacedPodBinding");
        assert_eq!(tag("networking.k8s.io", "v1"), "networking_v1");
    }
}
