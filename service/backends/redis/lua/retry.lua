-- Retry a failed or cancelled task as its next attempt. ARGV[4..]: id, max_queue.
-- Returns {'ok', json} | {'conflict', status} | {'queue_full', retry_after_s} | {'missing'}.
local id = ARGV[4]
local key = task_key(id)
local f = redis.call('HMGET', key, 'status', 'attempt', 'priority')
if not f[1] then return {'missing'} end
if f[1] ~= 'failed' and f[1] ~= 'cancelled' then return {'conflict', f[1]} end
if redis.call('ZCARD', P .. 'queue') >= tonumber(ARGV[5]) then
  return {'queue_full', retry_after()}
end
redis.call('ZREM', P .. 'finished', id)
redis.call('HSET', key, 'lost', '0')
enqueue(id, f[3])
return {'ok', move(id, 'queued', {'attempt', int(tonumber(f[2]) + 1), 'progress', '0',
  'eta_s', 'null', 'result', 'null', 'error', 'null', 'started_at', 'null',
  'finished_at', 'null'})}
