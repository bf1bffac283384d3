//! The server's life: binding the listening socket, starting the
//! dispatcher, store and admission threads, accepting connections (each
//! on a thread of its own, see `router`), and the orderly shutdown of it
//! all, in which every client is closed with 1001: room clients by the
//! dispatcher, echo clients from the list this module keeps.
//!
//! The accept thread alone keeps the counts of open connections (total and
//! per IP) and of handshakes in progress (`admission::Gate`); connection
//! threads report their end through a channel, so no count is shared behind
//! a lock.

use crate::logs as log;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::config::Config;
use crate::history::redis;
use crate::history::sqlite::{self, Store};
use crate::http::Site;
use crate::http::files::Downloads;
use crate::http::health::{Drain, Health};
use crate::http::proxy::{Hosts, Proxies};
use crate::hub::dispatcher::{Closing, Dispatcher, Input, Limits};
use crate::hub::hubs::Hubs;
use crate::hub::outlet::writer::Writers;
use crate::limits::budget::Budget;
use crate::metrics::{self, RefusalReason};
use crate::net::admission::{self, Admission, Entry, Gate, RETRY_AFTER, Ticket};
use crate::net::capacity::Readings;
use crate::proto::capability::{self, Signer};
use crate::proto::protocol;
use crate::ws::echo::Echoes;
use crate::ws::handshake::OriginPolicy;
use crate::ws::reader::THREAD_STACK;
use crate::ws::router::{self, Accepted, Shared};

/// Pause after `accept` fails for lack of file descriptors, so the loop does
/// not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Capacity of the dispatcher's event channel. Readers block when it is
/// full, which slows only the clients that are sending.
const EVENT_QUEUE: usize = 4096;

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    stop: Arc<AtomicBool>,
    writers: Arc<Writers>,
    budget: Budget,
    /// Taken by `run`, which starts its threads.
    history: Option<History>,
}

/// Where history is kept and rooms live: the embedded database, or Redis
/// shared with other instances (`--redis`).
pub enum History {
    /// The SQLite database of `--db`.
    Embedded(Store),
    /// Redis, from `--redis`.
    Shared(redis::Options, ::redis::Client),
}

impl History {
    /// Opens what the configuration names: Redis with `--redis`, else the
    /// database. Meant for start-up: a database that cannot be used, or a
    /// Redis URL that is not one, is an error that names it and says why.
    pub fn open(config: &Config) -> Result<History, Box<dyn std::error::Error>> {
        Ok(match config.cluster_options() {
            Some(options) => {
                let client = redis::client(&options.url)?;
                History::Shared(options, client)
            }
            None => History::Embedded(crate::history::sqlite::open(&config.store_options())?),
        })
    }
}

