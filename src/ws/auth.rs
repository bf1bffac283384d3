//! Who a client is. With `--auth-secret`, every client in a room presents a
//! signed identity token (a JWT, HS256): its `sub` is the name the client
//! goes by, so no one can take another's, its optional `rooms` claim lists
//! where it may go, and its `exp` is enforced. Without a secret the server
//! stays open, and a browser's random `key` lets its own tabs share a name.
//!
//! Tokens are checked where they arrive: `?token=` at the upgrade (a bad
//! one is an HTTP error before the 101), a v1 `join` frame's `token` on the
//! client's reader thread; the dispatcher only sees the [`Owner`] that
//! results. This file also holds the secrets' option parsers and the
//! `wschat token` subcommand that mints tokens.

use crate::logs as log;

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::config::secret::Secret;
use crate::config::tool::Tool;
use crate::proto::names::{self, Owner};
use crate::proto::protocol::{ErrorCode, FrameRefusal, Mode};

/// Length bounds of a browser's `key`.
const KEY_CHARS: std::ops::RangeInclusive<usize> = 16..=128;

/// The secret that signs identity tokens, from whichever option gave it.
pub(crate) fn secret(config: &Config) -> Option<&Secret> {
    config
        .auth_secret
        .as_ref()
        .or(config.auth_secret_file.as_ref())
}

/// The token the admin view and API ask for, from whichever option gave it.
pub(crate) fn admin_token(config: &Config) -> Option<&Secret> {
    config
        .admin_token
        .as_ref()
        .or(config.admin_token_file.as_ref())
}

/// What the `/ws` query asks for; validated later by the dispatcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RoomQuery {
    /// `?room=`: the room to join.
    pub(crate) room: Option<String>,
    /// `?name=`: the name to go by.
    pub(crate) name: Option<String>,
    /// `?since=`: the last id seen, to resume after.
    pub(crate) since: Option<u64>,
    /// `?token=`: an identity token, checked before the upgrade.
    pub(crate) token: Option<String>,
    /// The identity `token` proved, once checked.
    pub(crate) identity: Option<Identity>,
    /// The client's address, for the log line of a sign-in refused later,
    /// in a join frame.
    pub(crate) client: Option<std::net::SocketAddr>,
}

/// What an identity token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Claims {
    /// The name its holder goes by.
    pub(crate) sub: String,
    /// When it stops being accepted, in seconds since the Unix epoch.
    pub(crate) exp: u64,
    /// The rooms it may enter; every room when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rooms: Option<Vec<String>>,
    /// A moderator's.
    #[serde(rename = "mod", default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) moderator: bool,
}

/// The claims as read before they are checked: what is missing is then
/// reported by the check, precisely, rather than as a shape error.
#[derive(Deserialize)]
struct Presented {
    sub: Option<String>,
    rooms: Option<Vec<String>>,
    /// Not before: checked here rather than by jsonwebtoken, whose one
    /// leeway would apply to `exp` too, which gets none.
    nbf: Option<u64>,
    /// A moderator: may delete anyone's message in the rooms it may enter.
    #[serde(rename = "mod")]
    moderator: Option<bool>,
}

/// A verified token: who, and where they may go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Identity {
    /// The token's `sub`: the name its holder goes by.
    pub(crate) subject: String,
    /// Skeletons of the rooms allowed (a room is known by its skeleton, as
    /// the dispatcher knows it); `None` for every room.
    rooms: Option<Vec<String>>,
    /// Its `mod` claim is `true`: it may delete anyone's message.
    pub(crate) moderator: bool,
}

impl Identity {
    /// Whether the token lets its holder into `room`.
    pub(crate) fn allows(&self, room: &str) -> bool {
        let Some(rooms) = &self.rooms else {
            return true;
        };
        match names::name(room) {
            Ok(room) => rooms.contains(&room.skeleton),
            // Refused later, as `invalid_room`.
            Err(_) => true,
        }
    }

