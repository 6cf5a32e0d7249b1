//! Reading the request from Spin: its method, the headers an endpoint needs, and a
//! message's body up to the size the service accepts. What the bytes mean is parsed in
//! [`super::request`] and [`super::routes`].

use std::borrow::Cow;
use std::time::Duration;

use wasi::http::types::{Fields, IncomingRequest, Method};
use wasi::io::streams::StreamError;

use super::request::{self, MAX_REQUEST_BYTES};
use crate::domain::MessageBody;
use crate::error::ApiError;

/// The request's method as text; the standard ones without an allocation.
pub fn method_name(method: Method) -> Cow<'static, str> {
    Cow::Borrowed(match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Head => "HEAD",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other(other) => return Cow::Owned(other),
    })
}

/// The request's headers, read one name at a time and only those the endpoint needs: a
/// `get` per name costs the host less than copying every header into the component with
/// `entries`, and Spin adds eight `spin-*` headers of its own to each request (the figure:
/// bench/README.md, "Figures behind comments in src/"). The resource is a child of the
/// request and must be dropped before the request's body is consumed.
pub struct Headers(pub Fields);

impl Headers {
    /// The first value of header `name` (lower case), if it was sent.
    pub fn first(&self, name: &str) -> Option<Vec<u8>> {
        self.0.get(&name.to_owned()).into_iter().next()
    }
}

/// How the request says its body is framed: the headers [`read_message`] checks the
/// body against.
#[derive(Default)]
pub struct Framing {
    pub content_length: Option<Vec<u8>>,
    pub transfer_encoding: Option<Vec<u8>>,
}

/// Reads the body to its end, up to [`MAX_REQUEST_BYTES`] (a declared or actual size over
/// it is 413 without reading the rest), within `deadline` of the first wait (408: a client
/// that stops sending must not hold the instance, which Spin could otherwise lend to
/// other requests). The body must end where its framing says: a `Content-Length` beside
/// `Transfer-Encoding`, or a length the body does not have, is 400 (a proxy in front may
/// have framed it differently, and what it forwards next would be taken for the body).
pub fn read_message(
    request: IncomingRequest,
    framing: &Framing,
    deadline: impl FnOnce() -> Result<Duration, ApiError>,
) -> Result<MessageBody, ApiError> {
    let declared = match framing.content_length.as_deref() {
        None => None,
        Some(_) if framing.transfer_encoding.is_some() => {
            return Err(ApiError::InvalidRequestBody);
        }
        Some(value) => Some(
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ApiError::InvalidRequestBody)?,
        ),
    };
    if declared.is_some_and(|len| len > MAX_REQUEST_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    // The request's body can be taken once; failing that, or failing mid-stream (the
    // client went away), the body is unreadable.
    let body = request
        .consume()
        .map_err(|()| ApiError::InvalidRequestBody)?;
    let stream = body.stream().map_err(|()| ApiError::InvalidRequestBody)?;
    // Set at the first wait only: a body that has arrived with its headers, the usual
    // case, costs neither the setting's lookup nor the timer.
    let mut deadline = Some(deadline);
    let mut timeout = None;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    loop {
        match stream.read(READ_CHUNK_BYTES) {
            Ok(chunk) if chunk.is_empty() => {
                // Nothing yet: wait for more or for the deadline, whichever comes first.
                if let Some(deadline) = deadline.take() {
                    let nanos = u64::try_from(deadline()?.as_nanos()).unwrap_or(u64::MAX);
                    timeout = Some(wasi::clocks::monotonic_clock::subscribe_duration(nanos));
                }
                let Some(timeout) = &timeout else {
                    return Err(ApiError::RequestTimeout);
                };
                let more = stream.subscribe();
                if !wasi::io::poll::poll(&[&more, timeout]).contains(&0) {
                    return Err(ApiError::RequestTimeout);
                }
            }
            Ok(chunk) if bytes.len() + chunk.len() > MAX_REQUEST_BYTES => {
                return Err(ApiError::PayloadTooLarge);
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => return Err(ApiError::InvalidRequestBody),
        }
        if declared.is_some_and(|len| bytes.len() as u64 > len) {
            return Err(ApiError::InvalidRequestBody);
        }
    }
    if declared.is_some_and(|len| bytes.len() as u64 != len) {
        return Err(ApiError::InvalidRequestBody);
    }
    request::parse_message(&bytes)
}

/// How much one read of the request body asks for.
const READ_CHUNK_BYTES: u64 = 64 * 1024;
