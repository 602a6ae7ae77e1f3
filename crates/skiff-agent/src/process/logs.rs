//! Container logs: one file per container instance in the CRI log format
//! (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`), rotated at a size limit keeping the previous
//! file, and read back with kubelet's options (tail, since, timestamps, limitBytes, follow).

use std::collections::HashMap;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};

/// Longest line stored as one entry; longer lines are split into partial (`P`) entries.
const MAX_LINE: usize = 16 * 1024;

/// One container instance's log, as readers see it.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    /// The log file (`<path>.1` holds the previous rotation).
    pub(crate) path: PathBuf,
    /// Becomes `true` when the instance has ended and its output is all written.
    pub(crate) done: watch::Receiver<bool>,
    /// Bumped on every write (followers wait on it).
    pub(crate) written: watch::Receiver<u64>,
}

/// The logs of one container as kubelet chooses them: the current instance (running, or the
/// last terminated one) and the previous terminated one.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContainerLogs {
    pub(crate) current: Option<Instance>,
    pub(crate) previous: Option<Instance>,
    /// Why the container is waiting, when it has no instance to show.
    pub(crate) waiting: Option<String>,
}

/// Logs of one pod, by container name.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodLogs {
    pub(crate) uid: String,
    pub(crate) containers: HashMap<String, ContainerLogs>,
}

/// Logs of every pod on the node, by (namespace, name); pod workers keep it current.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<HashMap<(String, String), PodLogs>>>);

impl Registry {
    pub(crate) fn set(&self, ns: &str, name: &str, logs: PodLogs) {
        self.0.lock().unwrap().insert((ns.to_string(), name.to_string()), logs);
    }

    /// Forgets a pod, unless a newer pod of the same name took its place.
    pub(crate) fn remove(&self, ns: &str, name: &str, uid: &str) {
        let mut m = self.0.lock().unwrap();
        let key = (ns.to_string(), name.to_string());
        if m.get(&key).is_some_and(|p| p.uid == uid) {
            m.remove(&key);
        }
    }

    pub(crate) fn get(&self, ns: &str, name: &str) -> Option<PodLogs> {
        self.0.lock().unwrap().get(&(ns.to_string(), name.to_string())).cloned()
    }
}

/// The writing side of an instance's log.
pub(crate) struct Writer {
    pub(crate) instance: Instance,
    pub(crate) done: Arc<watch::Sender<bool>>,
    tx: mpsc::UnboundedSender<(&'static str, bool, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Creates the log file and starts the task that writes it.
    pub(crate) fn create(path: PathBuf, max_bytes: u64) -> std::io::Result<Writer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let (done_tx, done_rx) = watch::channel(false);
        let (written_tx, written_rx) = watch::channel(0u64);
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, bool, Vec<u8>)>();
        let p = path.clone();
        let task = tokio::spawn(async move {
            let mut out = LogFile {
                path: p,
                file,
                size: 0,
                max_bytes,
            };
            out.size = out.file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut n = 0u64;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                for (stream, full, text) in batch {
                    out.write(stream, full, &text);
                }
                let _ = out.file.flush();
                n += 1;
                written_tx.send_replace(n);
            }
        });
        Ok(Writer {
            instance: Instance {
                path,
                done: done_rx,
                written: written_rx,
            },
            done: Arc::new(done_tx),
            tx,
            task,
        })
    }

    /// Starts copying `r` (stdout or stderr) into the log, and into `tap` (attached clients)
    /// as it arrives.
    pub(crate) fn pump<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        stream: &'static str,
        r: R,
        tap: Option<super::exec::Output>,
    ) {
        let tx = self.tx.clone();
        let is_err = stream == "stderr";
        tokio::spawn(async move {
            let mut r = BufReader::with_capacity(MAX_LINE, r);
            let mut line = Vec::new();
            // How much of the buffer the tap has seen.
            let mut tapped = 0;
            loop {
                let buf = match r.fill_buf().await {
                    Ok([]) | Err(_) => break,
                    Ok(b) => b,
                };
                if let Some(t) = tap.as_ref().filter(|t| t.receiver_count() > 0) {
                    if buf.len() > tapped {
                        let _ = t.send((is_err, bytes::Bytes::copy_from_slice(&buf[tapped..])));
                    }
                }
                tapped = buf.len();
                let newline = buf.iter().position(|&c| c == b'\n');
                let upto = newline.unwrap_or(buf.len());
                let room = MAX_LINE - line.len();
                if upto > room {
                    line.extend_from_slice(&buf[..room]);
                    r.consume(room);
                    tapped -= room;
                    let _ = tx.send((stream, false, std::mem::take(&mut line)));
                    continue;
                }
                line.extend_from_slice(&buf[..upto]);
                let used = newline.map(|i| i + 1).unwrap_or(upto);
                r.consume(used);
                tapped -= used;
                if newline.is_some() {
                    let _ = tx.send((stream, true, std::mem::take(&mut line)));
                } else if line.len() == MAX_LINE {
                    let _ = tx.send((stream, false, std::mem::take(&mut line)));
                }
            }
            if !line.is_empty() {
                let _ = tx.send((stream, true, line));
            }
        });
    }

    /// Waits (up to `limit`) for the output to be written, then marks the instance done.
    pub(crate) async fn finish(self, limit: Duration) {
        let Writer { done, tx, task, .. } = self;
        drop(tx);
        let _ = tokio::time::timeout(limit, task).await;
        done.send_replace(true);
    }
}

struct LogFile {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    max_bytes: u64,
}

