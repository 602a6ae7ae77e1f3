//! Transaction semantics: compares, revisions, versions, results.

use super::*;
use crate::{Store, StoreError};

/// Expected kv: (value, create_revision, mod_revision, version).
type Kv = Option<(&'static str, i64, i64, i64)>;

enum Expect {
    Ok {
        succeeded: bool,
        revision: i64,
        results: Vec<Kv>,
    },
    DuplicateKey,
}

struct Case {
    name: &'static str,
    steps: Vec<(Txn, Expect)>,
}

fn ok(succeeded: bool, revision: i64, results: Vec<Kv>) -> Expect {
    Expect::Ok {
        succeeded,
        revision,
        results,
    }
}

#[tokio::test]
async fn txn_semantics() {
    // A fresh store is at revision 1, as etcd; the first change makes revision 2.
    let cases = vec![
        Case {
            name: "create if absent",
            steps: vec![(create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))]))],
        },
        Case {
            name: "create when present fails and returns current",
            steps: vec![
                (create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))])),
                (create("a", "v2"), ok(false, 2, vec![Some(("v1", 2, 2, 1))])),
            ],
        },
        Case {
            name: "cas update bumps version and mod revision",
            steps: vec![
                (create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))])),
                (cas("a", 2, "v2"), ok(true, 3, vec![Some(("v2", 2, 3, 2))])),
                (cas("a", 3, "v3"), ok(true, 4, vec![Some(("v3", 2, 4, 3))])),
            ],
        },
        Case {
            name: "stale cas fails and get in failure returns current",
            steps: vec![
                (create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))])),
                (cas("a", 2, "v2"), ok(true, 3, vec![Some(("v2", 2, 3, 2))])),
                (cas("a", 2, "v3"), ok(false, 3, vec![Some(("v2", 2, 3, 2))])),
            ],
        },
        Case {
            name: "cas on absent key fails",
            steps: vec![(cas("a", 5, "v"), ok(false, 1, vec![None]))],
        },
        Case {
            name: "delete returns the deleted kv; deleting again changes nothing",
            steps: vec![
                (create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))])),
                (ops(vec![del_op("a")]), ok(true, 3, vec![Some(("v1", 2, 2, 1))])),
                (ops(vec![Op::Get { key: "a".into() }]), ok(true, 3, vec![None])),
                (ops(vec![del_op("a")]), ok(true, 3, vec![None])),
            ],
        },
        Case {
            name: "recreate after delete restarts create revision and version",
            steps: vec![
                (create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))])),
                (cas("a", 2, "v2"), ok(true, 3, vec![Some(("v2", 2, 3, 2))])),
                (ops(vec![del_op("a")]), ok(true, 4, vec![Some(("v2", 2, 3, 2))])),
                (create("a", "v3"), ok(true, 5, vec![Some(("v3", 5, 5, 1))])),
            ],
        },
        Case {
            name: "several ops share one revision; get sees earlier ops",
            steps: vec![(
                ops(vec![put_op("a", "1"), put_op("b", "2"), Op::Get { key: "a".into() }]),
                ok(
                    true,
                    2,
                    vec![Some(("1", 2, 2, 1)), Some(("2", 2, 2, 1)), Some(("1", 2, 2, 1))],
                ),
            )],
        },
        Case {
            name: "all compares must hold",
            steps: vec![
                (create("a", "v1"), ok(true, 2, vec![Some(("v1", 2, 2, 1))])),
                (
                    Txn {
                        compare: vec![
                            Compare::ModRevision {
                                key: "a".into(),
                                revision: 2,
                            },
                            Compare::ModRevision {
                                key: "b".into(),
                                revision: 7,
                            },
                        ],
                        success: vec![put_op("a", "x")],
                        failure: vec![Op::Get { key: "a".into() }, Op::Get { key: "b".into() }],
                    },
                    ok(false, 2, vec![Some(("v1", 2, 2, 1)), None]),
                ),
            ],
        },
        Case {
            name: "writing one key twice is refused and changes nothing",
            steps: vec![
                (ops(vec![put_op("a", "1"), del_op("a")]), Expect::DuplicateKey),
                (ops(vec![Op::Get { key: "a".into() }]), ok(true, 1, vec![None])),
            ],
        },
    ];
    for case in cases {
        let (store, _dir) = fresh(RedbOptions::default());
        for (i, (txn, expect)) in case.steps.into_iter().enumerate() {
            let got = store.txn(txn).await;
            match (got, expect) {
                (
                    Ok(resp),
                    Expect::Ok {
                        succeeded,
                        revision,
                        results,
                    },
                ) => {
                    let got: Vec<Kv> = resp.results.iter().map(|r| r.as_ref().map(|kv| shape(kv))).collect();
                    assert_eq!(
                        (resp.succeeded, resp.revision, got),
                        (succeeded, revision, results),
                        "{}: step {i}",
                        case.name
                    );
                    assert_eq!(store.revision(), revision, "{}: step {i} store revision", case.name);
                }
                (Err(StoreError::DuplicateKey(_)), Expect::DuplicateKey) => {}
                (got, _) => panic!("{}: step {i}: unexpected {got:?}", case.name),
            }
        }
    }
}

/// Leaks the value as a static str so it compares with the table's literals.
fn shape(kv: &crate::KeyValue) -> (&'static str, i64, i64, i64) {
    let value: &'static str = Box::leak(String::from_utf8(kv.value.to_vec()).unwrap().into_boxed_str());
    (value, kv.create_revision, kv.mod_revision, kv.version)
}

#[tokio::test]
async fn get_reads_current_value() {
    let (store, _dir) = fresh(RedbOptions::default());
    assert_eq!(store.get("a").await.unwrap(), None);
    store.txn(create("a", "v1")).await.unwrap();
    store.txn(cas("a", 2, "v2")).await.unwrap();
    let kv = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (&kv.value[..], kv.create_revision, kv.mod_revision, kv.version),
        (&b"v2"[..], 2, 3, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_commits() {
    let (store, _dir) = fresh(RedbOptions::default());
    let writers = 64;
    let per_writer = 20;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    let resp = store.txn(create(&format!("k/{w}/{i}"), "v")).await.unwrap();
                    assert!(resp.succeeded);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let writes = (writers * per_writer) as u64;
    assert_eq!(store.revision(), 1 + writes as i64, "each create gets its own revision");
    assert!(
        store.commit_count() < writes,
        "{} commits for {writes} writes",
        store.commit_count()
    );
    let all = store.range("k/", None, 0).await.unwrap();
    assert_eq!(all.kvs.len() as u64, writes);
    let mut revisions: Vec<i64> = all.kvs.iter().map(|kv| kv.mod_revision).collect();
    revisions.sort();
    revisions.dedup();
    assert_eq!(revisions.len() as u64, writes, "revisions are unique");
}

#[tokio::test]
async fn batch_sees_earlier_txns_of_same_batch() {
    // Two creates of one key queued together: exactly one wins, the other sees the winner.
    let (store, _dir) = fresh(RedbOptions::default());
    let (a, b) = tokio::join!(store.txn(create("x", "first")), store.txn(create("x", "second")));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.succeeded, b.succeeded);
    let (winner, loser) = if a.succeeded { (a, b) } else { (b, a) };
    assert_eq!(loser.results[0], winner.results[0]);
    assert_eq!(store.revision(), 2);
}
