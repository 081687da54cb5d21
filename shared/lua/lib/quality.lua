-- A finished job: count it, and fold a successful call's latency into the weighted mean (shared/quality.py), in
-- the script that finishes the job: counting costs no round trip.
local function quality_result(key, field, latency, alpha)
  if key == '' then return end
  if latency == '' then
    redis.call('HINCRBY', key, field, 1)
    return
  end
  local q = redis.call('HMGET', key, field, 'latencyMs')
  local sample = tonumber(latency)
  local mean = tonumber(q[2] or '')
  if mean then mean = mean + tonumber(alpha) * (sample - mean) else mean = sample end
  redis.call('HSET', key, field, string.format('%d', tonumber(q[1] or '0') + 1),
    'latencyMs', string.format('%.1f', mean), 'lastLatencyMs', string.format('%.1f', sample))
end
