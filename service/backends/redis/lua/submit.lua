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
-- The new task's fields in fetch()'s order (its owner false when API keys are off).
local f = {id, task_type, 'queued', priority, ARGV[7], '0', 'null', 'null', 'null', '1',
  ARGV[8], 'null', 'null', ARGV[15] ~= '' and ARGV[15]}
local json = to_json(f, {})
local eid = record('task.queued', id, task_type, 'queued', json, f[14])
local fields = {'planned', ARGV[9], 'lost', '0', 'json', json, 'v', int(eid)}
for i = 1, #LOADED do
  if f[i] then
    fields[#fields + 1] = LOADED[i]
    fields[#fields + 1] = f[i]
  end
end
redis.call('HSET', task_key(id), unpack(fields))
local seq = redis.call('INCR', P .. 'seq')
redis.call('ZADD', P .. 'tasks', seq, id)
redis.call('ZADD', P .. 'queue', RANK[priority] * TWO_40 + seq, id)
redis.call('HINCRBY', P .. 'counts', 'queued', 1)
if ARGV[12] ~= '' then
  redis.call('HSET', ARGV[12], 'state', 'done', 'fp', ARGV[13], 'task', id)
  redis.call('PEXPIRE', ARGV[12], ARGV[14])
end
return answer({'ok', json})
