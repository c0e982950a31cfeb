-- Read: the task's JSON, after the request's rate-limit count (rated.lua). ARGV[4]: the id.
-- Returns {'ok', json} | {'missing'} (then answer()'s two values).
local data = redis.call('HGET', task_key(ARGV[4]), 'json')
if not data then return answer({'missing'}) end
return answer({'ok', data})
