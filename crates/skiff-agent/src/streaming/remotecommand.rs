//! `exec` and `attach`: the stream set (stdin, stdout, stderr, error, resize) over SPDY or
//! WebSocket channels, and the session that runs between it and the runtime.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{
    bad_request, is_spdy, is_websocket, negotiate_spdy, spdy, spdy_switching, ws, BoxRead, BoxWrite, ChanReader, Exit,
    Query, StreamOpts, StreamRuntime, Target, TerminalSize,
};

/// SPDY protocols for exec/attach, newest first. v5 is WebSocket-only upstream (its addition is
/// the close signal, which SPDY expresses with FIN), so SPDY clients offering v5 get v4.
const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// WebSocket subprotocols for exec/attach, in our order of preference.
const WS_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];
/// How long the client has to open its streams after the upgrade (kubelet's default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// The client's ends of the streams.
#[derive(Default)]
struct Streams {
    stdin: Option<BoxRead>,
    stdout: Option<BoxWrite>,
    stderr: Option<BoxWrite>,
    error: Option<BoxWrite>,
    resize: Option<BoxRead>,
    /// v4+: the error stream carries a JSON Status; before, the failure message alone.
    json_status: bool,
}

pub(crate) async fn serve(
    rt: Arc<dyn StreamRuntime>,
    target: Target,
    command: Option<Vec<String>>,
    req: Request,
) -> Response {
    let q = Query::parse(req.uri().query());
    let mut opts = StreamOpts {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        tty: q.flag("tty"),
    };
    if opts.tty && opts.stderr {
        opts.stderr = false;
    }
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return bad_request("you must specify at least 1 of stdin, stdout, stderr");
    }
    let job = Job {
        rt,
        target,
        command,
        opts,
    };
    if is_websocket(&req) {
        let (mut parts, _) = req.into_parts();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(u) => u.protocols(WS_PROTOCOLS.iter().copied()),
            Err(e) => return e.into_response(),
        };
        let protocol = upgrade
            .selected_protocol()
            .and_then(|p| p.to_str().ok())
            .unwrap_or("")
            .to_string();
        return upgrade.on_upgrade(move |socket| serve_websocket(job, socket, protocol));
    }
    if !is_spdy(&req) {
        return bad_request("Upgrade request required");
    }
    let protocol = match negotiate_spdy(&req, SPDY_PROTOCOLS) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let mut req = req;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve_spdy(job, TokioIo::new(upgraded), protocol.unwrap_or("")).await,
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade failed"),
        }
    });
    spdy_switching(protocol)
}

struct Job {
    rt: Arc<dyn StreamRuntime>,
    target: Target,
    /// `None` for attach.
    command: Option<Vec<String>>,
    opts: StreamOpts,
}

async fn serve_spdy<T>(job: Job, io: T, protocol: &str)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let version = match protocol {
        "v4.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    };
    let opts = job.opts;
    let expected =
        1 + opts.stdin as usize + opts.stdout as usize + opts.stderr as usize + (opts.tty && version >= 3) as usize;
    let mut session = spdy::Session::start(io);
    let mut streams = Streams {
        json_status: version >= 4,
        ..Streams::default()
    };
    let collect = async {
        let mut received = 0;
        while received < expected {
            let Some(s) = session.next_stream().await else {
                return false;
            };
            let kind = s.header("streamtype").unwrap_or("").to_string();
            let spdy::Stream { reader, writer, .. } = s;
            match kind.as_str() {
                "error" => streams.error = Some(Box::new(writer)),
                "stdin" => streams.stdin = Some(Box::new(reader)),
                "stdout" => streams.stdout = Some(Box::new(writer)),
                "stderr" => streams.stderr = Some(Box::new(writer)),
                "resize" => streams.resize = Some(Box::new(reader)),
                other => {
                    tracing::debug!(stream_type = other, "unexpected stream type");
                    continue;
                }
            }
            received += 1;
        }
        true
    };
    match tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(_) => {
            tracing::debug!("timed out waiting for client to create streams");
            session.close().await;
            return;
        }
    }
    let closed = session.closed();
    run(job, streams, closed.wait()).await;
    session.close().await;
}

async fn serve_websocket(job: Job, socket: WebSocket, protocol: String) {
    let base64 = protocol.contains("base64");
    let v5 = protocol == "v5.channel.k8s.io";
    let json_status = protocol.starts_with("v4.") || v5;
    let opts = job.opts;
    let (tx, mut incoming, writer) = ws::start(socket);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<Bytes>(4);
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut stdin_tx = Some(stdin_tx);
        while let Some(Ok(msg)) = incoming.next().await {
            match ws::decode(msg, base64) {
                ws::Incoming::Data(STDIN, d) => {
                    if let Some(tx) = &stdin_tx {
                        if !d.is_empty() && tx.send(d).await.is_err() {
                            stdin_tx = None;
                        }
                    }
                }
                ws::Incoming::Data(RESIZE, d) => {
                    let _ = resize_tx.send(d).await;
                }
                ws::Incoming::Data(ws::CLOSE_CHANNEL, d) if v5 && d.first() == Some(&STDIN) => {
                    stdin_tx = None;
                }
                ws::Incoming::Close => break,
                _ => {}
            }
        }
        let _ = closed_tx.send(());
    });
    // Tell the client the connection is up: an empty message on the lowest writable channel.
    let first = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = tx.send(ws::encode(first, &[], base64)).await;
    let chan = |ch: u8| -> BoxWrite { Box::new(ws::ChannelWriter::new(ch, base64, tx.clone())) };
    let streams = Streams {
        stdin: opts.stdin.then(|| Box::new(ChanReader::new(stdin_rx)) as BoxRead),
        stdout: opts.stdout.then(|| chan(STDOUT)),
        stderr: opts.stderr.then(|| chan(STDERR)),
        error: Some(chan(ERROR)),
        resize: opts.tty.then(|| Box::new(ChanReader::new(resize_rx)) as BoxRead),
        json_status,
    };
    drop(tx);
    run(job, streams, async move {
        let _ = closed_rx.await;
    })
    .await;
    // The writer closes the socket once every channel writer is gone.
    let _ = writer.await;
    // Read on until the client answers the close: dropping the socket with its input unread
    // would reset the connection, and the client would see an abnormal closure (1006).
    let abort = reader.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), reader)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// Runs the command between the client's streams and the runtime, then reports how it ended on
