//! Which instances share this Redis, and a moderator's question asked of
//! every one of them.
//!
//! **The registry.** Each instance keeps its id in the sorted set
//! [`keys::INSTANCES`], scored with the Redis time its registration ends
//! (now + `ALIVE_TTL`), refreshed every `REFRESH_EVERY` by the
//! [`Responder`] thread once its subscription is up (so a registered
//! instance hears questions), and pruned by score. Redis's own clock scores
//! and prunes, so instances' clocks need not agree. A killed instance stays
//! listed until its score passes: meanwhile it is reported as not
//! answering, never silently left out.
//!
//! **A question.** [`Everywhere::ask`] reads the live instances, publishes
//! the question with a fresh id on the moderation channel, and waits (on a
//! connection of its own) for one answer per live instance on the list
//! [`keys::reply`] of that id, at most [`ANSWER_WAIT`]. Every instance,
//! the asking one included, hears the question on its subscription, has
//! its hubs answer it, and pushes the answer there. Each command names one
//! key, so all of this runs on a Redis Cluster as it is.

use crate::logs as log;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::link::{Link, Target};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::entry::{self, Asked, Question};
use super::keys::{self, CHANNEL};
use super::{ALIVE_TTL, COMMAND_TIMEOUT, Moderation, REFRESH_EVERY, Status};

/// How long an asker waits for the instances' answers once its question is
/// published.
pub const ANSWER_WAIT: Duration = Duration::from_secs(1);

/// How long an instance's hubs may take over an answer: well under
/// [`ANSWER_WAIT`], so that the answer still finds its asker waiting.
const HUBS_WAIT: Duration = Duration::from_millis(700);

/// How long a reply list outlives its last answer, in seconds: answers that
/// came after the asker stopped waiting are dropped with it.
const REPLY_TTL: u64 = 10;

/// How soon an instance not yet subscribed tries to register again.
const NOT_YET: Duration = Duration::from_millis(100);

/// How an instance answers a question from its hubs: its answer as JSON,
/// or `None` when its hubs did not answer within the time given.
pub type Answerer = Arc<dyn Fn(&Asked, Duration) -> Option<String> + Send + Sync>;

/// The instances' answers to one question.
#[derive(Debug, Default)]
pub struct Gathered {
    /// `(instance, answer)` in the order they came.
    pub answers: Vec<(String, String)>,
    /// The live instances that did not answer in time.
    pub missing: Vec<String>,
}

/// Asks questions of every instance; cheap to clone, one per admin request
/// thread. Each question opens a connection of its own: they are rare,
/// and a blocking wait must not hold a connection another thread needs.
#[derive(Clone)]
pub struct Everywhere {
    target: Target,
    instance: Arc<str>,
}

impl Everywhere {
    pub(super) fn new(target: Target, instance: Arc<str>) -> Everywhere {
        Everywhere { target, instance }
    }

    /// Asks every live instance, this one included, and gathers their
    /// answers; a ban is kept in Redis (an unban forgotten there) first,
    /// for instances that start later. An error when Redis does not answer.
    pub fn ask(&self, asked: Asked) -> redis::RedisResult<Gathered> {
        // Its replies may take the whole wait for answers.
        let mut conn = self.target.connect(ANSWER_WAIT + COMMAND_TIMEOUT)?;
        let now = redis_now(&mut conn)?;
        let mut live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys::INSTANCES)
            .arg(format!("({now}"))
            .arg("+inf")
            .query(&mut conn)?;
        if !live.iter().any(|i| **i == *self.instance) {
            // Not registered yet: it answers all the same.
            live.push(self.instance.to_string());
        }
        let question = Question {
            id: format!("{:016x}", crate::history::sqlite::random_u64()),
            from: self.instance.to_string(),
            asked,
        };
        let mut pipe = redis::pipe();
        match &question.asked {
            Asked::Act(Moderation::Ban { name, until }) => {
                pipe.cmd("HSET")
                    .arg(keys::BANS)
                    .arg(crate::proto::names::skeleton(name))
                    .arg(format!("{until}\t{name}"))
                    .ignore();
            }
            Asked::Act(Moderation::Unban { name }) => {
                pipe.cmd("HDEL")
                    .arg(keys::BANS)
                    .arg(crate::proto::names::skeleton(name))
                    .ignore();
            }
            Asked::Act(Moderation::Kick { .. }) | Asked::Overview => {}
        }
        pipe.cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(entry::question(&question))
            .ignore();
        pipe.query::<()>(&mut conn)?;
        let key = keys::reply(&question.id);
        let answers = gather(&mut conn, &key, &live, Instant::now() + ANSWER_WAIT)?;
        // The list expires anyway; this only spares Redis the wait.
        let _ = redis::cmd("DEL").arg(&key).query::<()>(&mut conn);
        let missing = live
            .into_iter()
            .filter(|i| !answers.iter().any(|(a, _)| a == i))
            .collect();
        Ok(Gathered { answers, missing })
    }
}

/// Pops answers from `key` until each of `live` answered or `deadline`
/// passed. An answer is `instance \n json`; an instance's second answer
/// (none is sent) would be ignored.
fn gather(
    conn: &mut Link,
    key: &str,
    live: &[String],
    deadline: Instant,
) -> redis::RedisResult<Vec<(String, String)>> {
    let mut answers: Vec<(String, String)> = Vec::new();
    while live.iter().any(|i| !answers.iter().any(|(a, _)| a == i)) {
        let left = deadline.saturating_duration_since(Instant::now());
        // BLPOP's timeout 0 waits for ever: stop before it rounds to that.
        if left < Duration::from_millis(2) {
            break;
        }
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(key)
            .arg(format!("{:.3}", left.as_secs_f64()))
            .query(conn)?;
        let Some((_, answer)) = popped else { break };
        match answer.split_once('\n') {
            Some((instance, json)) if !answers.iter().any(|(a, _)| a == instance) => {
                answers.push((instance.to_owned(), json.to_owned()));
            }
            _ => log::warn!("event=admin_bad_answer bytes={}", answer.len()),
        }
    }
    Ok(answers)
}

