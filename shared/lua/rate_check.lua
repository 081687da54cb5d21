-- CHECK_RATE (api/apikeys.py `ApiKeyStore.gcra`: an API key's limit, and api/ratelimits.py's for callers without
-- one): GCRA, `burst` requests at once, then one per interval. A refused request changes nothing. Uses the
-- server's clock (TIME). One call checks one request per key, in order (the same key may come twice): the API
-- gathers the checks that arrive together into one call (api/apikeys.py `RateChecks`).
-- KEYS: rate-limit keys   ARGV: interval us and burst of each key, in turn
-- Returns one {wait, remaining, reset} per key: wait is 0 (go, and counted) or the microseconds until a request may
-- go; remaining the requests that could still go at once after this one; reset the microseconds until the whole
-- burst is available again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local answers = {}
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[2 * i - 1])
    local burst = tonumber(ARGV[2 * i])
    local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
    local allow_at = tat + interval - interval * burst
    if allow_at > now then
        answers[i] = {allow_at - now, 0, tat - now}
    else
        local next_tat = tat + interval
        local ttl_ms = math.ceil((next_tat - now) / 1000)
        redis.call('SET', key, string.format('%.0f', next_tat), 'PX', string.format('%.0f', ttl_ms))
        answers[i] = {0, math.floor((interval * burst - (next_tat - now)) / interval), next_tat - now}
    end
end
return answers
