//! The node's data directory holds secret volumes and logs: it is created 0700, and an
//! existing one open to other users is tightened (with a log line saying so).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and missing parents) with mode 0700, or sets an existing `dir` to 0700 when
/// others could read or enter it.
pub(crate) fn secure_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        tracing::warn!(
            "tightened permissions of the node's data directory: {} {mode:04o} -> 0700",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b");
        secure_dir(&fresh).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        secure_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }
}
