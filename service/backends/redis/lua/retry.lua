-- Retry a failed or cancelled task as its next attempt. ARGV[4..]: id, max_queue.
-- Returns {'ok', json} | {'conflict', status} | {'queue_full', retry_after_s} | {'missing'}.
local id = ARGV[4]
local key = task_key(id)
local f = fetch(key)
local status = f[3]
if not status then return {'missing'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'conflict', status} end
if redis.call('ZCARD', P .. 'queue') >= tonumber(ARGV[5]) then
  return {'queue_full', retry_after()}
end
redis.call('ZREM', P .. 'finished', id)
enqueue(id, f[4])
return {'ok', move(id, f, 'queued', {attempt = int(tonumber(f[10]) + 1), progress = '0',
  eta_s = 'null', result = 'null', error = 'null', started_at = 'null', finished_at = 'null',
  lost = '0'})}
