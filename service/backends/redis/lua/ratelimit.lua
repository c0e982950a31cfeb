-- A sliding window of request times per key, on the server's clock (TIME) unless the caller
-- gives one. Entries within `resolution` of each other share one: z scores each entry (member:
-- its first time) by its last time; h holds each entry's count, the total 'n' and the newest
-- entry 'L'. Loaded alone as the rate counter's script (see the end), and before the scripts
-- that count a request in the same step as their own work (rated.lua).
-- Returns {allowed (0/1), remaining, reset_s}.
local function rate_hit(z, h, limit, window, resolution, now)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local horizon = now - window
  local total = tonumber(redis.call('HGET', h, 'n') or '0')
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', horizon)
  for _, member in ipairs(old) do
    total = total - tonumber(redis.call('HGET', h, member) or '0')
    redis.call('HDEL', h, member)
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', horizon) end
  local allowed = total < limit
  if allowed then
    total = total + 1
    local last = redis.call('HGET', h, 'L')
    if last and redis.call('ZSCORE', z, last) and now - tonumber(last) < resolution then
      redis.call('HINCRBY', h, last, 1)
      redis.call('ZADD', z, now, last)
    else
      local member = string.format('%d', now)
      redis.call('HSET', h, member, 1, 'L', member)
      redis.call('ZADD', z, now, member)
    end
  end
  redis.call('HSET', h, 'n', total)
  local reset = 0
  local oldest = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if #oldest > 0 then reset = math.ceil((tonumber(oldest[2]) - horizon) / 1000000) end
  local ttl_ms = math.ceil(window / 1000)
  redis.call('PEXPIRE', z, ttl_ms)
  redis.call('PEXPIRE', h, ttl_ms)
  return {allowed and 1 or 0, limit - total, reset}
end
