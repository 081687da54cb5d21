--! uses: ledger
-- A payment's calls: checked (payment_refusal), spent (consume) and given back (give_back), for the job and batch
-- scripts alike.
--
-- payment_refusal() reads the payment once (PAYMENT_READ: LEDGER_FIELDS, then status, remainingCalls, expiresAt,
-- boundTo, usedCalls) and returns the refusal and what it read (for consume).
-- (Built with plain loops: a function library's top runs where Lua's base functions, such as unpack and ipairs,
-- are not defined.)
local PAYMENT_READ, MORE_READ = {}, {'status', 'remainingCalls', 'expiresAt', 'boundTo', 'usedCalls'}
for i = 1, #LEDGER_FIELDS do PAYMENT_READ[i] = LEDGER_FIELDS[i] end
for i = 1, #MORE_READ do PAYMENT_READ[#PAYMENT_READ + 1] = MORE_READ[i] end
local P = {}  -- field -> its place in what PAYMENT_READ reads: p[P.status], p[P.remainingCalls], ...
for i = 1, #PAYMENT_READ do P[PAYMENT_READ[i]] = i end
-- refusal_of(): why a payment (`p`, as read) cannot pay for `calls` calls of `service` presented with `caller_key`
-- ('' for no API key), or nil. A payment bound to its buyer (boundTo) pays only for it: a key's only with that key,
-- a wallet's only without any key. Payments stored before boundTo existed are bound when a key bought them.
local function refusal_of(p, service, caller_key, now, calls)
  local status, client = p[P.status], p[P.clientId]
  if not status then return 'payment_required' end
  if status == 'settling' then return 'payment_settling' end
  if status == 'failed' then return 'payment_failed' end
  local expires = tonumber(p[P.expiresAt])  -- a payment without one (never written so) counts as expired
  if status == 'expired' or not expires or expires <= tonumber(now) then return 'token_expired' end
  if status ~= 'paid' then return 'payment_required' end
  if p[P.serviceId] ~= service then return 'wrong_service' end
  local bound = p[P.boundTo]
  if not bound then
    bound = ''
    if client and string.sub(client, 1, 4) == 'key:' then bound = client end
  end
  if bound ~= '' then
    local presenter = ''
    if string.sub(bound, 1, 4) == 'key:' then presenter = bound end
    if presenter ~= caller_key then return 'wrong_client' end
  end
  if (tonumber(p[P.remainingCalls]) or 0) < calls then return 'no_calls_left' end
  return nil
end
local function payment_refusal(pkey, service, caller_key, now, calls)
  local p = redis.call('HMGET', pkey, unpack(PAYMENT_READ))
  return refusal_of(p, service, caller_key, now, calls), p
end
-- Spend `calls` calls of a payment payment_refusal accepted: one 'consumed' event, `extra` naming what they paid for.
-- `p`: what payment_refusal read, when nothing has written the payment since (one write, no read); nil: read now.
local function consume(pkey, calls, stream, at, extra, p)
  if p == nil then p = redis.call('HMGET', pkey, unpack(PAYMENT_READ)) end
  redis.call('HSET', pkey, 'remainingCalls', string.format('%d', tonumber(p[P.remainingCalls]) - calls),
    'usedCalls', string.format('%d', (tonumber(p[P.usedCalls]) or 0) + calls))
  ledger_of(stream, 'consumed', at, p, calls, extra)
end
-- A paid call that did not run through no fault of the caller is restored, exactly once per job.
local function give_back(job, pkey, stream, at, reason)
  if pkey == '' or reason == '' then return '' end
  if redis.call('HGET', job, 'paymentId') == false then return '' end
  if redis.call('HSETNX', job, 'refunded', reason) == 0 then return '' end
  if redis.call('EXISTS', pkey) == 1 then
    redis.call('HINCRBY', pkey, 'remainingCalls', 1)
    redis.call('HINCRBY', pkey, 'usedCalls', -1)
  end
  ledger(stream, 'credited', at, pkey, 1, {'jobId', redis.call('HGET', job, 'id'), 'reason', reason})
  return reason
end
