//! Changes (edits, deletions, reactions) are checked before their group
//! is written: the target must be a message of the room, not deleted, and
//! an edit the sender's own, a deletion the sender's or a moderator's
//! (`changes::allowed`). What storing one does to its target is the
//! database's own work, by the triggers of `sqlite/changes.rs`, in the
//! group's transaction.

use std::collections::HashSet;

use rusqlite::OptionalExtension;

use super::{Body, Pending, Writer};
use crate::history::{Change, Refusal};
use crate::proto::protocol::changes::allowed;

impl Writer {
    /// Takes out of `appends` the changes that may not be made, each with
    /// why. A deletion earlier in the group counts, as if committed.
    pub(super) fn refuse_changes(&mut self, appends: &mut Vec<Pending>) -> Vec<(Pending, Refusal)> {
        if !appends
            .iter()
            .any(|p| matches!(p.record.body, Body::Change { .. }))
        {
            return Vec::new();
        }
        let keys = self.keys(appends);
        let mut deleted: HashSet<(&str, u64)> = HashSet::new();
        let mut verdicts = Vec::with_capacity(appends.len());
        for (pending, key) in appends.iter().zip(&keys) {
            let Body::Change {
                target,
                change,
                moderator,
            } = &pending.record.body
            else {
                verdicts.push(None);
                continue;
            };
            let verdict = match deleted.contains(&(key.as_str(), *target)) {
                true => Err(Refusal::NoSuchMessage),
                false => self.check(key, *target, change, &pending.record.from, *moderator),
            };
            if verdict.is_ok() && *change == Change::Delete {
                deleted.insert((key, *target));
            }
            verdicts.push(verdict.err());
        }
        let mut refused = Vec::new();
        let mut kept = Vec::with_capacity(appends.len());
        for (pending, verdict) in appends.drain(..).zip(verdicts) {
            match verdict {
                Some(why) => refused.push((pending, why)),
                None => kept.push(pending),
            }
        }
        *appends = kept;
        refused
    }

    /// Whether `actor` may make `change` to message `target` of the room
    /// keyed `key`, as the database has it. A database that cannot be read
    /// refuses it, as if the message were not there: nothing is changed
    /// that was not checked.
    fn check(
        &self,
        key: &str,
        target: u64,
        change: &Change,
        actor: &str,
        moderator: bool,
    ) -> Result<(), Refusal> {
        let sender: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT sender FROM records WHERE room = ?1 AND id = ?2 \
                 AND kind IS NULL AND text IS NOT NULL AND deleted = 0",
            )
            .and_then(|mut s| s.query_row((key, target), |row| row.get(0)).optional())
            .unwrap_or(None);
        let sender = sender.ok_or(Refusal::NoSuchMessage)?;
        allowed(change, &sender, actor, moderator)
    }
}
