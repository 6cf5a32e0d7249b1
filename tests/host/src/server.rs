//! The HTTP trigger: a hyper 1 server routing each request to a fresh component instance.
//!
//! Mirrors spin-trigger-http's `server.rs`/`wasi.rs`/`headers.rs`, in Spin's order:
//! `/.well-known/spin/health` answers `OK` and `/.well-known/spin/info` the app's name and
//! version; an unrouted path is a 404 with an empty body. A routed request needs an
//! authority (a `Host` header that parses, or an absolute URI, and the two agree), else
//! the connection is closed without an answer; a header value that is not UTF-8 is an
//! empty 500 before any instance exists. Otherwise the request gets the `spin-*` headers
//! (after its own), a new store and instance, and is handed to
//! `wasi:http/incoming-handler`; a guest that traps or never sets a response yields an
//! empty 500.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime::Store;
use wasmtime_wasi_http::p2::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::routing::spin_headers;
use crate::runtime::App;
use crate::state::HostState;

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    full(status, Bytes::from_static(body.as_bytes()))
}

fn full(status: StatusCode, body: Bytes) -> Response<HyperOutgoingBody> {
    let body = Full::new(body)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

/// Accept connections until `shutdown` resolves; each connection is served on its own
/// task, so requests run concurrently on the multi-threaded runtime.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, client_addr) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("spin-test-host: accept failed: {e}");
                    continue;
                }
            },
        };
        let app = app.clone();
        tokio::spawn(async move {
            // An `Err` makes hyper close the connection without a response, as Spin's
            // server does when `handle` fails.
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { handle(app, req, client_addr).await }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("spin-test-host: connection error from {client_addr}: {e}");
            }
        });
    }
}

async fn handle(
    app: Arc<App>,
    mut req: Request<Incoming>,
    client_addr: SocketAddr,
) -> anyhow::Result<Response<HyperOutgoingBody>> {
    let path = req.uri().path().to_string();
    if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
        return Ok(match well_known {
            "health" => plain(StatusCode::OK, "OK"),
            "info" => {
                let mut response = full(StatusCode::OK, Bytes::from(app.info.clone()));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            _ => plain(StatusCode::NOT_FOUND, ""),
        });
    }
    let Some(route) = app.router.route(&path) else {
        return Ok(plain(StatusCode::NOT_FOUND, ""));
    };
    let Some(component) = app.components.get(&route.component_id) else {
        return Ok(plain(StatusCode::NOT_FOUND, ""));
    };

    set_absolute_uri(&mut req)?;
    // Spin hands the component only header values that are UTF-8, and fails the whole
    // request otherwise (`prepare_request_headers`, its `Error processing request`).
    if req
        .headers()
        .values()
        .any(|v| std::str::from_utf8(v.as_bytes()).is_err())
    {
        eprintln!(
            "spin-test-host: Error processing request on {path}: a header value is not UTF-8"
        );
        return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, ""));
    }
    // `spin-full-url` names the `Host` header's authority, or `localhost` without one
    // (a request with an absolute URI only).
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    // `set_absolute_uri` gave every URI a path.
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    // Appended, as Spin does: a client's own `spin-*` header stays, before Spin's.
    for (name, value) in spin_headers(&route, &host, &path_and_query, client_addr) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            req.headers_mut().append(n, v);
        }
    }

    Ok(match run_component(component, req).await {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!(
                "spin-test-host: error handling {path} with component {:?}: {e:?}",
                route.component_id
            );
            plain(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    })
}

/// Spin's `set_req_uri`: the request's URI made absolute (`http`, and the authority of
/// the `Host` header or of the URI itself). A `Host` that is not UTF-8 or no authority,
/// neither, or two that differ fail the request.
fn set_absolute_uri<B>(req: &mut Request<B>) -> anyhow::Result<()> {
    let from_header = req
        .headers()
        .get(http::header::HOST)
        .map(|h| -> anyhow::Result<Authority> {
            let text = h.to_str().context("'Host' header is not valid UTF-8")?;
            text.parse()
                .context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let mut parts = req.uri().clone().into_parts();
    let authority = match (from_header, parts.authority.take()) {
        (None, None) => anyhow::bail!("no 'Host' header present in request"),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(header), Some(uri)) if header == uri => header,
        _ => anyhow::bail!("authority in 'Host' header does not match authority in URI"),
    };
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts)?;
    Ok(())
}

async fn run_component(
    component: &crate::runtime::LoadedComponent,
    req: Request<Incoming>,
) -> anyhow::Result<Response<HyperOutgoingBody>> {
    let pre = component.pre.clone();
    let mut store = Store::new(pre.engine(), HostState::new(component.context.clone()));
    // With epoch interruption on, a store without a deadline traps at once; Spin gives
    // every store 2^63 ticks, "practically forever".
    store.set_epoch_deadline(u64::MAX / 2);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)
        .map_err(anyhow::Error::from)?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(sender)
        .map_err(anyhow::Error::from)?;
    // The guest keeps running after `response-outparam.set` to stream the body, so the
    // call lives on its own task; the store (and its connections) drop when it finishes.
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, out)
            .await
    });
    match receiver.await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(code)) => Err(anyhow::anyhow!("guest returned error code {code:?}")),
        Err(_) => {
            let e = match task.await {
                Ok(Ok(())) => anyhow::anyhow!("guest never invoked `response-outparam::set`"),
                Ok(Err(e)) => anyhow::Error::from(e),
                Err(e) => e.into(),
            };
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, host: Option<&str>) -> Request<()> {
        let mut builder = Request::get(uri);
        if let Some(host) = host {
            builder = builder.header(http::header::HOST, host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn the_authority_is_the_hosts_or_the_uris_and_they_must_agree() {
        let mut req = request("/health?x=1", Some("127.0.0.1:3000"));
        set_absolute_uri(&mut req).unwrap();
        assert_eq!(req.uri(), "http://127.0.0.1:3000/health?x=1");
        let mut req = request("http://x/health", None);
        set_absolute_uri(&mut req).unwrap();
        assert_eq!(req.uri(), "http://x/health");
        for (uri, host) in [
            ("/health", None),
            ("/health", Some("a b")),
            ("/health", Some("")),
            ("http://other/health", Some("x")),
        ] {
            assert!(
                set_absolute_uri(&mut request(uri, host)).is_err(),
                "{uri} {host:?}"
            );
        }
    }
}
