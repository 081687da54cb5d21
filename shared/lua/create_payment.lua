--! uses: ledger
-- CREATE_PAYMENT: store a new paid payment, due for the expiry sweep, and append its ledger events. (Pending
-- payments are never stored: shared/payments.py `offer_id`.)
-- KEYS: payment, expiry zset, ledger   ARGV: payment id, expires ms, key ttl ms, events ('created,settled'),
-- ISO now, then field/value pairs.   Returns 1, or 0 when the payment exists already (nothing changes).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
for event in string.gmatch(ARGV[4], '[^,]+') do
  ledger(KEYS[3], event, ARGV[5], KEYS[1], tonumber(redis.call('HGET', KEYS[1], 'maxCalls')), {})
end
return 1
