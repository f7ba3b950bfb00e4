/**
 * The Lua scripts a shared registry runs in Redis. Each is one atomic step:
 * what must agree (a line in a room's log and on its channel, a claim and
 * its owner, a dead server's members and their goodbyes) changes together
 * or not at all.
 *
 * Every script takes the cluster's key prefix as `ARGV[1]`. Keys under it:
 *
 * - `epoch`: a token set once; a different one after a reconnect means
 *   Redis lost its data (restarted without persistence).
 * - `instances` (sorted set: server id by heartbeat expiry) and
 *   `inst:ID` (the heartbeat, a key that expires).
 * - `of:ID` (set): the members a server holds, by owner (`ID:N`).
 * - `members` (hash: owner to JSON `{alias, key, joinedAt, away, room, since}`).
 * - `alias:KEY`: the owner of an alias; it expires unless refreshed.
 * - `rooms` (set of room keys); `room:KEY:meta` (hash: name, topic);
 *   `room:KEY:who` (sorted set: owner by presence expiry);
 *   `room:KEY:log` (stream: the room's capped history);
 *   `room:KEY:n` (how many lines the room's log was ever given).
 * - Channels: `room:KEY` for a room's events, `inbox:ID` for a server's
 *   private messages. A published event is `ID/N JSON` for a logged line
 *   (its stream id and number), or `- JSON`.
 *
 * @module
 */

/** Shared by every script: the clock, key names, presence and leaving. */
const PRELUDE = `
local p = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function roomk(rk, part)
  if part then return p .. 'room:' .. rk .. ':' .. part end
  return p .. 'room:' .. rk
end
local function drop_room(rk)
  redis.call('DEL', roomk(rk, 'meta'), roomk(rk, 'who'), roomk(rk, 'log'), roomk(rk, 'n'))
  redis.call('SREM', p .. 'rooms', rk)
end
local function prune(rk, t)
  redis.call('ZREMRANGEBYSCORE', roomk(rk, 'who'), '-inf', t)
  return redis.call('ZCARD', roomk(rk, 'who'))
end
local function publish(rk, id, event)
  redis.call('PUBLISH', roomk(rk), id .. ' ' .. event)
end
local function leave_room(rk, owner, event, default, t)
  if redis.call('ZREM', roomk(rk, 'who'), owner) == 0 then return end
  publish(rk, '-', event)
  if rk ~= default and prune(rk, t) == 0 then drop_room(rk) end
end
local function get_info(owner)
  local raw = redis.call('HGET', p .. 'members', owner)
  if not raw then return nil end
  local ok, info = pcall(cjson.decode, raw)
  if not ok or type(info) ~= 'table' then info = {} end
  return info
end
local function set_info(owner, changes)
  local info = get_info(owner) or {}
  for k, v in pairs(changes) do info[k] = v end
  redis.call('HSET', p .. 'members', owner, cjson.encode(info))
  return info
end
local function infos(owners)
  local out = {}
  for i = 1, #owners, 500 do
    local part = {}
    for j = i, math.min(i + 499, #owners) do part[#part + 1] = owners[j] end
    local got = redis.call('HMGET', p .. 'members', unpack(part))
    for j = 1, #part do out[#out + 1] = got[j] or '{}' end
  end
  return out
end
local function reap_owner(owner, reason, default, t)
  local info = get_info(owner)
  if not info then return end
  if type(info.room) == 'string' and info.room ~= '' then
    local alias = type(info.alias) == 'string' and info.alias or '?'
    local event = cjson.encode({k = 'leave', o = owner, alias = alias,
      reason = reason, to = '', ms = t, lost = true})
    leave_room(info.room, owner, event, default, t)
  end
  if type(info.key) == 'string' then
    local a = p .. 'alias:' .. info.key
    if redis.call('GET', a) == owner then redis.call('DEL', a) end
  end
  redis.call('HDEL', p .. 'members', owner)
end
local function reap(id, reason, default, t)
  local set = p .. 'of:' .. id
  local owners = redis.call('SMEMBERS', set)
  for _, owner in ipairs(owners) do reap_owner(owner, reason, default, t) end
  redis.call('DEL', set)
  return #owners
end
`;

