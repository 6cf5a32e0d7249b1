//! `spin-test-host up`: the `spin up` subset the project's tests and benchmarks use.
//!
//! spin-test-host up [--from spin.toml] [--listen 127.0.0.1:3000] [--variable k=v]...
//!                   [--runtime-config-file F]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use spin_test_host::{HostOptions, start};

const USAGE: &str = "usage: spin-test-host up [--from|-f spin.toml] [--listen ADDR] \
[--variable NAME=VALUE]... [--runtime-config-file FILE]";

fn parse_args(args: &[String]) -> Result<HostOptions> {
    let mut opts = HostOptions {
        // `spin up` reads `.env` from its working directory via the default env provider.
        dotenv_path: Some(PathBuf::from(".env")),
        ..HostOptions::default()
    };
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("up") => {}
        _ => bail!("{USAGE}"),
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag {
            "--from" | "-f" | "--file" => {
                let p = PathBuf::from(value()?);
                // Like `spin up --from DIR`: a directory means DIR/spin.toml.
                opts.manifest = if p.is_dir() { p.join("spin.toml") } else { p };
            }
            "--listen" => opts.listen = value()?.parse().context("--listen")?,
            "--variable" => {
                let v = value()?;
                let (k, val) = v
                    .split_once('=')
                    .with_context(|| format!("--variable {v:?} must be NAME=VALUE"))?;
                opts.variables.push((k.to_string(), val.to_string()));
            }
            "--runtime-config-file" => opts.runtime_config = Some(PathBuf::from(value()?)),
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(|opts| {
        let host = start(opts)?;
        println!("Serving {}", host.url());
        println!("Available Routes:");
        for (route, component) in host.routes() {
            let shown = route.strip_suffix("/...").map_or_else(
                || format!("{}{route}", host.url()),
                |p| format!("{}{p} (wildcard)", host.url()),
            );
            println!("  {component}: {shown}");
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(tokio::signal::ctrl_c())?;
        host.stop();
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_spin_up_flags() {
        let o = parse_args(&args(
            "up --from /x/spin.toml --listen 127.0.0.1:0 --variable a=b --variable=c=d=e",
        ))
        .unwrap();
        assert_eq!(o.manifest, PathBuf::from("/x/spin.toml"));
        assert_eq!(o.listen.port(), 0);
        assert_eq!(
            o.variables,
            vec![("a".into(), "b".into()), ("c".into(), "d=e".into())]
        );
    }

    #[test]
    fn defaults_match_spin_up() {
        let o = parse_args(&args("up")).unwrap();
        assert_eq!(o.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(o.manifest, PathBuf::from("spin.toml"));
        assert!(parse_args(&args("down")).is_err());
        assert!(parse_args(&args("up --bogus")).is_err());
    }
}
