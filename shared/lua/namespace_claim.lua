-- CLAIM_NAMESPACE (workers/tenancy.py): a tenant's namespace id: the one it has, else the first candidate no
-- tenant holds, claimed with its reverse entry (the candidate's owner key) in the same step.
-- KEYS: the tenant's key   ARGV: owner-key prefix (tenancy.py NAMESPACE_OWNER_PREFIX), tenant, then candidates
-- Returns the id ('' when every candidate was taken: the caller draws more).
local held = redis.call('GET', KEYS[1])
if held then return held end
for i = 3, #ARGV do
  if redis.call('SET', ARGV[1] .. ARGV[i], ARGV[2], 'NX') then
    redis.call('SET', KEYS[1], ARGV[i])
    return ARGV[i]
  end
end
return ''
