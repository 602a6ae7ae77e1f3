//! Event recording for controllers, with client-go's correlation: an event repeating the same
//! object, reason and message becomes one event with a growing count (`x3 over 5s`), while
//! events whose messages differ stay separate ("Created pod: a", "Created pod: b").
//!
//! kube-runtime's `Recorder` keys its series without the message, so every "Created pod: …"
//! of a ReplicaSet would fold into the first one; `kubectl describe` would then read unlike a
//! real cluster. This keeps kube's types and call shape and changes only the key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::sync::Mutex;
use std::time::Instant;

pub use kube::runtime::events::{Event, EventType, Reporter};

/// How long a published event can still grow a series (client-go and kube use 6 minutes).
const SERIES_TTL: Duration = Duration::from_secs(6 * 60);
/// Past this many remembered events the expired ones are dropped, at most every
/// [`SWEEP_EVERY`] (a sweep walks them all).
const CACHE_SWEEP: usize = 4096;
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    /// kind, namespace, name, uid and field path (not the resourceVersion, which changes with
    /// every update of the object).
    regarding: [Option<String>; 5],
    type_: String,
    reason: String,
    action: String,
    note: Option<String>,
}

/// Publishes events for one controller.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    cache: Arc<Mutex<Cache>>,
}

/// Published events by identity, with when each was last published.
struct Cache {
    events: HashMap<Key, (K8sEvent, Instant)>,
    swept: Instant,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            events: HashMap::new(),
            swept: Instant::now(),
        }
    }
}

impl Recorder {
    /// A recorder reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Recorder {
            client,
            reporter,
            cache: Arc::default(),
        }
    }

    /// Publishes `ev` about `reference`: a new event, or the next count of an identical one.
    pub async fn publish(&self, ev: &Event, reference: &ObjectReference) -> Result<(), kube::Error> {
        let type_ = match ev.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let key = Key {
            regarding: [
                reference.kind.clone(),
                reference.namespace.clone(),
                reference.name.clone(),
                reference.uid.clone(),
                reference.field_path.clone(),
            ],
            type_: type_.into(),
            reason: ev.reason.clone(),
            action: ev.action.clone(),
            note: ev.note.clone(),
        };
        let now = jiff::Timestamp::now();
        let ns = reference.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &ns);
        // The lock is never held across a request: a controller publishes from many syncs at once.
        let previous = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.events.len() > CACHE_SWEEP && cache.swept.elapsed() > SWEEP_EVERY {
                cache.events.retain(|_, (_, at)| at.elapsed() < SERIES_TTL);
                cache.swept = Instant::now();
            }
            cache
                .events
                .get(&key)
                .filter(|(_, at)| at.elapsed() < SERIES_TTL)
                .map(|(e, _)| e.clone())
        };
        let event = match previous {
            Some(mut e) => {
                let count = e.series.as_ref().map_or(2, |s| s.count + 1);
                e.series = Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                });
                let patch = serde_json::json!({"series": e.series});
                let name = e.metadata.name.clone().unwrap_or_default();
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                e
            }
            None => {
                let name = reference.name.clone().unwrap_or_default();
                let e = K8sEvent {
                    metadata: ObjectMeta {
                        name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    action: Some(ev.action.clone()),
                    reason: Some(ev.reason.clone()),
                    note: ev.note.clone(),
                    type_: Some(type_.into()),
                    event_time: Some(MicroTime(now)),
                    regarding: Some(reference.clone()),
                    related: ev.secondary.clone(),
                    reporting_controller: Some(self.reporter.controller.clone()),
                    reporting_instance: Some(
                        self.reporter
                            .instance
                            .clone()
                            .unwrap_or_else(|| self.reporter.controller.clone()),
                    ),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &e).await?
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.events.insert(key, (event, Instant::now()));
        Ok(())
    }
}

/// The message of an API error as upstream controllers print it in events (`pods "x" is
/// forbidden: …`), or the error itself for transport failures.
pub fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}