    /// Whether `asked` names the token's holder: the same name, or one that
    /// looks the same.
    fn is_called(&self, asked: &str) -> bool {
        match (names::name(asked), names::name(&self.subject)) {
            (Ok(a), Ok(s)) => a.skeleton == s.skeleton,
            _ => asked.trim() == self.subject.trim(),
        }
    }
}

/// Why a client's identity is refused. Each has the error code a v1 client
/// is sent and the HTTP status of a refused upgrade.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AuthError {
    /// The server has a secret and the client presented no token.
    Missing,
    /// Not a token signed with the server's secret, or not one of ours:
    /// malformed, forged, another algorithm, no `sub` or `exp`.
    Invalid(String),
    /// Its `exp` has passed.
    Expired,
    /// Its `nbf` (not before) is still ahead, past [`NBF_LEEWAY`].
    NotYetValid,
    /// Its `rooms` claim does not list the room.
    RoomForbidden(String),
    /// The client asked for a name other than the token's `sub`.
    NameMismatch {
        /// Whom the token is for.
        subject: String,
        /// The name asked for.
        asked: String,
    },
    /// A `key` that is not 16-128 letters, digits, `-` or `_`.
    BadKey,
}

impl AuthError {
    /// The v1 error code.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing => ErrorCode::TokenRequired,
            AuthError::Invalid(_) => ErrorCode::TokenInvalid,
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::NotYetValid => ErrorCode::TokenInvalid,
            AuthError::RoomForbidden(_) => ErrorCode::RoomForbidden,
            AuthError::NameMismatch { .. } => ErrorCode::NameMismatch,
            AuthError::BadKey => ErrorCode::BadField,
        }
    }

    /// The status of a refused upgrade: 403 when the token is good but does
    /// not allow what was asked, 401 when there is no good token.
    pub(crate) fn status(&self) -> u16 {
        match self {
            AuthError::RoomForbidden(_) | AuthError::NameMismatch { .. } => 403,
            _ => 401,
        }
    }

    /// The v1 `error` event.
    pub(crate) fn refusal(&self) -> FrameRefusal {
        FrameRefusal::new(self.code(), self.to_string())
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => write!(
                f,
                "this server needs an identity token: give it as ?token= or in the join frame"
            ),
            AuthError::Invalid(why) => write!(f, "the identity token is not valid: {why}"),
            AuthError::Expired => write!(f, "the identity token has expired"),
            AuthError::NotYetValid => write!(f, "the identity token is not valid yet (nbf)"),
            AuthError::RoomForbidden(room) => {
                write!(f, "the identity token does not allow room {room:?}")
            }
            AuthError::NameMismatch { subject, asked } => {
                write!(f, "the identity token is for {subject:?}, not {asked:?}")
            }
            AuthError::BadKey => write!(
                f,
                "field \"key\" must be 16-128 letters, digits, '-' or '_'"
            ),
        }
    }
}

impl std::error::Error for AuthError {}

/// How far ahead a token's `nbf` may be and still be taken: clocks of the
/// issuer and of this server may differ by a few seconds.
const NBF_LEEWAY: u64 = 30;

