//! `allowed_outbound_hosts` parsing and matching.
//!
//! Mirrors spin-outbound-networking-config's `allowed_hosts.rs` (`AllowedHostConfig`,
//! `OutboundUrl`, `AllowedHostsConfig::parse`):
//! - entries are `<scheme>://<host>[:<port>]`, `*` allowed for scheme, host and port,
//!   `*.example.com` for subdomains, `a..b` port ranges, CIDR hosts, and the port
//!   defaults to the scheme's well-known port (redis 6379, mysql 3306, ...);
//! - an entry containing `{{ var }}` is a template over application variables,
//!   resolved once all variables are known;
//! - a URL that cannot be parsed is simply not allowed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use anyhow::{Context, Result, bail, ensure};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::variables::{Part, parse_template};

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeConfig {
    Any,
    One(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostConfig {
    Any,
    AnySubdomain(String),
    ToSelf,
    Exact(String),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortConfig {
    Any,
    Port(u16),
    Range(Range<u16>),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    scheme: SchemeConfig,
    host: HostConfig,
    port: PortConfig,
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_cidr(host: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match host.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (host, None),
    };
    let ip: IpAddr = ip.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl AllowedHost {
    /// Parse one literal entry, with Spin's error messages for the common mistakes.
    pub fn parse(entry: &str) -> Result<Self> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            match url {
                "*" | ":" | "" | "?" => bail!(
                    "{url:?} is not an allowed outbound host format.\nHosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each."
                ),
                _ => bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            }
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                ensure!(path.is_empty(), "{url:?} has a path but is not allowed to");
                port
            }
            None => rest,
        };
        let scheme_cfg = if scheme == "*" {
            SchemeConfig::Any
        } else {
            ensure!(
                scheme.chars().all(char::is_alphabetic),
                "scheme {scheme:?} contains non alphabetic character"
            );
            SchemeConfig::One(scheme.to_string())
        };
        let host = host.trim();
        let host_cfg = if host == "*" {
            HostConfig::Any
        } else if host == "self" || host == "self.alt" {
            HostConfig::ToSelf
        } else if let Some((ip, len)) = parse_cidr(host) {
            HostConfig::Cidr(ip, len)
        } else if let Some(domain) = host.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "Invalid allowed host {host}: wildcards are allowed only as prefixes"
            );
            HostConfig::AnySubdomain(format!(".{domain}"))
        } else {
            ensure!(
                !host.contains('*'),
                "Invalid allowed host {host}: wildcards are allowed only as subdomains"
            );
            HostConfig::Exact(host.trim_end_matches('/').to_string())
        };
        let port_cfg = if port.is_empty() {
            let p = well_known_port(scheme).with_context(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            })?;
            PortConfig::Port(p)
        } else if port == "*" {
            PortConfig::Any
        } else if let Some((a, b)) = port.split_once("..") {
            PortConfig::Range(a.parse()?..b.parse()?)
        } else {
            PortConfig::Port(
                port.parse()
                    .with_context(|| format!("port {port:?} is not a number"))?,
            )
        };
        Ok(Self {
            original: entry.to_string(),
            scheme: scheme_cfg,
            host: host_cfg,
            port: port_cfg,
        })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        let scheme_ok = match &self.scheme {
            SchemeConfig::Any => true,
            SchemeConfig::One(s) => *s == url.scheme,
        };
        let host_ok = match &self.host {
            HostConfig::Any => true,
            HostConfig::AnySubdomain(suffix) => url.host.ends_with(suffix.as_str()),
            HostConfig::Exact(h) => *h == url.host,
            HostConfig::ToSelf => false,
            HostConfig::Cidr(net, len) => url
                .host
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidr_contains(*net, *len, ip)),
        };
        let port_ok = match &self.port {
            PortConfig::Any => true,
            other => match url.port.or_else(|| well_known_port(&url.scheme)) {
                None => false,
                Some(p) => match other {
                    PortConfig::Port(q) => *q == p,
                    PortConfig::Range(r) => r.contains(&p),
                    PortConfig::Any => true,
                },
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.original)
    }
}

/// A URL a component wants to connect to, reduced to what the allow-list checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

