--! uses: names, payment
-- ENQUEUE_JOB: create the job hash and put it on arq's queue in one step, so a job is never accepted without being
-- queued (nor queued without its record). With an idempotency key, an existing job for that key wins (and nothing
-- is charged). With a payment, one call of it is consumed in the same step when `payment_refusal` accepts it
-- (shared with CREATE_BATCH): it exists and is paid, has not expired, is for this service, is used by the API key
-- it is bound to (if any), and has a call left. (The API counts the call, shared/quality.py.)
-- The worker needs nothing else: a tool job's id is all of its arq job (workers/queue.py runs `run_tool(id)`).
-- KEYS: job, arq queue, idempotency key or "", payment or "", ledger,
-- [the settlement intent the job waited for and the intents' due zset (api/callcore/settlements.py): then the job
-- must still be `settling`, and the intent is done once its call is consumed]
-- ARGV: one msgpack table: id, score ms, ttl ms, idempotency (its value), service (id), caller (the caller's key
-- client id or ""), now ms, at (ISO now), tenant (a fallback or "": set, the job acts for the payment's client,
-- else for this), fields (the job hash's field/value pairs).
-- Returns {1, idempotency value} created, {0, stored value} an existing job, {-1, failure} nothing happened.
local o = cmsgpack.unpack(ARGV[1])
local intent = KEYS[6] or ''
if intent ~= '' and redis.call('HGET', KEYS[1], 'status') ~= 'settling' then  -- released once only
  return {0, o.idempotency}
end
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {0, existing} end
end
local client = ''
if KEYS[4] ~= '' then
  local refused, p = payment_refusal(KEYS[4], o.service, o.caller, o.now, 1)
  if refused then return {-1, refused} end
  consume(KEYS[4], 1, KEYS[5], o.at, {'jobId', o.id}, p)
  client = p[P.clientId] or ''
end
if intent ~= '' then  -- the x402 payment this job waited for is spent on it: its intent is done
  redis.call('HSET', intent, 'stage', 'done')
  redis.call('ZREM', KEYS[7], redis.call('HGET', intent, 'digest'))
end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], o.idempotency, 'PX', o.ttl) end
local fields = o.fields
if o.tenant ~= '' then
  if client == '' then client = o.tenant end
  fields[#fields + 1] = 'tenant'
  fields[#fields + 1] = client
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], o.ttl)
redis.call('ZADD', KEYS[2], o.score, o.id)
redis.call('PUBLISH', NAMES.queue_wake, '')
return {1, o.idempotency}
