//! Range reads: prefix, limit, start_after, revision.

use super::*;
use crate::Store;

/// (name, prefix, start_after, limit, expected keys, more)
type RangeCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    usize,
    Vec<&'static str>,
    bool,
);

#[tokio::test]
async fn range_cases() {
    let (store, _dir) = fresh(RedbOptions::default());
    for key in ["/a/1", "/a/2", "/a/3", "/a0", "/b/1", "/"] {
        store.txn(create(key, key)).await.unwrap();
    }
    let cases: Vec<RangeCase> = vec![
        ("whole prefix", "/a/", None, 0, vec!["/a/1", "/a/2", "/a/3"], false),
        (
            "prefix is not a key boundary",
            "/a",
            None,
            0,
            vec!["/a/1", "/a/2", "/a/3", "/a0"],
            false,
        ),
        ("limit sets more", "/a/", None, 2, vec!["/a/1", "/a/2"], true),
        (
            "limit equal to count",
            "/a/",
            None,
            3,
            vec!["/a/1", "/a/2", "/a/3"],
            false,
        ),
        (
            "start after is exclusive",
            "/a/",
            Some("/a/1"),
            0,
            vec!["/a/2", "/a/3"],
            false,
        ),
        ("start after and limit", "/a/", Some("/a/1"), 1, vec!["/a/2"], true),
        ("start after last key", "/a/", Some("/a/3"), 0, vec![], false),
        ("start after before prefix", "/b/", Some("/a/9"), 0, vec!["/b/1"], false),
        ("start after past prefix", "/a/", Some("/b"), 0, vec![], false),
        ("no match", "/c/", None, 0, vec![], false),
        (
            "everything",
            "",
            None,
            0,
            vec!["/", "/a/1", "/a/2", "/a/3", "/a0", "/b/1"],
            false,
        ),
    ];
    for (name, prefix, after, limit, keys, more) in cases {
        let resp = store.range(prefix, after, limit).await.unwrap();
        let got: Vec<&str> = resp.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!((got, resp.more), (keys, more), "{name}");
        assert_eq!(resp.revision, 7, "{name}: read revision");
        assert!(
            resp.kvs.iter().all(|kv| kv.value == kv.key.as_bytes()),
            "{name}: values"
        );
    }
}
