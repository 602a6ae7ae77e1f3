//! Bounds on what a patch may produce, as kube-apiserver has them: a JSON patch holds at most
//! [`MAX_JSON_PATCH_OPERATIONS`] operations, its `copy` operations may add at most
//! [`MAX_COPY_BYTES`] in total, and no patched object may exceed [`MAX_OBJECT_BYTES`]
//! serialized. Sizes are measured while patching, so a hostile patch is refused before it
//! allocates more than a few times these limits.

use std::io;

use serde_json::Value;

use super::PatchError;

/// Most operations one JSON patch may hold (upstream `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one JSON patch may add in total (upstream
/// `JSONPatchMaxCopyBytes`, the limit of evanphx/json-patch's `AccumulatedCopySizeLimit`).
pub const MAX_COPY_BYTES: u64 = 3 * 1024 * 1024;

/// Largest patched object, serialized as JSON: the request body limit, so a patch cannot make
/// an object that a create or update could not have sent.
pub const MAX_OBJECT_BYTES: u64 = 3 * 1024 * 1024;

/// Counts bytes and fails once more than `cap` were written, so measuring stops early.
struct Counter {
    n: u64,
    cap: u64,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.n += buf.len() as u64;
        if self.n > self.cap {
            return Err(io::Error::other("over the cap"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The compact JSON size of `v`, or `None` when it exceeds `cap` (measuring stops there).
pub fn json_size_within(v: &Value, cap: u64) -> Option<u64> {
    let mut c = Counter { n: 0, cap };
    serde_json::to_writer(&mut c, v).ok().map(|()| c.n)
}

/// Refuses a patched object larger than [`MAX_OBJECT_BYTES`].
pub fn check_object_size(v: &Value) -> Result<(), PatchError> {
    match json_size_within(v, MAX_OBJECT_BYTES) {
        Some(_) => Ok(()),
        None => Err(PatchError::ObjectTooLarge {
            limit: MAX_OBJECT_BYTES,
        }),
    }
}
