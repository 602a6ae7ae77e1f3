//! The accepting (server) side of SPDY/3.1, as the Kubernetes streaming protocols use it.
//!
//! Why our own: no maintained crate implements the server side of SPDY/3.1. The `spdy-mux`
//! crate (0.1) is a client that opens stream pairs over WebSocket transports, and the older
//! `spdy`/`solicit`-era crates are unmaintained. kubectl's peer is Go's `moby/spdystream`, which
//! only ever opens streams from the client, so this covers exactly what it sends: SYN_STREAM
//! (answered with SYN_REPLY), DATA with FIN, RST_STREAM, HEADERS, SETTINGS, PING (echoed),
//! GOAWAY and WINDOW_UPDATE, with the zlib-compressed header blocks primed with the SPDY/3
//! dictionary (one zlib stream per direction for the whole session).
//!
//! Flow control: we grant the peer more window (WINDOW_UPDATE, per stream and for the session)
//! as our side consumes data, so a strict SPDY/3.1 sender keeps going. We do not hold our own
//! sends back by the peer's window: spdystream never sends WINDOW_UPDATE and ignores windows, so
//! enforcing them would stall every transfer after 64 KiB. Back-pressure comes from TCP instead.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::PollSender;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The initial flow-control window of SPDY/3.1, per stream and per session.
pub const INITIAL_WINDOW: u32 = 64 * 1024;
/// Largest DATA payload we send in one frame.
const MAX_CHUNK: usize = 32 * 1024;
/// Largest frame we accept (the 24-bit length allows 16 MiB; nobody sends that much).
const MAX_FRAME: usize = 1 << 24;

/// RST_STREAM status codes.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_INVALID_STREAM: u32 = 2;
pub const RST_CANCEL: u32 = 5;

/// Builds the SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1):
/// length-prefixed header names and values, then a run of common value fragments.
fn dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
            "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
            "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

fn proto_err(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Encodes header pairs as an uncompressed SPDY/3 header block (names lowercased).
pub fn encode_header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

/// Parses an uncompressed header block; multiple values (NUL-separated) become separate pairs.
pub fn decode_header_block(mut b: &[u8]) -> io::Result<Vec<(String, String)>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
        if b.len() < n {
            return Err(proto_err("truncated SPDY header block"));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn len(b: &mut &[u8]) -> io::Result<usize> {
        Ok(u32::from_be_bytes(take(b, 4)?.try_into().unwrap()) as usize)
    }
    let count = len(&mut b)?;
    let mut out = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = len(&mut b)?;
        let name = String::from_utf8_lossy(take(&mut b, n)?).to_ascii_lowercase();
        let n = len(&mut b)?;
        let value = take(&mut b, n)?;
        for v in value.split(|c| *c == 0) {
            out.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(out)
}

/// The header compressor of one direction of a session.
pub struct HeaderCompressor(Compress);

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    pub fn new() -> Self {
        let mut c = Compress::new(Compression::default(), true);
        c.set_dictionary(dictionary())
            .expect("zlib accepts the SPDY dictionary");
        Self(c)
    }

    /// Compresses one header block, ending with a sync flush so the peer can decode it alone.
    pub fn compress(&mut self, raw: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = raw;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.0.total_in();
            self.0
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| proto_err(format!("zlib: {e}")))?;
            input = &input[(self.0.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The header decompressor of one direction of a session.
pub struct HeaderDecompressor(Decompress);

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        Self(Decompress::new(true))
    }

    /// Decompresses one header block (the zlib stream continues across blocks).
    pub fn decompress(&mut self, block: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        let mut stalls = 0;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let (before_in, before_out) = (self.0.total_in(), self.0.total_out());
            match self.0.decompress_vec(input, &mut out, FlushDecompress::Sync) {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0
                        .set_dictionary(dictionary())
                        .map_err(|e| proto_err(format!("zlib dictionary: {e}")))?;
                }
                Err(e) => return Err(proto_err(format!("zlib: {e}"))),
            }
            let used = (self.0.total_in() - before_in) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            if used > 0 || self.0.total_out() > before_out {
                stalls = 0;
            } else {
                // Once for the dictionary; more means the input is broken.
                stalls += 1;
                if stalls > 2 {
                    return Err(proto_err("zlib: no progress in SPDY header block"));
                }
            }
        }
    }
}

