//! What lies beneath the room engine: whether this instance alone holds
//! its rooms (the embedded store) or shares them with other instances
//! through Redis (a store and a bus).
//!
//! The engine (the rest of `dispatcher/`) sequences, records, acknowledges,
//! dedupes and replays the same way for both; wherever the two differ, it
//! asks the [`Backend`] a question, and the answer is written here once.
//! Both stores take the same requests (`sqlite::Request` through the
//! dispatcher's `StoreHandle`); what only a shared room has (a bus to
//! subscribe to, names claimed across instances, moderation told to every
//! instance) goes through the orders below, which a local room does not
//! need and so ignores.
//!
//! Nothing here runs per delivery: fan-out never asks the backend.

use crate::history::redis::{ClusterHandle, Order};
use crate::proto::names::{Name, skeleton};

/// Where the dispatcher's rooms live.
pub(super) enum Backend {
    /// The embedded store (SQLite): only this instance has these rooms.
    Local,
    /// Redis (`--redis`): other instances have the same rooms, and every
    /// room's events come back to each of them over the bus.
    Shared(ClusterHandle),
}

impl Backend {
    /// The shared backend when `cluster` is given, else the local one.
    pub(super) fn new(cluster: Option<ClusterHandle>) -> Backend {
        match cluster {
            Some(cluster) => Backend::Shared(cluster),
            None => Backend::Local,
        }
    }

    /// Whether the store's answer to an append delivers the message (so
    /// shutdown waits for those answers), rather than the message coming
    /// back over the bus (`shared.rs`), in the one order every instance
    /// sees.
    pub(super) fn delivers_when_stored(&self) -> bool {
        matches!(self, Backend::Local)
    }

    /// Whether the store checks a change's target (the embedded store
    /// checks it in its database); else the engine checks it against the
    /// room's recent history before submitting it.
    pub(super) fn store_checks_changes(&self) -> bool {
        matches!(self, Backend::Local)
    }

    /// Whether a room whose history could not be read may start a new
    /// epoch. A shared room cannot start afresh on its own: its joins are
    /// refused, to be tried again.
    pub(super) fn may_start_afresh(&self) -> bool {
        matches!(self, Backend::Local)
    }

    /// Whether a room with nobody in it here stays, idle, for its history.
    /// A shared room is let go of instead: its history here could not be
    /// kept up to date without listening to the bus.
    pub(super) fn keeps_idle_rooms(&self) -> bool {
        matches!(self, Backend::Local)
    }

    /// Whether names are held across instances: a person's first
    /// connection here claims the name first ([`Backend::claim`]), and
    /// the join is news to the room only if nobody held it anywhere.
    pub(super) fn shares_names(&self) -> bool {
        matches!(self, Backend::Shared(_))
    }

    /// Where bans are kept, as the admin view says.
    pub(super) fn bans_kept(&self) -> &'static str {
        match self {
            Backend::Local => "memory",
            Backend::Shared(_) => "redis",
        }
    }

    /// This instance's id, as the bus tags its events ("" alone).
    pub(super) fn instance(&self) -> &str {
        match self {
            Backend::Local => "",
            Backend::Shared(cluster) => &cluster.instance,
        }
    }

    /// The `n`th guest name: other instances count their own guests, so a
    /// shared room's are tagged with the instance.
    pub(super) fn guest_name(&self, n: u64) -> String {
        match self {
            Backend::Local => format!("guest-{n}"),
            Backend::Shared(cluster) => format!("guest-{}-{n}", &cluster.instance[..4]),
        }
    }

    /// Asks for a room's events, now that someone is in it here. True
    /// when the room now listens to the bus.
    pub(super) fn subscribe(&self, room: &str) -> bool {
        self.order(|| Order::Subscribe {
            room: room.to_owned(),
        })
    }

    /// Stops listening to a room nobody here is in.
    pub(super) fn unsubscribe(&self, room: &str) {
        self.order(|| Order::Unsubscribe {
            room: room.to_owned(),
        });
    }

    /// Claims `name` in `room` across instances; the answer comes back as
    /// `Note::Claimed` with `token`. False when names are held here alone.
    pub(super) fn claim(&self, token: u64, room: &str, name: &Name, owner: String) -> bool {
        self.order(|| Order::Claim {
            token,
            room: room.to_owned(),
            name: name.text.clone(),
            skeleton: name.skeleton.clone(),
            owner,
        })
    }

    /// This instance's last connection of a person left the room. True
    /// when the room is to be told now; with shared rooms Redis is told,
    /// and the room hears of it when Redis says they left everywhere.
    pub(super) fn release(&self, room: &str, name: &str) -> bool {
        !self.order(|| Order::Release {
            room: room.to_owned(),
            name: name.to_owned(),
            skeleton: skeleton(name),
        })
    }

    /// Tells other instances that someone here is typing.
    pub(super) fn typing(&self, room: &str, name: &str) {
        self.order(|| Order::Typing {
            room: room.to_owned(),
            name: name.to_owned(),
        });
    }

    /// Sends a shared backend the order `make` builds (built only then).
    /// True when sent.
    fn order(&self, make: impl FnOnce() -> Order) -> bool {
        match self {
            Backend::Local => false,
            Backend::Shared(cluster) => {
                cluster.send(make());
                true
            }
        }
    }
}
