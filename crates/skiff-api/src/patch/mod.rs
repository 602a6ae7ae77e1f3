//! Patch engines: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch and
//! the server-side apply merge.

pub mod merge_keys;
