-- Recover tasks whose lease ran out (their worker died or stalled): back to the queue as the
-- next attempt, or failed with WorkerLostError the second time, or cancelled if a cancel was
-- asked for. One process at a time: a guard key lets one run per interval.
-- ARGV[4..]: finished_at, finished_ms, batch, guard_ms (0: no guard), the interval's stats key.
-- Returns how many, or -1 if another process ran it within guard_ms.
if tonumber(ARGV[7]) > 0 and not redis.call('SET', P .. 'reaper', '1', 'NX', 'PX', ARGV[7]) then
  return -1
end
local ids = redis.call('ZRANGEBYSCORE', P .. 'processing', '-inf', server_ms(),
  'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(ids) do
  local key = task_key(id)
  local f = fetch(key)
  redis.call('ZREM', P .. 'processing', id)
  redis.call('HDEL', key, 'token', 'cancel')
  local lost = tonumber(f[LOST] or '0') + 1
  if f[CANCEL] then
    redis.call('ZADD', P .. 'finished', ARGV[5], id)
    note_finish(ARGV[8], 'cancelled', '')
    move(id, f, 'cancelled', {finished_at = ARGV[4], eta_s = 'null', lost = int(lost)})
  elseif lost >= 2 then
    redis.call('ZADD', P .. 'finished', ARGV[5], id)
    note_finish(ARGV[8], 'failed', '')
    move(id, f, 'failed', {finished_at = ARGV[4], eta_s = 'null', lost = int(lost),
      error = '{"type":"WorkerLostError","message":"the worker running it was lost twice"}'})
  else
    enqueue(id, f[4])
    move(id, f, 'queued', {attempt = int(tonumber(f[10]) + 1), progress = '0',
      eta_s = 'null', started_at = 'null', lost = int(lost)})
  end
end
return #ids
