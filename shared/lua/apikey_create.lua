-- CREATE_KEY (api/apikeys.py): store a new API key unless its id is taken (a 48-bit collision: the caller draws
-- another id).
-- KEYS: key hash, key set   ARGV: key id, then the hash's field/value pairs   Returns 1 stored, 0 id taken.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
