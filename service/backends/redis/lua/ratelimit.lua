-- A sliding window of request times per key, on the server's clock (TIME) unless the caller
-- gives one, kept as the memory backend's is (service/backends/memory/ratelimit.py): requests
-- within `resolution` of an entry's first share that entry, and an entry leaves the window
-- with its last. l is a list of entries 'first:last:count:through' (µs), oldest first, where
-- through is the number of requests the list has counted up to and with this entry's: the
-- window holds the newest entry's through less the oldest's, plus the oldest's count, so no
-- total is kept apart, and an entry that leaves needs no update. A typical request is four
-- calls: the clock, the oldest and newest entries, the newest moved on (or a new one pushed,
-- with the list's lifetime: a window and a resolution from its first request, which its
-- last cannot outlive). Loaded alone as the rate counter's script (see the end), and before
-- the scripts that count a request in the same step as their own work (rated.lua).
-- Returns {allowed (0/1), remaining, reset_s}.
local function rate_entry(entry)
  local first, last, count, through = string.match(entry, '^(%d+):(%d+):(%d+):(%d+)$')
  return tonumber(first), tonumber(last), tonumber(count), tonumber(through)
end

local function rate_hit(l, limit, window, resolution, now)
  local _
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local horizon = now - window
  local oldest = redis.call('LINDEX', l, 0)
  local oldest_last, oldest_count, oldest_through
  while oldest do
    _, oldest_last, oldest_count, oldest_through = rate_entry(oldest)
    if oldest_last > horizon then break end
    redis.call('LPOP', l)
    oldest = redis.call('LINDEX', l, 0)
  end
  local total, newest, newest_first, newest_count, newest_through = 0, nil, nil, nil, 0
  if oldest then
    newest = redis.call('LINDEX', l, -1)
    newest_first, _, newest_count, newest_through = rate_entry(newest)
    total = newest_through - oldest_through + oldest_count
  end
  local allowed = total < limit
  if allowed then
    total = total + 1
    local stamp = string.format('%d', now)
    local through = string.format('%d', newest_through + 1)
    if newest and now - newest_first < resolution then
      redis.call('LSET', l, -1, string.format('%d:%s:%d:%s', newest_first, stamp,
        newest_count + 1, through))
      if newest == oldest then oldest_last = now end  -- the only entry: it moved on
    else
      redis.call('RPUSH', l, stamp .. ':' .. stamp .. ':1:' .. through)
      redis.call('PEXPIRE', l, math.ceil((window + resolution) / 1000))
      if not oldest then oldest_last = now end
    end
  end
  local reset = 0
  if oldest_last then reset = math.ceil((oldest_last - horizon) / 1000000) end
  return {allowed and 1 or 0, limit - total, reset}
end
