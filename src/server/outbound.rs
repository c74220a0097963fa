//! Every answer body on its way to a connection: cut into frames of at most `FRAME_BYTES`, each
//! counted as waiting on its connection until hyper drops it (written to the socket, or thrown
//! away with the connection).
//!
//! Why frames: hyper takes a body's next frame whenever its own buffer has room (HTTP/1) or the
//! stream has any flow-control window (HTTP/2, where h2 then buffers the whole frame whatever the
//! window). One 25 MB frame would sit whole in hyper for a client that never reads. In small
//! frames the rest stays in the body, still owned by its reservation (see
//! `crate::api::body::reserved_bytes`), and what hyper holds per stream is bounded by its buffer
//! limits. Why counted: a connection whose frames wait and whose client takes no byte for the
//! write timeout is closed (`crate::server::listen`), which frees everything it held.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

use crate::server::connection::{Activity, OutputWaiting, StreamClock, StreamFrame};

/// Largest frame handed to hyper: four HTTP/2 DATA frames of the default size.
pub const FRAME_BYTES: usize = 64 * 1024;

/// `body` as frames of at most `FRAME_BYTES`, each counted on `activity` until written; over
/// HTTP/2 also on a write clock of this answer's own (`http2`).
pub fn outbound(body: Body, activity: Arc<Activity>, http2: bool) -> Body {
    let stream = http2.then(|| activity.stream_clock());
    Body::new(Outbound { inner: body, rest: Bytes::new(), activity, stream })
}

struct Outbound {
    inner: Body,
    /// The part of the last frame of `inner` not yet handed out.
    rest: Bytes,
    activity: Arc<Activity>,
    stream: Option<Arc<StreamClock>>,
}

impl Outbound {
    fn next_piece(&mut self, mut data: Bytes) -> Bytes {
        if data.len() > FRAME_BYTES {
            self.rest = data.split_off(FRAME_BYTES);
        }
        let stream = self.stream.as_ref().map(StreamClock::frame_waiting);
        Bytes::from_owner(Waiting { data, _waiting: self.activity.output_waiting(), _stream: stream })
    }
}

/// A frame's bytes, counted as waiting on their connection while any part of them is alive.
struct Waiting {
    data: Bytes,
    _waiting: OutputWaiting,
    _stream: Option<StreamFrame>,
}

impl AsRef<[u8]> for Waiting {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl HttpBody for Outbound {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if !this.rest.is_empty() {
            let rest = std::mem::take(&mut this.rest);
            return Poll::Ready(Some(Ok(Frame::data(this.next_piece(rest)))));
        }
        loop {
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                other => return Poll::Ready(other),
            };
            match frame.into_data() {
                // Empty data frames carry nothing to count or to send.
                Ok(data) if data.is_empty() => continue,
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(this.next_piece(data))))),
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Exact when the inner body's is, so hyper still sends Content-Length.
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(rest));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn cuts_frames_counts_them_until_dropped_and_keeps_the_exact_size() {
        let activity = Activity::new();
        let payload: Vec<u8> = (0..FRAME_BYTES * 2 + 10).map(|i| i as u8).collect();
        let mut body = outbound(Body::from(payload.clone()), Arc::clone(&activity), true);
        assert_eq!(body.size_hint().exact(), Some(payload.len() as u64));
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= FRAME_BYTES);
            frames.push(data);
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames.concat(), payload);
        let timeout = std::time::Duration::from_millis(1);
        std::thread::sleep(timeout * 5);
        assert!(activity.is_write_stalled(timeout), "frames alive and nothing written");
        frames.clear();
        assert!(!activity.is_write_stalled(timeout), "every frame dropped");
    }
}
