--! uses: state, payment
-- CREATE_BATCH: store a batch and pay for it in one step: every payment must cover its service's items
-- (`payment_refusal`, shared with ENQUEUE_JOB: exists, paid, not expired, for that service, presented by the
-- client it is bound to, enough calls left) or nothing happens; then its calls are consumed (one ledger event per
-- payment), the items stored and the first window of them queued as jobs. With an idempotency key, an existing
-- batch for that key wins (nothing is charged).
-- KEYS: batch, items list, idempotency key or "", ledger
-- ARGV: one msgpack table: id (the batch's), now ms, at (ISO now), ttl ms, idempotency (its value), caller (the
-- caller's key client id or ""), window, payments ({payment key, service id, calls} each), fields (the batch
-- hash's field/value pairs); then the items (see fan_out), up to 10,000 of them, one ARGV each from ARGV[2]
-- (cheaper than in the table, for the longest step any script takes).
-- Returns {1, idempotency value} created, {0, stored value} an existing batch, {-1, reason, payment index}.
local o = cmsgpack.unpack(ARGV[1])
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {0, existing, 0} end
end
local now = tonumber(o.now)
for i, p in ipairs(o.payments) do
  local refused = payment_refusal(p[1], p[2], o.caller, now, tonumber(p[3]))
  if refused then return {-1, refused, i - 1} end
end
for _, p in ipairs(o.payments) do consume(p[1], tonumber(p[3]), KEYS[4], o.at, {'batchId', o.id}) end
redis.call('HSET', KEYS[1], unpack(o.fields))
redis.call('PEXPIRE', KEYS[1], o.ttl)
for i = 2, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[2], o.ttl)
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], o.idempotency, 'PX', o.ttl) end
fan_out(KEYS[1], tonumber(o.window), o.now)
redis.call('PEXPIRE', KEYS[1] .. ':jobs', o.ttl)
return {1, o.idempotency, 0}