impl LogFile {
    fn write(&mut self, stream: &str, full: bool, text: &[u8]) {
        let ts = timestamp(jiff::Timestamp::now());
        let tag = if full { "F" } else { "P" };
        let mut line = Vec::with_capacity(text.len() + 48);
        line.extend_from_slice(format!("{ts} {stream} {tag} ").as_bytes());
        line.extend_from_slice(text);
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate();
        }
        if self.file.write_all(&line).is_ok() {
            self.size += line.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let _ = self.file.flush();
        let _ = std::fs::rename(&self.path, rotated(&self.path));
        if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
            self.file = f;
            self.size = 0;
        }
    }
}

fn rotated(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// A timestamp as the CRI log format writes it (RFC 3339 with nanoseconds).
pub(crate) fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

/// kubelet's log options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) follow: bool,
    pub(crate) tail_lines: Option<usize>,
    pub(crate) since: Option<jiff::Timestamp>,
    pub(crate) timestamps: bool,
    pub(crate) limit_bytes: Option<usize>,
}

struct Entry {
    ts: String,
    full: bool,
    text: Vec<u8>,
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |&c| c == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or_default().to_vec();
    Some(Entry {
        ts,
        full: tag != b"P",
        text,
    })
}

fn render(e: &Entry, opts: &Options, out: &mut Vec<u8>) {
    if opts.timestamps {
        out.extend_from_slice(e.ts.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(&e.text);
    if e.full {
        out.push(b'\n');
    }
}

fn keep(e: &Entry, opts: &Options) -> bool {
    match (&opts.since, e.ts.parse::<jiff::Timestamp>()) {
        (Some(since), Ok(t)) => t >= *since,
        _ => true,
    }
}

/// Streams an instance's log with `opts` into `tx`, chunk by chunk; with `follow`, until the
/// instance is done (or the receiver goes away).
pub(crate) async fn stream(inst: Instance, opts: Options, tx: mpsc::Sender<Vec<u8>>) {
    let mut budget = opts.limit_bytes.unwrap_or(usize::MAX);
    let send = |mut chunk: Vec<u8>, budget: &mut usize| {
        if chunk.len() > *budget {
            chunk.truncate(*budget);
        }
        *budget -= chunk.len();
        chunk
    };
    // The existing content: the rotated file, then the current one.
    let mut entries = Vec::new();
    for p in [rotated(&inst.path), inst.path.clone()] {
        if let Ok(f) = std::fs::File::open(&p) {
            let mut r = std::io::BufReader::new(f);
            let mut line = Vec::new();
            while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if let Some(e) = parse_line(&line) {
                    if keep(&e, &opts) {
                        entries.push(e);
                    }
                }
                line.clear();
            }
        }
    }
    let mut ino = file_id(&inst.path);
    let mut offset = std::fs::metadata(&inst.path).map(|m| m.len()).unwrap_or(0);
    let skip = opts.tail_lines.map(|n| entries.len().saturating_sub(n)).unwrap_or(0);
    let mut out = Vec::new();
    for e in &entries[skip..] {
        render(e, &opts, &mut out);
    }
    if !out.is_empty() {
        let chunk = send(out, &mut budget);
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if !opts.follow {
        return;
    }
    let mut written = inst.written.clone();
    let done = inst.done.clone();
    let mut pending = Vec::new();
    loop {
        if budget == 0 {
            return;
        }
        let finished = *done.borrow();
        // Rotated since the last read: finish the old file, start the new one.
        let now_ino = file_id(&inst.path);
        if now_ino != ino {
            let rest = read_from(&rotated(&inst.path), offset);
            pending.extend_from_slice(&rest);
            ino = now_ino;
            offset = 0;
        }
        let fresh = read_from(&inst.path, offset);
        offset += fresh.len() as u64;
        pending.extend_from_slice(&fresh);
        let mut out = Vec::new();
        while let Some(i) = pending.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            if let Some(e) = parse_line(&line) {
                if keep(&e, &opts) {
                    render(&e, &opts, &mut out);
                }
            }
        }
        if !out.is_empty() {
            let chunk = send(out, &mut budget);
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        if finished {
            return;
        }
        tokio::select! {
            _ = written.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tx.closed() => return,
        }
    }
}

fn file_id(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.ino())
}

fn read_from(p: &Path, offset: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(p) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut buf);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_render() {
        let e = parse_line(b"2024-01-01T00:00:00.000000001Z stdout F hello world\n").unwrap();
        assert_eq!(e.text, b"hello world");
        let mut out = Vec::new();
        render(
            &e,
            &Options {
                timestamps: true,
                ..Default::default()
            },
            &mut out,
        );
        assert_eq!(out, b"2024-01-01T00:00:00.000000001Z hello world\n");
        let p = parse_line(b"2024-01-01T00:00:00Z stderr P part\n").unwrap();
        assert!(!p.full);
    }

    #[tokio::test]
    async fn writes_rotate_and_read_back_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let w = Writer::create(path.clone(), 200).unwrap();
        let inst = w.instance.clone();
        let (mut a, b) = tokio::io::duplex(1024);
        w.pump("stdout", b, None);
        use tokio::io::AsyncWriteExt;
        for i in 0..10 {
            a.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
        }
        drop(a);
        w.finish(Duration::from_secs(5)).await;
        assert!(rotated(&path).exists());
        let (tx, mut rx) = mpsc::channel(8);
        stream(
            inst,
            Options {
                tail_lines: Some(2),
                ..Default::default()
            },
            tx,
        )
        .await;
        let mut all = Vec::new();
        while let Some(c) = rx.recv().await {
            all.extend(c);
        }
        assert_eq!(String::from_utf8(all).unwrap(), "line 8\nline 9\n");
    }
}
