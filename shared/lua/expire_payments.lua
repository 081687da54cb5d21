--! uses: names, ledger
-- EXPIRE_PAYMENTS: payments past their expiry forfeit their unused calls; each gets 'expired' in the ledger once.
-- Payment keys are built from NAMES.payment (one Redis, not a cluster).
-- KEYS: expiry zset, ledger   ARGV: now ms, ISO now, batch size
-- Returns how many were swept.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = NAMES.payment .. id
  local p = redis.call('HMGET', key, 'status', 'remainingCalls', 'expiresAt')
  if p[1] == 'paid' and tonumber(p[3]) <= tonumber(ARGV[1]) then
    redis.call('HSET', key, 'status', 'expired')
    ledger(KEYS[2], 'expired', ARGV[2], key, tonumber(p[2]), {'reason', p[1]})
  end
  redis.call('ZREM', KEYS[1], id)
end
return #ids
