-- The record of an idempotency key, or false after marking it in flight (it was unused).
-- KEYS[1]: the key's record. ARGV[1]: how long an in-flight mark lasts (ms).
-- Returns {state, fingerprint, task_id} or false.
local f = redis.call('HMGET', KEYS[1], 'state', 'fp', 'task')
if f[1] then return {f[1], f[2] or '', f[3] or ''} end
redis.call('HSET', KEYS[1], 'state', 'inflight')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return false
