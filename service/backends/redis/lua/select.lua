-- One page of a list, newest first, from the creation order: up to `wanted` matching tasks
-- among the next `scan` ids older than the cursor. ARGV[4..]: cursor ('+inf' to start),
-- scan, wanted, statuses (comma-separated, '' for any), task_type ('' for any), owner ('' for
-- any).
-- Returns {next_cursor, more (0/1), as_of (the last event id), json...}.
local ids = redis.call('ZREVRANGEBYSCORE', P .. 'tasks', '(' .. ARGV[4], '-inf',
  'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
local statuses = {}
for status in string.gmatch(ARGV[7], '[^,]+') do statuses[status] = true end
local any_status, task_type, owner = ARGV[7] == '', ARGV[8], ARGV[9]
local wanted = tonumber(ARGV[6])
local out = {ARGV[4], 0, redis.call('GET', P .. 'eid') or '0'}
local found = 0
for i = 1, #ids, 2 do
  out[1] = ids[i + 1]
  local f = redis.call('HMGET', task_key(ids[i]), 'status', 'task_type', 'json', 'owner')
  if f[1] and (any_status or statuses[f[1]]) and (task_type == '' or f[2] == task_type)
      and (owner == '' or f[4] == owner) then
    out[#out + 1] = f[3]
    found = found + 1
    if found >= wanted then break end
  end
end
if #ids == 2 * tonumber(ARGV[5]) or found >= wanted then out[2] = 1 end
return out
