//! The response future: finishes the span and records the metrics.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::pending::Pending;
use crate::http::call::Protocol;
use crate::http::grpc;

pin_project! {
    /// The future returned by [`ServerService`](super::ServerService).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn skipped(inner: F) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    pub(crate) fn traced(inner: F, pending: Pending) -> Self {
        Self {
            inner,
            pending: Some(pending),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(pending) = this.pending.as_mut() else {
            return this
                .inner
                .poll(cx)
                .map(|r| r.map(|res| res.map(ResponseBody::passthrough)));
        };
        // One enter for the handler's poll and, when it completes, for the
        // span's final attributes, metrics and access log: every enter/exit
        // goes through all layers (and context activation).
        let span = pending.span.clone();
        let _entered = span.enter();
        let result = std::task::ready!(this.inner.poll(cx));
        let mut pending = this.pending.take().expect("checked above");
        Poll::Ready(match result {
            Ok(mut res) => {
                pending.echo_request_id(res.headers_mut());
                match &pending.kind {
                    Protocol::Grpc(_) => {
                        let span = span.clone();
                        // Trailers-only responses carry the status in the headers.
                        if let Some(code) = grpc::status(res.headers()) {
                            pending.finish_grpc(code);
                            Ok(res.map(|b| ResponseBody::traced(b, span, None)))
                        } else {
                            Ok(res.map(|b| ResponseBody::traced(b, span, Some(pending))))
                        }
                    }
                    Protocol::Http(_) => {
                        pending.finish_http(res.status().as_u16());
                        // The finished `Pending` no longer needs its span: the
                        // body takes it (one clone fewer per request).
                        let span = std::mem::replace(&mut pending.span, tracing::Span::none());
                        Ok(res.map(|b| ResponseBody::traced(b, span, None)))
                    }
                }
            }
            Err(e) => {
                pending.finish_error(short_type_name::<E>());
                Err(e)
            }
        })
    }
}

/// `error.type` for a service error: its type's name (bounded, unlike the
/// error message).
fn short_type_name<E>() -> &'static str {
    let full = std::any::type_name::<E>();
    full.rsplit("::").next().unwrap_or(full)
}
