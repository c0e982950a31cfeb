-- The request's rate-limit count, made first, in the same step as the script's own work (one
-- round trip to Redis for both). The last five ARGV: the key ('' for no count), limit,
-- window_us, resolution_us, now_us ('' for the server's clock); the rate keys are the
-- counter's: P .. 'rate:' .. key. A refused request ends the script with
-- {'rate_limited', remaining, reset_s}; an allowed one's answer is the script's, with
-- remaining and reset_s appended by answer().
local RATE
do
  local n = #ARGV
  if ARGV[n - 4] ~= '' then
    RATE = rate_hit(P .. 'rate:' .. ARGV[n - 4], tonumber(ARGV[n - 3]), tonumber(ARGV[n - 2]),
      tonumber(ARGV[n - 1]), tonumber(ARGV[n]))
    if RATE[1] == 0 then return {'rate_limited', RATE[2], RATE[3]} end
  end
end

local function answer(reply)
  if RATE then
    reply[#reply + 1] = RATE[2]
    reply[#reply + 1] = RATE[3]
  end
  return reply
end
