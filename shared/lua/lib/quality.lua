-- A finished job: count it, and fold a successful call's latency into the weighted mean (shared/quality.py), in
-- the script that finishes the job: counting costs no round trip.
local function quality_result(key, field, latency, alpha)
  if key == '' then return end
  redis.call('HINCRBY', key, field, 1)
  if latency ~= '' then
    local sample = tonumber(latency)
    local mean = tonumber(redis.call('HGET', key, 'latencyMs') or '')
    if mean then mean = mean + tonumber(alpha) * (sample - mean) else mean = sample end
    redis.call('HSET', key, 'latencyMs', string.format('%.1f', mean), 'lastLatencyMs', string.format('%.1f', sample))
  end
end