impl AuthError {
    /// Why, for the log: the message without the names it may hold (names
    /// are logged only at `debug`; a room is, as in the connect line).
    fn why(&self) -> String {
        match self {
            AuthError::NameMismatch { .. } => {
                "the identity token is for another name than the one asked for".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Logs a refused sign-in once, where it is refused: at the upgrade
/// (`via=upgrade`) or in a join frame (`via=join`), with the client's
/// address and the reason, so that "why can't I get in?" has its answer in
/// the log, as a refused admin token has.
pub(crate) fn log_refused(peer: Option<std::net::SocketAddr>, via: &str, e: &AuthError) {
    let peer = peer.map_or("-".to_owned(), crate::proto::addr::show_peer);
    // One line; the names involved only where names are logged (debug).
    let detail = match log::log_enabled!(log::Level::Debug) {
        true => format!(" detail={:?}", e.to_string()),
        false => String::new(),
    };
    log::info!(
        "event=signin peer={peer} via={via} outcome=denied code={} why={:?}{detail}",
        e.code().as_str(),
        e.why()
    );
}

/// Checks a token against the secret: signature (HS256 only), `exp` (no
/// leeway), `nbf` (within [`NBF_LEEWAY`]) and the claims' shape.
pub(crate) fn verify(secret: &Secret, token: &str) -> Result<Identity, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Presented>(
        token.trim(),
        &DecodingKey::from_secret(secret.bytes()),
        &validation,
    )
    .map_err(|e| match e.into_kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
        ErrorKind::InvalidAlgorithm => AuthError::Invalid("not signed with HS256".into()),
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Invalid(format!("no {claim:?} claim")),
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::Invalid(format!("the {claim:?} claim has the wrong type"))
        }
        ErrorKind::Json(_) => AuthError::Invalid("its claims are not what wschat expects".into()),
        _ => AuthError::Invalid("malformed".into()),
    })?;
    if let Some(nbf) = data.claims.nbf {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if nbf > now.saturating_add(NBF_LEEWAY) {
            return Err(AuthError::NotYetValid);
        }
    }
    let rooms = data.claims.rooms.map(|rooms| {
        rooms
            .iter()
            .filter_map(|r| names::name(r).ok())
            .map(|r| r.skeleton)
            .collect()
    });
    Ok(Identity {
        // Required by the validation above.
        subject: data.claims.sub.unwrap_or_default(),
        rooms,
        moderator: data.claims.moderator == Some(true),
    })
}

/// Why no token could be minted.
#[derive(Debug)]
pub(crate) enum MintError {
    /// The server has no `--auth-secret` to sign with.
    NoSecret,
    /// The subject or a room is no name anyone may go by.
    Name(String, names::NameError),
    /// The lifetime is not a number of seconds above zero.
    Ttl,
    /// Signing failed.
    Sign(jsonwebtoken::errors::Error),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::NoSecret => write!(
                f,
                "no secret: give --auth-secret or --auth-secret-file (or WSCHAT_AUTH_SECRET, \
                 WSCHAT_AUTH_SECRET_FILE, or the --config file)"
            ),
            MintError::Name(name, e) => write!(f, "{name:?} cannot be a name or room: {e}"),
            MintError::Ttl => write!(f, "--ttl must be a number of seconds more than 0"),
            MintError::Sign(e) => write!(f, "cannot sign: {e}"),
        }
    }
}

impl std::error::Error for MintError {}

/// Mints a token for `name`, valid for `ttl`, limited to `rooms` if any.
/// The name and rooms must meet the name rules, so that no token is made
/// that could never be used.
#[cfg(test)]
pub(crate) fn mint(
    secret: &Secret,
    name: &str,
    rooms: &[String],
    ttl: Duration,
) -> Result<String, MintError> {
    mint_as(secret, name, rooms, ttl, false)
}

/// [`mint`], for a moderator when `moderator`.
pub(crate) fn mint_as(
    secret: &Secret,
    name: &str,
    rooms: &[String],
    ttl: Duration,
    moderator: bool,
) -> Result<String, MintError> {
    let checked = |s: &str| names::name(s).map_err(|e| MintError::Name(s.to_owned(), e));
    let sub = checked(name)?.text;
    let rooms = rooms
        .iter()
        .map(|r| checked(r).map(|r| r.text))
        .collect::<Result<Vec<_>, _>>()?;
    if ttl.is_zero() {
        return Err(MintError::Ttl);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = Claims {
        sub,
        exp: (now + ttl).as_secs(),
        rooms: (!rooms.is_empty()).then_some(rooms),
        moderator,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.bytes()),
    )
    .map_err(MintError::Sign)
}

