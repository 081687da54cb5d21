--! uses: ledger, settling
-- FAILED (api/callcore/settlements.py): the reconciler ends an intent without a proof: `failed` (the payload can
-- never pay: nothing was taken) or `unconfirmed` (no answer proved it either way before the authorization lapsed:
-- the payer may have been debited; the operator resolves it, and a late proof still turns it paid). Its job fails;
-- a repeat is refused.
-- KEYS: intent, due zset, payment, ledger, nonce, job or ""
-- ARGV: one msgpack table: digest, at (ISO now), reason, now ms, error (the job's, JSON), retention ms, channel,
-- stage ('failed' or 'unconfirmed').
-- Returns 1, or 0 when the intent had ended already (nothing changes).
local o = cmsgpack.unpack(ARGV[1])
if redis.call('HGET', KEYS[1], 'stage') ~= 'settling' then return 0 end
redis.call('HSET', KEYS[1], 'stage', o.stage, 'lastError', o.reason)
redis.call('ZREM', KEYS[2], o.digest)
redis.call('HSET', KEYS[3], 'status', o.stage, 'failReason', o.reason)
if redis.call('GET', KEYS[5]) == 'settling ' .. o.digest then
  redis.call('SET', KEYS[5], o.stage .. ' ' .. o.digest, 'XX', 'KEEPTTL')
end
local calls = tonumber(redis.call('HGET', KEYS[3], 'maxCalls'))
ledger(KEYS[4], 'settle_' .. o.stage, o.at, KEYS[3], calls, {'reason', o.reason})
fail_settling_job(KEYS[6], o.now, o.error, o.retention, o.channel)
return 1