/** A script and the name it is logged by. */
export interface Script {
  readonly name: string;
  readonly lua: string;
}

function script(name: string, body: string): Script {
  return { name, lua: PRELUDE + body };
}

/** ARGV: p, token. Sets the epoch if there is none; returns the epoch. */
export const EPOCH: Script = script(
  "epoch",
  `
redis.call('SET', p .. 'epoch', ARGV[2], 'NX')
return redis.call('GET', p .. 'epoch')
`,
);

/**
 * ARGV: p, server id, owner, alias key, info JSON, alias ttl (ms). Claims an
 * alias for a new member: 1, or 0 if someone holds it.
 */
export const CLAIM: Script = script(
  "claim",
  `
if not redis.call('SET', p .. 'alias:' .. ARGV[4], ARGV[3], 'NX', 'PX', ARGV[6]) then return 0 end
redis.call('SADD', p .. 'of:' .. ARGV[2], ARGV[3])
redis.call('HSET', p .. 'members', ARGV[3], ARGV[5])
return 1
`,
);

/**
 * ARGV: p, server id, owner, alias key. Gives up a member's alias (the one
 * given, and the one its record names, if it holds either) and record.
 */
export const RELEASE: Script = script(
  "release",
  `
local a = p .. 'alias:' .. ARGV[4]
if redis.call('GET', a) == ARGV[3] then redis.call('DEL', a) end
local info = get_info(ARGV[3])
if info and type(info.key) == 'string' then
  local b = p .. 'alias:' .. info.key
  if redis.call('GET', b) == ARGV[3] then redis.call('DEL', b) end
end
redis.call('HDEL', p .. 'members', ARGV[3])
redis.call('SREM', p .. 'of:' .. ARGV[2], ARGV[3])
return 1
`,
);

/**
 * ARGV: p, owner, room key, room name, default room key, most rooms, the
 * key of the room it leaves (or ""), that room's leave event, the join
 * event, presence ttl (ms), history lines wanted.
 *
 * Moves a member into a room (leaving the one it was in), publishes its
 * join, and returns `{1, name, topic, tip, infos, history, n}`: the room's
 * name as made, its topic, its newest stream id ("0-0" if none), every
 * member's info JSON, the newest history entries, newest first, and the
 * number of the newest line. `{0}`
 * if the room would be one too many.
 */
export const ENTER: Script = script(
  "enter",
  `
local t = now()
local owner, rk, default, from = ARGV[2], ARGV[3], ARGV[5], ARGV[7]
if rk ~= default and redis.call('SISMEMBER', p .. 'rooms', rk) == 0 then
  local n = redis.call('SCARD', p .. 'rooms')
  if redis.call('SISMEMBER', p .. 'rooms', default) == 0 then n = n + 1 end
  if from ~= '' and from ~= default and prune(from, t) == 1
    and redis.call('ZSCORE', roomk(from, 'who'), owner) then n = n - 1 end
  if n >= tonumber(ARGV[6]) then return {0} end
end
if from ~= '' then leave_room(from, owner, ARGV[8], default, t) end
redis.call('SADD', p .. 'rooms', rk)
redis.call('HSETNX', roomk(rk, 'meta'), 'name', ARGV[4])
set_info(owner, {room = rk, since = redis.call('INCR', p .. 'seq')})
prune(rk, t)
redis.call('ZADD', roomk(rk, 'who'), t + tonumber(ARGV[10]), owner)
publish(rk, '-', ARGV[9])
local meta = redis.call('HMGET', roomk(rk, 'meta'), 'name', 'topic')
local newest = redis.call('XREVRANGE', roomk(rk, 'log'), '+', '-', 'COUNT', 1)
local tip = newest[1] and newest[1][1] or '0-0'
local history = {}
local wanted = tonumber(ARGV[11])
if wanted > 0 then
  history = redis.call('XREVRANGE', roomk(rk, 'log'), '+', '-', 'COUNT', wanted)
end
return {1, meta[1] or ARGV[4], meta[2] or '', tip,
  infos(redis.call('ZRANGE', roomk(rk, 'who'), 0, -1)), history,
  redis.call('GET', roomk(rk, 'n')) or '0'}
`,
);

