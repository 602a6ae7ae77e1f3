//! validation (being written)
