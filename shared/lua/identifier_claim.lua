-- CLAIM_IDENTIFIER (api/callcore/settlements.py): an x402 payment-identifier names one payload: SET NX, else the
-- digest it names.
-- KEYS: identifier key   ARGV: digest, ttl s   Returns "" when it named none before, else the digest it names.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return '' end
return redis.call('GET', KEYS[1]) or ''
