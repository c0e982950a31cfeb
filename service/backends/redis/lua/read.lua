-- Read: the task's JSON, after the request's rate-limit count (rated.lua). ARGV: the prefix,
-- (two values common.lua would read), the id.
-- Returns {'ok', json} | {'missing'} (then answer()'s two values).
local data = redis.call('HGET', P .. 'task:' .. ARGV[4], 'json')
if not data then return answer({'missing'}) end
return answer({'ok', data})
