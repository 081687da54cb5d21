-- REVOKE_KEY (api/apikeys.py): revoke an API key once: the first revocation time stays; the rate-limit state goes.
-- KEYS: key hash, rate-limit key   ARGV: now (ISO 8601)   Returns 1, or 0 for an unknown key (nothing changes).
local revoked = redis.call('HGET', KEYS[1], 'revokedAt')
if not revoked then return 0 end
if revoked == '' then redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1]) end
redis.call('DEL', KEYS[2])
return 1
