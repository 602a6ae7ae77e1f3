//! Pod volumes as directories under `<pod dir>/volumes/<name>`: emptyDir (tmpfs for
//! `medium: Memory` when privileged), hostPath, configMap, secret (tmpfs when privileged),
//! downwardAPI and projected, with `items` key-to-path and `defaultMode`; a
//! persistentVolumeClaim is the directory of its bound volume (`hostPath` or `local`).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Volume,
};
use kube::Api;

use super::env::{self, NodeFacts, Sources};
use super::spawn;

/// upstream default file mode of configMap, secret, downwardAPI and projected volumes (0644).
const DEFAULT_MODE: u32 = 0o644;

/// A volume that could not be set up, with kubelet's message.
#[derive(Debug)]
pub(crate) struct MountError {
    pub(crate) volume: String,
    pub(crate) message: String,
}

/// Files to write into a volume: relative path → (content, mode).
type Files = BTreeMap<PathBuf, (Vec<u8>, u32)>;

/// The host directory of each volume of `pod`, creating and refreshing their content.
pub(crate) async fn prepare(
    pod: &Pod,
    pod_dir: &Path,
    privileged: bool,
    node: &NodeFacts,
    src: &mut Sources,
) -> Result<HashMap<String, PathBuf>, MountError> {
    let mut out = HashMap::new();
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    for v in &volumes {
        let dir = pod_dir.join("volumes").join(&v.name);
        let fail = |message: String| MountError {
            volume: v.name.clone(),
            message,
        };
        let path = setup(pod, v, &dir, privileged, node, src).await.map_err(fail)?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

async fn setup(
    pod: &Pod,
    v: &Volume,
    dir: &Path,
    privileged: bool,
    node: &NodeFacts,
    src: &mut Sources,
) -> Result<PathBuf, String> {
    let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()));
    if let Some(h) = &v.host_path {
        host_path(Path::new(&h.path), h.type_.as_deref().unwrap_or(""))?;
        return Ok(PathBuf::from(&h.path));
    }
    if let Some(c) = &v.persistent_volume_claim {
        let p = claim_path(&c.claim_name, src).await?;
        // local-path volumes are `DirectoryOrCreate`.
        if !p.exists() {
            mkdir(&p)?;
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777));
        }
        return Ok(p);
    }
    if let Some(e) = &v.empty_dir {
        let fresh = !dir.exists();
        mkdir(dir)?;
        if fresh {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
        }
        if e.medium.as_deref() == Some("Memory") && privileged && !spawn::is_mount_point(dir) {
            let size = e
                .size_limit
                .as_ref()
                .and_then(|q| env::parse_quantity(&q.0))
                .map(|b| b as u64);
            spawn::mount_tmpfs(dir, size, 0o777).map_err(|e| format!("mount tmpfs: {e}"))?;
        }
        return Ok(dir.to_path_buf());
    }
    let mut files = Files::new();
    let mut tmpfs = false;
    if let Some(c) = &v.config_map {
        let mode = c.default_mode.map(|m| m as u32).unwrap_or(DEFAULT_MODE);
        configmap_files(
            &c.name,
            c.items.as_deref(),
            c.optional == Some(true),
            mode,
            src,
            &mut files,
        )
        .await?;
    } else if let Some(s) = &v.secret {
        tmpfs = true;
        let mode = s.default_mode.map(|m| m as u32).unwrap_or(DEFAULT_MODE);
        let name = s.secret_name.clone().unwrap_or_default();
        secret_files(
            &name,
            s.items.as_deref(),
            s.optional == Some(true),
            mode,
            src,
            &mut files,
        )
        .await?;
    } else if let Some(d) = &v.downward_api {
        let mode = d.default_mode.map(|m| m as u32).unwrap_or(DEFAULT_MODE);
        downward_files(pod, d.items.as_deref().unwrap_or_default(), mode, node, &mut files)?;
    } else if let Some(p) = &v.projected {
        tmpfs = true;
        let mode = p.default_mode.map(|m| m as u32).unwrap_or(DEFAULT_MODE);
        for s in p.sources.iter().flatten() {
            if let Some(c) = &s.config_map {
                configmap_files(
                    &c.name,
                    c.items.as_deref(),
                    c.optional == Some(true),
                    mode,
                    src,
                    &mut files,
                )
                .await?;
            } else if let Some(c) = &s.secret {
                secret_files(
                    &c.name,
                    c.items.as_deref(),
                    c.optional == Some(true),
                    mode,
                    src,
                    &mut files,
                )
                .await?;
            } else if let Some(d) = &s.downward_api {
                downward_files(pod, d.items.as_deref().unwrap_or_default(), mode, node, &mut files)?;
            } else if let Some(t) = &s.service_account_token {
                // No TokenRequest here: the file exists (empty) so the layout is as upstream.
                files.insert(PathBuf::from(&t.path), (Vec::new(), mode));
            }
        }
    } else {
        // ephemeral and others: a plain directory until provisioned.
        mkdir(dir)?;
        return Ok(dir.to_path_buf());
    }
    mkdir(dir)?;
    if tmpfs && privileged && !spawn::is_mount_point(dir) {
        spawn::mount_tmpfs(dir, None, 0o755).map_err(|e| format!("mount tmpfs: {e}"))?;
    }
    write_files(dir, &files).map_err(|e| format!("writing {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Checks (or creates) a hostPath as kubelet does for its `type`, with kubelet's messages.
/// Without a type a missing path becomes a directory (0755), as container runtimes make a
/// missing bind source.
fn host_path(p: &Path, ty: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let path = p.display();
    let exists = p.exists();
    let go_err = |op: &str, e: std::io::Error| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        format!("{op} {path}: {why}")
    };
    let mkdir = || {
        std::fs::create_dir_all(p).map_err(|e| go_err("mkdir", e))?;
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        Ok(())
    };
    let (want, what) = match ty {
        "" if !exists => return mkdir(),
        "" => return Ok(()),
        "DirectoryOrCreate" if !exists => return mkdir(),
        "FileOrCreate" if !exists => {
            // upstream does not make the parent directory.
            return std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(p)
                .map(|_| ())
                .map_err(|e| go_err("open", e));
        }
        "Directory" | "DirectoryOrCreate" => ("Directory", "directory"),
        "File" | "FileOrCreate" => ("File", "file"),
        "Socket" => ("Socket", "socket file"),
        "CharDevice" => ("CharDevice", "character device"),
        "BlockDevice" => ("BlockDevice", "block device"),
        other => return Err(format!("{other} is an invalid volume type")),
    };
    if !exists {
        return Err(format!("hostPath {path} doesn't exist"));
    }
    let t = std::fs::metadata(p)
        .map_err(|e| format!("hostPath type check failed, {path} is not a {what}, unable to determine its type: {e}"))?
        .file_type();
    let got = if t.is_socket() {
        "Socket"
    } else if t.is_char_device() {
        "CharDevice"
    } else if t.is_block_device() {
        "BlockDevice"
    } else if t.is_dir() {
        "Directory"
    } else if t.is_file() {
        "File"
    } else {
        return Err(format!(
            "hostPath type check failed, {path} is not a {what}, unable to determine its type: only recognise file, directory, socket, block device and character device"
        ));
    };
    if got != want {
        return Err(format!(
            "hostPath type check failed: {path} is not a {what}, it's a {got}"
        ));
    }
    Ok(())
}

/// The host directory behind a claim: claim → bound PersistentVolume → `hostPath.path` or
/// `local.path`. An unbound claim fails with kubelet's message, so the pod waits and retries.
async fn claim_path(name: &str, src: &Sources) -> Result<PathBuf, String> {
    let ns = src.namespace();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(src.client().clone(), ns);
    let Some(pvc) = claims.get_opt(name).await.map_err(|e| e.to_string())? else {
        return Err(format!("persistentvolumeclaim \"{name}\" not found"));
    };
    let phase = pvc.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if phase != "Bound" || volume.is_empty() {
        return Err(format!(
            "PVC {ns}/{name} has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({volume:?})"
        ));
    }
    let pvs: Api<PersistentVolume> = Api::all(src.client().clone());
    let Some(pv) = pvs.get_opt(&volume).await.map_err(|e| e.to_string())? else {
        return Err(format!("persistentvolume \"{volume}\" not found"));
    };
    let spec = pv.spec.unwrap_or_default();
    spec.host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .map(PathBuf::from)
        .ok_or_else(|| format!("persistentvolume \"{volume}\" has no hostPath or local source"))
}

async fn configmap_files(
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
    src: &mut Sources,
    files: &mut Files,
) -> Result<(), String> {
    let data = match src.configmap(name).await? {
        Some(cm) => env::configmap_data(&cm),
        None if optional => return Ok(()),
        None => return Err(format!("configmap \"{name}\" not found")),
    };
    key_files(&data, items, optional, mode, "configmap", files)
}

async fn secret_files(
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
    src: &mut Sources,
    files: &mut Files,
) -> Result<(), String> {
    let data = match src.secret(name).await? {
        Some(s) => env::secret_data(&s),
        None if optional => return Ok(()),
        None => return Err(format!("secret \"{name}\" not found")),
    };
    key_files(&data, items, optional, mode, "secret", files)
}

fn key_files(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
    kind: &str,
    files: &mut Files,
) -> Result<(), String> {
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        let m = it.mode.map(|m| m as u32).unwrap_or(mode);
                        files.insert(PathBuf::from(&it.path), (v.clone(), m));
                    }
                    None if optional => {}
                    None => return Err(format!("{kind} references non-existent config key: {}", it.key)),
                }
            }
        }
        _ => {
            for (k, v) in data {
                files.insert(PathBuf::from(k), (v.clone(), mode));
            }
        }
    }
    Ok(())
}

fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
    node: &NodeFacts,
    files: &mut Files,
) -> Result<(), String> {
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            env::field_value(pod, f, node)?
        } else if let Some(r) = &it.resource_field_ref {
            env::resource_value(pod, None, r, node)?
        } else {
            String::new()
        };
        let m = it.mode.map(|m| m as u32).unwrap_or(mode);
        files.insert(PathBuf::from(&it.path), (value.into_bytes(), m));
    }
    Ok(())
}

/// Writes `files` into `dir` (each atomically) and removes files no longer wanted.
fn write_files(dir: &Path, files: &Files) -> std::io::Result<()> {
    for (rel, (content, mode)) in files {
        let rel = sanitize(rel);
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read(&path).ok().as_deref() == Some(content.as_slice())
            && std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o7777).ok() == Some(*mode)
        {
            continue;
        }
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&tmp, content)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(*mode))?;
        std::fs::rename(&tmp, &path)?;
    }
    let wanted: Vec<PathBuf> = files.keys().map(|p| dir.join(sanitize(p))).collect();
    remove_unwanted(dir, &wanted);
    Ok(())
}

fn remove_unwanted(dir: &Path, wanted: &[PathBuf]) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_unwanted(&p, wanted);
            if !wanted.iter().any(|w| w.starts_with(&p)) {
                let _ = std::fs::remove_dir_all(&p);
            }
        } else if !wanted.contains(&p) {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Keeps a relative item path inside its volume (validation already refuses `..`).
fn sanitize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect()
}

