//! Label and field selectors with upstream grammar, error messages and matching
//! (apimachinery `pkg/labels`, `pkg/fields` and each kind's selectable fields).

mod error;
mod field_labels;
mod fields;
mod label_parser;
mod labels;
mod validation;

pub use error::SelectorError;
pub use fields::FieldSelector;
pub use labels::{LabelSelector, Operator, Requirement};

#[cfg(test)]
mod tests;
