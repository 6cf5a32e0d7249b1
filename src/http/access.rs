//! Who may call the service: an optional API key, and the browser origins CORS admits.
//!
//! Both are off by default, as the Go service had neither: no key is asked for, and
//! `Access-Control-Allow-Origin` is `*`. Operators turn them on with the `api_key`
//! (secret) and `cors_allowed_origins` variables.

use crate::config::ConfigError;
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    api_key: Option<String>,
}

impl Access {
    /// Reads the key through `get` (Spin's `variables::get` in the component).
    pub fn load(
        get: impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            api_key: get("api_key")?.filter(|key| !key.is_empty()),
        })
    }

    /// Whether a request must present a key (and so its `Authorization` header be read).
    pub fn requires_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// With a key configured, a request needs `Authorization: Bearer <key>`. The key is
    /// compared in constant time, so response timing says nothing about how much of a
    /// guess was right.
    pub fn authorize(&self, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(key) = &self.api_key else {
            return Ok(());
        };
        let offered = authorization
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if constant_time_eq(offered, key.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// The `Access-Control-Allow-Origin` value for a request's `Origin`: `*` when any origin is
/// admitted, the origin itself when it is on the list, none otherwise (a request without
/// `Origin` is not a browser's cross-origin one and needs none). Every reply also carries
/// `Vary: Origin`, so a shared cache never serves one origin's answer to another.
pub fn allow_origin(
    origin: Option<&[u8]>,
    get: impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
) -> Result<Option<String>, ConfigError> {
    let list = get("cors_allowed_origins")?.unwrap_or_default();
    let list = list.trim();
    if list.is_empty() || list == "*" {
        return Ok(Some("*".to_owned()));
    }
    let Some(origin) = origin.and_then(|origin| std::str::from_utf8(origin).ok()) else {
        return Ok(None);
    };
    Ok(list
        .split(',')
        .any(|o| o.trim() == origin)
        .then(|| origin.to_owned()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, byte) in b.iter().enumerate() {
        diff |= byte ^ a.get(i).copied().unwrap_or(!byte);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(api_key: &str) -> Access {
        let api_key = api_key.to_owned();
        Access::load(move |name| Ok((name == "api_key").then(|| api_key.clone()))).unwrap()
    }

    fn origins(list: &'static str) -> impl Fn(&'static str) -> Result<Option<String>, ConfigError> {
        move |name| Ok((name == "cors_allowed_origins").then(|| list.to_owned()))
    }

    fn unset(_: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(None)
    }

    fn down(name: &'static str) -> Result<Option<String>, ConfigError> {
        Err(ConfigError::Unreadable {
            name,
            cause: "provider down".to_owned(),
        })
    }

    #[test]
    fn off_by_default() {
        let open = Access::load(unset).unwrap();
        assert_eq!(open.authorize(None), Ok(()));
        assert_eq!(access("").authorize(None), Ok(()));
        let any = Ok(Some("*".to_owned()));
        assert_eq!(allow_origin(Some(b"https://x.example"), unset), any);
        assert_eq!(allow_origin(Some(b"https://x.example"), origins("*")), any);
        assert_eq!(allow_origin(None, unset), any);
    }

    #[test]
    fn a_configured_key_must_be_presented_exactly() {
        let guarded = access("s3cret");
        assert_eq!(guarded.authorize(Some(b"Bearer s3cret")), Ok(()));
        for wrong in [
            None,
            Some(&b""[..]),
            Some(b"s3cret"),
            Some(b"Bearer s3cre"),
            Some(b"Bearer s3cretX"),
            Some(b"bearer s3cret"),
        ] {
            assert_eq!(
                guarded.authorize(wrong),
                Err(ApiError::Unauthorized),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_none() {
        let listed = origins("https://a.example, https://b.example");
        let b = allow_origin(Some(b"https://b.example"), &listed);
        assert_eq!(b, Ok(Some("https://b.example".to_owned())));
        assert_eq!(allow_origin(Some(b"https://c.example"), &listed), Ok(None));
        // Not `*`: a shared cache could hand that answer to an unlisted origin.
        assert_eq!(allow_origin(None, &listed), Ok(None));
    }

    #[test]
    fn a_provider_that_cannot_answer_fails_closed() {
        assert!(Access::load(down).is_err());
        assert!(allow_origin(Some(b"https://x.example"), down).is_err());
        assert!(allow_origin(None, down).is_err());
    }
}
