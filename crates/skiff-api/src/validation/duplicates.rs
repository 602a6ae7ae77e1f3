//! Duplicate keys in a JSON document, which `serde_json::Value` silently collapses (last one
//! wins). Upstream's strict decoder (sigs.k8s.io/json) reports each as `duplicate field "<path>"`
//! with the path written `spec.containers[0].name`.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Upstream keeps at most this many strict errors per document.
const MAX_REPORTED: usize = 100;

/// Paths of the duplicated keys of a JSON document, in document order, each once. A document
/// that is not valid JSON yields none (its decoding error is reported elsewhere).
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut path = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    let seed = Walk {
        path: &mut path,
        found: &mut found,
    };
    if seed.deserialize(&mut de).is_err() {
        return Vec::new();
    }
    found
}

/// One step of the path to a value: an object key or an array index.
enum Seg {
    Key(String),
    Index(usize),
}

/// Visits one value, recording duplicated keys of the objects inside it. The path is a stack,
/// turned into text only for a duplicate, so a clean document costs one walk.
struct Walk<'a> {
    path: &'a mut Vec<Seg>,
    found: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn record(&mut self, key: &str) {
        let mut text = String::new();
        for seg in self.path.iter() {
            match seg {
                Seg::Key(k) if text.is_empty() => text.push_str(k),
                Seg::Key(k) => {
                    text.push('.');
                    text.push_str(k);
                }
                Seg::Index(i) => text.push_str(&format!("[{i}]")),
            }
        }
        if !text.is_empty() {
            text.push('.');
        }
        text.push_str(key);
        if self.found.len() < MAX_REPORTED && !self.found.contains(&text) {
            self.found.push(text);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            self.path.push(Seg::Index(i));
            let item = Walk {
                path: &mut *self.path,
                found: &mut *self.found,
            };
            let more = seq.next_element_seed(item)?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let duplicate = seen.contains(&key);
            if duplicate {
                self.record(&key);
            }
            self.path.push(Seg::Key(key));
            let value = Walk {
                path: &mut *self.path,
                found: &mut *self.found,
            };
            map.next_value_seed(value)?;
            if let Some(Seg::Key(key)) = self.path.pop() {
                if !duplicate {
                    seen.insert(key);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::duplicate_fields;

    #[test]
    fn finds_duplicates_with_upstream_paths() {
        let doc = br#"{"kind":"Pod","kind":"Pod","metadata":{"name":"a","labels":{"x":"1","x":"2"}},
            "spec":{"containers":[{"name":"c","image":"i","image":"j"}]}}"#;
        assert_eq!(
            duplicate_fields(doc),
            vec!["kind", "metadata.labels.x", "spec.containers[0].image"]
        );
    }

    #[test]
    fn reports_each_path_once_and_ignores_invalid_json() {
        assert_eq!(duplicate_fields(br#"{"a":1,"a":2,"a":3}"#), vec!["a"]);
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
    }
}
