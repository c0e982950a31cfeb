-- Submit: the caps checked, finished tasks evicted to make room, the task stored and queued,
-- its event recorded. ARGV[4..]: id, task_type, priority, parameters, created_at, planned
-- eta_s (JSON fragments), max_queue, max_tasks; for an idempotent submit, the key's record
-- ('' if none), the body's fingerprint and the record's TTL (ms), recorded with the task; and
-- the owner ('' if API keys are off).
-- The request's rate-limit count comes first (rated.lua).
-- Returns {'ok', json} | {'queue_full', retry_after_s} | {'store_full', retry_after_s}, each
-- followed by answer()'s two values.
local id, task_type, priority = ARGV[4], ARGV[5], ARGV[6]
if redis.call('ZCARD', P .. 'queue') >= tonumber(ARGV[10]) then
  return answer({'queue_full', retry_after()})
end
local held = redis.call('ZCARD', P .. 'tasks')
if held >= tonumber(ARGV[11]) and redis.call('ZCARD', P .. 'finished') == 0 then
  return answer({'store_full', retry_after()})
end
while held >= tonumber(ARGV[11]) do
  local oldest = redis.call('ZRANGE', P .. 'finished', 0, 0)
  if #oldest == 0 then break end
  remove(oldest[1])
  held = held - 1
end
local key = task_key(id)
local seq = redis.call('INCR', P .. 'seq')
redis.call('HSET', key, 'task_id', id, 'task_type', task_type, 'status', 'queued',
  'priority', priority, 'parameters', ARGV[7], 'progress', '0', 'eta_s', 'null',
  'result', 'null', 'error', 'null', 'attempt', '1', 'created_at', ARGV[8],
  'started_at', 'null', 'finished_at', 'null', 'planned', ARGV[9], 'lost', '0')
if ARGV[15] ~= '' then redis.call('HSET', key, 'owner', ARGV[15]) end
redis.call('ZADD', P .. 'tasks', seq, id)
redis.call('ZADD', P .. 'queue', RANK[priority] * TWO_40 + seq, id)
redis.call('HINCRBY', P .. 'counts', 'queued', 1)
local json = assemble(key)
local eid = record('task.queued', id, task_type, 'queued', json, ARGV[15])
redis.call('HSET', key, 'v', int(eid))
if ARGV[12] ~= '' then
  redis.call('HSET', ARGV[12], 'state', 'done', 'fp', ARGV[13], 'task', id)
  redis.call('PEXPIRE', ARGV[12], ARGV[14])
end
return answer({'ok', json})
