-- BEAT (shared/liveness.py): a worker's heartbeat: its id scored with the server's time (ms, TIME) in its kind's
-- zset; members silent for longer than the ttl are dropped and the key's ttl renewed.
-- KEYS: the kind's zset   ARGV: worker id, ttl ms   Returns the server's time (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now
