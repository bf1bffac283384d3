//! Turns for resumes that read from the store: how many may be read at once,
//! per client address and in total, and the queue of those waiting.
//!
//! A resume that reaches beyond the room's history in memory costs a read
//! of up to 1,000 records and their replay frames. Unbounded, a hundred of
//! them sent at once from one address held hundreds of MiB and kept the
//! store busy for seconds. Beyond the bounds a resume is not refused: it
//! waits its turn, first come first served except that an address at its
//! own bound lets the others pass, and its client gets its welcome later.
//! What a waiting resume holds is its client's (frames held back for it,
//! within `--queue-frames`), so the queue is bounded by the connections.
//! The embedded store then reads those asked a page at a time, within a
//! budget of records a second, the askers' addresses in turn (see
//! `history/sqlite/pace.rs`): a storm's resumes are answered over seconds.

use crate::logs as log;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::{ClientId, Dispatcher, replay_frame};
use crate::history::sqlite;
use crate::proto::wire::Encoded;

/// Most events a resume reads back from the store; a client that missed
/// more is told `trimmed` and given a gap.
pub(super) const RESUME_FROM_STORE: u64 = 1000;

/// A resume that reaches further back than the room's history in memory:
/// the store is asked for the rest, and the client's welcome waits for it.
pub(super) struct Catchup {
    pub(super) client: ClientId,
    /// The client's address: it may have only so many resumes read at once.
    pub(super) address: IpAddr,
    pub(super) room: String,
    pub(super) name: String,
    pub(super) since: u64,
    /// A join without `since` whose room's recent history is partly no
    /// longer in memory: its welcome says nothing of a resume.
    pub(super) fresh: bool,
    /// The room's last id when the client joined: the replay ends there.
    pub(super) last_id: u64,
    /// The first id the room had in memory then, and the frames from it on.
    pub(super) first: u64,
    pub(super) cached: Vec<Encoded>,
}

/// What a welcome says of a resume (nothing without `since`), and the gap
/// that follows it when events were lost.
#[derive(Default)]
pub(super) struct Resume {
    pub(super) recovered: Option<bool>,
    pub(super) reason: Option<&'static str>,
    pub(super) gap: Option<(u64, u64)>,
}

impl Resume {
    pub(super) fn recovered() -> Resume {
        Resume {
            recovered: Some(true),
            ..Resume::default()
        }
    }

    pub(super) fn lost(reason: &'static str) -> Resume {
        Resume {
            recovered: Some(false),
            reason: Some(reason),
            gap: None,
        }
    }
}

/// Encodes a fetch's replay frames, on the thread that answered it (the
/// store's reads thread, or the Redis command thread), before the answer
/// joins the dispatcher's queue: a resume then costs the dispatcher copies
/// of pointers, as a replay from memory does, rather than encoding up to
/// 1,000 events while every other client waits. Other answers pass as they
/// are, and so does a fetch before `urls` (the file URLs' signer) is known:
/// the dispatcher then encodes it itself.
pub fn encode_replay(
    reply: sqlite::Reply,
    urls: Option<&crate::proto::capability::Signer>,
) -> sqlite::Reply {
    match (reply, urls) {
        (
            sqlite::Reply::Fetched {
                room,
                token,
                records,
                frames,
            },
            Some(urls),
        ) if frames.is_empty() => {
            let frames = records.iter().map(|r| replay_frame(r, urls)).collect();
            sqlite::Reply::Fetched {
                room,
                token,
                records,
                frames,
            }
        }
        (other, _) => other,
    }
}

/// Resumes read at once for one client address.
pub const PER_ADDRESS: usize = 4;

/// Resumes read at once in total: with the store's bound on one answer
/// (5 MiB of records), what answers in flight hold is bounded. The reads
/// are paced (`history/sqlite/pace.rs`), so more at once would be read no
/// sooner, only held longer: a join churn into a room whose history is
/// mostly read back from the store went 30 MiB over its memory bound with
/// 32.
pub const TOTAL: usize = 8;

/// Who may read now, and who waits.
pub struct Turns<T> {
    per_address: usize,
    total: usize,
    /// Reads under way, by address (no entry at 0).
    running: HashMap<IpAddr, usize>,
    running_total: usize,
    /// Oldest first.
    waiting: VecDeque<(IpAddr, T)>,
}

