-- Claim: if fewer than `concurrency` tasks process across the service, the first queued task
-- moves to processing under a new lease token. ARGV[4..]: concurrency, lease_ms, started_at.
-- Returns {id, token, json}, or false when there is no task or no capacity.
if redis.call('ZCARD', P .. 'processing') >= tonumber(ARGV[4]) then return false end
local popped = redis.call('ZPOPMIN', P .. 'queue')
if #popped == 0 then return false end
local id = popped[1]
local key = task_key(id)
local token = int(redis.call('INCR', P .. 'token'))
redis.call('ZADD', P .. 'processing', server_ms() + tonumber(ARGV[5]), id)
redis.call('HSET', key, 'token', token)
local planned = redis.call('HGET', key, 'planned')
return {id, token, move(id, 'processing', {'started_at', ARGV[6], 'eta_s', planned})}
