//! The WebSocket channel framing (`channel.k8s.io` and friends): every message is one channel's
//! data, the channel number first — a byte in binary protocols, an ASCII digit followed by base64
//! in the `base64.` ones.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

/// v5: the client closes one of its channels (`[255, channel]`).
pub const CLOSE_CHANNEL: u8 = 255;

/// Encodes `data` for `ch`.
pub fn encode(ch: u8, data: &[u8], base64: bool) -> Message {
    if base64 {
        let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        s.push((b'0' + ch) as char);
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
        Message::Text(s.into())
    } else {
        let mut b = BytesMut::with_capacity(1 + data.len());
        b.put_u8(ch);
        b.put_slice(data);
        Message::Binary(b.freeze())
    }
}

/// What a received message carries.
pub enum Incoming {
    Data(u8, Bytes),
    Close,
    Other,
}

pub fn decode(msg: Message, base64: bool) -> Incoming {
    match msg {
        Message::Binary(b) if !b.is_empty() && !base64 => Incoming::Data(b[0], b.slice(1..)),
        Message::Text(t) if base64 && !t.is_empty() => {
            let t = t.as_str();
            let ch = t.as_bytes()[0].wrapping_sub(b'0');
            match base64::engine::general_purpose::STANDARD.decode(&t[1..]) {
                Ok(d) => Incoming::Data(ch, Bytes::from(d)),
                Err(_) => Incoming::Other,
            }
        }
        Message::Close(_) => Incoming::Close,
        _ => Incoming::Other,
    }
}

/// Splits the socket: messages sent on the returned sender go out in order; when every sender
/// is dropped the writer sends a normal close (1000) and ends.
pub fn start(socket: WebSocket) -> (mpsc::Sender<Message>, SplitStream<WebSocket>, JoinHandle<()>) {
    let (mut sink, stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let task = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
        let _ = sink.close().await;
    });
    (tx, stream, task)
}

/// Writes to one channel.
pub struct ChannelWriter {
    ch: u8,
    base64: bool,
    tx: PollSender<Message>,
}

impl ChannelWriter {
    pub fn new(ch: u8, base64: bool, tx: mpsc::Sender<Message>) -> Self {
        Self {
            ch,
            base64,
            tx: PollSender::new(tx),
        }
    }
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(32 * 1024);
        ready!(self.tx.poll_reserve(cx)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let msg = encode(self.ch, &buf[..n], self.base64);
        self.tx
            .send_item(msg)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Let the writer task finish once every channel is done.
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}