/// Stops a running server from another thread (the signal handler).
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl ShutdownHandle {
    /// Whether `restart` was asked for.
    pub fn restarting(&self) -> bool {
        crate::proto::close::restarting()
    }

    /// As `shutdown`, telling every client that the server is restarting
    /// (close 1012 `server restarting`) rather than going away.
    pub fn restart(&self) {
        crate::proto::close::set_restarting();
        self.shutdown();
    }

    /// Makes `Server::run` stop accepting, close every client with 1001 and
    /// return once they are gone or the shutdown grace has passed.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Server {
    /// Binds the listening socket and fits `--max-connections` to what this
    /// machine allows (see `capacity`).
    /// `store` is the history database, opened by the caller (so that a bad
    /// database is reported as such, before anything else starts).
    pub fn bind(mut config: Config, history: History) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen)?;
        let capacity = Readings::of_this_process().capacity(config.max_handshakes);
        log::info!(
            "event=capacity connections={} bound_by={:?} writers={}",
            capacity.connections,
            capacity.bound_by.name,
            capacity.writers
        );
        if config.max_connections > capacity.connections && !config.max_connections_chosen {
            // The default is only a ceiling: fitting it to the machine is
            // what it is for, not something to warn about.
            log::info!(
                "event=capacity max_connections={} msg=\"the default --max-connections fitted to this machine\" bound_by={:?} remedy={:?}",
                capacity.connections,
                capacity.bound_by.name,
                capacity.bound_by.remedy
            );
            config.max_connections = capacity.connections;
        } else if config.max_connections > capacity.connections {
            log::warn!(
                "event=capacity msg=\"--max-connections {} lowered to {}\" bound_by={:?} remedy={:?}",
                config.max_connections,
                capacity.connections,
                capacity.bound_by.name,
                capacity.bound_by.remedy
            );
            config.max_connections = capacity.connections;
        }
        let budget = Budget::new(config.memory_budget);
        if config.queue_bytes > budget.outbound.limit() {
            log::warn!(
                "event=budget msg=\"--queue-bytes {} lowered to the outbound share of --memory-budget, {}\"",
                config.queue_bytes,
                budget.outbound.limit()
            );
            config.queue_bytes = budget.outbound.limit();
        }
        log::info!(
            "event=budget total={} history={} outbound={} incoming={}",
            config.memory_budget,
            budget.history.limit(),
            budget.outbound.limit(),
            budget.incoming.limit()
        );
        crate::metrics::get().watch_budget(&budget);
        Ok(Server {
            listener,
            config: Arc::new(config),
            stop: Arc::new(AtomicBool::new(false)),
            writers: Writers::new(capacity.writers),
            budget,
            history: Some(history),
        })
    }

    /// Where it listens (the port chosen, for `:0`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to stop it from another thread.
    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        Ok(ShutdownHandle {
            stop: self.stop.clone(),
            addr: self.local_addr()?,
        })
    }

    /// Serves until shut down; returns when every connection has finished or
    /// the shutdown grace has passed. `ready` is called once every thread of
    /// the server is running, just before the first accept.
    pub fn run(mut self, ready: impl FnOnce()) -> io::Result<()> {
        let config = self.config.clone();
        let (doors, inboxes): (Vec<_>, Vec<_>) = (0..config.hubs())
            .map(|_| crossbeam_channel::bounded(EVENT_QUEUE))
            .unzip();
        let hubs = Hubs::new(doors);
        metrics::get().hubs(hubs.count());
        let replies = hubs.clone();
        // Replays are encoded on the thread that read them, with the file
        // URLs' signer once it is known (below).
        let urls: Arc<OnceLock<Signer>> = Arc::new(OnceLock::new());
        let reply = {
            let urls = urls.clone();
            // Each answer goes to its room's hub. Fails only once the hubs
            // have stopped, at shutdown.
            Box::new(move |reply: sqlite::Reply| {
                let reply = crate::hub::dispatcher::encode_replay(reply, urls.get());
                let hub = replies.of_room(reply.room());
                let _ = replies.door(hub).send(Input::Store(reply));
            })
        };
        let mut health = Health::new(self.stop.clone());
        // With a secret, file URLs are signed under a key derived from it;
        // without, under a random one kept in the database or Redis.
        let from_secret = crate::ws::auth::secret(&config).map(|s| Signer::from_secret(s.bytes()));
        let (store, store_thread, files, cluster, signer, everywhere) =
            match self.history.take().expect("run is called once") {
                History::Embedded(store) => {
                    let files = store.reader().into();
                    let signer = match from_secret {
                        Some(signer) => signer,
                        None => Signer::with_key(
                            store
                                .file_url_key(capability::random_key()?)
                                .map_err(io::Error::other)?,
                        ),
                    };
                    metrics::get().watch_store(store.stats());
                    health.watch_store(store.stats());
                    let (store, thread) = store.spawn(reply)?;
                    (store, thread, files, None, signer, None)
                }
                History::Shared(options, client) => {
                    let notes = hubs.clone();
                    let note = Arc::new(move |note: redis::Note| match note.about_room() {
                        Some(room) => {
                            let hub = notes.of_room(room);
                            let _ = notes.door(hub).send(Input::Cluster(note));
                        }
                        None => {
                            if let redis::Note::Moderated(action) = note {
                                notes.to_all(|| {
                                    Input::Cluster(redis::Note::Moderated(action.clone()))
                                });
                            }
                        }
                    });
                    let answer = crate::hub::everywhere::answerer(hubs.clone());
                    let shared = redis::spawn(options, client, reply, note, answer)?;
                    health.watch_cluster(shared.handle.status());
                    let signer = match from_secret {
                        Some(signer) => signer,
                        None => shared_url_key(&shared.files)?,
                    };
                    let files = crate::http::files::Source::Redis(shared.files);
                    (
                        shared.store,
                        shared.thread,
                        files,
                        Some(shared.handle),
                        signer,
                        Some(shared.everywhere),
                    )
                }
            };
        let _ = urls.set(signer.clone());
        let limits = Limits {
            history: config.history,
            history_share: self.budget.history.clone(),
            room_history_bytes: config.queue_bytes / 2,
            max_idle_rooms: config.max_idle_rooms.div_ceil(hubs.count()),
            ping_interval: config.ping_interval,
            welcome: protocol::WelcomeLimits {
                text: config.max_text,
                file: config.max_file_size,
                message: config.max_message_size,
                rate: config.rate,
                burst: config.burst,
            },
            held_frames: config.queue_frames,
            file_urls: signer.clone(),
        };
        let mut dispatchers = Vec::new();
        for (hub, inbox) in inboxes.into_iter().enumerate() {
            // Each hub can make room only among its own rooms' history.
            let limits = Limits {
                history_share: self.budget.history.part(hubs.count()),
                ..limits.clone()
            };
            let dispatcher =
                Dispatcher::new(limits, store.clone(), cluster.clone()).on_hub(hub, hubs.count());
            let running = health.dispatcher_running();
            dispatchers.push(thread::Builder::new().name(format!("hub-{hub}")).spawn(
                move || {
                    let _running = running;
                    let _watch = HubWatch(hub);
                    dispatcher.run(inbox)
                },
            )?);
        }
        let (mut echoes, echo_clients) = Echoes::new();
        let shared = Arc::new(Shared {
            echoes: echo_clients,
            site: config.www.clone().map_or(Site::Embedded, Site::Dir),
            origins: OriginPolicy::new(&config.allow_origins),
            hubs: hubs.clone(),
            config: config.clone(),
            writers: self.writers.clone(),
            budget: self.budget.clone(),
            files: Downloads {
                source: files,
                signer,
                outbound: self.budget.outbound.clone(),
            },
            health: health.clone(),
            admission: Admission::start_with(
                config.max_connections_per_ip,
                config.connect_rate,
                config.connect_burst,
                config.store_rate(),
            )?,
            proxies: Proxies::new(&config.trusted_proxies),
            hosts: Hosts::new(&config.public_urls).map_err(io::Error::other)?,
            admin: crate::http::admin::Admin::new(
                crate::ws::auth::admin_token(&config).cloned(),
                (hubs.clone(), everywhere),
                config.www.clone().map_or(Site::Embedded, Site::Dir),
                config.handshake_timeout,
            ),
        });
        let (alive, all_gone) = crossbeam_channel::bounded::<()>(0);
        ready();

        self.accept_loop(&shared, &alive, &mut echoes);
        // Stop accepting clients; until the end, new connections are answered
        // 503 (and /readyz says so) by the drain thread.
        let draining = Drain::start(&self.listener, health);
        drop(self);

        log::info!(
            "event=shutdown grace={}s msg=\"closing clients\"",
            config.shutdown_grace.as_secs_f64()
        );
        drop(shared);
        hubs.to_all(|| Input::Shutdown);
        drop(hubs);
        let mut closing = echoes.close_all();
        for dispatcher in dispatchers {
            // A hub that panicked said so as it failed (`HubWatch`).
            closing.extend(dispatcher.join().unwrap_or_default());
        }
        // Everything the dispatcher handed the store is written before the
        // process ends.
        store.send(sqlite::Request::Shutdown);
        if store_thread.join().is_err() {
            log::error!("the store thread panicked");
        }
        drop(alive);
        wait_for_connections(&all_gone, config.shutdown_grace, closing);
        drop(draining);
        Ok(())
    }

    fn accept_loop(&self, shared: &Arc<Shared>, alive: &Sender<()>, echoes: &mut Echoes) {
        let (release, released) = crossbeam_channel::unbounded();
        let config = &self.config;
        let mut gate = Gate::new(
            config.max_connections,
            config.max_handshakes,
            config.max_handshakes_per_ip,
        );
        let mut next_id = 0u64;
        for stream in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let sock = match stream {
                Ok(sock) => sock,
                Err(e) => {
                    log::warn!("event=accept_failed error={:?}", e.to_string());
                    thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
            };
            let Ok(peer) = sock.peer_addr() else { continue };
            released.try_iter().for_each(|r| gate.apply(r));
            echoes.update();

            // IPv6 peers share their /64's place (see `proxy::address_group`).
            let group = crate::proto::addr::address_group(peer.ip());
            let counted = match gate.enter(group, shared.proxies.trusts(peer.ip())) {
                Entry::Read { counted } => counted,
                Entry::Busy => {
                    log::warn!(
                        "event=refused peer={peer} reason=busy handshakes={}",
                        gate.handshakes
                    );
                    metrics::get().refused(RefusalReason::Busy);
                    admission::refuse_now(&sock, 503, "server busy\n", RETRY_AFTER);
                    continue;
                }
            };
            let ticket = Ticket::new(release.clone(), group, counted, alive.clone());
            next_id += 1;
            let id = next_id;
            let shared = shared.clone();
            let thread = thread::Builder::new()
                .name(format!("conn-{id}"))
                .stack_size(THREAD_STACK);
            let job = Box::new(Accepted {
                sock,
                peer,
                id,
                ticket,
            });
            let spawned = spawn_with(thread, job, move |job| connection_thread(job, &shared));
            if let Err((e, job)) = spawned {
                let Accepted { sock, ticket, .. } = *job;
                drop(ticket);
                log::error!(
                    "event=refused peer={peer} reason=busy error={:?}",
                    e.to_string()
                );
                metrics::get().refused(RefusalReason::Busy);
                admission::refuse_now(&sock, 503, "server busy\n", RETRY_AFTER);
            }
        }
    }
}

