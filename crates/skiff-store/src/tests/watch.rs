//! Watch: history replay, live events, prefixes, compaction, lagging watchers.

use std::time::Duration;

use futures::StreamExt;

use super::*;
use crate::{Event, EventType, Store, StoreError, WatchStream};

/// A seen event: (kind, key, mod_revision).
type Seen = (EventType, String, i64);
/// (name, prefix, from revision, expected history events)
type WatchCase = (&'static str, &'static str, i64, Vec<Seen>);
/// (name, history events, history bytes, compact to, watch from, expected compact_revision if refused)
type CompactCase = (&'static str, usize, usize, Option<i64>, i64, Option<i64>);

/// Next item of a watch, failing the test instead of hanging.
async fn next(w: &mut WatchStream) -> Option<Result<Vec<Event>, StoreError>> {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch item in time")
}

/// Events up to the end of the batch that reaches revision `until`, as (kind, key, mod_revision).
async fn collect_until(w: &mut WatchStream, until: i64) -> Vec<Seen> {
    let mut out = Vec::new();
    loop {
        let batch = next(w).await.expect("stream open").expect("no error");
        assert!(!batch.is_empty(), "batches are never empty");
        let done = batch.iter().any(|e| e.kv.mod_revision >= until);
        out.extend(batch.into_iter().map(|e| (e.kind, e.kv.key, e.kv.mod_revision)));
        if done {
            return out;
        }
    }
}

/// rev 2: put /p/a, 3: put /q/b, 4: put /p/a, 5: delete /p/a.
async fn history_store() -> (std::sync::Arc<RedbStore>, tempfile::TempDir) {
    let (store, dir) = fresh(RedbOptions::default());
    store.txn(create("/p/a", "v1")).await.unwrap();
    store.txn(create("/q/b", "v")).await.unwrap();
    store.txn(cas("/p/a", 2, "v2")).await.unwrap();
    store.txn(ops(vec![del_op("/p/a")])).await.unwrap();
    (store, dir)
}

#[tokio::test]
async fn watch_replays_history_then_live() {
    use EventType::{Delete, Put};
    let (store, _dir) = history_store().await;
    let s = |k: &str| k.to_owned();
    let cases: Vec<WatchCase> = vec![
        ("from now on", "/p/", 0, vec![]),
        (
            "from the start",
            "/p/",
            2,
            vec![(Put, s("/p/a"), 2), (Put, s("/p/a"), 4), (Delete, s("/p/a"), 5)],
        ),
        (
            "from the middle",
            "/p/",
            4,
            vec![(Put, s("/p/a"), 4), (Delete, s("/p/a"), 5)],
        ),
        ("other prefix", "/q/", 2, vec![(Put, s("/q/b"), 3)]),
        (
            "everything",
            "",
            3,
            vec![(Put, s("/q/b"), 3), (Put, s("/p/a"), 4), (Delete, s("/p/a"), 5)],
        ),
        ("future revision waits", "/p/", 7, vec![]),
    ];
    let mut watches: Vec<_> = cases
        .iter()
        .map(|(_, prefix, from, _)| store.watch(prefix, *from).unwrap())
        .collect();
    // Live: rev 6 /q/x (seen by "" only), rev 7 /p/live and /q/live in one txn.
    store.txn(create("/q/x", "x")).await.unwrap();
    store
        .txn(ops(vec![put_op("/p/live", "1"), put_op("/q/live", "1")]))
        .await
        .unwrap();
    for ((name, prefix, from, mut want), w) in cases.into_iter().zip(watches.iter_mut()) {
        if prefix.is_empty() || prefix == "/q/" {
            want.push((Put, s("/q/x"), 6));
        }
        let live_key = if prefix == "/q/" { "/q/live" } else { "/p/live" };
        want.push((Put, live_key.to_owned(), 7));
        if prefix.is_empty() {
            want.push((Put, s("/q/live"), 7));
        }
        // Both events of revision 7 arrive in one batch.
        let got = collect_until(w, 7).await;
        assert_eq!(got, want, "{name} (from {from})");
    }
}

#[tokio::test]
async fn delete_event_carries_last_value_and_prev() {
    let (store, _dir) = history_store().await;
    let mut w = store.watch("/p/", 5).unwrap();
    let batch = next(&mut w).await.unwrap().unwrap();
    let e = &batch[0];
    assert_eq!(e.kind, EventType::Delete);
    assert_eq!(
        (&e.kv.value[..], e.kv.mod_revision, e.kv.create_revision),
        (&b"v2"[..], 5, 2)
    );
    let prev = e.prev.as_ref().unwrap();
    assert_eq!((&prev.value[..], prev.mod_revision, prev.version), (&b"v2"[..], 4, 2));
    let mut w = store.watch("/p/", 4).unwrap();
    let put = &next(&mut w).await.unwrap().unwrap()[0];
    assert_eq!(put.prev.as_ref().map(|p| p.mod_revision), Some(2), "put carries prev");
}

#[tokio::test]
async fn compaction_and_history_limits() {
    const MAX: usize = usize::MAX;
    let cases: Vec<CompactCase> = vec![
        ("whole history kept", 100, MAX, None, 2, None),
        ("compacted revision itself is kept", 100, MAX, Some(4), 4, None),
        ("older than compaction", 100, MAX, Some(4), 3, Some(4)),
        ("compaction never moves back", 100, MAX, Some(1), 2, None),
        ("evicted by the ring", 2, MAX, None, 3, Some(4)),
        ("ring keeps the newest", 2, MAX, None, 4, None),
        // Each event holds 3 bytes ("kN" + "v"), so 6 bytes keep two events.
        ("evicted by the byte limit", 100, 6, None, 3, Some(4)),
        ("byte limit keeps the newest", 100, 6, None, 4, None),
        ("now is always possible", 1, MAX, Some(5), 0, None),
    ];
    for (name, history, history_bytes, compact_to, from, refused) in cases {
        let (store, _dir) = fresh(RedbOptions {
            history,
            history_bytes,
            ..RedbOptions::default()
        });
        for i in 0..4 {
            store.txn(create(&format!("k{i}"), "v")).await.unwrap(); // revisions 2..=5
        }
        if let Some(rev) = compact_to {
            store.compact(rev).await.unwrap();
        }
        match (store.watch("", from), refused) {
            (Ok(_), None) => {}
            (Err(StoreError::Compacted { compact_revision }), Some(want)) => {
                assert_eq!(compact_revision, want, "{name}")
            }
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

#[tokio::test]
async fn compacting_the_future_is_refused() {
    let (store, _dir) = fresh(RedbOptions::default());
    assert!(matches!(store.compact(2).await, Err(StoreError::FutureRevision)));
    assert!(store.compact(1).await.is_ok());
}

#[tokio::test]
async fn lagging_watcher_gets_queued_events_then_error() {
    let (store, _dir) = fresh(RedbOptions {
        watch_queue: 2,
        ..RedbOptions::default()
    });
    let mut slow = store.watch("", 0).unwrap();
    let mut fast = store.watch("", 0).unwrap();
    for i in 0..4 {
        store.txn(create(&format!("k{i}"), "v")).await.unwrap();
        assert_eq!(next(&mut fast).await.unwrap().unwrap()[0].kv.mod_revision, 2 + i);
    }
    let got: Vec<i64> = vec![
        next(&mut slow).await.unwrap().unwrap()[0].kv.mod_revision,
        next(&mut slow).await.unwrap().unwrap()[0].kv.mod_revision,
    ];
    assert_eq!(got, vec![2, 3]);
    assert!(matches!(next(&mut slow).await, Some(Err(StoreError::WatcherLagged))));
    assert!(next(&mut slow).await.is_none(), "stream ends after the error");
    assert_eq!(store.watcher_count(), 1, "only the fast watcher is left");
}

#[tokio::test]
async fn dropped_watchers_are_forgotten() {
    let (store, _dir) = fresh(RedbOptions::default());
    let w = store.watch("/p/", 0).unwrap();
    assert_eq!(store.watcher_count(), 1);
    drop(w);
    store.txn(create("/other", "v")).await.unwrap();
    assert_eq!(store.watcher_count(), 0);
}

#[tokio::test]
async fn failed_and_read_only_txns_publish_nothing() {
    let (store, _dir) = fresh(RedbOptions::default());
    let mut w = store.watch("", 0).unwrap();
    store.txn(cas("a", 9, "v")).await.unwrap();
    store
        .txn(ops(vec![Op::Get { key: "a".into() }, del_op("absent")]))
        .await
        .unwrap();
    store.txn(create("b", "v")).await.unwrap();
    let batch = next(&mut w).await.unwrap().unwrap();
    assert_eq!(
        (batch.len(), batch[0].kv.key.as_str(), batch[0].kv.mod_revision),
        (1, "b", 2)
    );
    assert_eq!(store.commit_count(), 1, "no fsync for txns that changed nothing");
}
