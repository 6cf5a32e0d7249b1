//! Writing the reply to Spin: headers with the body's length, and the body written before
//! the response is handed over. What the reply says is [`super::response`].

use wasi::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

use super::response::Reply;
use crate::text;
use crate::wasi_output::{self, BLOCKING_WRITE_MAX};

/// The largest body written before the response is handed to the host. The host buffers
/// a body written that early in a small queue (one write of up to [`BLOCKING_WRITE_MAX`]
/// is sure to fit), and the service's JSON replies are a few hundred bytes at most;
/// anything larger is streamed after handing over instead.
const PREWRITTEN_BODY_MAX: usize = BLOCKING_WRITE_MAX;

pub fn write(response_out: ResponseOutparam, reply: Reply) {
    let mut headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into_bytes()))
        .collect();
    // A declared length lets the host send the body as it is instead of chunked, with no
    // separate terminator write. (A 204 must not carry one: RFC 9110, 8.6.)
    if reply.status != 204 {
        let mut length = String::new();
        text::push_u64(&mut length, reply.body.len() as u64);
        headers.push(("content-length".to_owned(), length.into_bytes()));
    }
    // Header names and values are constants or digits, so the host cannot refuse them.
    let Ok(fields) = Fields::from_list(&headers) else {
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(reply.status);
    // The body of a new response can always be taken, once.
    let Ok(body) = response.body() else {
        return;
    };
    // The whole body is written and finished before the response is handed over, so the
    // host's HTTP server finds headers and body ready together and sends them in one
    // write. Handed over first, the headers can go out alone when the server is busy,
    // and Nagle then holds the body back until the client's delayed ACK: a 40 ms stall
    // on a connection that sends one request at a time (Spin, like the test host, does
    // not set TCP_NODELAY; bench/README.md, "Read it", has the before and after).
    if reply.body.len() <= PREWRITTEN_BODY_MAX {
        send_body(body, &reply.body);
        ResponseOutparam::set(response_out, Ok(response));
    } else {
        ResponseOutparam::set(response_out, Ok(response));
        send_body(body, &reply.body);
    }
}

fn send_body(body: OutgoingBody, bytes: &[u8]) {
    if let Ok(stream) = body.write() {
        // A client that hung up cannot be answered; there is nothing else to do.
        let _ = wasi_output::write_all(&stream, bytes);
    }
    let _ = OutgoingBody::finish(body, None);
}