/// Takes a stopping instance out of the registry, so that the admin view
/// does not name it missing until its entry lapses, and keeps its
/// [`Responder`] from registering it again.
pub(super) fn leave(status: &Status, instance: &str, conn: Option<&mut Link>) {
    status.stopping.store(true, Ordering::SeqCst);
    if let Some(conn) = conn {
        let _ = redis::cmd("ZREM")
            .arg(keys::INSTANCES)
            .arg(instance)
            .query::<()>(conn);
    }
}

/// Redis's clock, in milliseconds since the Unix epoch.
fn redis_now(conn: &mut Link) -> redis::RedisResult<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(conn)?;
    Ok(secs * 1_000 + micros / 1_000)
}

/// The thread that keeps this instance registered and answers the
/// questions its subscriber hears, with a connection of its own.
pub(super) struct Responder {
    pub target: Target,
    pub instance: Arc<str>,
    pub status: Arc<Status>,
    pub questions: Receiver<Question>,
    pub answer: Answerer,
}

impl Responder {
    /// Runs until the subscriber thread, which sends the questions, is gone.
    pub fn run(self) {
        let mut conn: Option<Link> = None;
        let mut next = Instant::now();
        let mut registered = false;
        loop {
            match self
                .questions
                .recv_timeout(next.saturating_duration_since(Instant::now()))
            {
                Ok(question) => {
                    // An instance that answers is live: it registers
                    // first, so that once it has answered, an asker that
                    // loses it later names it missing.
                    if !registered {
                        registered = self.register(&mut conn);
                        if registered {
                            next = Instant::now() + REFRESH_EVERY;
                        }
                    }
                    self.reply(&mut conn, &question);
                }
                Err(RecvTimeoutError::Timeout) => {
                    registered = self.register(&mut conn);
                    let wait = match registered {
                        true => REFRESH_EVERY,
                        false => NOT_YET,
                    };
                    next = Instant::now() + wait;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Answers `question` from this instance's hubs, on its reply list.
    fn reply(&self, conn: &mut Option<Link>, question: &Question) {
        let Some(answer) = (self.answer)(&question.asked, HUBS_WAIT) else {
            log::warn!(
                "event=admin_not_answered id={} msg=\"the hubs did not answer in time\"",
                question.id
            );
            return;
        };
        let key = keys::reply(&question.id);
        let sent = connected(&self.target, conn).and_then(|c| {
            redis::pipe()
                .cmd("RPUSH")
                .arg(&key)
                .arg(format!("{}\n{answer}", self.instance))
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(REPLY_TTL)
                .ignore()
                .query::<()>(c)
        });
        if let Err(e) = sent {
            *conn = None;
            log::warn!(
                "event=admin_not_answered id={} error={:?}",
                question.id,
                e.to_string()
            );
        }
    }

    /// Refreshes this instance's registration and prunes the lapsed ones;
    /// false while its subscription is not up (it would not hear a
    /// question) or Redis does not answer. Nothing once the instance is
    /// stopping.
    fn register(&self, conn: &mut Option<Link>) -> bool {
        if self.status.stopping.load(Ordering::SeqCst) {
            // Left the registry for good (the command thread, at shutdown).
            return true;
        }
        if !self.status.subscribed.load(Ordering::SeqCst) {
            return false;
        }
        let done = connected(&self.target, conn).and_then(|c| {
            let now = redis_now(c)?;
            redis::pipe()
                .cmd("ZADD")
                .arg(keys::INSTANCES)
                .arg(now + ALIVE_TTL.as_millis() as u64)
                .arg(&*self.instance)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(keys::INSTANCES)
                .arg("-inf")
                .arg(now)
                .ignore()
                .query::<()>(c)
        });
        match done {
            Ok(()) => true,
            Err(e) => {
                // The command thread says when Redis is lost and back.
                log::debug!("event=instance_not_registered error={:?}", e.to_string());
                *conn = None;
                false
            }
        }
    }
}

fn connected<'a>(target: &Target, conn: &'a mut Option<Link>) -> redis::RedisResult<&'a mut Link> {
    if conn.is_none() {
        *conn = Some(target.connect(COMMAND_TIMEOUT)?);
    }
    Ok(conn.as_mut().expect("connected above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_travel_whole() {
        let asked = [
            Asked::Overview,
            Asked::Act(Moderation::Kick {
                name: "bob".into(),
                room: Some("hall".into()),
            }),
            Asked::Act(Moderation::Kick {
                name: "bob".into(),
                room: None,
            }),
            Asked::Act(Moderation::Ban {
                name: "bob".into(),
                until: 42,
            }),
            Asked::Act(Moderation::Unban { name: "bob".into() }),
        ];
        for asked in asked {
            let question = Question {
                id: "0123".into(),
                from: "abcd".into(),
                asked,
            };
            let json = entry::question(&question);
            let back = entry::Wire::parse(json.as_bytes()).and_then(entry::Wire::into_question);
            assert_eq!(back.as_ref(), Some(&question), "{json}");
        }
    }

    #[test]
    fn only_events_with_an_id_are_questions() {
        let presence = entry::presence("j", "hall", "bob", "abcd");
        let wire = entry::Wire::parse(presence.as_bytes()).unwrap();
        assert_eq!(wire.into_question(), None);
    }
}
