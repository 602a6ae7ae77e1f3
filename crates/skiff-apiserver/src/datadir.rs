//! The data directory holds the store (every Secret), the CA key, the admin token and the
//! nodes' secret volumes: only its owner may enter it. It is created 0700; an existing one is
//! tightened at start (directories 0700, credentials and the store 0600) with one log line
//! naming what changed.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` 0700 if missing, and takes group and other permissions away from it and
/// from what it holds that is secret.
pub fn secure(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut changed = Vec::new();
    tighten(dir, &mut changed)?;
    for name in ["store.redb", "kubeconfig", "pki", "nodes"] {
        tighten(&dir.join(name), &mut changed)?;
    }
    for sub in ["pki", "nodes"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            // Node directories: each holds its pods' secret volumes.
            if sub == "pki" || e.file_type().is_ok_and(|t| t.is_dir()) {
                tighten(&e.path(), &mut changed)?;
            }
        }
    }
    if !changed.is_empty() {
        tracing::warn!(
            "tightened permissions of {} (secrets must not be readable by other users): {}",
            dir.display(),
            changed.join(", ")
        );
    }
    Ok(())
}

/// Removes group and other permissions of `path` (not following symlinks), noting the change.
fn tighten(path: &Path, changed: &mut Vec<String>) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let new = mode & !0o077;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))?;
    changed.push(format!("{} {mode:04o} -> {new:04o}", path.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_dir_is_private_and_an_open_one_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("fresh/data");
        secure(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);

        let old = tmp.path().join("old");
        std::fs::create_dir_all(old.join("pki")).unwrap();
        std::fs::create_dir_all(old.join("nodes/n1")).unwrap();
        std::fs::write(old.join("store.redb"), "").unwrap();
        std::fs::write(old.join("pki/ca.key"), "").unwrap();
        std::fs::write(old.join("other.txt"), "").unwrap();
        let set = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        for p in [&old, &old.join("pki"), &old.join("nodes"), &old.join("nodes/n1")] {
            set(p, 0o755);
        }
        set(&old.join("store.redb"), 0o644);
        set(&old.join("pki/ca.key"), 0o644);
        set(&old.join("other.txt"), 0o644);
        secure(&old).unwrap();
        for d in ["", "pki", "nodes", "nodes/n1"] {
            assert_eq!(mode(&old.join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&old.join("store.redb")), 0o600);
        assert_eq!(mode(&old.join("pki/ca.key")), 0o600);
        assert_eq!(mode(&old.join("other.txt")), 0o644, "only what is known to be secret");
    }
}
