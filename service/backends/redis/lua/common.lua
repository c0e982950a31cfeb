-- Shared by every Taskwire script (prepended to each when it is loaded).
--
-- Keys: KEYS[1] is a key of this service (so a cluster routes the script to its slot); every
-- key is the prefix ARGV[1] (which holds one hash tag, e.g. "{taskwire}:") plus a name:
--   task:<id>  hash: the task's fields as JSON fragments, its JSON, and its bookkeeping
--   tasks      zset: every task id, scored by creation order (lists are newest first)
--   queue      zset: queued task ids, scored by priority rank * 2^40 + creation order
--   processing zset: claimed task ids, scored by lease deadline (server ms)
--   finished   zset: finished task ids, scored by finish time (ms), for TTL and eviction
--   counts     hash: tasks per status
--   events     stream: one entry per event, id "<event id>-0"
--   eid, seq, token: counters
-- ARGV[2] is the caller's wall clock in microseconds; ARGV[3] the history's length.

local P = ARGV[1]
local NOW_US = tonumber(ARGV[2])
local HISTORY = ARGV[3]

-- A task's fields, in the order of the task resource, then its bookkeeping: the claim's
-- token, a cancel asked for, the planned run time (a fragment), how many times its worker
-- was lost. fetch() reads them all at once. (This prelude runs on every call: it builds no
-- table it can do without.)
local LOADED = {'task_id', 'task_type', 'status', 'priority', 'parameters', 'progress',
  'eta_s', 'result', 'error', 'attempt', 'created_at', 'started_at', 'finished_at', 'owner',
  'token', 'cancel', 'planned', 'lost'}
local TOKEN, CANCEL, PLANNED, LOST = 15, 16, 17, 18
local RANK = {high = 0, normal = 1, low = 2}
local TWO_40 = 1099511627776

local function task_key(id) return P .. 'task:' .. id end

local function int(n) return string.format('%d', n) end

-- A task's fields and bookkeeping (LOADED), false for those it does not have.
local function fetch(key) return redis.call('HMGET', key, unpack(LOADED)) end

-- The task's JSON, in the field order of the task resource: its fields `f` (fetch()'s) with
-- the changes `c` (field = value) over them. A task's id, type, priority, parameters,
-- creation time and owner never change.
local function to_json(f, c)
  local json = '{"task_id":"' .. f[1] .. '","task_type":"' .. f[2] .. '","status":"'
    .. (c.status or f[3]) .. '","priority":"' .. f[4] .. '","parameters":' .. f[5]
    .. ',"progress":' .. (c.progress or f[6]) .. ',"eta_s":' .. (c.eta_s or f[7])
    .. ',"result":' .. (c.result or f[8]) .. ',"error":' .. (c.error or f[9])
    .. ',"attempt":' .. (c.attempt or f[10]) .. ',"created_at":' .. f[11]
    .. ',"started_at":' .. (c.started_at or f[12]) .. ',"finished_at":' .. (c.finished_at or f[13])
  if f[14] then json = json .. ',"owner":"' .. f[14] .. '"' end  -- API keys on: the key's name
  return json .. '}'
end

-- Records one event; returns its id. Ids are consecutive integers, starting at the clock in
-- microseconds the first time (so they keep increasing if the counter is ever lost).
local function record(name, id, task_type, status, data, owner)
  local eid = redis.call('INCR', P .. 'eid')
  if eid == 1 then
    eid = NOW_US
    redis.call('SET', P .. 'eid', int(eid))
  end
  redis.call('XADD', P .. 'events', 'MAXLEN', '~', HISTORY, int(eid) .. '-0',
    'n', name, 't', id, 'y', task_type, 's', status, 'd', data, 'o', owner or '',
    'a', int(NOW_US))
  if name ~= 'cancel' then
    redis.call('HINCRBY', P .. 'eventcounts', name, 1)
    -- The task's own event ids (its latest 200), for its timeline.
    if redis.call('RPUSH', P .. 'tev:' .. id, int(eid)) > 200 then
      redis.call('LTRIM', P .. 'tev:' .. id, -200, -1)
    end
  end
  return eid
end

-- Moves a task whose fields `f` were just read (fetch()) to a status: the `changes` (field =
-- value) and the status written with its new JSON and event id in one HSET, the counts, and
-- the event. Returns the JSON.
local function move(id, f, status, changes, name)
  changes.status = status
  local json = to_json(f, changes)
  changes.json = json
  changes.v = int(record(name or ('task.' .. status), id, f[2], status, json, f[14]))
  local args = {}
  for field, value in pairs(changes) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  redis.call('HSET', task_key(id), unpack(args))
  if f[3] ~= status then
    redis.call('HINCRBY', P .. 'counts', f[3], -1)
    redis.call('HINCRBY', P .. 'counts', status, 1)
  end
  return json
end

local function enqueue(id, priority)
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('ZADD', P .. 'queue', RANK[priority] * TWO_40 + seq, id)
end

-- Removes a finished task for good, with its task.expired event.
local function remove(id)
  local key = task_key(id)
  local f = redis.call('HMGET', key, 'status', 'task_type', 'json', 'owner')
  record('task.expired', id, f[2], f[1], f[3], f[4])
  -- After the event, which adds to the task's timeline: none of it is left behind.
  redis.call('DEL', key, P .. 'tev:' .. id)
  redis.call('ZREM', P .. 'tasks', id)
  redis.call('ZREM', P .. 'finished', id)
  redis.call('HINCRBY', P .. 'counts', f[1], -1)
end

-- Whole seconds until the running task with the least left should end (at least 1).
local function retry_after()
  local best = nil
  for _, id in ipairs(redis.call('ZRANGE', P .. 'processing', 0, -1)) do
    local eta = tonumber(redis.call('HGET', task_key(id), 'eta_s'))
    if eta and (best == nil or eta < best) then best = eta end
  end
  return math.max(1, math.ceil(best or 1))
end

local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Notes a task's end in the interval's stats (service/stats.py): by outcome, and its run
-- time's histogram bucket (a field, or '' for none).
local STATS_TTL_S = 15 * 60 + 15

local function note_finish(stats_key, outcome, run_time_field)
  if stats_key == '' then return end
  -- A first count may have made the key: it gets its TTL (a key that was there has one).
  if redis.call('HINCRBY', stats_key, 'f:' .. outcome, 1) == 1 then
    redis.call('EXPIRE', stats_key, STATS_TTL_S)
  end
  if run_time_field ~= '' then redis.call('HINCRBY', stats_key, run_time_field, 1) end
end

-- If fewer than `concurrency` tasks process across the service, the first queued task moves
-- to processing under a new lease token. Returns {id, token, json}, or false when there is
-- no task or no capacity.
local function claim_next(concurrency, lease_ms, started_at)
  if redis.call('ZCARD', P .. 'processing') >= concurrency then return false end
  local popped = redis.call('ZPOPMIN', P .. 'queue')
  if #popped == 0 then return false end
  local id = popped[1]
  local key = task_key(id)
  local token = int(redis.call('INCR', P .. 'token'))
  redis.call('ZADD', P .. 'processing', server_ms() + lease_ms, id)
  local f = fetch(key)
  return {id, token,
    move(id, f, 'processing', {started_at = started_at, eta_s = f[PLANNED], token = token})}
end
