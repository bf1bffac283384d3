//! The echo registry: echo clients are in no room and the dispatcher does
//! not know them, so each makes itself known here, and at shutdown the
//! accept thread closes them itself.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::hub::dispatcher::{ClientId, Closing};
use crate::hub::outlet::{CLOSE_TIMEOUT, Outlet};
use crate::proto::close::Close;

/// What an echo connection tells the server of itself.
enum EchoNote {
    Open(ClientId, Weak<Outlet>),
    Closed(ClientId),
}

/// Where an echo connection makes itself known. Echo clients are in no
/// room and the dispatcher does not know them, so at shutdown the server
/// closes them itself, from the list the accept thread keeps ([`Echoes`]).
#[derive(Clone, Debug)]
pub(crate) struct EchoClients(Sender<EchoNote>);

impl EchoClients {
    /// Lists an echo client until the place is dropped; `None` when the
    /// server is already shutting down.
    pub(crate) fn register(&self, id: ClientId, outlet: &Arc<Outlet>) -> Option<EchoPlace> {
        self.0
            .send(EchoNote::Open(id, Arc::downgrade(outlet)))
            .ok()?;
        Some(EchoPlace {
            id,
            notes: self.0.clone(),
        })
    }
}

/// An echo client's place in the server's list; dropping it takes the
/// client off.
#[derive(Debug)]
pub(crate) struct EchoPlace {
    id: ClientId,
    notes: Sender<EchoNote>,
}

impl Drop for EchoPlace {
    fn drop(&mut self) {
        // Fails only once the server has closed every echo client.
        let _ = self.notes.send(EchoNote::Closed(self.id));
    }
}

/// The open echo clients, kept by the accept thread, which reads their
/// notes at every connection it accepts: the notes waiting are at most a
/// couple per connection accepted since.
pub(crate) struct Echoes {
    notes: Receiver<EchoNote>,
    open: HashMap<ClientId, Weak<Outlet>>,
}

impl Echoes {
    /// The list, and where echo connections make themselves known to it.
    pub(crate) fn new() -> (Echoes, EchoClients) {
        let (tx, notes) = crossbeam_channel::unbounded();
        let echoes = Echoes {
            notes,
            open: HashMap::new(),
        };
        (echoes, EchoClients(tx))
    }

    /// Takes in the notes waiting.
    pub(crate) fn update(&mut self) {
        for note in self.notes.try_iter() {
            match note {
                EchoNote::Open(id, outlet) => {
                    self.open.insert(id, outlet);
                }
                EchoNote::Closed(id) => {
                    self.open.remove(&id);
                }
            }
        }
    }

    /// Closes every echo client with 1001, as the dispatcher closes the
    /// others; returns them with the time by which they must answer. Echo
    /// clients that come later find the list gone and close themselves.
    pub(crate) fn close_all(mut self) -> Closing {
        self.update();
        let close = Close::shutdown();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut closing = Closing::new();
        for outlet in self.open.into_values() {
            if let Some(live) = outlet.upgrade() {
                live.close(&close);
                closing.push_back((deadline, outlet));
            }
        }
        closing
    }
}
