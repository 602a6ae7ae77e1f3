//! Port-forward: SPDY stream pairs (`portforward.k8s.io`), the same SPDY session tunnelled in
//! WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+), and the WebSocket
//! channel form (`?port=…` repeated, two channels per port).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{
    bad_request, is_spdy, is_websocket, negotiate_spdy, spdy, spdy_switching, ws, ChanReader, Joined, Query,
    StreamRuntime, Target,
};

const SPDY_PROTOCOL: &str = "portforward.k8s.io";
const WS_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const WS_CHANNEL_PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

pub(crate) async fn serve(rt: Arc<dyn StreamRuntime>, target: Target, req: Request) -> Response {
    if is_websocket(&req) {
        let q = Query::parse(req.uri().query());
        let (mut parts, _) = req.into_parts();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(u) => u.protocols(std::iter::once(WS_TUNNEL_PROTOCOL).chain(WS_CHANNEL_PROTOCOLS.iter().copied())),
            Err(e) => return e.into_response(),
        };
        let protocol = upgrade
            .selected_protocol()
            .and_then(|p| p.to_str().ok())
            .unwrap_or("")
            .to_string();
        if protocol == WS_TUNNEL_PROTOCOL {
            return upgrade.on_upgrade(move |socket| serve_tunnel(rt, target, socket));
        }
        let mut ports = Vec::new();
        for p in q
            .all("port")
            .iter()
            .chain(q.all("ports").iter())
            .flat_map(|p| p.split(','))
        {
            match p.trim().parse::<u16>() {
                Ok(p) if p > 0 => ports.push(p),
                _ => return bad_request(format!("unable to parse \"{p}\" as a port")),
            }
        }
        if ports.is_empty() {
            return bad_request("query parameter \"port\" is required");
        }
        let base64 = protocol.contains("base64");
        return upgrade.on_upgrade(move |socket| serve_channels(rt, target, socket, ports, base64));
    }
    if !is_spdy(&req) {
        return bad_request("Upgrade request required");
    }
    let protocol = match negotiate_spdy(&req, &[SPDY_PROTOCOL]) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let mut req = req;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve_spdy(rt, target, TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade failed"),
        }
    });
    spdy_switching(protocol)
}

/// WebSocket binary messages carrying a SPDY session: bridge them to a byte pipe.
async fn serve_tunnel(rt: Arc<dyn StreamRuntime>, target: Target, socket: WebSocket) {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut sink, mut stream) = socket.split();
    let (mut pipe_rd, mut pipe_wr) = tokio::io::split(theirs);
    let inbound = async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(b) if pipe_wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = pipe_wr.shutdown().await;
    };
    let outbound = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match pipe_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
        let _ = sink.close().await;
    };
    let inbound = tokio::spawn(inbound);
    tokio::join!(outbound, serve_spdy(rt, target, ours));
    inbound.abort();
}

/// Serves stream pairs (error + data, matched by `requestID`) until the client goes away.
async fn serve_spdy<T>(rt: Arc<dyn StreamRuntime>, target: Target, io: T)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let mut session = spdy::Session::start(io);
    let mut pairs: HashMap<String, (Option<spdy::Stream>, Option<spdy::Stream>)> = HashMap::new();
    while let Some(mut s) = session.next_stream().await {
        let port = s.header("port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
        let kind = s.header("streamtype").unwrap_or("").to_string();
        let (Some(port), "error" | "data") = (port, kind.as_str()) else {
            tracing::debug!(?port, stream_type = %kind, "invalid port-forward stream");
            s.writer.reset(spdy::RST_PROTOCOL_ERROR);
            continue;
        };
        // Old clients send no requestID: pair error stream N with data stream N+2, as upstream.
        let request = match s.header("requestid") {
            Some(r) => r.to_string(),
            None if kind == "error" => s.id.to_string(),
            None => s.id.saturating_sub(2).to_string(),
        };
        let entry = pairs.entry(request.clone()).or_default();
        let slot = if kind == "error" { &mut entry.0 } else { &mut entry.1 };
        if slot.is_some() {
            s.writer.reset(spdy::RST_PROTOCOL_ERROR);
            continue;
        }
        *slot = Some(s);
        if let (Some(_), Some(_)) = entry {
            let (Some(error), Some(data)) = pairs.remove(&request).unwrap() else {
                unreachable!()
            };
            tokio::spawn(forward(rt.clone(), target.clone(), port, data, error));
        }
    }
    session.close().await;
}

async fn forward(rt: Arc<dyn StreamRuntime>, target: Target, port: u16, data: spdy::Stream, error: spdy::Stream) {
    let mut error_writer = error.writer;
    let mut data = Joined(data.reader, data.writer);
    match rt.port_forward(&target.ns, &target.pod, port).await {
        Ok(mut tcp) => {
            if let Err(e) = tokio::io::copy_bidirectional(&mut data, &mut tcp).await {
                tracing::debug!(error = %e, port, "port-forward copy ended");
            }
        }
        Err(e) => {
            let msg = format!("error forwarding port {port} to pod {}/{}: {e}", target.ns, target.pod);
            let _ = error_writer.write_all(msg.as_bytes()).await;
        }
    }
    let _ = data.1.shutdown().await;
    let _ = error_writer.shutdown().await;
}

/// The channel form: for the i-th port, channel 2i carries data and 2i+1 errors; each channel
/// starts with the port number (2 bytes, little endian).
async fn serve_channels(rt: Arc<dyn StreamRuntime>, target: Target, socket: WebSocket, ports: Vec<u16>, base64: bool) {
    let (tx, mut incoming, writer) = ws::start(socket);
    let mut inputs = Vec::new();
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        for ch in [data_ch, err_ch] {
            let _ = tx.send(ws::encode(ch, &port.to_le_bytes(), base64)).await;
        }
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(16);
        inputs.push(Some(in_tx));
        let (rt, target) = (rt.clone(), target.clone());
        let mut data = Joined(
            ChanReader::new(in_rx),
            ws::ChannelWriter::new(data_ch, base64, tx.clone()),
        );
        let mut err = ws::ChannelWriter::new(err_ch, base64, tx.clone());
        tasks.push(tokio::spawn(async move {
            match rt.port_forward(&target.ns, &target.pod, port).await {
                Ok(mut tcp) => {
                    let _ = tokio::io::copy_bidirectional(&mut data, &mut tcp).await;
                }
                Err(e) => {
                    let msg = format!("error forwarding port {port} to pod {}/{}: {e}", target.ns, target.pod);
                    let _ = err.write_all(msg.as_bytes()).await;
                }
            }
            let _ = data.1.shutdown().await;
            let _ = err.shutdown().await;
        }));
    }
    drop(tx);
    while let Some(Ok(msg)) = incoming.next().await {
        match ws::decode(msg, base64) {
            ws::Incoming::Data(ch, d) if (ch as usize) < 2 * ports.len() && ch % 2 == 0 => {
                let i = ch as usize / 2;
                if let Some(tx) = &inputs[i] {
                    if !d.is_empty() && tx.send(d).await.is_err() {
                        inputs[i] = None;
                    }
                }
            }
            ws::Incoming::Close => break,
            _ => {}
        }
    }
    drop(inputs);
    for t in tasks {
        let _ = t.await;
    }
    let _ = writer.await;
}
