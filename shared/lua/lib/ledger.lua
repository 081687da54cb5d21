-- ledger(): append one event for a payment, its amounts scaled to `calls` calls (all of them for created/settled).
local function ledger(stream, event, at, pkey, calls, extra)
  local f = redis.call('HMGET', pkey, 'paymentId', 'serviceId', 'clientId', 'amountCents', 'amountAtomic',
    'maxCalls', 'provider', 'network', 'payer', 'transaction')
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