/// Unmounts the tmpfs volumes of a pod directory.
pub(crate) fn unmount_all(pod_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(pod_dir.join("volumes")) else {
        return;
    };
    for e in rd.flatten() {
        if spawn::is_mount_point(&e.path()) {
            spawn::unmount(&e.path());
        }
    }
}

/// The pod's `/etc/hosts` (kubelet's managed hosts file).
pub(crate) fn hosts_file(pod: &Pod, ip: &str, hostname: &str) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let spec = pod.spec.as_ref();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    match spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty()) {
        Some(sub) => s.push_str(&format!("{ip}\t{hostname}.{sub}.{ns}.svc.cluster.local\t{hostname}\n")),
        None => s.push_str(&format!("{ip}\t{hostname}\n")),
    }
    let aliases = spec.and_then(|s| s.host_aliases.clone()).unwrap_or_default();
    if !aliases.is_empty() {
        s.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            s.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.unwrap_or_default().join("\t")));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_follow_kubelet() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        // No type: a missing path becomes a directory, not a file.
        let missing = d.join("var/lib/docker/containers");
        host_path(&missing, "").unwrap();
        assert!(missing.is_dir());
        let made = d.join("made");
        host_path(&made, "DirectoryOrCreate").unwrap();
        assert_eq!(std::fs::metadata(&made).unwrap().permissions().mode() & 0o777, 0o755);
        let f = d.join("f");
        host_path(&f, "FileOrCreate").unwrap();
        assert!(f.is_file());
        let orphan = d.join("no/parent");
        assert_eq!(
            host_path(&orphan, "FileOrCreate").unwrap_err(),
            format!("open {}: no such file or directory", orphan.display())
        );
        host_path(&made, "Directory").unwrap();
        host_path(&f, "File").unwrap();
        assert_eq!(
            host_path(&f, "Directory").unwrap_err(),
            format!(
                "hostPath type check failed: {} is not a directory, it's a File",
                f.display()
            )
        );
        assert_eq!(
            host_path(&made, "FileOrCreate").unwrap_err(),
            format!(
                "hostPath type check failed: {} is not a file, it's a Directory",
                made.display()
            )
        );
        assert_eq!(
            host_path(&f, "Socket").unwrap_err(),
            format!(
                "hostPath type check failed: {} is not a socket file, it's a File",
                f.display()
            )
        );
        assert_eq!(
            host_path(Path::new("/dev/null"), "BlockDevice").unwrap_err(),
            "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"
        );
        host_path(Path::new("/dev/null"), "CharDevice").unwrap();
        let gone = d.join("gone");
        assert_eq!(
            host_path(&gone, "Directory").unwrap_err(),
            format!("hostPath {} doesn't exist", gone.display())
        );
        assert!(!gone.exists());
        let sock = d.join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        host_path(&sock, "Socket").unwrap();
    }
}
