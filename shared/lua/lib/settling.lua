--! uses: state
-- A job that waited `settling` for a payment that will not pay: it fails (kept for the retention time, its
-- webhook told job.failed, its waiters woken).
local function fail_settling_job(job, now, err, retention, channel)
  if job == '' or redis.call('HGET', job, 'status') ~= 'settling' then return end
  redis.call('HSET', job, 'status', 'failed', 'finishedAt', now, 'error', err)
  redis.call('PEXPIRE', job, retention)
  job_moved(job, 'settling', 'failed', now, channel, retention)
  redis.call('PUBLISH', channel, redis.call('HGET', job, 'id'))
end