/// A frame the client sent.
#[derive(Debug)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream: u32,
        fin: bool,
        unidirectional: bool,
        headers: Vec<(String, String)>,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
    },
    Ping(u32),
    GoAway,
    WindowUpdate,
    Settings,
    Other,
}

/// Reads one frame; `Ok(None)` at a clean end of input.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    inflate: &mut HeaderDecompressor,
) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..]).await?;
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len >= MAX_FRAME {
        return Err(proto_err("SPDY frame too large"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let mut p = &body[..];
    if head[0] & 0x80 == 0 {
        let stream = u32::from_be_bytes(head[..4].try_into().unwrap()) & 0x7fff_ffff;
        return Ok(Some(Frame::Data {
            stream,
            fin: flags & FLAG_FIN != 0,
            data: Bytes::from(body),
        }));
    }
    let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
    if version != VERSION {
        return Err(proto_err(format!("unsupported SPDY version {version}")));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let need = |n: usize| {
        if len < n {
            Err(proto_err(format!("short SPDY control frame of type {kind}")))
        } else {
            Ok(())
        }
    };
    Ok(Some(match kind {
        SYN_STREAM => {
            need(10)?;
            let stream = p.get_u32() & 0x7fff_ffff;
            p.advance(6); // associated-to stream, priority, slot
            let headers = decode_header_block(&inflate.decompress(p)?)?;
            Frame::SynStream {
                stream,
                fin: flags & FLAG_FIN != 0,
                unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                headers,
            }
        }
        SYN_REPLY | HEADERS => {
            need(4)?;
            let stream = p.get_u32() & 0x7fff_ffff;
            // Decoded only to keep the shared zlib stream in step.
            inflate.decompress(p)?;
            Frame::Headers {
                stream,
                fin: flags & FLAG_FIN != 0,
            }
        }
        RST_STREAM => {
            need(8)?;
            Frame::RstStream {
                stream: p.get_u32() & 0x7fff_ffff,
                status: p.get_u32(),
            }
        }
        PING => {
            need(4)?;
            Frame::Ping(p.get_u32())
        }
        GOAWAY => Frame::GoAway,
        WINDOW_UPDATE => Frame::WindowUpdate,
        SETTINGS => Frame::Settings,
        _ => Frame::Other,
    }))
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | payload.len() as u32);
    out.put_slice(payload);
}

/// What the session's writer sends.
enum Out {
    SynReply(u32),
    Data {
        stream: u32,
        data: Bytes,
        fin: bool,
    },
    Rst {
        stream: u32,
        status: u32,
    },
    Ping(u32),
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    /// GOAWAY, flush and close the write side.
    Close,
}

fn encode(out: &mut BytesMut, frame: Out, deflate: &mut HeaderCompressor) -> io::Result<()> {
    match frame {
        Out::SynReply(id) => {
            let mut p = id.to_be_bytes().to_vec();
            p.extend(deflate.compress(&encode_header_block(&[]))?);
            control(out, SYN_REPLY, 0, &p);
        }
        Out::Data { stream, data, fin } => {
            out.put_u32(stream & 0x7fff_ffff);
            out.put_u32(((if fin { FLAG_FIN } else { 0 } as u32) << 24) | data.len() as u32);
            out.put_slice(&data);
        }
        Out::Rst { stream, status } => {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&stream.to_be_bytes());
            p[4..].copy_from_slice(&status.to_be_bytes());
            control(out, RST_STREAM, 0, &p);
        }
        Out::Ping(id) => control(out, PING, 0, &id.to_be_bytes()),
        Out::WindowUpdate { stream, delta } => {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&stream.to_be_bytes());
            p[4..].copy_from_slice(&delta.to_be_bytes());
            control(out, WINDOW_UPDATE, 0, &p);
        }
        Out::Close => control(out, GOAWAY, 0, &[0u8; 8]),
    }
    Ok(())
}

