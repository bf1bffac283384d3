//! The Lua scripts that keep a room's state consistent across instances:
//! each runs atomically in Redis, touching only the keys of one room.

use redis::Script;

/// The part shared by every script that reads or writes a room's history:
/// a room starts a new epoch, and whatever was left of its stream and files
/// is dropped with it, so ids start again at 1 only under a new epoch, when
/// its `meta` hash is gone (Redis restarted without persistence, or the key
/// was flushed), or, in a Redis Cluster, when a master other than the one
/// that last wrote it holds it: a replica that took over may lack the
/// newest writes (replication is asynchronous), and ids must never be given
/// twice. `node` is `CLUSTER MYID` when `clustered` is '1', else '' (a
/// single Redis answers `CLUSTER` with an error, which its error counts
/// would show).
const ENSURE_EPOCH: &str = r#"
local function ensure_epoch(meta, log, files, fileq, fresh, clustered)
  local me = ''
  if clustered == '1' then me = redis.call('CLUSTER', 'MYID') end
  local new = redis.call('HSETNX', meta, 'epoch', fresh) == 1
  if not new and (redis.call('HGET', meta, 'node') or '') ~= me then
    redis.call('HSET', meta, 'epoch', fresh)
    new = true
  end
  if new then
    redis.call('DEL', log, files, fileq)
    redis.call('HSET', meta, 'seq', 0, 'file_bytes', 0, 'node', me)
  end
  return redis.call('HGET', meta, 'epoch')
end
"#;

