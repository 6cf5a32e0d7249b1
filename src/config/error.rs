//! Why the settings cannot be used: the deployment, not the request, is wrong.
//!
//! Each is a 500 `Service is misconfigured` without `Retry-After` (mapped once, in
//! [`crate::error`]): retrying cannot help, and a client must not be told a secrets store's
//! outage is its fault. The text goes to the log only, and never holds a value, which may
//! be secret: it names the variable and what to set.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The variables provider failed: a secrets store that is down or refuses. Never read
    /// as "not set", which would turn the API key off and admit every CORS origin.
    Unreadable { name: &'static str, cause: String },
    /// A variable the service cannot run without is not set.
    Missing { name: &'static str },
    /// A variable's value cannot be used; the text names its form, not its content.
    Invalid(String),
    /// Spin refused the address a URL variable names: its host is not in the component's
    /// `allowed_outbound_hosts`, which reads the variable `host_variable`. Permanent until
    /// redeployed, so not an outage to retry.
    HostNotAllowed {
        url_variable: &'static str,
        host_variable: &'static str,
    },
}

impl ConfigError {
    pub fn invalid(text: impl Into<String>) -> Self {
        Self::Invalid(text.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { name, cause } => {
                write!(f, "variable {name} could not be read: {cause}")
            }
            Self::Missing { name } => write!(f, "variable {name} is not set"),
            Self::Invalid(text) => f.write_str(text),
            Self::HostNotAllowed {
                url_variable,
                host_variable,
            } => write!(
                f,
                "Spin refused the host in {url_variable}: set the variable {host_variable} \
                 to that host:port (it fills allowed_outbound_hosts)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