/// What `urlencoding::encode` leaves alone: alphanumerics and `-_.~`.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl OutboundUrl {
    /// Spin's `OutboundUrl::parse`: percent-encode the userinfo (passwords may contain
    /// `#`, `/`, ...), parse; if that fails or has no host, retry with `{scheme}://` prefixed.
    pub fn parse(url: &str, scheme: &str) -> Result<Self> {
        let mut url = url.to_string();
        if let Some(at) = url.find('@') {
            let scheme_end = url.find("://").map(|e| e + 3).unwrap_or(0);
            let path_start = url[scheme_end..]
                .find('/')
                .map(|e| e + scheme_end)
                .unwrap_or(usize::MAX);
            if at < path_start {
                let userinfo = &url[scheme_end..at];
                let encoded = utf8_percent_encode(userinfo, USERINFO).to_string();
                url = format!("{}{}{}", &url[..scheme_end], encoded, &url[at..]);
            }
        }
        let parsed = match url::Url::parse(&url) {
            Ok(u) if u.has_host() => u,
            first => match url::Url::parse(&format!("{scheme}://{url}")) {
                Ok(u) => u,
                Err(e) => return Err(first.err().map(Into::into).unwrap_or(e.into())),
            },
        };
        Ok(Self {
            scheme: parsed.scheme().to_string(),
            host: parsed
                .host_str()
                .with_context(|| format!("{url:?} does not have a host component"))?
                .to_string(),
            port: parsed.port(),
        })
    }
}

/// A component's resolved allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parse entries, resolving `{{ var }}` templates against resolved application variables.
    pub fn parse(entries: &[String], variables: &HashMap<String, String>) -> Result<Self> {
        if entries.len() == 1 && entries[0] == "insecure:allow-all" {
            bail!(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'"
            );
        }
        let mut hosts = Vec::with_capacity(entries.len());
        for entry in entries {
            let parts = parse_template(entry).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut resolved = String::new();
            for p in parts {
                match p {
                    Part::Lit(l) => resolved.push_str(&l),
                    Part::Expr(v) => resolved.push_str(
                        variables
                            .get(&v)
                            .with_context(|| format!("invalid variable name: {v}"))?,
                    ),
                }
            }
            hosts.push(AllowedHost::parse(&resolved)?);
        }
        Ok(Self { hosts })
    }

    /// `OutboundAllowedHosts::check_url`: false for unparseable URLs and for URLs no
    /// entry allows.
    pub fn check_url(&self, url: &str, scheme: &str) -> bool {
        match OutboundUrl::parse(url, scheme) {
            Ok(u) => self.hosts.iter().any(|h| h.allows(&u)),
            Err(_) => false,
        }
    }

    /// The resolved entries, as written after template substitution.
    pub fn entries(&self) -> Vec<String> {
        self.hosts.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        let e: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::parse(&e, &HashMap::new()).unwrap()
    }

    #[test]
    fn exact_host_and_default_port() {
        let a = allowed(&["redis://127.0.0.1", "mysql://db.internal"]);
        assert!(a.check_url("redis://127.0.0.1:6379", "redis"));
        assert!(a.check_url("redis://127.0.0.1", "redis"));
        assert!(!a.check_url("redis://127.0.0.1:6380", "redis"));
        assert!(a.check_url("mysql://root:pw@db.internal/chat", "mysql"));
        assert!(a.check_url("mysql://root@db.internal:3306/chat", "mysql"));
        assert!(!a.check_url("mysql://root@other:3306/chat", "mysql"));
        // Scheme must match.
        assert!(!a.check_url("mysql://127.0.0.1:6379", "mysql"));
    }

    #[test]
    fn wildcards() {
        let a = allowed(&["*://*.example.com:*"]);
        assert!(a.check_url("redis://cache.example.com:1234", "redis"));
        assert!(!a.check_url("redis://example.com:1234", "redis"));
        let a = allowed(&["redis://*:6379"]);
        assert!(a.check_url("redis://anything:6379", "redis"));
        assert!(!a.check_url("redis://anything:6380", "redis"));
        let a = allowed(&["*://*:*"]);
        assert!(a.check_url("mysql://x:1/db", "mysql"));
    }

    #[test]
    fn port_ranges_and_cidr() {
        let a = allowed(&["redis://10.0.0.0/8:6379..6390"]);
        assert!(a.check_url("redis://10.1.2.3:6385", "redis"));
        assert!(!a.check_url("redis://10.1.2.3:6390", "redis"));
        assert!(!a.check_url("redis://11.1.2.3:6385", "redis"));
    }

    #[test]
    fn password_with_special_chars_still_parses_host() {
        let u = OutboundUrl::parse("mysql://u:p#w?@db:3306/x", "mysql").unwrap();
        assert_eq!(u.host, "db");
        assert_eq!(u.port, Some(3306));
    }

    #[test]
    fn unparseable_is_denied_and_empty_list_denies_all() {
        assert!(!allowed(&["redis://h"]).check_url("::::", "redis"));
        assert!(!allowed(&[]).check_url("redis://h:6379", "redis"));
    }

    #[test]
    fn templates_resolve_from_variables() {
        let vars = HashMap::from([("redis_host".to_string(), "cache".to_string())]);
        let a = AllowedHosts::parse(&["redis://{{ redis_host }}:6379".to_string()], &vars).unwrap();
        assert!(a.check_url("redis://cache:6379", "redis"));
        assert_eq!(a.entries(), vec!["redis://cache:6379"]);
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "redis.local",
            "*",
            "foo://host",
            "redis://a*b",
            "redis://h:x",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
