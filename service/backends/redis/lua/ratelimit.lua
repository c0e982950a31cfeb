-- A sliding window of request times per key, on the server's clock (TIME) unless the caller
-- gives one, kept as the memory backend's is (service/backends/memory/ratelimit.py): requests
-- within `resolution` of an entry's first share that entry, and an entry leaves the window
-- with its last. l is a list of entries 'first:last:count' (µs), oldest first; n holds the
-- total. A typical request is six calls (the total, the oldest and newest entries, the newest
-- updated or a new one pushed, the total and the keys' lifetime set). Loaded alone as the rate
-- counter's script (see the end), and before the scripts that count a request in the same
-- step as their own work (rated.lua).
-- Returns {allowed (0/1), remaining, reset_s}.
local function rate_entry(entry)
  local first, last, count = string.match(entry, '^(%d+):(%d+):(%d+)$')
  return tonumber(first), tonumber(last), tonumber(count)
end

local function rate_hit(l, n, limit, window, resolution, now)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local horizon = now - window
  local total = tonumber(redis.call('GET', n) or '0')
  local oldest = redis.call('LINDEX', l, 0)
  local popped = false
  while oldest do
    local _, last, count = rate_entry(oldest)
    if last > horizon then break end
    redis.call('LPOP', l)
    total = total - count
    popped = true
    oldest = redis.call('LINDEX', l, 0)
  end
  local allowed = total < limit
  local oldest_last = nil
  if oldest then
    local _, last = rate_entry(oldest)
    oldest_last = last
  end
  local ttl_ms = math.ceil(window / 1000)
  if allowed then
    total = total + 1
    local newest = redis.call('LINDEX', l, -1)
    local first, _, count = nil, nil, nil
    if newest then first, _, count = rate_entry(newest) end
    local stamp = string.format('%d', now)
    if newest and now - first < resolution then
      redis.call('LSET', l, -1, string.format('%d', first) .. ':' .. stamp .. ':' .. (count + 1))
      if newest == oldest then oldest_last = now end  -- the only entry: it moved on
    else
      redis.call('RPUSH', l, stamp .. ':' .. stamp .. ':1')
      if not oldest then oldest_last = now end
    end
    redis.call('SET', n, total, 'PX', ttl_ms)
    redis.call('PEXPIRE', l, ttl_ms)
  elseif popped then
    redis.call('SET', n, total, 'KEEPTTL')
  end
  local reset = 0
  if oldest_last then reset = math.ceil((oldest_last - horizon) / 1000000) end
  return {allowed and 1 or 0, limit - total, reset}
end
