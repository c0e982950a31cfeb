-- Progress, by the claim's holder only. ARGV[4..]: id, token, percent, eta_s.
-- Returns {'ok', cancel_requested} or {'lost'}.
local f = fetch(task_key(ARGV[4]))
if f[TOKEN] ~= ARGV[5] or f[3] ~= 'processing' then return {'lost'} end
move(ARGV[4], f, 'processing', {progress = ARGV[6], eta_s = ARGV[7]}, 'task.progress')
return {'ok', f[CANCEL] or ''}