impl<T> Default for Turns<T> {
    fn default() -> Turns<T> {
        Turns::new(PER_ADDRESS, TOTAL)
    }
}

impl<T> Turns<T> {
    pub fn new(per_address: usize, total: usize) -> Turns<T> {
        Turns {
            per_address: per_address.max(1),
            total: total.max(1),
            running: HashMap::new(),
            running_total: 0,
            waiting: VecDeque::new(),
        }
    }

    /// A resume from `address`: given back, counted as under way, if it may
    /// be read now; otherwise it waits. (None of those waiting may be read
    /// now, so none is passed that could go first.)
    pub fn enter(&mut self, address: IpAddr, item: T) -> Option<T> {
        if self.may_start(address) {
            self.start(address);
            return Some(item);
        }
        self.waiting.push_back((address, item));
        None
    }

    /// A read from `address` ended: the waiting resumes that may be read
    /// now, oldest first, each counted as under way.
    pub fn leave(&mut self, address: IpAddr) -> Vec<T> {
        if let Some(n) = self.running.get_mut(&address) {
            *n -= 1;
            self.running_total -= 1;
            if *n == 0 {
                self.running.remove(&address);
            }
        }
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() && self.running_total < self.total {
            let address = self.waiting[i].0;
            if self.may_start(address) {
                let (_, item) = self.waiting.remove(i).expect("index checked");
                self.start(address);
                ready.push(item);
            } else {
                i += 1;
            }
        }
        ready
    }

    /// Drops the waiting resumes `gone` says are no longer wanted (their
    /// client left), once they outnumber `live`, so that clients that come
    /// and go while others read cannot grow the queue.
    pub fn sweep(&mut self, live: usize, gone: impl Fn(&T) -> bool) {
        if self.waiting.len() > live {
            self.waiting.retain(|(_, item)| !gone(item));
        }
    }

    /// Resumes waiting their turn.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Reads under way.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.running_total
    }

    fn may_start(&self, address: IpAddr) -> bool {
        self.running_total < self.total
            && self.running.get(&address).copied().unwrap_or(0) < self.per_address
    }

    fn start(&mut self, address: IpAddr) {
        *self.running.entry(address).or_default() += 1;
        self.running_total += 1;
    }
}

impl Dispatcher {
    /// Reads `catchup`'s missed events from the store now, or once its turn
    /// comes.
    pub(super) fn take_turn(&mut self, catchup: Catchup) {
        let clients = &self.clients;
        self.resumes
            .sweep(clients.len(), |c| !clients.contains_key(&c.client));
        let (client, address) = (catchup.client, catchup.address);
        match self.resumes.enter(address, catchup) {
            Some(catchup) => self.fetch_missed(catchup),
            None => log::debug!(
                "event=resume_waits client={client} address={address} waiting={}",
                self.resumes.waiting()
            ),
        }
    }

    /// A read for `address` was answered: the resumes whose turn it is now
    /// are read, but for those whose client has left meanwhile.
    pub(super) fn pass_turn(&mut self, address: IpAddr) {
        let mut ready: VecDeque<Catchup> = self.resumes.leave(address).into();
        while let Some(catchup) = ready.pop_front() {
            let waits = self
                .clients
                .get(&catchup.client)
                .is_some_and(|c| c.held.is_some());
            if waits {
                self.fetch_missed(catchup);
            } else {
                ready.extend(self.resumes.leave(catchup.address));
            }
        }
    }

