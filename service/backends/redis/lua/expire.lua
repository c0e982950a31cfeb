-- Expire: remove up to `batch` tasks that finished before a time. ARGV[4..]: before_ms, batch.
-- Returns how many were removed.
local ids = redis.call('ZRANGEBYSCORE', P .. 'finished', '-inf', '(' .. ARGV[4],
  'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(ids) do remove(id) end
return #ids
