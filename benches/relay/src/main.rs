//! The chat relay a Rust user would write instead of running wschat: tokio's
//! multi-threaded runtime, tokio-tungstenite, one task reading and one task
//! writing per client, and the rooms in one `Mutex<HashMap>`.
//!
//! It speaks wschat's raw mode and nothing else, which is what
//! `cargo bench --bench versus` compares:
//!
//! - `/ws?room=NAME` (default room `lobby`): every text or binary frame a
//!   client sends is relayed to every *other* client of its room, exactly
//!   once, in the order that client sent them.
//! - `/echo`: every text or binary frame goes back to its sender.
//!
//! Pings are answered by tokio-tungstenite. There are no limits of any kind:
//! a client's queue is unbounded. Usage: `relay --listen 127.0.0.1:0`; the
//! first line on stdout is `relay listening on ADDR`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// Room name -> (client id -> that client's outbound queue).
type Rooms = Mutex<HashMap<String, HashMap<u64, UnboundedSender<Message>>>>;

/// What a client asked for in its upgrade request.
enum Route {
    Room(String),
    Echo,
}

#[tokio::main]
async fn main() {
    let listen = listen_arg();
    let listener = TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "relay listening on {}",
        listener.local_addr().unwrap()
    )
    .unwrap();
    stdout.flush().unwrap();

    let rooms: Arc<Rooms> = Arc::default();
    let next_id = AtomicU64::new(0);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, id, rooms.clone()));
            }
            Err(e) => {
                // Typically out of file descriptors: wait for some to close.
                eprintln!("relay: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `--listen ADDR`, or 127.0.0.1:8080.
fn listen_arg() -> String {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--listen") {
        Some(i) => args.get(i + 1).expect("--listen needs an address").clone(),
        None => "127.0.0.1:8080".to_owned(),
    }
}

/// Picks the route from the request path; anything else is a 404.
fn route(request: &Request) -> Option<Route> {
    let uri = request.uri();
    match uri.path() {
        "/echo" => Some(Route::Echo),
        "/ws" => {
            let room = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|pair| pair.strip_prefix("room="))
                .filter(|name| !name.is_empty())
                .unwrap_or("lobby");
            Some(Route::Room(room.to_owned()))
        }
        _ => None,
    }
}

async fn serve(stream: TcpStream, id: u64, rooms: Arc<Rooms>) {
    let _ = stream.set_nodelay(true);
    let mut chosen = None;
    // The signature is tungstenite's, large error type and all.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        chosen = route(request);
        if chosen.is_some() {
            Ok(response)
        } else {
            let mut refusal = ErrorResponse::new(Some("not found".to_owned()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(route) = chosen else { return };
    let (mut sink, mut incoming) = ws.split();

    // The writer task: everything queued for this client, written with
    // `feed` and flushed once per batch.
    let (queue, mut queued) = unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(first) = queued.recv().await {
            if sink.feed(first).await.is_err() {
                return;
            }
            while let Ok(more) = queued.try_recv() {
                if sink.feed(more).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });

    if let Route::Room(room) = &route {
        let mut rooms = rooms.lock().unwrap();
        rooms
            .entry(room.clone())
            .or_default()
            .insert(id, queue.clone());
    }

    // The reader: this task. Pings are answered inside `next()`.
    while let Some(Ok(message)) = incoming.next().await {
        if !(message.is_text() || message.is_binary()) {
            if message.is_close() {
                break;
            }
            continue;
        }
        match &route {
            Route::Echo => {
                let _ = queue.send(message);
            }
            Route::Room(room) => {
                let rooms = rooms.lock().unwrap();
                for (peer, peer_queue) in &rooms[room] {
                    if *peer != id {
                        let _ = peer_queue.send(message.clone());
                    }
                }
            }
        }
    }

    if let Route::Room(room) = &route {
        let mut rooms = rooms.lock().unwrap();
        let members = rooms.get_mut(room).expect("joined above");
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
        }
    }
    // Dropping the last sender ends the writer once it has written the rest.
    drop(queue);
    let _ = writer.await;
}
