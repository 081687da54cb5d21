-- LEASE (api/callcore/settlements.py): take up to ARGV[3] due intents, each leased until now + lease (one process
-- at a time looks at one).
-- KEYS: due zset   ARGV: now ms, lease ms, limit   Returns the digests taken.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, digest in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[2]), digest) end
return due
