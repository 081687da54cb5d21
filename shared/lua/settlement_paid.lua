--! uses: ledger
-- PAID (api/callcore/settlements.py): the facilitator proved the payment: settling (or unconfirmed: a proof may
-- come late) -> paid (ledger: created, settled). A purchase is done; an inline intent stays due until ENQUEUE_JOB
-- releases its job (so a process that dies in between leaves it to the reconciler). The nonce claim is rewritten
-- only while it is still this intent's.
-- KEYS: intent, due zset, nonce, payment, expiry zset, ledger
-- ARGV: one msgpack table: digest, holder (the nonce's new value), at (ISO now), payment_ttl ms, expires ms,
-- release_due ms, fields (the payment's new field/value pairs).
-- Returns the stage found.
local o = cmsgpack.unpack(ARGV[1])
local stage = redis.call('HGET', KEYS[1], 'stage')
if stage ~= 'settling' and stage ~= 'unconfirmed' then return stage or 'missing' end
local holder = redis.call('GET', KEYS[3])
if holder == 'settling ' .. o.digest or holder == 'unconfirmed ' .. o.digest then
  redis.call('SET', KEYS[3], o.holder, 'XX', 'KEEPTTL')
end
if redis.call('HGET', KEYS[1], 'kind') == 'purchase' or stage == 'unconfirmed' then
  redis.call('HSET', KEYS[1], 'stage', 'done')  -- an unconfirmed call's job has failed: the call stays a credit
  redis.call('ZREM', KEYS[2], o.digest)
else
  redis.call('HSET', KEYS[1], 'stage', 'paid')
  redis.call('ZADD', KEYS[2], o.release_due, o.digest)
end
redis.call('HSET', KEYS[4], unpack(o.fields))
redis.call('PEXPIRE', KEYS[4], o.payment_ttl)
redis.call('ZADD', KEYS[5], o.expires, redis.call('HGET', KEYS[4], 'paymentId'))
local calls = tonumber(redis.call('HGET', KEYS[4], 'maxCalls'))
ledger(KEYS[6], 'created', o.at, KEYS[4], calls, {})
ledger(KEYS[6], 'settled', o.at, KEYS[4], calls, {})
return stage