/// KEYS: meta, log, files, fileq, sent.
/// ARGV: fresh epoch, max stream length, dedup seconds, entry (JSON after
/// its `id` and `epoch`), the room's channel, is file ('1'/'0'), file
/// bytes, retained file bytes, the publishing command (`SPUBLISH` or
/// `PUBLISH`), in a cluster ('1'/'0').
/// Returns `{epoch, id, duplicate}`: a key already sent returns the id it
/// was given then, and nothing is added or published.
const APPEND: &str = r#"
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[10])
local old = redis.call('GET', KEYS[5])
if old then return {epoch, tonumber(old), 1} end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local entry = '{"t":"m","id":' .. id .. ',"epoch":"' .. epoch .. '",' .. ARGV[4]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. id, 'e', entry)
redis.call('SET', KEYS[5], id, 'EX', ARGV[3])
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[3], id, ARGV[7])
  redis.call('RPUSH', KEYS[4], id .. ':' .. #ARGV[7])
  local total = redis.call('HINCRBY', KEYS[1], 'file_bytes', #ARGV[7])
  while total > tonumber(ARGV[8]) do
    local head = redis.call('LPOP', KEYS[4])
    if not head then break end
    local sep = string.find(head, ':', 1, true)
    redis.call('HDEL', KEYS[3], string.sub(head, 1, sep - 1))
    total = redis.call('HINCRBY', KEYS[1], 'file_bytes', -tonumber(string.sub(head, sep + 1)))
  end
end
redis.call(ARGV[9], ARGV[5], entry)
return {epoch, id, 0}
"#;

/// KEYS: meta, log, files, fileq, names.
/// ARGV: fresh epoch, first stream id, last stream id, count (0: none),
/// newest first ('1') or oldest first ('0'), alive prefix, in a cluster
/// ('1'/'0').
/// Returns `{epoch, last id, {entry, file kept}…, names held by a live
/// instance}`.
const READ: &str = r#"
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[7])
local seq = redis.call('HGET', KEYS[1], 'seq')
local rows = {}
if tonumber(ARGV[4]) > 0 then
  if ARGV[5] == '1' then
    rows = redis.call('XREVRANGE', KEYS[2], ARGV[3], ARGV[2], 'COUNT', ARGV[4])
  else
    rows = redis.call('XRANGE', KEYS[2], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
  end
end
local out = {}
for i, row in ipairs(rows) do
  local id = string.sub(row[1], 3)
  out[i] = {row[2][2], redis.call('HEXISTS', KEYS[3], id)}
end
local members = {}
local all = redis.call('HGETALL', KEYS[5])
for i = 2, #all, 2 do
  local parts = split(all[i])
  if #alive(ARGV[6], parts) > 0 then members[#members + 1] = parts[2] end
end
return {epoch, seq, out, members}
"#;

/// Splits a `names` value: owner, name, then the holding instances.
const SPLIT: &str = r#"
local function split(v)
  local parts = {}
  for p in string.gmatch(v, '[^\t]+') do parts[#parts + 1] = p end
  return parts
end
local function alive(prefix, parts)
  local live = {}
  for i = 3, #parts do
    if redis.call('EXISTS', prefix .. parts[i]) == 1 then live[#live + 1] = parts[i] end
  end
  return live
end
"#;

/// KEYS: names. ARGV: skeleton, owner ('-' for nobody), name, instance,
/// alive prefix, alive seconds.
/// Returns `{1, name, first, stale}` when the claim holds (`name` as the
/// holder spells it; `first` when nobody held it on any live instance;
/// `stale` the name of a dead instance's holder it replaced, or ''), or
/// `{0, holder}` when someone else holds it.
const CLAIM: &str = r#"
redis.call('SET', ARGV[5] .. ARGV[4], 1, 'EX', ARGV[6])
local v = redis.call('HGET', KEYS[1], ARGV[1])
local stale = ''
if v then
  local parts = split(v)
  local live = alive(ARGV[5], parts)
  if #live > 0 then
    if parts[1] == '-' or parts[1] ~= ARGV[2] then return {0, parts[2]} end
    local here = false
    for _, i in ipairs(live) do if i == ARGV[4] then here = true end end
    if not here then live[#live + 1] = ARGV[4] end
    redis.call('HSET', KEYS[1], ARGV[1], parts[1] .. '\t' .. parts[2] .. '\t' .. table.concat(live, '\t'))
    return {1, parts[2], 0, ''}
  end
  stale = parts[2]
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\t' .. ARGV[3] .. '\t' .. ARGV[4])
return {1, ARGV[3], 1, stale}
"#;

/// KEYS: names. ARGV: skeleton, instance.
/// Returns the name when nobody holds it any more, else ''.
const RELEASE: &str = r#"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return '' end
local parts = split(v)
local rest = {}
for i = 3, #parts do if parts[i] ~= ARGV[2] then rest[#rest + 1] = parts[i] end end
if #rest == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return parts[2]
end
redis.call('HSET', KEYS[1], ARGV[1], parts[1] .. '\t' .. parts[2] .. '\t' .. table.concat(rest, '\t'))
return ''
"#;

/// KEYS: names. ARGV: alive prefix.
/// Drops the instances whose liveness key expired; returns the names no
/// live instance holds any more (each returned to one caller only).
const REAP: &str = r#"
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local parts = split(all[i + 1])
  local live = alive(ARGV[1], parts)
  if #live == 0 then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = parts[2]
  elseif #live < #parts - 2 then
    redis.call('HSET', KEYS[1], all[i], parts[1] .. '\t' .. parts[2] .. '\t' .. table.concat(live, '\t'))
  end
end
return gone
"#;

/// Every script, compiled once (their SHA1s are computed here; Redis
/// learns each on first use).
pub struct Scripts {
    pub append: Script,
    pub read: Script,
    pub claim: Script,
    pub release: Script,
    pub reap: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            append: Script::new(&format!("{ENSURE_EPOCH}{APPEND}")),
            read: Script::new(&format!("{ENSURE_EPOCH}{SPLIT}{READ}")),
            claim: Script::new(&format!("{SPLIT}{CLAIM}")),
            release: Script::new(&format!("{SPLIT}{RELEASE}")),
            reap: Script::new(&format!("{SPLIT}{REAP}")),
        }
    }
}
