"""outbound: the Lua scripts behind the campaign state (see ``state``), one per transition.

Why: every change of a contact's status is a compare-and-set run inside Redis (scripts run one
at a time), so two dialers, a crash between two writes or an outcome recorded twice can never
call a contact twice or count an attempt twice. Each script also moves the campaign's per-status
counters (``n:<status>``), so a progress report reads one hash instead of every contact.
Contact keys are built inside CLAIM (it only learns the id there): fine on a single Redis, not
on a cluster, like the rest of this repo.
"""

from __future__ import annotations

# Store new contacts; keep every contact already there (only a never-attempted pending one takes
# the new details). KEYS: campaign, order list, due zset, contact hashes...; ARGV: now, name,
# flow, spec json, then (id, sealed contact json, due score, its digest) per contact key: the
# scores rise a microsecond per row (all <= now), so contacts due at once are called in file
# order. Ciphertext differs on every write, so "the details changed" is judged by the digest.
LOAD = """
local now = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'name', ARGV[2], 'status', 'running', 'reason', '', 'created', now)
end
redis.call('HSET', KEYS[1], 'flow', ARGV[3], 'spec', ARGV[4], 'updated', now)
local added, updated = 0, 0
for i = 4, #KEYS do
  local id, doc, score, digest, key = ARGV[4 * i - 11], ARGV[4 * i - 10], ARGV[4 * i - 9], ARGV[4 * i - 8], KEYS[i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'id', id, 'contact', doc, 'digest', digest, 'status', 'pending',
               'attempts', 0, 'next_at', score, 'updated', now)
    redis.call('RPUSH', KEYS[2], id)
    redis.call('ZADD', KEYS[3], score, id)
    redis.call('HINCRBY', KEYS[1], 'n:pending', 1)
    added = added + 1
  elseif redis.call('HGET', key, 'status') == 'pending' and redis.call('HGET', key, 'attempts') == '0'
         and redis.call('HGET', key, 'digest') ~= digest then
    redis.call('HSET', key, 'contact', doc, 'digest', digest, 'updated', now)
    updated = updated + 1
  end
end
if added > 0 and redis.call('HGET', KEYS[1], 'status') == 'done' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'reason', '')
end
return {added, updated}
"""

# The earliest due pending/deferred contact -> dialing, attempts + 1, a new attempt id. Nothing
# unless the campaign is running. KEYS: campaign, due, dialing; ARGV: now, attempt id, contact
# key prefix. Returns {id, sealed contact json, attempts} or nil.
CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
for _ = 1, 100 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #ids == 0 then return false end
  local id = ids[1]
  local key = ARGV[3] .. id
  redis.call('ZREM', KEYS[2], id)
  local status = redis.call('HGET', key, 'status')
  if status == 'pending' or status == 'deferred' then
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'status', 'dialing', 'prev_status', status, 'attempt_id', ARGV[2],
               'updated', ARGV[1])
    redis.call('HDEL', key, 'originating')
    redis.call('SADD', KEYS[3], id)
    redis.call('HINCRBY', KEYS[1], 'n:' .. status, -1)
    redis.call('HINCRBY', KEYS[1], 'n:dialing', 1)
    return {id, redis.call('HGET', key, 'contact'), attempts}
  end
end
return false
"""

# The last step before the call is placed: only for the current attempt of a running campaign
# (a pause or cancel since the claim wins). KEYS: contact, campaign; ARGV: attempt id, now.
ORIGINATING = """
if redis.call('HGET', KEYS[2], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'dialing' or redis.call('HGET', KEYS[1], 'attempt_id') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'originating', ARGV[1], 'updated', ARGV[2])
return 1
"""

# Undo a claim that never dialled (outside the window, paused meanwhile, a crash before the
# call): status back, attempts - 1, due at next_at. KEYS: contact, campaign, due, dialing;
# ARGV: attempt id, next_at, now, id.
RELEASE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'dialing' or redis.call('HGET', KEYS[1], 'attempt_id') ~= ARGV[1] then
  return 0
end
local prev = redis.call('HGET', KEYS[1], 'prev_status') or 'pending'
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('HSET', KEYS[1], 'status', prev, 'next_at', ARGV[2], 'updated', ARGV[3])
redis.call('HDEL', KEYS[1], 'attempt_id', 'originating')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
redis.call('SREM', KEYS[4], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'n:dialing', -1)
redis.call('HINCRBY', KEYS[2], 'n:' .. prev, 1)
return 1
"""

# End the current attempt, once: a repeat (or a stale attempt id) changes nothing and returns
# {0, status}. mode 'outcome' -> deferred (retryable and attempts left, due at next_at), done
# (answered) or failed; 'dnc' -> dnc (never dialled: attempts - 1); 'interrupted'.
# KEYS: contact, campaign, due, dialing; ARGV: attempt id, id, now, mode, outcome, cause,
# session id, sealed flow result json, duration, retryable 0/1, answered 0/1, max attempts, next_at,
# reason.
FINISH = """
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if status ~= 'dialing' or redis.call('HGET', key, 'attempt_id') ~= ARGV[1] then
  return {0, status or ''}
end
if ARGV[4] == 'dnc' then
  status = 'dnc'
  redis.call('HINCRBY', key, 'attempts', -1)
elseif ARGV[4] == 'interrupted' then
  status = 'interrupted'
else
  local attempts = tonumber(redis.call('HGET', key, 'attempts'))
  if ARGV[10] == '1' and attempts < tonumber(ARGV[12]) then
    status = 'deferred'
    redis.call('HSET', key, 'next_at', ARGV[13])
    redis.call('ZADD', KEYS[3], ARGV[13], ARGV[2])
  elseif ARGV[11] == '1' then
    status = 'done'
  else
    status = 'failed'
  end
  redis.call('HSET', key, 'outcome', ARGV[5], 'cause', ARGV[6], 'session_id', ARGV[7],
             'flow_result', ARGV[8], 'duration_s', ARGV[9], 'last_attempt_id', ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  redis.call('HINCRBY', KEYS[2], 'o:' .. ARGV[5], 1)
end
redis.call('HSET', key, 'status', status, 'reason', ARGV[14], 'updated', ARGV[3])
redis.call('HDEL', key, 'originating')
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'n:dialing', -1)
redis.call('HINCRBY', KEYS[2], 'n:' .. status, 1)
return {1, status}
"""

# Campaign status change, only from one of the allowed ones; 'done' only when nothing is due or
# dialing. KEYS: campaign, due, dialing; ARGV: new status, reason, now, allowed from...
SET_STATUS = """
local cur = redis.call('HGET', KEYS[1], 'status')
local allowed = false
for i = 4, #ARGV do if ARGV[i] == cur then allowed = true end end
if not allowed then return 0 end
if ARGV[1] == 'done' and (redis.call('ZCARD', KEYS[2]) > 0 or redis.call('SCARD', KEYS[3]) > 0) then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'updated', ARGV[3])
return 1
"""
