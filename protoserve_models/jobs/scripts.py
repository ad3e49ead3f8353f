"""The Lua scripts that change a job's record: each runs atomically inside Redis.

Every change a worker makes is conditional on it still owning the job (the record's ``owner``
is the token of the current run), so a worker that was presumed dead and comes back can never
report a job, mix its results into another run's, or ack a message someone else now holds.
All scripts take KEYS = record, input, queue stream, events stream, dead-letter stream and
ARGV = group, message id, run token, now, ttl of finished jobs, idempotency key prefix, ...
"""

from __future__ import annotations

_PRELUDE = """
local record, input, stream, events, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, msg, token, now, ttl, idem_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local function is_final(state)
  return state == 'SUCCEEDED' or state == 'FAILED' or state == 'CANCELLED'
end
local function ack()
  if msg ~= '' then
    redis.call('XACK', stream, group, msg)
    redis.call('XDEL', stream, msg)
  end
end
-- Move the job to a final state, drop its input, and keep the record ttl seconds.
local function final(state, err)
  redis.call('HSET', record, 'state', state, 'finished', now, 'owner', '')
  if err then redis.call('HSET', record, 'error', err) end
  redis.call('DEL', input)
  redis.call('EXPIRE', record, ttl)
  local idem = redis.call('HGET', record, 'idem')
  if idem and idem ~= '' then redis.call('EXPIRE', idem_prefix .. idem, ttl) end
  local id = redis.call('HGET', record, 'id')
  redis.call('XADD', events, 'MAXLEN', '~', 100000, '*', 'job', id, 'state', state)
  if state == 'FAILED' then
    redis.call('XADD', dead, 'MAXLEN', '~', 100000, '*', 'job', id, 'error', err or '')
  end
end
"""

# ARGV[7] consumer name, ARGV[8] max attempts. Returns ok | final | gone | dead.
CLAIM = _PRELUDE + """
local state = redis.call('HGET', record, 'state')
if not state then ack() return 'gone' end
if is_final(state) then ack() return 'final' end
local attempts = tonumber(redis.call('HGET', record, 'attempts') or '0')
if state == 'RUNNING' then
  local who = redis.call('HGET', record, 'worker') or '?'
  redis.call('HSET', record, 'error', 'attempt ' .. attempts .. ' stopped without finishing (worker ' .. who .. ')')
end
if attempts >= tonumber(ARGV[8]) then
  final('FAILED', 'gave up after ' .. attempts .. ' attempts; last error: ' .. (redis.call('HGET', record, 'error') or ''))
  ack()
  return 'dead'
end
redis.call('HSET', record, 'state', 'RUNNING', 'attempts', attempts + 1, 'owner', token,
           'worker', ARGV[7], 'started', now, 'rows_done', 0)
return 'ok'
"""

# ARGV[7] rows done, ARGV[8] consumer name. Returns ok | stop (final: cancelled) | lost (another run owns it).
PROGRESS = _PRELUDE + """
local state = redis.call('HGET', record, 'state')
if not state or is_final(state) then ack() return 'stop' end
if redis.call('HGET', record, 'owner') ~= token then return 'lost' end
redis.call('HSET', record, 'rows_done', ARGV[7])
-- Heartbeat: reset the message's idle time so that it is not reclaimed while we work.
redis.call('XCLAIM', stream, group, ARGV[8], 0, msg, 'JUSTID')
return 'ok'
"""

# ARGV[7] number of result pages. Returns 1 when this run completed the job, 0 otherwise.
FINISH = _PRELUDE + """
local state = redis.call('HGET', record, 'state')
if not state or is_final(state) then ack() return 0 end
if redis.call('HGET', record, 'owner') ~= token then return 0 end
local pages = tonumber(ARGV[7])
redis.call('HSET', record, 'pages', pages, 'run', token, 'rows_done', redis.call('HGET', record, 'rows_total'))
for i = 0, pages - 1 do
  redis.call('EXPIRE', record .. ':run:' .. token .. ':page:' .. i, ttl)
end
final('SUCCEEDED', nil)
ack()
return 1
"""

# ARGV[7] mode: fail (for good) | retry (after an error) | shutdown (the worker stops; not an attempt),
# ARGV[8] error, ARGV[9] max attempts. Returns 1 when the job was released, 0 when not ours.
RELEASE = _PRELUDE + """
local state = redis.call('HGET', record, 'state')
if not state or is_final(state) then ack() return 0 end
if redis.call('HGET', record, 'owner') ~= token then return 0 end
local mode, err = ARGV[7], ARGV[8]
if mode == 'fail' then final('FAILED', err) ack() return 1 end
local attempts = tonumber(redis.call('HGET', record, 'attempts') or '0')
if mode == 'shutdown' then
  attempts = attempts - 1
  redis.call('HSET', record, 'attempts', attempts)
else
  redis.call('HSET', record, 'error', err)
  if attempts >= tonumber(ARGV[9]) then
    final('FAILED', 'gave up after ' .. attempts .. ' attempts; last error: ' .. err)
    ack()
    return 1
  end
end
ack()
redis.call('XADD', stream, '*', 'job', redis.call('HGET', record, 'id'))
redis.call('HSET', record, 'state', 'QUEUED', 'owner', '', 'worker', '', 'rows_done', 0)
return 1
"""

# No message or token (ARGV[2], ARGV[3] empty). Returns ok, missing, or the final state the job is in.
CANCEL = _PRELUDE + """
local state = redis.call('HGET', record, 'state')
if not state then return 'missing' end
if is_final(state) then return state end
final('CANCELLED', nil)
return 'ok'
"""

# KEYS = record, input, queue stream, index, idempotency key.
# ARGV = job id, input bytes, creation score, has idempotency key (1/0), request fingerprint, field, value, ...
# Returns {1, id} when queued, or {0, "id fingerprint"} when the idempotency key was used before.
SUBMIT = """
if ARGV[4] == '1' then
  local existing = redis.call('GET', KEYS[5])
  if existing then return {0, existing} end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'job', ARGV[1])
if ARGV[4] == '1' then redis.call('SET', KEYS[5], ARGV[1] .. ' ' .. ARGV[5]) end
return {1, ARGV[1]}
"""
