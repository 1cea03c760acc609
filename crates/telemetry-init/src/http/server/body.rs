//! The response body: keeps the span open until the body is sent and reads
//! gRPC trailers.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::pending::Pending;
use crate::http::grpc::{self, code};

pin_project! {
    /// The response body of [`ServerService`](super::ServerService).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        span: Option<tracing::Span>,
        grpc: Option<Pending>,
        // The inner body said it has nothing more to send.
        complete: bool,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before its end (the client went away mid-stream): the
            // span ends now, not when the headers were produced. A complete
            // body needs nothing: hyper stops at `is_end_stream`, right
            // after the handler's last exit set the end time.
            if !*this.complete
                && let Some(span) = this.span.take()
            {
                let _entered = span.enter();
            }
        }
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn passthrough(inner: B) -> Self {
        Self {
            inner,
            span: None,
            grpc: None,
            complete: true,
        }
    }

    pub(crate) fn traced(inner: B, span: tracing::Span, grpc: Option<Pending>) -> Self {
        Self {
            inner,
            span: Some(span),
            grpc,
            complete: false,
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if this.inner.is_end_stream() {
                    *this.complete = true;
                }
                if let Some(trailers) = f.trailers_ref()
                    && let Some(mut p) = this.grpc.take()
                {
                    // A missing grpc-status is a broken response: UNKNOWN.
                    p.finish_grpc(grpc::status(trailers).unwrap_or(code::UNKNOWN));
                }
            }
            Some(Err(_)) | None => {
                *this.complete = true;
                if let Some(mut p) = this.grpc.take() {
                    p.finish_grpc(code::UNKNOWN);
                }
                // The span ends when the body is complete, not when the
                // headers were produced: tracing-opentelemetry ends a span
                // at its last exit, so enter it once more before letting go.
                if let Some(span) = this.span.take() {
                    let _entered = span.enter();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
