//! The HTTP side: the page (three static files compiled into the binary, no build step) and the
//! JSON API it polls and posts to.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::header,
    response::IntoResponse,
    routing::{get, post},
};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    ConsoleConfig, ConsoleError,
    actions::{ActionRequest, GrantConfirm, GrantForm},
    chain::Console,
};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

type AppState = Arc<Console>;

/// A malformed request body is bad input like any other: the page shows the reason.
fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, ConsoleError> {
    r.map(|Json(v)| v).map_err(|e| ConsoleError::BadInput(e.body_text()))
}

async fn overview(State(console): State<AppState>) -> Result<impl IntoResponse, ConsoleError> {
    Ok(Json(console.overview().await?))
}

async fn preview(
    State(console): State<AppState>,
    form: Result<Json<GrantForm>, JsonRejection>,
) -> Result<impl IntoResponse, ConsoleError> {
    Ok(Json(console.preview(body(form)?).await?))
}

async fn grant(
    State(console): State<AppState>,
    confirm: Result<Json<GrantConfirm>, JsonRejection>,
) -> Result<impl IntoResponse, ConsoleError> {
    Ok(Json(console.grant(body(confirm)?).await?))
}

async fn action(
    State(console): State<AppState>,
    request: Result<Json<ActionRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ConsoleError> {
    Ok(Json(console.act(body(request)?).await?))
}

fn asset(content_type: &'static str, text: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], text)
}

/// The console's routes on a connected [`ConsoleConfig`]: `/` (the page), `/api/overview`,
/// `/api/grant/preview`, `/api/grant`, `/api/action`.
pub async fn router(config: ConsoleConfig) -> Result<Router, ConsoleError> {
    let console = Arc::new(Console::connect(config).await?);
    Ok(Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/api/overview", get(overview))
        .route("/api/grant/preview", post(preview))
        .route("/api/grant", post(grant))
        .route("/api/action", post(action))
        .with_state(console))
}

/// A running console; dropping it stops the server.
#[derive(Debug)]
pub struct ConsoleHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ConsoleHandle {
    /// The page's URL, e.g. `http://127.0.0.1:8090/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The address actually bound (the free port chosen for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish.
    pub async fn shutdown(mut self) -> Result<(), ConsoleError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result.map_err(ConsoleError::io("console server")),
            Err(e) => Err(ConsoleError::Io {
                what: "console server".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

impl Drop for ConsoleHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to the chain, then serves the console on `config.bind` (port 0 = any free port).
pub async fn serve(config: ConsoleConfig) -> Result<ConsoleHandle, ConsoleError> {
    let bind = config.bind;
    let app = router(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(ConsoleError::io(format!("console listener on {bind}")))?;
    let addr = listener.local_addr().map_err(ConsoleError::io("console listener"))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(ConsoleHandle { addr, stop: Some(stop), task })
}
