-- ledger(): append one event for a payment, its amounts scaled to `calls` calls (all of them for created/settled).
-- ledger_of(): the same from the payment's LEDGER_FIELDS read already (HMGET, in that order, first).
local LEDGER_FIELDS = {'paymentId', 'serviceId', 'clientId', 'amountCents', 'amountAtomic', 'maxCalls', 'provider',
  'network', 'payer', 'transaction'}
local function ledger_of(stream, event, at, f, calls, extra)
  local max_calls = tonumber(f[6] or '1')
  if max_calls < 1 then max_calls = 1 end
  local cents = math.floor(tonumber(f[4] or '0') / max_calls) * calls
  local atomic = math.floor(tonumber(f[5] or '0') / max_calls) * calls
  local entry = {'event', event, 'at', at, 'paymentId', f[1] or '', 'serviceId', f[2] or '', 'clientId', f[3] or '',
    'amountCents', string.format('%d', cents), 'amountAtomic', string.format('%d', atomic), 'calls', tostring(calls),
    'provider', f[7] or '', 'network', f[8] or '', 'payer', f[9] or '', 'transaction', f[10] or ''}
  for i = 1, #extra do entry[#entry + 1] = extra[i] end
  redis.call('XADD', stream, '*', unpack(entry))
end
local function ledger(stream, event, at, pkey, calls, extra)
  ledger_of(stream, event, at, redis.call('HMGET', pkey, unpack(LEDGER_FIELDS)), calls, extra)
end
