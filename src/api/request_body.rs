//! A request body as the doors read it: decoded from its `Content-Encoding` (gzip or zstd) as it
//! arrives, and fingerprinted as received, before decoding.
//!
//! Decoding runs on the async runtime, a bounded step per poll: each `poll_frame` hands out at
//! most `FRAME_BYTES` of decoded bytes (about 0.1 ms of inflate or zstd), so no poll holds a
//! runtime thread for long and a reader that stops polling stops the decoding. The doors count the
//! decoded bytes against their limits frame by frame, so a decompression bomb is cut off after at
//! most the limit plus one frame, and holds no more memory than a plain body would.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, header};
use http_body::Frame;

use super::error::Error;
use crate::pipeline::decompress::{ContentCoding, Decoder, SERVER_WINDOW_LOG_MAX, STEP_BYTES};
use crate::pipeline::fingerprint::{Fingerprint, FingerprintHasher};

/// Decoded bytes handed out by one poll, at most (a step may add up to `STEP_BYTES` past it).
const FRAME_BYTES: usize = 64 * 1024;

/// The coding a request's `Content-Encoding` headers name: `unsupported_encoding` (415) for any
/// but gzip, zstd and identity.
pub fn content_coding(headers: &HeaderMap) -> Result<ContentCoding, Error> {
    ContentCoding::from_header_values(headers.get_all(header::CONTENT_ENCODING).iter().map(|v| v.to_str().ok()))
}

/// Why a body could not be read to its end.
#[derive(Debug)]
pub enum BodyError {
    /// The connection broke off, or its framing was wrong.
    Incomplete(axum::Error),
    /// The bytes are not the coding the request named (`malformed_encoding`).
    Malformed(Error),
}

fn malformed(error: Error) -> BodyError {
    BodyError::Malformed(Error { message: format!("the body is {}", error.message), ..error })
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Incomplete(error) => error.fmt(f),
            BodyError::Malformed(error) => f.write_str(&error.message),
        }
    }
}

/// The decoded body, and the fingerprint of the bytes as they came.
pub struct RequestBody {
    inner: Body,
    /// `None` for identity: frames pass through as they are.
    decoder: Option<Decoder>,
    /// Received bytes the decoder has not consumed yet.
    pending: Bytes,
    /// The hash of the bytes as received, for the doors that write it (the stream's `run.input`).
    received: Option<FingerprintHasher>,
    received_bytes: u64,
    ended: bool,
}

impl RequestBody {
    /// The body, not hashed: a batch's answer names no input.
    pub fn new(inner: Body, coding: ContentCoding) -> Result<RequestBody, Error> {
        let decoder = Decoder::new(coding, SERVER_WINDOW_LOG_MAX)?;
        Ok(RequestBody { inner, decoder, pending: Bytes::new(), received: None, received_bytes: 0, ended: false })
    }

    /// The body, hashed as received for its `fingerprint`.
    pub fn fingerprinted(inner: Body, coding: ContentCoding) -> Result<RequestBody, Error> {
        Ok(RequestBody { received: Some(FingerprintHasher::new()), ..RequestBody::new(inner, coding)? })
    }

    /// The byte count and hash of every byte received so far, before decoding; `None` unless
    /// the body is `fingerprinted`.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.received.as_ref().map(FingerprintHasher::finish)
    }

    /// Bytes received so far, before decoding.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// Decodes up to about `FRAME_BYTES` from what is pending.
    fn decode_pending(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let Some(decoder) = self.decoder.as_mut() else { return Ok(out) };
        out.reserve(FRAME_BYTES + STEP_BYTES);
        while (!self.pending.is_empty() || decoder.holds_output()) && out.len() < FRAME_BYTES {
            let before = out.len();
            let consumed = decoder.decode(&self.pending, &mut out)?;
            if consumed == 0 && out.len() == before && !self.pending.is_empty() {
                // The decoders always progress while input remains; never spin if one did not.
                return Err(crate::pipeline::decompress::malformed(decoder.coding(), "the decoder made no progress"));
            }
            let _ = self.pending.split_to(consumed);
        }
        Ok(out)
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() || this.decoder.as_ref().is_some_and(Decoder::holds_output) {
                let decoded = this.decode_pending().map_err(malformed)?;
                if !decoded.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(decoded)))));
                }
                continue;
            }
            if this.ended {
                return Poll::Ready(None);
            }
            let data = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers carry no body bytes.
                    Err(_) => continue,
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(BodyError::Incomplete(error)))),
                None => {
                    this.ended = true;
                    let Some(decoder) = this.decoder.as_mut() else { return Poll::Ready(None) };
                    let mut rest = Vec::new();
                    decoder.finish(&mut rest).map_err(malformed)?;
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
            };
            this.received_bytes += data.len() as u64;
            if let Some(hasher) = this.received.as_mut() {
                hasher.update(&data);
            }
            if this.decoder.is_none() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            this.pending = data;
        }
    }
}
