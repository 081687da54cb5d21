-- CLAIM_DUE (shared/webhooks.py): take due deliveries: each is pushed `lease` ms into the future, so another worker
-- does not send it at the same time and a worker that dies mid-send leaves it to be retried.
-- KEYS: due zset   ARGV: now ms, lease ms, count   Returns the delivery ids taken.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id) end
return ids
