-- Cancel: a queued task is cancelled at once; a processing one is marked, and its holder told
-- through a 'cancel' entry in the event stream, which names the claim by its token. ARGV[4..]: id, finished_at, finished_ms, the
-- interval's stats key.
-- Returns {'cancelled', json} | {'running', json} | {'finished', status} | {'missing'}.
local id = ARGV[4]
local key = task_key(id)
local f = fetch(key)
local status = f[3]
if not status then return {'missing'} end
if status == 'queued' then
  redis.call('ZREM', P .. 'queue', id)
  redis.call('ZADD', P .. 'finished', ARGV[6], id)
  note_finish(ARGV[7], 'cancelled', '')
  return {'cancelled', move(id, f, 'cancelled', {finished_at = ARGV[5]})}
end
if status == 'processing' then
  redis.call('HSET', key, 'cancel', '1')
  record('cancel', id, f[2], status, f[TOKEN], '')  -- the claim to stop, by its token
  return {'running', redis.call('HGET', key, 'json')}
end
return {'finished', status}
