//! HTTP route matching and the `spin-*` request headers.
//!
//! Mirrors spin-http's `routes.rs` (which also builds on `routefinder`) and
//! spin-trigger-http's `headers.rs`:
//! - routes are joined to the app base (`/` by default), a single trailing `/` stripped;
//! - `/prefix/...` is a trailing wildcard, `:name` a named segment; `routefinder` picks the
//!   best match (exact beats params beats wildcards, longer prefixes beat shorter ones);
//! - a route repeated later in the manifest replaces the earlier one (Spin warns);
//! - `spin-path-info` is the trailing-wildcard remainder, keeping Spin's trailing-slash quirks.

use anyhow::{Result, anyhow};

use crate::manifest::HttpTrigger;

#[derive(Debug, Clone)]
struct RouteHandler {
    component_id: String,
    based_route: String,
    raw_route: String,
}

/// The app's HTTP routes.
pub struct Router {
    router: routefinder::Router<RouteHandler>,
    /// (based route, component id) in manifest order, after de-duplication.
    table: Vec<(String, String)>,
}

/// The outcome of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component_id: String,
    /// The route as written, with the base: `spin-matched-route`.
    pub based_route: String,
    /// The route as written: `spin-raw-component-route`.
    pub raw_route: String,
    /// `spin-path-info`.
    pub path_info: String,
    /// `:name` captures: `spin-path-match-<name>`.
    pub named: Vec<(String, String)>,
}

impl RouteMatch {
    /// `spin-component-route`: the raw route without a trailing `/...`.
    pub fn component_route(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }
}

fn sanitize(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

fn with_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/{route}")
    };
    format!("{}{}", sanitize(base), sanitize(&route))
}

impl Router {
    pub fn build(base: &str, triggers: &[HttpTrigger]) -> Result<Self> {
        // Later duplicates replace earlier ones but keep the first position (IndexMap::insert).
        let mut entries: Vec<(String, RouteHandler)> = Vec::new();
        for t in triggers {
            let handler = RouteHandler {
                component_id: t.component.clone(),
                based_route: with_base(base, &t.route),
                raw_route: t.route.clone(),
            };
            match entries.iter_mut().find(|(raw, _)| *raw == t.route) {
                Some(existing) => {
                    eprintln!(
                        "warning: route {:?} is used by more than one component; {:?} wins",
                        t.route, t.component
                    );
                    existing.1 = handler;
                }
                None => entries.push((t.route.clone(), handler)),
            }
        }
        let mut router = routefinder::Router::new();
        let mut table = Vec::new();
        for (_, h) in entries {
            let spec = match h.based_route.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => h.based_route.clone(),
            };
            table.push((h.based_route.clone(), h.component_id.clone()));
            let component = h.component_id.clone();
            router.add(spec.as_str(), h).map_err(|e| {
                anyhow!("Error parsing route {spec} associated with component {component}: {e}")
            })?;
        }
        Ok(Self { router, table })
    }

    /// (route, component id) pairs, for logging like `spin up` does.
    pub fn routes(&self) -> &[(String, String)] {
        &self.table
    }

    /// Route a request path; `None` means Spin answers 404.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let m = self.router.best_match(path)?;
        let h = m.handler();
        let captures = m.captures();
        let path_info = captures
            .wildcard()
            .map(|s| match (s.is_empty(), path.ends_with('/')) {
                (true, false) => s.to_string(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{s}"),
                (false, true) => format!("/{s}/"),
            })
            .unwrap_or_default();
        let named = captures
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(RouteMatch {
            component_id: h.component_id.clone(),
            based_route: h.based_route.clone(),
            raw_route: h.raw_route.clone(),
            path_info,
            named,
        })
    }
}

/// The `spin-*` headers Spin adds to every request (`compute_default_headers`).
pub fn spin_headers(
    m: &RouteMatch,
    host: &str,
    path_and_query: &str,
    client_addr: std::net::SocketAddr,
) -> Vec<(String, String)> {
    let mut h = vec![
        ("spin-path-info".to_string(), m.path_info.clone()),
        (
            "spin-full-url".to_string(),
            format!("http://{host}{path_and_query}"),
        ),
        ("spin-matched-route".to_string(), m.based_route.clone()),
        ("spin-base-path".to_string(), "/".to_string()),
        ("spin-raw-component-route".to_string(), m.raw_route.clone()),
        (
            "spin-component-route".to_string(),
            m.component_route().to_string(),
        ),
        ("spin-client-addr".to_string(), client_addr.to_string()),
    ];
    for (k, v) in &m.named {
        h.push((
            format!("spin-path-match-{}", k.to_ascii_lowercase()),
            v.clone(),
        ));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let t: Vec<HttpTrigger> = routes
            .iter()
            .map(|(r, c)| HttpTrigger {
                route: r.to_string(),
                component: c.to_string(),
            })
            .collect();
        Router::build("/", &t).unwrap()
    }

    #[test]
    fn exact_beats_wildcard() {
        let r = router(&[("/...", "all"), ("/one", "one")]);
        assert_eq!(r.route("/one").unwrap().component_id, "one");
        assert_eq!(r.route("/two").unwrap().component_id, "all");
        assert_eq!(r.route("/").unwrap().component_id, "all");
    }

    #[test]
    fn longest_wildcard_wins_regardless_of_order() {
        let r = router(&[("/one/two/...", "two"), ("/one/...", "one")]);
        assert_eq!(r.route("/one/two/three").unwrap().component_id, "two");
        assert_eq!(r.route("/one/x").unwrap().component_id, "one");
    }

    #[test]
    fn params_and_headers() {
        let r = router(&[("/applications/:token/chats", "c"), ("/...", "all")]);
        let m = r.route("/applications/abc/chats").unwrap();
        assert_eq!(m.component_id, "c");
        assert_eq!(m.named, vec![("token".to_string(), "abc".to_string())]);
        let addr = "127.0.0.1:9".parse().unwrap();
        let h = spin_headers(&m, "localhost:3000", "/applications/abc/chats?x=1", addr);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(
            get("spin-full-url"),
            "http://localhost:3000/applications/abc/chats?x=1"
        );
        assert_eq!(get("spin-path-match-token"), "abc");
        assert_eq!(get("spin-path-info"), "");
        assert_eq!(get("spin-client-addr"), "127.0.0.1:9");
    }

    #[test]
    fn wildcard_path_info_and_component_route() {
        let r = router(&[("/foo/...", "f")]);
        let m = r.route("/foo/bar").unwrap();
        assert_eq!(m.path_info, "/bar");
        assert_eq!(m.based_route, "/foo/...");
        assert_eq!(m.component_route(), "/foo");
        assert_eq!(r.route("/foo").unwrap().path_info, "");
        assert_eq!(r.route("/foo/").unwrap().path_info, "/");
        assert_eq!(r.route("/foo/bar/").unwrap().path_info, "/bar/");
        assert!(r.route("/other").is_none());
    }

    #[test]
    fn duplicate_route_last_wins() {
        let r = router(&[("/x", "a"), ("/x", "b")]);
        assert_eq!(r.route("/x").unwrap().component_id, "b");
        assert_eq!(r.routes().len(), 1);
    }
}
