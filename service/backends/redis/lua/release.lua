-- Release a claim whose worker is stopping: the task goes back to the queue as its next
-- attempt, by the claim's holder only. ARGV[4..]: id, token, finished_at, finished_ms, the
-- interval's stats key.
-- Returns {'ok', json} or {'lost'}.
local id = ARGV[4]
local key = task_key(id)
local f = fetch(key)
if f[TOKEN] ~= ARGV[5] or f[3] ~= 'processing' then return {'lost'} end
redis.call('HDEL', key, 'token', 'cancel')
redis.call('ZREM', P .. 'processing', id)
if f[CANCEL] then  -- a cancel was asked for: it ends here instead
  redis.call('ZADD', P .. 'finished', ARGV[7], id)
  note_finish(ARGV[8], 'cancelled', '')
  return {'ok', move(id, f, 'cancelled', {finished_at = ARGV[6], eta_s = 'null'})}
end
enqueue(id, f[4])
return {'ok', move(id, f, 'queued', {attempt = int(tonumber(f[10]) + 1), progress = '0',
  eta_s = 'null', started_at = 'null'})}