/// A stream the client opened: its headers, a reader for what the client sends on it and a
/// writer towards the client. Dropping the reader stops reading; shutting the writer down sends
/// FIN (a half close).
pub struct Stream {
    pub id: u32,
    pub headers: Vec<(String, String)>,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl Stream {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads the DATA the client sent on a stream; end of input at FIN, RST or session end.
pub struct StreamReader {
    id: u32,
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
    consumed: u32,
    control: mpsc::UnboundedSender<Out>,
}

impl AsyncRead for StreamReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.buf.is_empty() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(b) => this.buf = b,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.buf.len().min(out.remaining());
        out.put_slice(&this.buf.split_to(n));
        this.consumed += n as u32;
        if this.consumed >= INITIAL_WINDOW / 2 {
            let delta = std::mem::take(&mut this.consumed);
            let _ = this.control.send(Out::WindowUpdate { stream: this.id, delta });
            let _ = this.control.send(Out::WindowUpdate { stream: 0, delta });
        }
        Poll::Ready(Ok(()))
    }
}

/// Writes DATA frames to the client on a stream.
pub struct StreamWriter {
    id: u32,
    tx: PollSender<Out>,
    control: mpsc::UnboundedSender<Out>,
    closed: bool,
}

impl StreamWriter {
    /// Sends RST_STREAM (abandons the stream).
    pub fn reset(&mut self, status: u32) {
        self.closed = true;
        let _ = self.control.send(Out::Rst {
            stream: self.id,
            status,
        });
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, frame: impl FnOnce() -> Out) -> Poll<io::Result<()>> {
        ready!(self.tx.poll_reserve(cx)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        self.tx
            .send_item(frame())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.closed {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        let n = buf.len().min(MAX_CHUNK);
        let (id, data) = (self.id, Bytes::copy_from_slice(&buf[..n]));
        ready!(self.poll_send(cx, move || Out::Data {
            stream: id,
            data,
            fin: false
        }))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        let id = self.id;
        ready!(self.poll_send(cx, move || Out::Data {
            stream: id,
            data: Bytes::new(),
            fin: true,
        }))?;
        self.closed = true;
        Poll::Ready(Ok(()))
    }
}

/// One SPDY session over an upgraded connection.
pub struct Session {
    incoming: mpsc::Receiver<Stream>,
    data: mpsc::Sender<Out>,
    closed: watch::Receiver<bool>,
}

/// Resolves when the peer has gone (its side of the connection ended).
#[derive(Clone)]
pub struct Closed(watch::Receiver<bool>);

impl Closed {
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|c| *c).await;
    }
}

