-- QUALITY_FLUSH (shared/quality.py): one process's quality figures since its last flush, added to each service's
-- hash: counts added; lastCallAt kept the later of the two; the latency's weighted mean moved by the run of samples
-- (mean' = decay * mean + add, or fresh when there was no mean), lastLatencyMs the run's last sample.
-- KEYS: the services' quality hashes   ARGV: one msgpack table: rows (one per key: counts (field -> n),
-- last_call (ISO or ''), latency ({decay, add, fresh, last}, or empty for no sample))
local o = cmsgpack.unpack(ARGV[1])
for i, key in ipairs(KEYS) do
  local r = o.rows[i]
  for field, n in pairs(r.counts) do redis.call('HINCRBY', key, field, tonumber(n)) end
  if r.last_call ~= '' then
    local was = redis.call('HGET', key, 'lastCallAt')
    if not was or was < r.last_call then redis.call('HSET', key, 'lastCallAt', r.last_call) end
  end
  local l = r.latency
  if #l > 0 then
    local mean = tonumber(redis.call('HGET', key, 'latencyMs') or '')
    if mean then mean = tonumber(l[1]) * mean + tonumber(l[2]) else mean = tonumber(l[3]) end
    redis.call('HSET', key, 'latencyMs', string.format('%.1f', mean), 'lastLatencyMs',
      string.format('%.1f', tonumber(l[4])))
  end
end
return #KEYS
