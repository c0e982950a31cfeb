-- Progress, by the claim's holder only. ARGV[4..]: id, token, percent, eta_s.
-- Returns {'ok', cancel_requested} or {'lost'}.
local key = task_key(ARGV[4])
local f = redis.call('HMGET', key, 'token', 'status', 'cancel')
if f[1] ~= ARGV[5] or f[2] ~= 'processing' then return {'lost'} end
move(ARGV[4], 'processing', {'progress', ARGV[6], 'eta_s', ARGV[7]}, 'task.progress')
return {'ok', f[3] or ''}