/** ARGV: p, owner, room key, default room key, leave event. Takes a member out of its room. */
export const LEAVE: Script = script(
  "leave",
  `
leave_room(ARGV[3], ARGV[2], ARGV[5], ARGV[4], now())
if redis.call('HEXISTS', p .. 'members', ARGV[2]) == 1 then set_info(ARGV[2], {room = ''}) end
return 1
`,
);

/**
 * ARGV: p, room key, log length, event. Appends a line to the room's log
 * and publishes it with its stream id and its number in the room
 * (`ID/N`), in that order and at once, so live delivery and history agree;
 * returns the id. The numbers have no gaps, so whoever replays the log can
 * tell when it no longer reaches back far enough.
 */
export const SAY: Script = script(
  "say",
  `
local n = redis.call('INCR', roomk(ARGV[2], 'n'))
local id = redis.call('XADD', roomk(ARGV[2], 'log'), 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[4],
  'n', n)
publish(ARGV[2], id .. '/' .. n, ARGV[4])
return id
`,
);

/** ARGV: p, room key, event. Publishes an event that is not kept (a notice). */
export const PUBLISH: Script = script(
  "publish",
  `
publish(ARGV[2], '-', ARGV[3])
return 1
`,
);

/** ARGV: p, room key, topic, event. Sets the topic and tells the room. */
export const TOPIC: Script = script(
  "topic",
  `
redis.call('HSET', roomk(ARGV[2], 'meta'), 'topic', ARGV[3])
publish(ARGV[2], '-', ARGV[4])
return 1
`,
);

/**
 * ARGV: p, owner, old alias key, new alias key, room key (or ""), nick
 * event, alias ttl (ms), new alias. Trades one alias for another and tells
 * the room: 1, or 0 if the new one is held (or the old one is not ours).
 */
export const RENAME: Script = script(
  "rename",
  `
local old, new = p .. 'alias:' .. ARGV[3], p .. 'alias:' .. ARGV[4]
if redis.call('GET', old) ~= ARGV[2] then return 0 end
if ARGV[3] ~= ARGV[4] then
  if not redis.call('SET', new, ARGV[2], 'NX', 'PX', ARGV[7]) then return 0 end
  redis.call('DEL', old)
end
set_info(ARGV[2], {alias = ARGV[8], key = ARGV[4]})
if ARGV[5] ~= '' then publish(ARGV[5], '-', ARGV[6]) end
return 1
`,
);

/**
 * ARGV: p, alias key, the owner it must have (or ""), event. Sends a
 * private line to the server that holds the alias, or, with an owner, to
 * that member whatever its alias is now: `{1, owner, info}`, or `{0}` if
 * no live server holds it.
 */
export const WHISPER: Script = script(
  "whisper",
  `
local owner = ARGV[3]
if owner == '' then
  owner = redis.call('GET', p .. 'alias:' .. ARGV[2])
  if not owner then return {0} end
elseif redis.call('HEXISTS', p .. 'members', owner) == 0 then
  return {0}
end
local id = string.match(owner, '^(.-):')
if not id then return {0} end
if redis.call('PUBLISH', p .. 'inbox:' .. id, owner .. ' ' .. ARGV[4]) == 0 then return {0} end
return {1, owner, redis.call('HGET', p .. 'members', owner) or '{}'}
`,
);

/**
 * ARGV: p, server id, heartbeat ttl, presence ttl, alias ttl, rejoin ("1"
 * to announce members whose presence had gone), then seven per member:
 * owner, room key (or ""), room name, alias, alias key, away, joinedAt.
 *
 * The heartbeat: refreshes the server's key, its members' presence and
 * aliases (claiming again one that expired). Returns `{fresh, lost, t}`:
 * whether the server had been taken for dead (or Redis forgot it), the
 * owners whose alias someone else holds now, and Redis's clock (ms).
 */
