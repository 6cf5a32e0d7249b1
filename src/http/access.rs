//! Who may call the service: an optional API key, and the browser origins CORS admits.
//!
//! Both are off by default, as the Go service had neither: no key is asked for, and
//! `Access-Control-Allow-Origin` is `*`. Operators turn them on with the `api_key`
//! (secret) and `cors_allowed_origins` variables.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    api_key: Option<String>,
    /// `None` admits any origin (`*`).
    origins: Option<Vec<String>>,
}

impl Access {
    /// Reads the settings through `get` (Spin's `variables::get` in the component).
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Self {
        let api_key = get("api_key").filter(|key| !key.is_empty());
        let origins = get("cors_allowed_origins")
            .map(|list| list.trim().to_owned())
            .filter(|list| !list.is_empty() && list != "*")
            .map(|list| {
                list.split(',')
                    .map(|origin| origin.trim().to_owned())
                    .filter(|origin| !origin.is_empty())
                    .collect()
            });
        Self { api_key, origins }
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

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`: `*` when any
    /// origin is admitted, the origin itself when it is on the list, none otherwise.
    pub fn allow_origin(&self, origin: Option<&[u8]>) -> Option<String> {
        let Some(list) = &self.origins else {
            return Some("*".to_owned());
        };
        let origin = std::str::from_utf8(origin?).ok()?;
        list.iter().any(|o| o == origin).then(|| origin.to_owned())
    }
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

    fn access(api_key: &str, origins: &str) -> Access {
        let (api_key, origins) = (api_key.to_owned(), origins.to_owned());
        Access::load(move |name| match name {
            "api_key" => Some(api_key.clone()),
            "cors_allowed_origins" => Some(origins.clone()),
            _ => None,
        })
    }

    #[test]
    fn off_by_default() {
        let open = Access::load(|_| None);
        assert_eq!(open.authorize(None), Ok(()));
        assert_eq!(
            open.allow_origin(Some(b"https://x.example")),
            Some("*".to_owned())
        );
        assert_eq!(access("", "*").authorize(None), Ok(()));
    }

    #[test]
    fn a_configured_key_must_be_presented_exactly() {
        let guarded = access("s3cret", "*");
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
        let listed = access("", "https://a.example, https://b.example");
        assert_eq!(
            listed.allow_origin(Some(b"https://b.example")),
            Some("https://b.example".to_owned())
        );
        assert_eq!(listed.allow_origin(Some(b"https://c.example")), None);
        assert_eq!(listed.allow_origin(None), None);
    }
}
