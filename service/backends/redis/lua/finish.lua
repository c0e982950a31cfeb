-- Finish a claimed task, by the claim's holder only. ARGV[4..]: id, token, status
-- (completed, failed or cancelled), result, error, finished_at (JSON fragments), finished_ms,
-- the interval's stats key and the run time's histogram field ('' for none); then, to claim
-- the next queued task in the same step, concurrency, lease_ms and started_at ('' for not).
-- Returns {'ok', json} or {'ok', json, id, token, json} (a next task claimed), or {'lost'}.
local id, status = ARGV[4], ARGV[6]
local key = task_key(id)
local f = fetch(key)
if f[TOKEN] ~= ARGV[5] or f[3] ~= 'processing' then return {'lost'} end
local changes = {finished_at = ARGV[9], eta_s = 'null'}
if status == 'completed' then
  changes.result = ARGV[7]
  changes.progress = '100'
elseif status == 'failed' then
  changes.error = ARGV[8]
end
redis.call('HDEL', key, 'token', 'cancel')
redis.call('ZREM', P .. 'processing', id)
redis.call('ZADD', P .. 'finished', ARGV[10], id)
note_finish(ARGV[11], status, ARGV[12])
local json = move(id, f, status, changes)
if ARGV[13] ~= '' then
  local claimed = claim_next(tonumber(ARGV[13]), tonumber(ARGV[14]), ARGV[15])
  if claimed then return {'ok', json, claimed[1], claimed[2], claimed[3]} end
end
return {'ok', json}
