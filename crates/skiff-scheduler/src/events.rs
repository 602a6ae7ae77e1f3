//! What the scheduler tells the API about its decisions, off the scheduling loop: events
//! (`Scheduled`, `FailedScheduling`, written as events.k8s.io/v1 like upstream's recorder, with
//! repeated failures folded into a series) and the PodScheduled=False condition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Requests the reporter keeps in flight.
const CONCURRENCY: usize = 32;
/// Reports waiting beyond this are dropped (upstream's broadcaster drops too when its
/// queue is full); decisions never wait on reporting.
const BACKLOG: usize = 20_000;
/// upstream events recorder: an identical event within this window extends a series.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// One thing to report.
#[derive(Debug)]
pub enum Report {
    /// The binding succeeded.
    Scheduled { pod: Arc<Pod>, node: String },
    /// No node fits (or scheduling failed): event and PodScheduled=False.
    Failed {
        pod: Arc<Pod>,
        /// `Unschedulable` or `SchedulerError` (condition reason).
        reason: &'static str,
        message: String,
    },
}

/// Sends reports to the background writer, which stops (abandoning what it has not
/// written) when the reporter is dropped with the scheduler.
pub struct Reporter {
    tx: mpsc::Sender<Report>,
    writer: tokio::task::JoinHandle<()>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl Reporter {
    /// Starts the writer.
    pub fn start(client: Client, scheduler_name: String) -> Reporter {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let writer = tokio::spawn(writer(client, scheduler_name, rx));
        Reporter { tx, writer }
    }

    /// Queues a report; drops it when the writer is far behind.
    pub fn report(&self, r: Report) {
        if let Err(e) = self.tx.try_send(r) {
            tracing::debug!("dropping scheduler report: {e}");
        }
    }
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

struct Series {
    name: String,
    message: String,
    count: i32,
    last: Timestamp,
}

async fn writer(client: Client, controller: String, mut rx: mpsc::Receiver<Report>) {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let instance = format!("{controller}-{host}");
    // Requests in flight; dropped (aborted) with the writer when the scheduler stops.
    let mut inflight = JoinSet::new();
    // Failed events per pod UID, to fold repeats into a series.
    let mut series: HashMap<String, Series> = HashMap::new();
    while let Some(report) = rx.recv().await {
        let now = Timestamp::now();
        let (pod, type_, reason, action, note) = match &report {
            Report::Scheduled { pod, node } => {
                if let Some(uid) = &pod.metadata.uid {
                    series.remove(uid);
                }
                let msg = format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.metadata.namespace.as_deref().unwrap_or(""),
                    pod.metadata.name.as_deref().unwrap_or("")
                );
                (pod.clone(), "Normal", "Scheduled", "Binding", msg)
            }
            Report::Failed { pod, message, .. } => (
                pod.clone(),
                "Warning",
                "FailedScheduling",
                "Scheduling",
                message.clone(),
            ),
        };
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        while inflight.try_join_next().is_some() {}
        if inflight.len() >= CONCURRENCY {
            inflight.join_next().await;
        }
        let events: Api<Event> = Api::namespaced(client.clone(), &ns);

        // A repeat of the same failure: bump the series instead of a new event.
        if matches!(report, Report::Failed { .. }) {
            if series.len() > 10_000 {
                series.retain(|_, s| now.duration_since(s.last).unsigned_abs() < SERIES_WINDOW);
            }
            if let Some(s) = series.get_mut(&uid) {
                if s.message == note && now.duration_since(s.last).unsigned_abs() < SERIES_WINDOW {
                    s.count += 1;
                    s.last = now;
                    let patch = serde_json::json!({"series": EventSeries {
                        count: s.count,
                        last_observed_time: MicroTime(now),
                    }});
                    let ev_name = s.name.clone();
                    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
                    let (reason, message) = match &report {
                        Report::Failed { reason, message, .. } => (*reason, message.clone()),
                        Report::Scheduled { .. } => unreachable!(),
                    };
                    inflight.spawn(async move {
                        if let Err(e) = events
                            .patch(&ev_name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            tracing::debug!(event = %ev_name, "updating event series: {e}");
                        }
                        set_unschedulable(&pods, &pod, reason, &message).await;
                    });
                    continue;
                }
            }
        }

        let ev_name = format!("{name}.{:x}", now.as_nanosecond());
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(ev_name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(instance.clone()),
            action: Some(action.into()),
            reason: Some(reason.into()),
            type_: Some(type_.into()),
            note: Some(note.clone()),
            regarding: Some(reference(&pod)),
            ..Default::default()
        };
        let failed = match &report {
            Report::Failed { reason, message, .. } => {
                series.insert(
                    uid,
                    Series {
                        name: ev_name,
                        message: note,
                        count: 1,
                        last: now,
                    },
                );
                Some((*reason, message.clone()))
            }
            Report::Scheduled { .. } => None,
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        inflight.spawn(async move {
            if let Err(e) = events.create(&PostParams::default(), &ev).await {
                tracing::debug!(pod = %name, "writing event {}: {e}", ev.reason.as_deref().unwrap_or(""));
            }
            if let Some((reason, message)) = failed {
                set_unschedulable(&pods, &pod, reason, &message).await;
            }
        });
    }
}

/// Sets PodScheduled=False with the reason and message, unless the pod already says so
/// (upstream `updatePod` with `podutil.UpdatePodCondition`).
async fn set_unschedulable(pods: &Api<Pod>, pod: &Pod, reason: &str, message: &str) {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    if let Some(c) = current {
        if c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message) {
            return;
        }
    }
    // lastTransitionTime moves only when the status changes.
    let transition = match current {
        Some(c) if c.status == "False" => c.last_transition_time.clone(),
        _ => None,
    }
    .map(|t| t.0.to_string())
    .unwrap_or_else(|| {
        Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .unwrap_or(Timestamp::now())
            .to_string()
    });
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    }]}});
    let name = pod.metadata.name.as_deref().unwrap_or("");
    if let Err(e) = pods
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::debug!(pod = %name, "setting PodScheduled=False: {e}");
    }
}
