//! JSON bodies for the answers hyper writes itself. A request head hyper cannot parse (a garbage
//! request line, two different `Content-Length`s, a URI or a header section over its limits) is
//! answered by hyper, before any request reaches the router, with a bare 400, 414 or 431 and an
//! empty body; hyper offers no hook to write another. So the connection's writes are watched
//! instead: when the first bytes written on a connection, before any request was dispatched on
//! it, are exactly such an answer, the same status line and headers go out with the service's JSON
//! error body (and its `content-type`, `content-length` and a generated `x-request-id`).
//!
//! Exactness: only the first write of a connection is looked at, and only while no request has
//! reached the service (`Activity::any_request_dispatched`), so no answer of a dispatched request
//! is ever touched. The write must hold the whole head and nothing else, its status one of hyper's
//! three, its headers only `content-length: 0` beside `connection` and `date`, which the router's
//! answers never are (they all carry `x-request-id`). Anything else passes through unchanged.
//! A malformed request that follows another on a kept-alive connection keeps hyper's empty body.
//!
//! The substitute is written in full before hyper is told its own bytes were; a failed write
//! fails the connection. The connection then closes lingering (`crate::server::connection`): the
//! client may still be sending the head hyper refused, and must get to read the answer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::http::Request;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_http::request_id::{MakeRequestId, MakeRequestUuid};

use crate::api::{Error, ErrorCode};
use crate::server::connection::{Activity, LingerOnClose};

/// A connection's stream, writing hyper's own error answers with a JSON body.
pub struct ParseErrorBodies<S> {
    inner: S,
    activity: Arc<Activity>,
    state: State,
}

enum State {
    /// Nothing written yet.
    Watching,
    /// Writing `bytes` in place of the `replaced` bytes hyper offered.
    Replacing { bytes: Vec<u8>, written: usize, replaced: usize },
    /// Everything passes through.
    Passing,
}

impl<S> ParseErrorBodies<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        ParseErrorBodies { inner, activity, state: State::Watching }
    }
}

impl<S: AsyncWrite + Unpin> ParseErrorBodies<S> {
    /// Decides, at the first write, whether `data` is hyper's answer to replace.
    fn watch(&mut self, data: &[u8]) {
        if !matches!(self.state, State::Watching) || data.is_empty() {
            return;
        }
        self.state = match replacement(data).filter(|_| !self.activity.any_request_dispatched()) {
            Some(bytes) => {
                LingerOnClose(Arc::clone(&self.activity)).request();
                State::Replacing { bytes, written: 0, replaced: data.len() }
            }
            None => State::Passing,
        };
    }

