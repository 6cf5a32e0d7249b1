//! The log line: one JSON object per request on stderr, the operator's record of what was
//! asked and answered (docs/observability.md).

use std::time::Duration;

use super::request_id::RequestId;
use crate::platform;
use crate::text;

/// What the log line of a request says.
pub struct Logged<'a> {
    pub method: &'a str,
    pub route: &'static str,
    pub status: u16,
    pub started: Duration,
    pub request_id: &'a RequestId,
    /// The cause of a server-side failure (a 5xx, a failed readiness check).
    pub detail: Option<String>,
}

/// One line per request on stderr, as JSON: method, route template (never the token),
/// status, duration and request id; for a server-side failure, the cause. Never a
/// message body or a secret.
pub fn log(logged: &Logged<'_>) {
    let micros = (platform::monotonic() - logged.started).as_micros();
    platform::log_line(&logged.render(micros));
}

impl Logged<'_> {
    /// The line, newline included, written by hand (see [`crate::text`]) since it is built
    /// on every request. The method, request id and cause are escaped; the route is a
    /// constant template and the rest are numbers.
    fn render(&self, duration_micros: u128) -> String {
        let mut line = String::with_capacity(192);
        line.push_str(r#"{"method":"#);
        text::push_json_string(&mut line, self.method);
        line.push_str(r#","route":""#);
        line.push_str(self.route);
        line.push_str(r#"","status":"#);
        text::push_u64(&mut line, self.status.into());
        line.push_str(r#","duration_ms":"#);
        let micros = u64::try_from(duration_micros).unwrap_or(u64::MAX);
        text::push_u64(&mut line, micros / 1000);
        line.push('.');
        text::push_padded(&mut line, micros % 1000, 3);
        line.push_str(r#","request_id":"#);
        text::push_json_string(&mut line, self.request_id.as_str());
        if let Some(detail) = &self.detail {
            line.push_str(r#","error":"#);
            text::push_json_string(&mut line, detail);
        }
        line.push_str("}\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_one_json_object_with_every_field_escaped() {
        let request_id = RequestId::from_header(Some(br#"a"b\c"#));
        let logged = Logged {
            method: "PO\"ST",
            route: "/api/v1/chat_applications/:token/chats",
            status: 503,
            started: Duration::ZERO,
            request_id: &request_id,
            detail: Some("redis: \"down\"\n\u{1}".to_owned()),
        };
        let rendered = logged.render(452);
        let line = rendered
            .strip_suffix('\n')
            .expect("a line ends with a newline");
        assert!(!line.contains('\n'));
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "method": "PO\"ST",
                "route": "/api/v1/chat_applications/:token/chats",
                "status": 503,
                "duration_ms": 0.452,
                "request_id": r#"a"b\c"#,
                "error": "redis: \"down\"\n\u{1}",
            })
        );
        let quiet = Logged {
            detail: None,
            ..logged
        };
        let line = quiet.render(12_034);
        assert!(line.contains(r#""duration_ms":12.034,"#), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed.get("error"), None);
        let line = quiet.render(7);
        assert!(line.contains(r#""duration_ms":0.007,"#), "{line}");
    }
}
