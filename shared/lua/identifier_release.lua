-- RELEASE_IDENTIFIER (api/callcore/settlements.py): delete an identifier's claim while it names that digest.
-- KEYS: identifier key   ARGV: digest   Returns 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