    /// Writes the rest of the substitute; reports hyper's `offered` bytes written once all of it is.
    fn poll_replace(&mut self, cx: &mut Context<'_>, offered: usize) -> Poll<io::Result<usize>> {
        let State::Replacing { bytes, written, replaced } = &mut self.state else {
            return Poll::Ready(Err(io::Error::other("no answer is being replaced")));
        };
        // hyper offers the same bytes again until told they were written; anything shorter
        // would leave no way to say how much of it went out.
        if offered < *replaced {
            return Poll::Ready(Err(io::Error::other("the answer being replaced changed")));
        }
        while *written < bytes.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        let replaced = *replaced;
        self.state = State::Passing;
        Poll::Ready(Ok(replaced))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ParseErrorBodies<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ParseErrorBodies<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.watch(data);
        match this.state {
            State::Replacing { .. } => this.poll_replace(cx, data.len()),
            _ => Pin::new(&mut this.inner).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if matches!(this.state, State::Watching) {
            // hyper's answer is one buffer; several non-empty ones are not it.
            let mut filled = data.iter().filter(|slice| !slice.is_empty());
            match (filled.next(), filled.next()) {
                (Some(only), None) => this.watch(only),
                (Some(_), Some(_)) => this.state = State::Passing,
                (None, _) => {}
            }
        }
        match this.state {
            State::Replacing { .. } => this.poll_replace(cx, data.iter().map(|slice| slice.len()).sum()),
            _ => Pin::new(&mut this.inner).poll_write_vectored(cx, data),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error of each status hyper answers by itself (`hyper::proto::h1::role`, `on_error`).
fn error_for(status: &[u8]) -> Option<Error> {
    let (code, message) = match status {
        b"400" => (
            ErrorCode::BadRequest,
            "the request is not valid HTTP/1.1: its request line, a header or its framing (such as two \
             different Content-Length headers) could not be read; the connection is closed",
        ),
        b"414" => (ErrorCode::UriTooLong, "the request target (path and query) is too long; the connection is closed"),
        b"431" => (
            ErrorCode::HeadersTooLarge,
            "the request head is too large: too many headers, or too many bytes of request line and headers; \
             the connection is closed",
        ),
        _ => return None,
    };
    Some(Error::new(code, message))
}

/// The answer to write instead of `data`, when `data` is exactly one of hyper's bare error answers.
fn replacement(data: &[u8]) -> Option<Vec<u8>> {
    let head = data.strip_suffix(b"\r\n\r\n")?;
    let lines = crlf_lines(head)?;
    let (status_line, lines) = lines.split_first()?;
    let status = status_line.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let error = error_for(status)?;
    let mut kept = Vec::new();
    let mut empty_body = false;
    for &line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") && value == b"0" && !empty_body {
            empty_body = true;
        } else if name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"date") {
            kept.push(line);
        } else {
            return None;
        }
    }
    if !empty_body {
        return None;
    }
    let request_id = MakeRequestUuid.make_request_id(&Request::new(()))?;
    let request_id = request_id.header_value().to_str().ok()?;
    let body = error.body(Some(request_id));
    tracing::debug!(request_id, status = %String::from_utf8_lossy(status), "a request head could not be parsed");
    let mut answer = Vec::with_capacity(head.len() + body.len() + 128);
    answer.extend_from_slice(status_line);
    for line in kept {
        answer.extend_from_slice(b"\r\n");
        answer.extend_from_slice(line);
    }
    answer.extend_from_slice(b"\r\ncontent-type: application/json\r\nx-request-id: ");
    answer.extend_from_slice(request_id.as_bytes());
    answer.extend_from_slice(format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(&body);
    Some(answer)
}

/// `head` split at CRLF; None when a line holds a bare CR or LF.
fn crlf_lines(head: &[u8]) -> Option<Vec<&[u8]>> {
    let mut lines = Vec::new();
    let mut rest = head;
    while let Some(at) = rest.windows(2).position(|pair| pair == b"\r\n") {
        lines.push(&rest[..at]);
        rest = &rest[at + 2..];
    }
    lines.push(rest);
    lines.iter().all(|line| !line.contains(&b'\r') && !line.contains(&b'\n')).then_some(lines)
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    const HYPER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 05:49:42 GMT\r\n\r\n";

    /// A socket that takes at most `per_write` bytes a call, and is not ready every other call
    /// when `stalls` is set.
    #[derive(Default)]
    struct Socket {
        written: Vec<u8>,
        per_write: usize,
        stalls: bool,
        calls: usize,
    }

    impl AsyncRead for Socket {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Socket {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.stalls && self.calls % 2 == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = data.len().min(self.per_write);
            self.written.extend_from_slice(&data[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Writes `data` as hyper does: the unwritten rest again and again, until all of it is taken.
    fn write_all(stream: &mut ParseErrorBodies<Socket>, data: &[u8]) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut rest = data;
        for _ in 0..10_000 {
            if rest.is_empty() {
                return;
            }
            if let Poll::Ready(result) = Pin::new(&mut *stream).poll_write(&mut cx, rest) {
                rest = &rest[result.expect("writes")..];
            }
        }
        panic!("the write never finished");
    }

    fn stream(socket: Socket) -> ParseErrorBodies<Socket> {
        ParseErrorBodies::new(socket, Activity::new())
    }

    fn body_of(written: &[u8]) -> serde_json::Value {
        let split = written.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
        serde_json::from_slice(&written[split + 4..]).expect("a JSON body")
    }

    #[test]
    fn hypers_bare_answers_get_the_json_error_body() {
        for (answer, code) in [
            (HYPER_400.to_vec(), "bad_request"),
            (b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec(), "uri_too_long"),
            (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec(),
                "headers_too_large",
            ),
        ] {
            let mut stream = stream(Socket { per_write: usize::MAX, ..Socket::default() });
            write_all(&mut stream, &answer);
            let written = String::from_utf8(stream.inner.written.clone()).expect("text");
            let status_line = &answer[..answer.iter().position(|&b| b == b'\r').expect("a line")];
            assert!(written.as_bytes().starts_with(status_line), "{written}");
            assert!(written.contains("\r\nconnection: close\r\n"), "{written}");
            assert!(written.contains("\r\ncontent-type: application/json\r\n"), "{written}");
            let body = body_of(written.as_bytes());
            assert_eq!(body["error"]["code"], code);
            let length = written.split("content-length: ").nth(1).and_then(|rest| rest.split("\r\n").next());
            let head_end = written.find("\r\n\r\n").expect("a head") + 4;
            assert_eq!(length, Some((written.len() - head_end).to_string()).as_deref(), "{written}");
            let id = body["error"]["request_id"].as_str().expect("a request id");
            assert!(written.contains(&format!("\r\nx-request-id: {id}\r\n")), "{written}");
            assert!(stream.activity.linger_requested(), "the connection closes lingering");
        }
    }

    #[test]
    fn a_substitute_written_a_few_bytes_at_a_time_goes_out_whole() {
        let mut stream = stream(Socket { per_write: 7, stalls: true, ..Socket::default() });
        write_all(&mut stream, HYPER_400);
        assert_eq!(body_of(&stream.inner.written)["error"]["code"], "bad_request");
        // Later writes pass through.
        write_all(&mut stream, b"more");
        assert!(stream.inner.written.ends_with(b"}more"));
    }

    #[test]
    fn answers_after_a_dispatched_request_pass_through() {
        let mut stream = stream(Socket { per_write: usize::MAX, ..Socket::default() });
        drop(stream.activity.request_started());
        write_all(&mut stream, HYPER_400);
        assert_eq!(stream.inner.written, HYPER_400);
    }

    #[test]
    fn only_the_first_write_is_looked_at() {
        let mut stream = stream(Socket { per_write: usize::MAX, ..Socket::default() });
        write_all(&mut stream, b"\x00\x00\x12\x04\x00\x00\x00\x00\x00");
        write_all(&mut stream, HYPER_400);
        assert!(stream.inner.written.ends_with(HYPER_400));
    }

    #[test]
    fn anything_but_hypers_exact_answer_is_left_alone() {
        for data in [
            // The router's answers carry more headers.
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: a\r\ncontent-length: 0\r\n\r\n"
                .as_slice(),
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 5\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            // More than the head, or less.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            let mut stream = stream(Socket { per_write: usize::MAX, ..Socket::default() });
            write_all(&mut stream, data);
            assert_eq!(stream.inner.written, data, "{}", String::from_utf8_lossy(data));
            assert!(!stream.activity.linger_requested());
        }
    }

    #[test]
    fn a_vectored_write_of_one_buffer_is_recognised_and_of_several_is_not() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut one = stream(Socket { per_write: usize::MAX, ..Socket::default() });
        let slices = [io::IoSlice::new(b""), io::IoSlice::new(HYPER_400)];
        let polled = Pin::new(&mut one).poll_write_vectored(&mut cx, &slices);
        assert!(matches!(polled, Poll::Ready(Ok(n)) if n == HYPER_400.len()));
        assert_eq!(body_of(&one.inner.written)["error"]["code"], "bad_request");

        let mut two = stream(Socket { per_write: usize::MAX, ..Socket::default() });
        let (head, tail) = HYPER_400.split_at(20);
        let slices = [io::IoSlice::new(head), io::IoSlice::new(tail)];
        let polled = Pin::new(&mut two).poll_write_vectored(&mut cx, &slices);
        // The default vectored write takes the first buffer only.
        assert!(matches!(polled, Poll::Ready(Ok(20))));
        assert_eq!(two.inner.written, head);
    }
}
