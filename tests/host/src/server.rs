//! The HTTP trigger: a hyper 1 server routing each request to a fresh component instance.
//!
//! Mirrors spin-trigger-http's `server.rs`/`wasi.rs`: `/.well-known/spin/health` answers
//! `OK`; an unrouted path is a 404 with an empty body; a routed request gets the `spin-*`
//! headers, a new store and instance, and is handed to `wasi:http/incoming-handler`; a
//! guest that traps or never sets a response yields an empty 500.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
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
    let body = Full::new(Bytes::from_static(body.as_bytes()))
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
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(app, req, client_addr).await) }
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
) -> Response<HyperOutgoingBody> {
    let path = req.uri().path().to_string();
    if path.starts_with("/.well-known/spin/") {
        return match path.as_str() {
            "/.well-known/spin/health" => plain(StatusCode::OK, "OK"),
            _ => plain(StatusCode::NOT_FOUND, ""),
        };
    }
    let Some(route) = app.router.route(&path) else {
        return plain(StatusCode::NOT_FOUND, "");
    };
    let Some(component) = app.components.get(&route.component_id) else {
        return plain(StatusCode::NOT_FOUND, "");
    };

    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    if !req.headers().contains_key(http::header::HOST) {
        // wasi:http needs an authority; Spin's default host is "localhost".
        req.headers_mut()
            .insert(http::header::HOST, HeaderValue::from_static("localhost"));
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    for (name, value) in spin_headers(&route, &host, &path_and_query, client_addr) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            req.headers_mut().insert(n, v);
        }
    }

    match run_component(component, req).await {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!(
                "spin-test-host: error handling {path} with component {:?}: {e:?}",
                route.component_id
            );
            plain(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }
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
