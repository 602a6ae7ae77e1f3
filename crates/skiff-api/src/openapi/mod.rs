//! openapi (being written)
