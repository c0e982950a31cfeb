-- Notes the queue depth and the tasks processing in the current interval's stats.
-- KEYS[1]: the interval's stats key. ARGV: counts key, TTL (s).
local counts = redis.call('HMGET', ARGV[1], 'queued', 'processing')
redis.call('HSET', KEYS[1], 'q', counts[1] or '0', 'p', counts[2] or '0')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