/// A connection's thread: the handshake, then the connection served. The
/// handshake's frames are gone before the connection is served: the two
/// never stack up. Out of line, with what it needs boxed, so that the
/// frame under both (the thread's closure) holds pointers only: stack pages
/// once touched are never given back (see "Limits" in
/// docs/ARCHITECTURE.md).
#[inline(never)]
fn connection_thread(job: Box<Accepted>, shared: &Shared) {
    if let Some(connection) = router::handle(job, shared) {
        connection.serve();
    }
}

/// Logs a hub's failure as its thread unwinds: its clients find it gone
/// and close with 1011, and `/readyz` fails, while other hubs carry on.
struct HubWatch(usize);

impl Drop for HubWatch {
    fn drop(&mut self) {
        if thread::panicking() {
            log::error!(
                "event=hub_failed hub={} msg=\"the hub thread panicked; its rooms' clients are closed\"",
                self.0
            );
        }
    }
}

/// Starts a thread that runs `f(value)`; if the thread cannot be started,
/// gives `value` back with the error, so that the caller can still answer.
/// How long to wait before asking Redis again for the file URL key.
const URL_KEY_RETRY: Duration = Duration::from_secs(1);

/// Without a secret and with Redis: a signer whose key every instance
/// shares, set by a thread that asks Redis until it answers (Redis may be
/// away at start-up; until then no URL is given out or accepted).
fn shared_url_key(files: &redis::Files) -> io::Result<Signer> {
    let signer = Signer::pending(false);
    let fresh = capability::random_key()?;
    let (files, set) = (files.clone(), signer.clone());
    thread::Builder::new()
        .name("file-url-key".into())
        .spawn(move || {
            let mut complained = false;
            loop {
                match files.url_key(fresh) {
                    Ok(Some(key)) => {
                        set.set_key(key);
                        return;
                    }
                    Ok(None) => {
                        if !complained {
                            log::error!(
                                "event=file_url_key_invalid msg=\"the file URL key in Redis is not 32 bytes; delete it to have a new one made\""
                            );
                        }
                    }
                    Err(e) => {
                        if !complained {
                            log::warn!("event=file_url_key_unavailable error={:?}", e.to_string());
                        }
                    }
                }
                complained = true;
                // Not a synchronisation: Redis is away, and is asked again.
                thread::sleep(URL_KEY_RETRY);
            }
        })?;
    Ok(signer)
}

