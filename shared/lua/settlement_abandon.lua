--! uses: settling
-- ABANDON (api/callcore/settlements.py): the facilitator refused at once (nothing moved): what BEGIN wrote goes
-- (the nonce may be used again, the payment-identifier names nothing); a job a repeat may have been shown fails,
-- nothing charged (job.failed).
-- KEYS: intent, due zset, nonce, payment, job or "", idempotency key or "", identifier key or ""
-- ARGV: one msgpack table: digest, holder, idempotency (its value), now ms, error (the job's, JSON), retention ms,
-- channel.
-- Returns 1, or 0 when the intent had ended already (nothing changes).
local o = cmsgpack.unpack(ARGV[1])
if redis.call('HGET', KEYS[1], 'stage') ~= 'settling' then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], o.digest)
if redis.call('GET', KEYS[3]) == o.holder then redis.call('DEL', KEYS[3]) end
fail_settling_job(KEYS[5], o.now, o.error, o.retention, o.channel)
if KEYS[6] ~= '' and redis.call('GET', KEYS[6]) == o.idempotency then redis.call('DEL', KEYS[6]) end
if KEYS[7] ~= '' and redis.call('GET', KEYS[7]) == o.digest then redis.call('DEL', KEYS[7]) end
return 1
