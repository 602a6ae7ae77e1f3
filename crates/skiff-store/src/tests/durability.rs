//! Persistence: reopening, and SIGKILL losing nothing acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;
use crate::{Store, StoreError};

#[tokio::test]
async fn reopen_keeps_data_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        store.txn(create("a", "v1")).await.unwrap();
        store.txn(cas("a", 2, "v2")).await.unwrap();
        store.txn(create("b", "v")).await.unwrap();
        store.txn(ops(vec![del_op("b")])).await.unwrap();
        assert_eq!(store.revision(), 5);
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.revision(), 5, "revision survives");
    let a = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (&a.value[..], a.create_revision, a.mod_revision, a.version),
        (&b"v2"[..], 2, 3, 2)
    );
    assert_eq!(store.get("b").await.unwrap(), None);
    assert_eq!(store.range("", None, 0).await.unwrap().revision, 5);
    // History is in memory only: older watches are refused, newer ones work.
    assert!(matches!(
        store.watch("", 5),
        Err(StoreError::Compacted { compact_revision: 6 })
    ));
    assert!(store.watch("", 6).is_ok());
    let resp = store.txn(create("c", "v")).await.unwrap();
    assert_eq!(resp.revision, 6, "revisions continue, never go back");
}

/// Env var that turns `child_writer` into the writer process of `sigkill_loses_nothing_acknowledged`.
const CHILD_DIR: &str = "SKIFF_STORE_CHILD_DIR";

/// Writes until killed, printing `ack <key> <revision>` for every acknowledged create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of sigkill_loses_nothing_acknowledged"]
async fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let store = RedbStore::open(std::path::Path::new(&dir).join("store.redb")).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                // Bounded so a parent that never kills it still ends.
                for i in 0..20_000 {
                    let key = format!("k/{w}/{i}");
                    let resp = store.txn(create(&key, "value")).await.unwrap();
                    println!("ack {key} {}", resp.revision);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "tests::durability::child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: Vec<(String, i64)> = Vec::new();
    let parse = |line: String| -> Option<(String, i64)> {
        let mut parts = line.strip_prefix("ack ")?.split(' ');
        Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
    };
    while acked.len() < 500 {
        let line = lines.next().expect("child keeps writing").unwrap();
        acked.extend(parse(line));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines printed before the kill are acknowledged writes too.
    acked.extend(lines.map_while(Result::ok).filter_map(parse));
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    let max_acked = acked.iter().map(|(_, rev)| *rev).max().unwrap();
    assert!(
        store.revision() >= max_acked,
        "revision {} < acknowledged {max_acked}",
        store.revision()
    );
    for (key, revision) in &acked {
        let kv = store.get(key).await.unwrap();
        assert_eq!(kv.map(|kv| kv.mod_revision), Some(*revision), "{key} lost");
    }
}
