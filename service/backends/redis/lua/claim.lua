-- Claim: the first queued task, if the service has room (claim_next, in common.lua).
-- ARGV[4..]: concurrency, lease_ms, started_at. Returns {id, token, json}, or false.
return claim_next(tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
