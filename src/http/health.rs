//! The operator's endpoints: `/healthz` (the process serves), `/readyz`
//! (it accepts clients and its dispatcher runs) and `/metrics`; and, once
//! shutdown has begun, the thread that keeps answering them with the port
//! still open, so that a load balancer sees `/readyz` fail (503) rather
//! than a refused connection while clients are being closed.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tiny_http::Response;

use crate::http::{self, Head};
use crate::metrics;

/// Time a request during shutdown has to send its head: one thread answers
/// them all, so a slow client must not hold the others up for long.
const DRAIN_HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// What `/readyz` looks at. Cheap to clone; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Health {
    /// The server's stop flag: set when shutdown begins.
    stop: Arc<AtomicBool>,
    /// Whether the dispatcher thread is running.
    dispatcher: Arc<AtomicBool>,
    /// With `--redis`: whether Redis answers.
    cluster: Option<Arc<crate::history::redis::Status>>,
    /// With the embedded store: whether its writes fail.
    store: Option<Arc<crate::history::sqlite::Stats>>,
}

/// Marks the dispatcher as running until dropped, which happens when its
/// thread ends, panics included.
pub struct DispatcherRunning(Arc<AtomicBool>);

impl Drop for DispatcherRunning {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Health {
    pub fn new(stop: Arc<AtomicBool>) -> Health {
        Health {
            stop,
            dispatcher: Arc::new(AtomicBool::new(false)),
            cluster: None,
            store: None,
        }
    }

    /// With `--redis`: whether Redis answers now.
    pub fn cluster(&self) -> Option<Arc<crate::history::redis::Status>> {
        self.cluster.clone()
    }

    /// Makes `/readyz` fail while Redis does not answer: an instance that
    /// cannot reach the shared rooms should get no new clients.
    pub fn watch_cluster(&mut self, status: Arc<crate::history::redis::Status>) {
        self.cluster = Some(status);
    }

    /// Makes `/readyz` fail while the history store cannot write (a full
    /// disk, an I/O error): messages are refused meanwhile, so new clients
    /// should go elsewhere.
    pub(crate) fn watch_store(&mut self, stats: Arc<crate::history::sqlite::Stats>) {
        self.store = Some(stats);
    }

    /// To be held by the dispatcher thread for as long as it runs.
    pub fn dispatcher_running(&self) -> DispatcherRunning {
        self.dispatcher.store(true, Ordering::SeqCst);
        DispatcherRunning(self.dispatcher.clone())
    }

    /// `Ok` when the server takes new clients; else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if self.stop.load(Ordering::SeqCst) {
            Err("shutting down")
        } else if !self.dispatcher.load(Ordering::SeqCst) {
            Err("dispatcher not running")
        } else if self.cluster.as_ref().is_some_and(|c| !c.up()) {
            Err("redis unavailable")
        } else if self.store.as_ref().is_some_and(|s| s.is_failing()) {
            Err("history store cannot write")
        } else {
            Ok(())
        }
    }

    /// Answers `/healthz`, `/readyz` and `/metrics`; `None` for any other
    /// path. These are answered even over the connection caps, so that a
    /// busy server is not taken for a dead one.
    pub fn answer(&self, head: &Head) -> Option<Response<io::Cursor<Vec<u8>>>> {
        let path = head.path();
        if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return None;
        }
        if head.method != "GET" && head.method != "HEAD" {
            let allow = [("Allow", "GET, HEAD")];
            return Some(http::error_response(405, "method not allowed\n", &allow));
        }
        let no_store = [("Cache-Control", "no-store")];
        let response = match path {
            "/healthz" => http::error_response(200, "ok\n", &no_store),
            "/readyz" => match self.ready() {
                Ok(()) => http::error_response(200, "ready\n", &no_store),
                Err(why) => http::error_response(503, &format!("{why}\n"), &no_store),
            },
            _ => {
                // Prometheus asks for OpenMetrics; everyone else gets the
                // classic text format.
                let openmetrics = head
                    .header("Accept")
                    .is_some_and(|a| a.contains("application/openmetrics-text"));
                let (body, content_type) = if openmetrics {
                    (metrics::get().render_openmetrics(), metrics::OPENMETRICS)
                } else {
                    (metrics::get().render(), metrics::TEXT)
                };
                let headers = [("Content-Type", content_type), no_store[0]];
                http::data_response(200, body.into_bytes(), &headers)
            }
        };
        Some(response)
    }
}

/// Answers on the listening socket during shutdown, from one thread: the
/// operator's endpoints as usual (`/readyz` now 503), anything else 503
/// with `Retry-After`. Stops, closing the port, when dropped.
pub struct Drain {
    done: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    /// Starts answering on a copy of `listener`, so that the server may drop
    /// its own. `None` if the socket cannot be copied (the port then closes
    /// at once, as it would without this).
    pub fn start(listener: &TcpListener, health: Health) -> Option<Drain> {
        let addr = listener.local_addr().ok()?;
        let listener = listener.try_clone().ok()?;
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = thread::Builder::new()
            .name("drain".into())
            .spawn(move || {
                for sock in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(sock) = sock {
                        drain_one(&sock, &health);
                    }
                }
            })
            .ok()?;
        Some(Drain {
            done,
            addr,
            thread: Some(thread),
        })
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        // Wake the thread, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn drain_one(sock: &TcpStream, health: &Health) {
    let Ok((head, _)) = http::read_head(sock, DRAIN_HEAD_TIMEOUT) else {
        return;
    };
    if sock.set_write_timeout(Some(DRAIN_HEAD_TIMEOUT)).is_err() {
        return;
    }
    let response = health.answer(&head).unwrap_or_else(|| {
        http::error_response(503, "server shutting down\n", &[("Retry-After", "5")])
    });
    let _ = http::respond_to(sock, &head, response);
}
