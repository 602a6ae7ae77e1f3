//! Request bodies: size limit, read deadline, and decoding JSON, YAML and protobuf into JSON
//! values.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::errors::{ApiError, ApiResult};

/// Largest request body accepted, as kube-apiserver's default (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        413,
        "RequestEntityTooLarge",
        format!("Request entity too large: limit is {MAX_BODY}"),
    )
}

/// Whether `e` (or what caused it) is a [`BodyTimeout`].
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes with 413 (at once when the
/// declared length is larger) and a body not sent in time with 408.
pub async fn read(body: Body) -> ApiResult<bytes::Bytes> {
    if http_body::Body::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Err(e) if is_timeout(e.as_ref()) => Err(ApiError::new(408, "Timeout", "request body was not received in time")),
        Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
    }
}

/// The request body was not received before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("timed out reading the request body")]
pub struct BodyTimeout;

/// A request body with a read deadline that, when a handler drops it unread, hands it back
/// through `give_back` instead of dropping it: the connection then keeps it until the response
/// is sent, so an HTTP/2 client sees the response (and a NO_ERROR reset) rather than a stream
/// cancelled before any answer.
pub struct GuardedBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    give_back: Option<oneshot::Sender<Body>>,
}

impl GuardedBody {
    /// Wraps `inner`, which must be read completely by `deadline`.
    pub fn new(inner: Body, deadline: Instant, give_back: oneshot::Sender<Body>) -> Self {
        GuardedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            give_back: Some(give_back),
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(f);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        if let Some(tx) = self.give_back.take() {
            let _ = tx.send(std::mem::take(&mut self.inner));
        }
    }
}

/// The media type of the request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes an object body (create, update) by its content type.
pub fn decode_object(headers: &HeaderMap, bytes: &[u8]) -> ApiResult<Value> {
    let ct = content_type(headers);
    let v = match ct.as_str() {
        "application/vnd.kubernetes.protobuf" => skiff_api::protobuf::decode(bytes)
            .map_err(|e| ApiError::bad_request(format!("failed to decode protobuf body: {e}")))?,
        "application/yaml" | "application/apply-patch+yaml" => parse_yaml(bytes)?,
        "" | "application/json" | "*/*" => parse_json(bytes)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the body of the request must be an object"));
    }
    Ok(v)
}

/// Parses JSON with the error upstream's decoder gives.
pub fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))
}

/// Parses one YAML document; `0644` is octal, as kubectl's YAML 1.1 reader has it.
pub fn parse_yaml(bytes: &[u8]) -> ApiResult<Value> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_slice_with_options::<Value>(bytes, options)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn decodes_by_content_type() {
        let j = decode_object(&headers("application/json"), br#"{"kind":"Pod"}"#).unwrap();
        assert_eq!(j["kind"], "Pod");
        let y = decode_object(&headers("application/yaml"), b"kind: Pod\nmetadata:\n  name: a\n").unwrap();
        assert_eq!(y["metadata"]["name"], "a");
        let y = decode_object(&headers("application/yaml"), b"mode: 0644\n").unwrap();
        assert_eq!(y["mode"], 420);
        let e = decode_object(&headers("application/json"), b"{nope").unwrap_err();
        assert_eq!(e.code, 400);
        let e = decode_object(&headers("text/plain"), b"x").unwrap_err();
        assert_eq!(e.code, 415);
        let e = decode_object(&headers("application/json"), b"[1]").unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[tokio::test]
    async fn slow_body_is_408() {
        let (tx, _rx) = oneshot::channel();
        let body = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let guarded = GuardedBody::new(body, Instant::now() + std::time::Duration::from_millis(50), tx);
        let e = read(Body::new(guarded)).await.unwrap_err();
        assert_eq!((e.code, e.reason), (408, "Timeout"));
    }

    #[tokio::test]
    async fn dropped_body_is_given_back() {
        let (tx, rx) = oneshot::channel();
        let guarded = GuardedBody::new(
            Body::from("abc"),
            Instant::now() + std::time::Duration::from_secs(5),
            tx,
        );
        drop(Body::new(guarded));
        let back = rx.await.unwrap();
        assert_eq!(read(back).await.unwrap(), "abc");
    }

    #[tokio::test]
    async fn oversized_body_is_413() {
        let big = vec![b' '; MAX_BODY + 1];
        let e = read(Body::from(big)).await.unwrap_err();
        assert_eq!((e.code, e.reason), (413, "RequestEntityTooLarge"));
        assert!(read(Body::from(vec![b' '; 10])).await.is_ok());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for ct in ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"] {
                let _ = decode_object(&headers(ct), &bytes);
            }
        }
    }
}
