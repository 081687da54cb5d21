-- CHECK_RATE (api/apikeys.py `ApiKeyStore.gcra`: an API key's limit, and api/ratelimits.py's for callers without
-- one): GCRA, `burst` requests at once, then one per interval. A refused request changes nothing. Uses the
-- server's clock (TIME). One call checks every key the API gathered in one turn of its event loop
-- (api/apikeys.py `RateChecks`), in order (the same key may come twice), each for `want` requests at once: the
-- requests waiting for it, plus those the API expects of the same caller soon and serves itself (its lease).
-- KEYS: rate-limit keys   ARGV: interval us, burst and want of each key, in turn
-- Returns one {wait, remaining, reset, granted} per key: granted is how many of `want` may go (counted), at most as
-- many as the burst has room for; wait is 0 when some were granted, else the microseconds until one may go;
-- remaining the requests that could still go at once after the granted ones; reset the microseconds until the
-- whole burst is available again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local answers = {}
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[3 * i - 2])
    local burst = tonumber(ARGV[3 * i - 1])
    local want = tonumber(ARGV[3 * i])
    local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
    local room = math.floor((now - tat + interval * burst) / interval)
    local granted = math.min(want, room)
    if granted < 1 then
        answers[i] = {tat + interval - interval * burst - now, 0, tat - now, 0}
    else
        local next_tat = tat + granted * interval
        local ttl_ms = math.ceil((next_tat - now) / 1000)
        redis.call('SET', key, string.format('%.0f', next_tat), 'PX', string.format('%.0f', ttl_ms))
        answers[i] = {0, math.floor((interval * burst - (next_tat - now)) / interval), next_tat - now, granted}
    end
end
return answers
