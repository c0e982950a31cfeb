-- Forget an idempotency key still in flight (its request was refused). KEYS[1]: its record.
if redis.call('HGET', KEYS[1], 'state') == 'inflight' then redis.call('DEL', KEYS[1]) end
return 0
