//! Merging the cluster's `skiff` context into the user's kubeconfig, as kind, minikube and
//! k3d do: the cluster, user and context named `skiff` are replaced (others are kept, with
//! every field this model does not know), the context becomes current, the file it replaces
//! is saved once as `<file>.skiff-backup`, and the file stays private (0600).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The name of the cluster, user and context skiff writes.
pub const NAME: &str = "skiff";

/// Why the merge failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A kubeconfig is not valid YAML of a kubeconfig.
    #[error("{path} is not a kubeconfig: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The cluster's own kubeconfig lacks an entry.
    #[error("{path} has no {what}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// Which entry.
        what: &'static str,
    },
}

/// A kubeconfig (client-go's `clientcmdapi.Config` on disk), keeping unknown fields.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Config {
    #[serde(rename = "apiVersion", default = "v1", skip_serializing_if = "String::is_empty")]
    api_version: String,
    #[serde(default = "kind", skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(default, deserialize_with = "list")]
    clusters: Vec<Named>,
    #[serde(default, deserialize_with = "list")]
    contexts: Vec<Named>,
    #[serde(rename = "current-context", default, deserialize_with = "text")]
    current_context: String,
    #[serde(default, deserialize_with = "list")]
    users: Vec<Named>,
    /// `preferences`, `extensions` and anything else, as read.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// One named cluster, user or context, keeping its fields as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Named {
    name: String,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

fn v1() -> String {
    "v1".into()
}

fn kind() -> String {
    "Config".into()
}

/// kubectl writes empty lists as `null`.
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Named>, D::Error> {
    Ok(Option::<Vec<Named>>::deserialize(d)?.unwrap_or_default())
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Config {
    fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        if text.trim().is_empty() {
            return Ok(Config {
                api_version: v1(),
                kind: kind(),
                ..Default::default()
            });
        }
        serde_saphyr::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    fn entry(list: &[Named], name: &str) -> Option<Named> {
        list.iter().find(|n| n.name == name).cloned()
    }

    fn put(list: &mut Vec<Named>, entry: Named) {
        match list.iter_mut().find(|n| n.name == entry.name) {
            Some(slot) => *slot = entry,
            None => list.push(entry),
        }
    }
}

/// The file to merge into: the first path of `$KUBECONFIG`, else `~/.kube/config`.
pub fn target(kubeconfig_env: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(first) = kubeconfig_env.and_then(|v| v.split(':').find(|p| !p.is_empty())) {
        return Some(PathBuf::from(first));
    }
    home.map(|h| h.join(".kube").join("config"))
}

/// What [`merge`] did.
#[derive(Debug)]
pub struct Merged {
    /// The file written.
    pub path: PathBuf,
    /// Where the file as it was before skiff first merged into it was saved, if it existed.
    pub backup: Option<PathBuf>,
}

/// Merges the `skiff` cluster, user and context of the cluster's own kubeconfig (`ours`, as
/// the API server writes it) into `target` and makes the context current.
pub fn merge(ours: &Path, target: &Path) -> Result<Merged, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let src = Config::parse(&std::fs::read_to_string(ours).map_err(io(ours))?, ours)?;
    let missing = |what| Error::Missing {
        path: ours.to_path_buf(),
        what,
    };
    let mut context = src.contexts.first().cloned().ok_or_else(|| missing("context"))?;
    let ctx = context.rest.get("context").and_then(Value::as_object);
    let cluster_name = ctx
        .and_then(|c| c.get("cluster"))
        .and_then(Value::as_str)
        .unwrap_or(NAME);
    let user_name = ctx.and_then(|c| c.get("user")).and_then(Value::as_str).unwrap_or(NAME);
    let mut cluster = Config::entry(&src.clusters, cluster_name).ok_or_else(|| missing("cluster"))?;
    let mut user = Config::entry(&src.users, user_name).ok_or_else(|| missing("user"))?;
    // One name for all three, so `kubectl config use-context skiff` says what it is.
    cluster.name = NAME.into();
    user.name = NAME.into();
    context.name = NAME.into();
    if let Some(c) = context.rest.get_mut("context").and_then(Value::as_object_mut) {
        c.insert("cluster".into(), NAME.into());
        c.insert("user".into(), NAME.into());
    }

    let existing = match std::fs::read_to_string(target) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(target)(e)),
    };
    let mut cfg = Config::parse(existing.as_deref().unwrap_or(""), target)?;
    Config::put(&mut cfg.clusters, cluster);
    Config::put(&mut cfg.users, user);
    Config::put(&mut cfg.contexts, context);
    cfg.current_context = NAME.into();
    let yaml = serde_saphyr::to_string(&cfg).map_err(|e| Error::Parse {
        path: target.to_path_buf(),
        message: e.to_string(),
    })?;

    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let mut backup = None;
    if let Some(old) = &existing {
        let b = PathBuf::from(format!("{}.skiff-backup", target.display()));
        // Only the first merge saves the user's file; later ones would save skiff's own.
        if !b.exists() {
            write_private(&b, old.as_bytes()).map_err(io(&b))?;
        }
        backup = Some(b);
    }
    let tmp = dir.join(format!(
        ".{}.skiff-tmp",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("config")
    ));
    write_private(&tmp, yaml.as_bytes()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, target).map_err(io(target))?;
    Ok(Merged {
        path: target.to_path_buf(),
        backup,
    })
}