    fn fetch_missed(&mut self, catchup: Catchup) {
        let token = self.next_token;
        self.next_token += 1;
        self.store.send(sqlite::Request::Fetch {
            room: catchup.room.clone(),
            after: catchup.since,
            upto: catchup.first - 1,
            limit: RESUME_FROM_STORE as usize,
            token: sqlite::FetchFor::Resume(token),
            asker: Some(catchup.address),
        });
        self.catchups.insert(token, catchup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn an_address_waits_beyond_its_bound_and_others_pass() {
        let mut turns = Turns::new(2, 3);
        assert_eq!(turns.enter(ip(2), 1), Some(1));
        assert_eq!(turns.enter(ip(2), 2), Some(2));
        // The address's own bound: it waits, and another address passes.
        assert_eq!(turns.enter(ip(2), 3), None);
        assert_eq!(turns.enter(ip(3), 4), Some(4));
        // The total bound: everyone waits, first come first served...
        assert_eq!(turns.enter(ip(4), 5), None);
        assert_eq!(turns.enter(ip(2), 6), None);
        assert_eq!(turns.waiting(), 3);
        // ...until a read ends: the oldest that may go goes (3's address
        // is still at its bound).
        assert_eq!(turns.leave(ip(3)), [5]);
        assert_eq!(turns.leave(ip(2)), [3]);
        assert_eq!(turns.leave(ip(2)), [6]);
        assert_eq!(turns.running(), 3);
        assert_eq!(turns.leave(ip(2)), Vec::<i32>::new());
        assert_eq!(turns.leave(ip(2)), Vec::<i32>::new());
        assert_eq!(turns.leave(ip(4)), Vec::<i32>::new());
        assert_eq!((turns.running(), turns.waiting()), (0, 0));
        assert!(turns.running.is_empty());
    }

    #[test]
    fn a_storm_from_one_address_is_read_four_at_a_time() {
        let mut turns = Turns::default();
        let mut running: Vec<u32> = (0..100).filter_map(|i| turns.enter(ip(2), i)).collect();
        assert_eq!(running, [0, 1, 2, 3]);
        let mut done = Vec::new();
        while let Some(next) = running.pop() {
            done.push(next);
            running.extend(turns.leave(ip(2)));
            assert!(turns.running() <= PER_ADDRESS);
        }
        done.sort_unstable();
        assert_eq!(done, (0..100).collect::<Vec<_>>());
        assert_eq!((turns.running(), turns.waiting()), (0, 0));
    }

    #[test]
    fn encode_replay_gives_each_record_its_replay_frame_and_passes_the_rest() {
        let record = |id| sqlite::Record {
            room: "r".into(),
            id,
            from: "ann".into(),
            ts: 1,
            cid: Some(format!("c{id}")),
            body: sqlite::Body::Text(format!("m{id}")),
        };
        let records = vec![record(4), record(5)];
        let urls = crate::proto::capability::Signer::from_secret(
            b"a test secret that is long enough to sign",
        );
        let fetched = sqlite::Reply::Fetched {
            room: "r".into(),
            token: sqlite::FetchFor::Resume(9),
            records: records.clone(),
            frames: Vec::new(),
        };
        let sqlite::Reply::Fetched { token, frames, .. } = encode_replay(fetched, Some(&urls))
        else {
            panic!("a fetch stays a fetch");
        };
        assert_eq!(token, sqlite::FetchFor::Resume(9));
        let bytes = |frames: Vec<crate::proto::wire::Encoded>| -> Vec<Vec<u8>> {
            frames.iter().map(|f| f.as_bytes().to_vec()).collect()
        };
        assert_eq!(
            bytes(frames),
            bytes(records.iter().map(|r| replay_frame(r, &urls)).collect())
        );
        let opened = sqlite::Reply::Opened {
            room: "r".into(),
            epoch: "e".into(),
            last_id: 6,
            recent: Vec::new(),
            loaded: true,
            members: Vec::new(),
            spelling: None,
        };
        let opened = encode_replay(opened, Some(&urls));
        assert!(matches!(opened, sqlite::Reply::Opened { last_id: 6, .. }));
    }

    #[test]
    fn leaving_without_a_read_changes_nothing() {
        let mut turns: Turns<u32> = Turns::default();
        assert!(turns.leave(ip(9)).is_empty());
        assert_eq!(turns.running(), 0);
    }

    #[test]
    fn sweeping_drops_only_the_gone_and_only_past_the_live_count() {
        let mut turns = Turns::new(1, 1);
        assert_eq!(turns.enter(ip(2), 0), Some(0));
        for i in 1..=4 {
            assert_eq!(turns.enter(ip(2), i), None);
        }
        turns.sweep(4, |i| i % 2 == 0);
        assert_eq!(turns.waiting(), 4);
        turns.sweep(3, |i| i % 2 == 0);
        assert_eq!(turns.waiting(), 2);
        assert_eq!(turns.leave(ip(2)), [1]);
        assert_eq!(turns.leave(ip(2)), [3]);
    }
}