/// the error stream. Stops early (dropping the session) if `closed` resolves first.
async fn run(job: Job, mut io: Streams, closed: impl std::future::Future<Output = ()> + Send) {
    let Job {
        rt,
        target,
        command,
        opts,
    } = job;
    let started = match &command {
        Some(cmd) => rt.exec(&target.ns, &target.pod, &target.container, cmd.clone(), opts),
        None => rt.attach(&target.ns, &target.pod, &target.container, opts),
    }
    .await;
    let mut session = match started {
        Ok(s) => s,
        Err(e) => {
            let what = if command.is_some() {
                "error executing command in container"
            } else {
                "error attaching to container"
            };
            let status = internal_error(&format!("{what}: {e}"));
            write_status(io.error.take(), io.json_status, status).await;
            return;
        }
    };
    let stdin_task = match (io.stdin.take(), session.stdin.take()) {
        (Some(mut from), Some(mut to)) => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.shutdown().await;
        })),
        _ => None,
    };
    let resize_task = match (io.resize.take(), session.resize.take()) {
        (Some(from), Some(to)) => Some(tokio::spawn(resize_loop(from, to))),
        _ => None,
    };
    let stdout = copy_out(session.stdout.take(), io.stdout.take());
    let stderr = copy_out(session.stderr.take(), io.stderr.take());
    let exit = session.exit;
    let finished = async move {
        let (exit, _, _) = tokio::join!(exit, stdout, stderr);
        exit
    };
    let ended = tokio::select! {
        e = finished => Some(e),
        _ = closed => None,
    };
    for t in [stdin_task, resize_task].into_iter().flatten() {
        t.abort();
    }
    let Some(exit) = ended else {
        tracing::debug!(pod = %target.pod, "stream client went away");
        return;
    };
    let status = match (&exit, &command) {
        (Exit::Code(0), _) | (Exit::Code(_) | Exit::Signal(_), None) => json!({"metadata": {}, "status": "Success"}),
        (Exit::Code(code), Some(cmd)) => non_zero_exit(cmd, *code),
        (Exit::Signal(sig), Some(cmd)) => non_zero_exit(cmd, 128 + sig),
        (Exit::Error(e), Some(_)) => internal_error(&format!("error executing command in container: {e}")),
        (Exit::Error(e), None) => internal_error(&format!("error attaching to container: {e}")),
    };
    write_status(io.error.take(), io.json_status, status).await;
}

/// Copies a process output to the client's stream, then half-closes it.
async fn copy_out(from: Option<BoxRead>, to: Option<BoxWrite>) {
    match (from, to) {
        (Some(mut from), Some(mut to)) => {
            if tokio::io::copy(&mut from, &mut to).await.is_err() {
                // The client is gone; keep draining so the process is not blocked.
                let _ = tokio::io::copy(&mut from, &mut tokio::io::sink()).await;
            }
            let _ = to.shutdown().await;
        }
        (Some(mut from), None) => {
            let _ = tokio::io::copy(&mut from, &mut tokio::io::sink()).await;
        }
        (None, Some(mut to)) => {
            let _ = to.shutdown().await;
        }
        (None, None) => {}
    }
}

/// Decodes the resize stream: a sequence of JSON objects `{"Width":…,"Height":…}`.
async fn resize_loop(mut from: BoxRead, to: mpsc::Sender<TerminalSize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<TerminalSize>();
        let mut used = 0;
        loop {
            match it.next() {
                Some(Ok(size)) => {
                    used = it.byte_offset();
                    if to.send(size).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => return,
                None => {
                    used = buf.len();
                    break;
                }
            }
        }
        buf.drain(..used);
    }
}

fn non_zero_exit(cmd: &[String], code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: command '{}' exited with {code}: ",
            cmd.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

fn internal_error(msg: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {msg}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": msg}]},
        "code": 500,
    })
}

/// Writes the final Status (v4+) or failure message (earlier) and closes the error stream.
async fn write_status(to: Option<BoxWrite>, json_status: bool, status: Value) {
    let Some(mut to) = to else { return };
    let body = if json_status {
        serde_json::to_vec(&status).unwrap_or_default()
    } else if status["status"] == "Success" {
        Vec::new()
    } else {
        status["message"].as_str().unwrap_or_default().as_bytes().to_vec()
    };
    if !body.is_empty() {
        let _ = to.write_all(&body).await;
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resize_stream_decodes_concatenated_json() {
        let (tx, rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let task = tokio::spawn(resize_loop(Box::new(ChanReader::new(rx)), out_tx));
        tx.send(Bytes::from_static(b"{\"Width\":80,\"Height\":24}{\"Wid"))
            .await
            .unwrap();
        tx.send(Bytes::from_static(b"th\":100,\"Height\":40}\n")).await.unwrap();
        drop(tx);
        assert_eq!(out_rx.recv().await, Some(TerminalSize { width: 80, height: 24 }));
        assert_eq!(out_rx.recv().await, Some(TerminalSize { width: 100, height: 40 }));
        task.await.unwrap();
    }
}
