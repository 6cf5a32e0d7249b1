//! A Spin component that serves the chat and message creation endpoints of the Rails
//! chat system, in place of its Go service.
//!
//! A request is parsed at the edge ([`http`], [`domain`]), numbered and queued in one
//! atomic Redis call ([`numbering`], [`job`]) with MySQL read only on a cache miss
//! ([`lookup`]), and answered at once; the Rails Sidekiq worker writes MySQL. The
//! compatibility contract with the Rails side is docs/contract.md.

#[cfg(any(single_threaded_wasm, test))]
mod allocator;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod job;
pub mod lookup;
pub mod mysql_leases;
pub mod numbering;
pub mod platform;
#[cfg(any(target_arch = "wasm32", test))]
mod preview1;
pub mod readiness;
pub mod redis;
pub mod service;
pub mod text;
pub mod wasi_output;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

/// Spin's entry point: a fresh instance per request, handed straight to the HTTP surface.
///
/// Exported with the WASI 0.2 bindings rather than spin-sdk's `#[http_component]`, which
/// runs every handler inside its async executor: a synchronous handler gains nothing from
/// it and would pay for an extra import (`wasi:io/poll`) and the executor's work on every
/// request (the figure: bench/README.md, "Figures behind comments in src/"). The world
/// is the same `wasi:http/incoming-handler@0.2.0` export.
struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        http::serve(request, response_out)
    }
}

wasi::http::proxy::export!(Component);