/// Writes `data` to a new file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    // The umask may have narrowed it; never widened, but say it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: Q0E=\ncontexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: admin\n    namespace: default\ncurrent-context: skiff\nusers:\n- name: admin\n  user:\n    token: secret\npreferences: {}\n";

    fn read(p: &Path) -> Config {
        Config::parse(&std::fs::read_to_string(p).unwrap(), p).unwrap()
    }

    #[test]
    fn merge_keeps_other_entries_and_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        std::fs::write(&ours, OURS).unwrap();
        let target = dir.path().join("config");
        let user_file = "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod:6443\n    x-vendor: kept\n- name: skiff\n  cluster:\n    server: https://old:1\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod\ncurrent-context: prod\nusers:\n- name: prod\n  user:\n    exec:\n      command: login\npreferences:\n  colors: true\nextensions:\n- name: e\n  extension: {a: 1}\n";
        std::fs::write(&target, user_file).unwrap();
        let m = merge(&ours, &target).unwrap();
        let cfg = read(&target);
        assert_eq!(cfg.current_context, "skiff");
        let names = |l: &[Named]| l.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&cfg.clusters), ["prod", "skiff"]);
        assert_eq!(names(&cfg.contexts), ["prod", "skiff"]);
        assert_eq!(names(&cfg.users), ["prod", "skiff"]);
        assert_eq!(cfg.clusters[0].rest["cluster"]["x-vendor"], "kept");
        assert_eq!(cfg.clusters[1].rest["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(cfg.users[1].rest["user"]["token"], "secret");
        assert_eq!(cfg.contexts[1].rest["context"]["user"], "skiff");
        assert_eq!(cfg.rest["preferences"]["colors"], true);
        assert_eq!(cfg.rest["extensions"][0]["name"], "e");
        let backup = m.backup.unwrap();
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), user_file);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), 0o600);
        assert_eq!(mode(&backup), 0o600);
        // A second merge keeps the first backup (the user's file, not skiff's).
        merge(&ours, &target).unwrap();
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), user_file);
    }

    #[test]
    fn merge_creates_a_missing_file_and_reads_null_lists() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        std::fs::write(&ours, OURS).unwrap();
        let target = dir.path().join("sub/config");
        let m = merge(&ours, &target).unwrap();
        assert!(m.backup.is_none());
        assert_eq!(read(&target).contexts.len(), 1);
        std::fs::write(&target, "apiVersion: v1\nkind: Config\nclusters: null\ncontexts: null\nusers: null\ncurrent-context: \"\"\npreferences: {}\n").unwrap();
        merge(&ours, &target).unwrap();
        assert_eq!(read(&target).current_context, "skiff");
    }

    #[test]
    fn target_is_the_first_kubeconfig_path_or_home() {
        assert_eq!(
            target(Some("/a/one:/b/two"), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/a/one"))
        );
        assert_eq!(
            target(None, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/home/u/.kube/config"))
        );
        assert_eq!(
            target(Some(""), Some(Path::new("/h"))),
            Some(PathBuf::from("/h/.kube/config"))
        );
    }
}
