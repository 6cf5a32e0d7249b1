//! Which endpoint a method and path name, with the path's parameters parsed into domain
//! types. Pure, so every edge is a unit test.
//!
//! Spin routes all of `spin.toml`'s paths (and a catch-all) to this component; the
//! component matches again so that its answers do not depend on how a given Spin
//! version sets its routing headers.

use crate::domain::{ChatNumber, Token};
use crate::error::ApiError;

pub const HEALTH: &str = "/health";
pub const READY: &str = "/ready";
pub const CHATS: &str = "/api/v1/chat_applications/:token/chats";
pub const MESSAGES: &str = "/api/v1/chat_applications/:token/chats/:number/messages";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Liveness: answers without touching anything.
    Health,
    /// Readiness: checks Redis and MySQL.
    Ready,
    /// CORS preflight: `OPTIONS` on any path answers 204 with the CORS headers.
    Preflight,
    CreateChat {
        token: Token,
    },
    CreateMessage {
        token: Token,
        chat: ChatNumber,
    },
}

/// The outcome of matching: the route template (for the log line, which must not carry
/// tokens) and the endpoint, or the error that answers the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: &'static str,
    pub endpoint: Result<Endpoint, ApiError>,
}

pub fn route(method: &str, path_and_query: &str) -> Matched {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();

    let (route, allow) = match segments.as_slice() {
        ["health"] => (HEALTH, "GET, OPTIONS"),
        ["ready"] => (READY, "GET, OPTIONS"),
        ["api", "v1", "chat_applications", _, "chats"] => (CHATS, "POST, OPTIONS"),
        ["api", "v1", "chat_applications", _, "chats", _, "messages"] => {
            (MESSAGES, "POST, OPTIONS")
        }
        _ if method == "OPTIONS" => ("*", ""),
        _ => {
            return Matched {
                route: "*",
                endpoint: Err(ApiError::RouteNotFound),
            };
        }
    };

    let endpoint = match (method, segments.as_slice()) {
        ("OPTIONS", _) => Ok(Endpoint::Preflight),
        ("GET", ["health"]) => Ok(Endpoint::Health),
        ("GET", ["ready"]) => Ok(Endpoint::Ready),
        ("POST", [_, _, _, token, "chats"]) => create_chat(token),
        ("POST", [_, _, _, token, _, number, _]) => create_message(token, number),
        _ => Err(ApiError::MethodNotAllowed { allow }),
    };
    Matched { route, endpoint }
}

/// A chat creation's token, parsed; a refused one is answered as [`ApiError`] maps it.
fn create_chat(token: &str) -> Result<Endpoint, ApiError> {
    Ok(Endpoint::CreateChat {
        token: Token::parse(token)?,
    })
}

/// A message creation's token, then its chat number, parsed (the token is checked first).
fn create_message(token: &str, number: &str) -> Result<Endpoint, ApiError> {
    Ok(Endpoint::CreateMessage {
        token: Token::parse(token)?,
        chat: ChatNumber::parse(number)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn token() -> Token {
        Token::parse(TOKEN).unwrap()
    }

    #[test]
    fn every_endpoint() {
        assert_eq!(route("GET", "/health").endpoint, Ok(Endpoint::Health));
        assert_eq!(route("GET", "/ready").endpoint, Ok(Endpoint::Ready));
        assert_eq!(
            route("POST", &format!("/api/v1/chat_applications/{TOKEN}/chats")),
            Matched {
                route: CHATS,
                endpoint: Ok(Endpoint::CreateChat { token: token() })
            }
        );
        assert_eq!(
            route(
                "POST",
                &format!("/api/v1/chat_applications/{TOKEN}/chats/12/messages?x=1")
            ),
            Matched {
                route: MESSAGES,
                endpoint: Ok(Endpoint::CreateMessage {
                    token: token(),
                    chat: ChatNumber::parse("12").unwrap()
                })
            }
        );
    }

    #[test]
    fn preflight_on_any_path() {
        for path in ["/health", "/api/v1/chat_applications/x/chats", "/nowhere"] {
            assert_eq!(
                route("OPTIONS", path).endpoint,
                Ok(Endpoint::Preflight),
                "{path}"
            );
        }
    }

    #[test]
    fn other_methods_on_known_paths_are_405_with_allow() {
        let chats = format!("/api/v1/chat_applications/{TOKEN}/chats");
        for (method, path, allow) in [
            ("POST", "/health", "GET, OPTIONS"),
            ("DELETE", "/ready", "GET, OPTIONS"),
            ("GET", chats.as_str(), "POST, OPTIONS"),
            (
                "DELETE",
                "/api/v1/chat_applications/t/chats/1/messages",
                "POST, OPTIONS",
            ),
        ] {
            assert_eq!(
                route(method, path).endpoint,
                Err(ApiError::MethodNotAllowed { allow }),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "",
            "/health/",
            "/api/v1/chat_applications",
            "/api/v1/chat_applications//chat",
            "/api/v1/chat_applications/t/chats/",
            "/api/v2/chat_applications/t/chats",
            "/api/v1/chat_applications/t/chats/1/messages/2",
        ] {
            assert_eq!(
                route("POST", path).endpoint,
                Err(ApiError::RouteNotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn parameters_are_parsed_at_the_edge() {
        let bad_number = "/api/v1/chat_applications/t/chats/abc/messages";
        assert_eq!(
            route("POST", bad_number).endpoint,
            Err(ApiError::InvalidChatNumber)
        );
        let zero = "/api/v1/chat_applications/t/chats/0/messages";
        assert_eq!(route("POST", zero).endpoint, Err(ApiError::ChatNotFound));
        let empty_token = "/api/v1/chat_applications//chats";
        assert_eq!(
            route("POST", empty_token).endpoint,
            Err(ApiError::ApplicationNotFound)
        );
        let control = "/api/v1/chat_applications/a%0Ab/chats/1/messages";
        assert_eq!(
            route("POST", control).endpoint,
            Err(ApiError::ApplicationNotFound)
        );
    }
}
