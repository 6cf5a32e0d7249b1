use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let c = spin_sdk::redis::Connection::open("redis://127.0.0.1:6379")?;
    let _ = c.execute("PING", &[]);
    let m = spin_sdk::mysql::Connection::open("mysql://root@127.0.0.1/test")?;
    let _ = m.query("SELECT 1", &[]);
    let v = spin_sdk::variables::get("x")?;
    Ok(Response::new(200, format!("{} {v}", req.path())))
}
