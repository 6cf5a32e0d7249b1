//! A Spin component that serves the chat and message creation endpoints of the Rails
//! chat system, in place of its Go service.
//!
//! A request is parsed at the edge ([`http`], [`domain`]), numbered and queued in one
//! atomic Redis call ([`numbering`], [`job`]) with MySQL read only on a cache miss
//! ([`lookup`]), and answered at once; the Rails Sidekiq worker writes MySQL. The
//! compatibility contract with the Rails side is `CONTRACT.md` in the shared folder.

#[cfg(any(target_arch = "wasm32", test))]
mod allocator;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod job;
pub mod json;
pub mod lookup;
pub mod numbering;
pub mod platform;
pub mod readiness;
pub mod service;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

/// Spin's entry point: a fresh instance per request, handed straight to the HTTP surface.
#[http_component]
fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    http::serve(request, response_out)
}