/// Checks an upgrade to the chat room before its 101 is sent. With a
/// secret: a `?token=` must be valid and allow the query's room and name
/// (the identity it carries is kept in `query`); without one, a raw client
/// (which has no join frame to carry one) or a v1 client joining from the
/// query is refused. A v1 client that will send a join frame may bring its
/// token there. Without a secret everything passes, as before.
// Out of line: only a server with a secret goes deeper, and a connection's
// thread keeps every stack page it touched (docs/ARCHITECTURE.md).
#[inline(never)]
pub(crate) fn admit_upgrade(
    config: &Config,
    mode: Mode,
    query: &mut RoomQuery,
) -> Result<(), AuthError> {
    let Some(secret) = secret(config) else {
        return Ok(());
    };
    let Some(token) = &query.token else {
        return match mode == Mode::Raw || query.name.is_some() {
            true => Err(AuthError::Missing),
            false => Ok(()),
        };
    };
    let identity = verify(secret, token)?;
    let room = match (mode, &query.room) {
        (_, Some(room)) => Some(room.as_str()),
        (Mode::Raw, None) => Some("lobby"),
        _ => None,
    };
    check(&identity, room, query.name.as_deref())?;
    query.identity = Some(identity);
    Ok(())
}

/// Who a v1 `join` frame comes from. With a secret: the frame's `token`, or
/// else the one verified at the upgrade, which must allow the room and the
/// name asked for. Without: the frame's `key`, if any.
// Out of line: only a server with a secret goes deeper, and a connection's
// thread keeps every stack page it touched (docs/ARCHITECTURE.md).
#[inline(never)]
pub(crate) fn owner_for_join(
    config: &Config,
    query: &RoomQuery,
    token: Option<&str>,
    key: Option<&str>,
    room: Option<&str>,
    name: Option<&str>,
) -> Result<Owner, AuthError> {
    let Some(secret) = secret(config) else {
        return match key {
            None => Ok(Owner::Nobody),
            Some(key) if valid_key(key) => Ok(Owner::Key(key.to_owned())),
            Some(_) => Err(AuthError::BadKey),
        };
    };
    let identity = match (token, &query.identity) {
        (Some(token), _) => verify(secret, token)?,
        (None, Some(identity)) => identity.clone(),
        (None, None) => return Err(AuthError::Missing),
    };
    let room = room.or(query.room.as_deref()).unwrap_or("lobby");
    check(&identity, Some(room), name.or(query.name.as_deref()))?;
    Ok(Owner::Subject(identity.subject))
}

/// Whether a join's token (the join frame's, else the query's) is a
/// moderator's. Only with a secret; a bad token is refused by the join.
// Out of line, as `owner_for_join`: only a server with a secret goes deeper.
#[inline(never)]
pub(crate) fn is_moderator(config: &Config, query: &RoomQuery, token: Option<&str>) -> bool {
    let Some(secret) = secret(config) else {
        return false;
    };
    match token {
        Some(token) => verify(secret, token).is_ok_and(|i| i.moderator),
        None => query.identity.as_ref().is_some_and(|i| i.moderator),
    }
}

/// Who a join made from the query comes from: the identity verified at
/// the upgrade, if any.
pub(crate) fn owner_of_query(query: &RoomQuery) -> Owner {
    query
        .identity
        .as_ref()
        .map_or(Owner::Nobody, |i| Owner::Subject(i.subject.clone()))
}

fn check(identity: &Identity, room: Option<&str>, name: Option<&str>) -> Result<(), AuthError> {
    if let Some(room) = room
        && !identity.allows(room)
    {
        return Err(AuthError::RoomForbidden(room.trim().to_owned()));
    }
    match name {
        Some(asked) if !identity.is_called(asked) => Err(AuthError::NameMismatch {
            subject: identity.subject.clone(),
            asked: asked.trim().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// A browser's key: random, so letters, digits, `-` and `_` (base64url)
/// are all it needs; long enough not to be guessed.
fn valid_key(key: &str) -> bool {
    KEY_CHARS.contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Runs a [`Tool`]: prints its result on stdout, or the error on stderr
/// with status 2 (the status of a bad option).
pub fn run_tool(tool: &Tool, config: &Config) -> ExitCode {
    let Tool::Token {
        name,
        rooms,
        ttl,
        moderator,
    } = tool;
    let minted = secret(config)
        .ok_or(MintError::NoSecret)
        .and_then(|secret| {
            let ttl = Duration::try_from_secs_f64(*ttl).map_err(|_| MintError::Ttl)?;
            mint_as(secret, name, rooms, ttl, *moderator)
        });
    match minted {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wschat token: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
