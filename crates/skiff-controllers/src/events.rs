//! Event recording for controllers (and node agents), with client-go's correlation
//! ([`skiff_api::events`]): an event repeating the same object, reason and message becomes one
//! event with a growing count (`x3 over 5s`), events whose messages differ stay separate
//! ("Created pod: a", "Created pod: b"), and many similar ones are combined.
//!
//! kube-runtime's `Recorder` keys its series without the message, so every "Created pod: …"
//! of a ReplicaSet would fold into the first one; `kubectl describe` would then read unlike a
//! real cluster. This keeps kube's types and call shape and changes only the key.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use skiff_api::events::{Correlator, Decision, Source};

pub use kube::runtime::events::{Event, EventType, Reporter};

/// Publishes events for one controller.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    cache: Arc<Mutex<Correlator<K8sEvent>>>,
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
        let instance = self
            .reporter
            .instance
            .clone()
            .unwrap_or_else(|| self.reporter.controller.clone());
        let source = Source {
            reporter: (self.reporter.controller.clone(), instance.clone()),
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
        };
        let note = ev.note.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let ns = reference.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &ns);
        // The lock is never held across a request: a controller publishes from many syncs at once.
        let decision = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(&source, &note, Instant::now());
        let (event, count, note) = match decision {
            Decision::Count { mut event, count, note } => {
                event.series = Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                });
                let mut patch = serde_json::json!({"series": event.series});
                if event.note.as_deref() != Some(note.as_str()) {
                    // A combined event shows the latest message.
                    patch["note"] = note.clone().into();
                    event.note = Some(note.clone());
                }
                let name = event.metadata.name.clone().unwrap_or_default();
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                (event, count, note)
            }
            Decision::Create { note } => {
                let name = reference.name.clone().unwrap_or_default();
                let e = K8sEvent {
                    metadata: ObjectMeta {
                        name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    action: Some(ev.action.clone()),
                    reason: Some(ev.reason.clone()),
                    note: (ev.note.is_some() || !note.is_empty()).then(|| note.clone()),
                    type_: Some(type_.into()),
                    event_time: Some(MicroTime(now)),
                    regarding: Some(reference.clone()),
                    related: ev.secondary.clone(),
                    reporting_controller: Some(self.reporter.controller.clone()),
                    reporting_instance: Some(instance),
                    ..Default::default()
                };
                (api.create(&PostParams::default(), &e).await?, 1, note)
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recorded(source, &note, event, count, Instant::now());
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
