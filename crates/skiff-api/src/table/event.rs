//! Event rows (core/v1 and events.k8s.io/v1 shapes), upstream `printEvent` with all ten cells.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{parse_time, since};
use super::json::{at, opt_s, s};

/// Field names of the two Event shapes.
struct Shape {
    involved: &'static str,
    message: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    source: &'static str,
    controller: &'static str,
}

const CORE: Shape = Shape {
    involved: "involvedObject",
    message: "message",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    source: "source",
    controller: "reportingComponent",
};
const EVENTS_V1: Shape = Shape {
    involved: "regarding",
    message: "note",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    source: "deprecatedSource",
    controller: "reportingController",
};

fn shape(ev: &Value) -> &'static Shape {
    let new =
        s(ev, "apiVersion").starts_with("events.k8s.io/") || ev.get("regarding").is_some() || ev.get("note").is_some();
    if new {
        &EVENTS_V1
    } else {
        &CORE
    }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

pub(crate) fn event(ev: &Value, now: Timestamp) -> Vec<Value> {
    let sh = shape(ev);
    let first = match parse_time(opt_s(ev, sh.first)) {
        Some(t) => since(Some(t), now),
        None => since(parse_time(opt_s(ev, "eventTime")), now),
    };
    let mut last = match parse_time(opt_s(ev, sh.last)) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = at(ev, sh.count).and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = ev.get("series").filter(|v| v.is_object()) {
        last = since(parse_time(opt_s(series, "lastObservedTime")), now);
        count = at(series, "count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        // Singleton events have no count in the new API.
        count = 1;
    }
    let kind = s(ev, &format!("{}.kind", sh.involved)).to_lowercase();
    let target = match opt_s(ev, &format!("{}.name", sh.involved)) {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let component = first_non_empty(s(ev, &format!("{}.component", sh.source)), s(ev, sh.controller));
    let host = first_non_empty(s(ev, &format!("{}.host", sh.source)), s(ev, "reportingInstance"));
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(s(ev, "type")),
        json!(s(ev, "reason")),
        json!(target),
        json!(s(ev, &format!("{}.fieldPath", sh.involved))),
        json!(source),
        json!(s(ev, sh.message).trim()),
        json!(first),
        json!(count),
        json!(s(ev, "metadata.name")),
    ]
}
