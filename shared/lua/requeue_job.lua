--! uses: state
-- REQUEUE_JOB: a retryable failure: running -> queued until the retry time (arq re-runs it).
-- KEYS: job   ARGV: retry-at ms, last error JSON
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'retryAt', ARGV[1], 'lastError', ARGV[2])
batch_moved(KEYS[1], 'running', 'queued', 0, '', 0)
return 1