fn spawn_with<T: Send + 'static>(
    builder: thread::Builder,
    value: T,
    f: impl FnOnce(T) + Send + 'static,
) -> Result<(), (io::Error, T)> {
    let slot = Arc::new(std::sync::Mutex::new(Some(value)));
    let theirs = slot.clone();
    let started = builder.spawn(move || {
        let value = theirs.lock().map(|mut v| v.take());
        if let Ok(Some(value)) = value {
            f(value);
        }
    });
    match started {
        Ok(_) => Ok(()),
        Err(e) => {
            // The closure, with its clone of the slot, is gone: ours is the
            // only one left, and still holds the value.
            let value = slot.lock().ok().and_then(|mut v| v.take());
            Err((e, value.expect("a thread that never started took nothing")))
        }
    }
}

/// Waits until every connection has ended or `grace` has passed. Clients
/// that have not answered their close frame by its deadline have their
/// socket shut then, which ends their connection.
fn wait_for_connections(all_gone: &Receiver<()>, grace: Duration, closing: Closing) {
    let grace_end = Instant::now() + grace;
    let mut deadlines = closing.iter().map(|(d, _)| *d).filter(|d| *d < grace_end);
    if let Some(last) = deadlines.next_back() {
        if let Err(RecvTimeoutError::Timeout) = all_gone.recv_deadline(last) {
            for outlet in closing.iter().filter_map(|(_, o)| o.upgrade()) {
                outlet.end();
            }
        } else {
            log::info!("event=stopped msg=\"all connections closed\"");
            return;
        }
    }
    match all_gone.recv_deadline(grace_end) {
        Err(RecvTimeoutError::Disconnected) | Ok(()) => {
            log::info!("event=stopped msg=\"all connections closed\"")
        }
        Err(RecvTimeoutError::Timeout) => {
            log::warn!("event=stopped msg=\"shutdown grace over; exiting with connections open\"")
        }
    }
}
