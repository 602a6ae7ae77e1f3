//! Patch engines: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch and
//! the server-side apply merge.

mod apply;
mod error;
mod json;
pub mod limits;
pub mod merge_keys;
mod schema;
mod strategic;

pub use apply::server_side_apply;
pub use error::PatchError;
pub use json::{json_patch, merge_patch};
pub use strategic::strategic_merge_patch;

#[cfg(test)]
mod tests;