impl Session {
    /// Starts serving SPDY on `io` (reader and writer tasks).
    pub fn start<T>(io: T) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (data_tx, data_rx) = mpsc::channel::<Out>(64);
        let (control_tx, control_rx) = mpsc::unbounded_channel::<Out>();
        let (incoming_tx, incoming_rx) = mpsc::channel::<Stream>(16);
        let (closed_tx, closed_rx) = watch::channel(false);
        tokio::spawn(write_loop(wr, data_rx, control_rx));
        tokio::spawn(read_loop(rd, incoming_tx, data_tx.clone(), control_tx, closed_tx));
        Session {
            incoming: incoming_rx,
            data: data_tx,
            closed: closed_rx,
        }
    }

    /// The next stream the client opens (already answered with SYN_REPLY); `None` once the
    /// connection is gone.
    pub async fn next_stream(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }

    pub fn closed(&self) -> Closed {
        Closed(self.closed.clone())
    }

    /// Sends GOAWAY after everything written so far and closes the connection.
    pub async fn close(self) {
        let _ = self.data.send(Out::Close).await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: R,
    incoming: mpsc::Sender<Stream>,
    data_tx: mpsc::Sender<Out>,
    control: mpsc::UnboundedSender<Out>,
    closed: watch::Sender<bool>,
) {
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
    let mut inflate = HeaderDecompressor::new();
    let mut streams: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut last_id = 0u32;
    let mut unread = 0u32;
    loop {
        let frame = match read_frame(&mut rd, &mut inflate).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "SPDY session read ended");
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream,
                fin,
                unidirectional,
                headers,
            } => {
                if stream == 0 || stream % 2 == 0 || stream <= last_id || streams.contains_key(&stream) {
                    let _ = control.send(Out::Rst {
                        stream,
                        status: RST_PROTOCOL_ERROR,
                    });
                    continue;
                }
                last_id = stream;
                let (tx, rx) = mpsc::channel(32);
                if !fin {
                    streams.insert(stream, tx);
                }
                let _ = control.send(Out::SynReply(stream));
                let s = Stream {
                    id: stream,
                    headers,
                    reader: StreamReader {
                        id: stream,
                        rx,
                        buf: Bytes::new(),
                        consumed: 0,
                        control: control.clone(),
                    },
                    writer: StreamWriter {
                        id: stream,
                        tx: PollSender::new(data_tx.clone()),
                        control: control.clone(),
                        closed: unidirectional,
                    },
                };
                if incoming.send(s).await.is_err() {
                    // Nobody accepts streams any more.
                    let _ = control.send(Out::Rst {
                        stream,
                        status: RST_CANCEL,
                    });
                }
            }
            Frame::Data { stream, fin, data } => {
                let len = data.len() as u32;
                match streams.get(&stream) {
                    Some(tx) => {
                        if !data.is_empty() && tx.send(data).await.is_err() {
                            // The reader was dropped: keep the window open, discard.
                            unread += len;
                        }
                        if fin {
                            streams.remove(&stream);
                        }
                    }
                    None => {
                        unread += len;
                        if !fin && stream > last_id {
                            let _ = control.send(Out::Rst {
                                stream,
                                status: RST_INVALID_STREAM,
                            });
                        }
                    }
                }
                if unread >= INITIAL_WINDOW / 2 {
                    let _ = control.send(Out::WindowUpdate {
                        stream: 0,
                        delta: std::mem::take(&mut unread),
                    });
                }
            }
            Frame::RstStream { stream, .. } => {
                streams.remove(&stream);
            }
            Frame::Headers { stream, fin } => {
                if fin {
                    streams.remove(&stream);
                }
            }
            Frame::Ping(id) => {
                let _ = control.send(Out::Ping(id));
            }
            Frame::GoAway | Frame::WindowUpdate | Frame::Settings | Frame::Other => {}
        }
    }
    drop(streams);
    let _ = closed.send(true);
    // Let the writer finish what is queued, then end the connection.
    let _ = control.send(Out::Close);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut data: mpsc::Receiver<Out>,
    mut control: mpsc::UnboundedReceiver<Out>,
) {
    let mut deflate = HeaderCompressor::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let next = tokio::select! {
            biased;
            f = control.recv() => f,
            f = data.recv() => f,
        };
        let Some(frame) = next else { break };
        let close = matches!(frame, Out::Close);
        if let Err(e) = encode(&mut buf, frame, &mut deflate) {
            tracing::debug!(error = %e, "SPDY encode failed");
            break;
        }
        // Batch whatever else is already queued into the same write.
        if !close {
            while buf.len() < 256 * 1024 {
                let f = match control.try_recv() {
                    Ok(f) => f,
                    Err(_) => match data.try_recv() {
                        Ok(f) => f,
                        Err(_) => break,
                    },
                };
                let is_close = matches!(f, Out::Close);
                if encode(&mut buf, f, &mut deflate).is_err() || is_close {
                    let _ = wr.write_all(&buf).await;
                    let _ = wr.shutdown().await;
                    return;
                }
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        buf.clear();
        if close {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert!(d.starts_with(b"\x00\x00\x00\x07options\x00\x00\x00\x04head"));
        assert!(d.ends_with(b"utf-,*,enq=0."));
    }

    #[test]
    fn header_blocks_round_trip_through_zlib() {
        let mut c = HeaderCompressor::new();
        let mut d = HeaderDecompressor::new();
        for i in 0..3 {
            let port = format!("{}", 8000 + i);
            let raw = encode_header_block(&[("streamType", "data"), ("port", &port)]);
            let z = c.compress(&raw).unwrap();
            let back = decode_header_block(&d.decompress(&z).unwrap()).unwrap();
            assert_eq!(
                back,
                vec![("streamtype".into(), "data".into()), ("port".into(), port.clone())]
            );
        }
    }
}
