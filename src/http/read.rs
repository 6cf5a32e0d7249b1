//! Reading the request from Spin: its method, the headers an endpoint needs, and a
//! message's body up to the size the service accepts. What the bytes mean is parsed in
//! [`super::request`] and [`super::routes`].

use std::borrow::Cow;

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

/// Reads the body up to [`MAX_REQUEST_BYTES`]; a declared or actual size over it is
/// answered 413 without reading the rest.
pub fn read_message(
    request: IncomingRequest,
    content_length: Option<&[u8]>,
) -> Result<MessageBody, ApiError> {
    let declared =
        content_length.and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    // The request's body can be taken once; failing that, or failing mid-stream (the
    // client went away), the body is unreadable.
    let body = request
        .consume()
        .map_err(|()| ApiError::InvalidRequestBody)?;
    let stream = body.stream().map_err(|()| ApiError::InvalidRequestBody)?;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    // With a declared length, the body is complete once that much has arrived (the
    // host's HTTP server delivers no more), so there is no read for the end of the stream.
    while declared != Some(bytes.len() as u64) {
        match stream.blocking_read(READ_CHUNK_BYTES) {
            Ok(chunk) if bytes.len() + chunk.len() > MAX_REQUEST_BYTES => {
                return Err(ApiError::PayloadTooLarge);
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => return Err(ApiError::InvalidRequestBody),
        }
    }
    request::parse_message(&bytes)
}

/// How much one read of the request body asks for.
const READ_CHUNK_BYTES: u64 = 64 * 1024;
