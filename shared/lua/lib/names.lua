-- The key names and prefixes a script builds keys from, as one msgpack map: shared/keys.py's SCRIPT_NAMES (job,
-- batch, payment, webhook, webhooks_due, queue, queue_wake, arq_job, arq_retry, arq_in_progress). A script that
-- uses this part takes it as ARGV[1], so every key's name is written once, in Python.
local NAMES = cmsgpack.unpack(ARGV[1])
