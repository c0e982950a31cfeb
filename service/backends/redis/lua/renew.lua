-- Renew a lease, by the claim's holder only. ARGV[4..]: id, token, lease_ms.
-- Returns {'ok', cancel_requested} or {'lost'}.
local key = task_key(ARGV[4])
local f = redis.call('HMGET', key, 'token', 'status', 'cancel')
if f[1] ~= ARGV[5] or f[2] ~= 'processing' then return {'lost'} end
redis.call('ZADD', P .. 'processing', 'XX', server_ms() + tonumber(ARGV[6]), ARGV[4])
return {'ok', f[3] or ''}