export const BEAT: Script = script(
  "beat",
  `
local t = now()
local id = ARGV[2]
redis.call('SET', p .. 'inst:' .. id, '1', 'PX', ARGV[3])
local fresh = redis.call('ZADD', p .. 'instances', t + tonumber(ARGV[3]), id)
local lost = {}
for i = 7, #ARGV, 7 do
  local owner, rk, name, alias, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local a = p .. 'alias:' .. key
  local holder = redis.call('GET', a)
  if holder == owner or (not holder and redis.call('SET', a, owner, 'NX', 'PX', ARGV[5])) then
    redis.call('PEXPIRE', a, ARGV[5])
    redis.call('SADD', p .. 'of:' .. id, owner)
    local info = set_info(owner, {alias = alias, key = key, away = ARGV[i + 5],
      joinedAt = tonumber(ARGV[i + 6]), room = rk})
    if not info.since then set_info(owner, {since = redis.call('INCR', p .. 'seq')}) end
    if rk ~= '' then
      redis.call('SADD', p .. 'rooms', rk)
      redis.call('HSETNX', roomk(rk, 'meta'), 'name', name)
      local added = redis.call('ZADD', roomk(rk, 'who'), t + tonumber(ARGV[4]), owner)
      if added == 1 and ARGV[6] == '1' then
        publish(rk, '-', cjson.encode({k = 'join', o = owner, alias = alias, ms = t, again = true}))
      end
    end
  else
    lost[#lost + 1] = owner
  end
end
return {fresh, lost, t}
`,
);

/**
 * ARGV: p, this server's id, default room key, reason. Finds servers whose
 * heartbeat has expired and, for each, announces every member of it as
 * gone and frees its aliases. A dead server is taken off the list in the
 * same step, so exactly one survivor does this, once. Returns how many
 * members were let go.
 */
export const REAP: Script = script(
  "reap",
  `
local t = now()
local gone = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'instances', '-inf', t)) do
  if id ~= ARGV[2] and redis.call('EXISTS', p .. 'inst:' .. id) == 0 then
    redis.call('ZREM', p .. 'instances', id)
    gone = gone + reap(id, ARGV[4], ARGV[3], t)
  end
end
return gone
`,
);

/**
 * ARGV: p, this server's id, default room key, reason. A server that stops
 * says goodbye for each of its members and leaves the list.
 */
export const BYE: Script = script(
  "bye",
  `
redis.call('ZREM', p .. 'instances', ARGV[2])
redis.call('DEL', p .. 'inst:' .. ARGV[2])
return reap(ARGV[2], ARGV[4], ARGV[3], now())
`,
);

/**
 * ARGV: p, this server's id, default room key, reason, then the owners it
 * still holds. After the link was down: each member it held then and holds
 * no more is announced as gone and let go.
 */
export const RECONCILE: Script = script(
  "reconcile",
  `
local t = now()
local live = {}
for i = 5, #ARGV do live[ARGV[i]] = true end
local set = p .. 'of:' .. ARGV[2]
local gone = 0
for _, owner in ipairs(redis.call('SMEMBERS', set)) do
  if not live[owner] then
    reap_owner(owner, ARGV[4], ARGV[3], t)
    redis.call('SREM', set, owner)
    gone = gone + 1
  end
end
return gone
`,
);

/**
 * ARGV: p, default room key. Every room with someone in it (and the
 * default room), as `{key, name, members, topic}`; rooms whose presence
 * has all expired are dropped on the way.
 */
export const SURVEY: Script = script(
  "survey",
  `
local t = now()
local out = {}
for _, rk in ipairs(redis.call('SMEMBERS', p .. 'rooms')) do
  local n = prune(rk, t)
  if n == 0 and rk ~= ARGV[2] then
    drop_room(rk)
  else
    local meta = redis.call('HMGET', roomk(rk, 'meta'), 'name', 'topic')
    out[#out + 1] = {rk, meta[1] or rk, n, meta[2] or ''}
  end
end
return out
`,
);

/** ARGV: p, room key. The info JSON of everyone whose presence is live. */
export const ROSTER: Script = script(
  "roster",
  `
prune(ARGV[2], now())
return infos(redis.call('ZRANGE', roomk(ARGV[2], 'who'), 0, -1))
`,
);

/** Every script, loaded on each (re)connection before anything runs. */
export const SCRIPTS: readonly Script[] = [
  EPOCH,
  CLAIM,
  RELEASE,
  ENTER,
  LEAVE,
  SAY,
  PUBLISH,
  TOPIC,
  RENAME,
  WHISPER,
  BEAT,
  REAP,
  BYE,
  RECONCILE,
  SURVEY,
  ROSTER,
];
