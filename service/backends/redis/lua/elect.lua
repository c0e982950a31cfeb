-- Whether ARGV[1] holds a role (KEYS[1]), taking it if nobody does; the holder keeps it for
-- ARGV[2] ms more. Returns 1 or 0.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX')) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
