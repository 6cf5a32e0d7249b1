-- Takes the next chat or message number and queues its job, in one atomic step.
--
-- Redis runs a script without interleaving other clients, and this one checks
-- everything it can before its first write and undoes the one write that a later
-- failure could leave behind, so it either does all of (cache fill, counter seed, INCR,
-- SADD, LPUSH) or none. A number is never handed out without its job (docs/contract.md
-- §6.1), and a warm request is this one call.
--
-- Keys are derived here from cached ids, so the script takes no KEYS: Sidekiq's Redis is
-- never a cluster, and the ids are only known inside the script.
--
-- ARGV, in this order (`ScriptArgs` in src/numbering.rs names the same fields):
local kind,            -- "chat" | "message"
      token,           -- the application's token, as the request spelt it
      chat_number,     -- the chat number (messages), else ""
      known_app,       -- the application id just read from MySQL, else ""
      known_chat,      -- the chat id just read from MySQL, else ""
      seed,            -- MAX(number) just read from MySQL, else ""
      ttl,             -- seconds a looked-up id is cached
      job_head,        -- the job's JSON up to its arguments
      job_args_tail,   -- the job's arguments after the parent id and number
      job_tail,        -- the job's JSON after its arguments
      fill_key,        -- the fill lock of this lookup (see `miss`)
      idempotency_key, -- the client's Idempotency-Key, else ""
      idempotency_ttl, -- seconds it is remembered
      rate_limit,      -- numbers per second the application may be given (0: no limit)
      new_chat_ttl,    -- seconds a new chat is awaited
      spelling_ttl     -- seconds to cache the id under a spelling other than the stored
                       -- one ("" when spelt as stored: `ttl` applies)
  = unpack(ARGV)

-- Replies (a flat array, as Spin flattens replies; `reply_code` in src/numbering.rs):
local ISSUED = 0        -- {ISSUED, number, parent id}: issued and queued
local NEED_APP = 1      -- the application id is not cached: look it up
local NEED_CHAT = 2     -- the chat id is not cached: look it up
local NEED_SEED = 3     -- {NEED_SEED, parent id}: the counter is missing, pass MAX(number)
local EXHAUSTED = 4     -- the counter is at the INT maximum: nothing can be numbered
local WRONG_TYPE = 5    -- a key holds a value of the wrong type: refuse, change nothing
local WAIT = 6          -- another request is looking it up: wait briefly, call again
local REPLAYED = 7      -- {REPLAYED, number}: a repeat of an earlier request with the key
local KEY_REUSED = 8    -- the key already answered a different request
local RATE_LIMITED = 9  -- the application is over its rate limit for this second
local UNKNOWN_APP = 10  -- MySQL had no such token a few seconds ago: not found

local INT_MAX = 2147483647

-- A cache miss elects one request to read MySQL (the holder of the fill lock); the
-- others wait for it. Without this, a burst of requests for an uncached application
-- would open one MySQL connection each (Spin pools nothing) and exhaust the server.
-- The lock expires on its own if its holder dies.
local function miss(code)
  if redis.call('SET', fill_key, '1', 'NX', 'PX', 2000) then return {code} end
  return {WAIT}
end

-- Our own namespace: "chat_service:" shares no prefix with the Rails keys
-- ("chat_app:", "chat:", "queue:", "queues") or Sidekiq's. The token is the last part
-- of the one key it appears in, so no two tokens share a key.
-- A deletion in Rails marks the row's id gone (docs/rails.md): one key whatever spelling
-- of the token filled the cache, so a cached id with the mark is a miss, and the lookup
-- in MySQL then finds it gone.
local function gone(what, id)
  return redis.call('EXISTS', 'chat_service:v1:gone:' .. what .. ':' .. id) == 1
end

local app_key = 'chat_service:v1:app:' .. token
local app_id = known_app
if app_id == '' then
  app_id = redis.call('GET', app_key)
  if not app_id or gone('app', app_id) then
    -- A token MySQL did not know a moment ago is not looked up again for a few seconds:
    -- a client repeating an unknown token costs no MySQL.
    if redis.call('EXISTS', 'chat_service:v1:unknown:' .. token) == 1 then return {UNKNOWN_APP} end
    return miss(NEED_APP)
  end
end

local parent_id, counter_key, chat_key
if kind == 'chat' then
  parent_id = app_id
  counter_key = 'chat_app:' .. app_id .. ':chat_counter'
else
  chat_key = 'chat_service:v1:chat:' .. app_id .. ':' .. chat_number
  parent_id = known_chat
  if parent_id == '' then
    parent_id = redis.call('GET', chat_key)
    if not parent_id or gone('chat', parent_id) then return miss(NEED_CHAT) end
  end
  counter_key = 'chat:' .. parent_id .. ':message_counter'
end

-- A call that brings ids read from MySQL holds the fill lock (see `miss`). It records
-- them and gives the lock up first, whatever it answers below (a replay, a refusal, a
-- number), so that the requests waiting on the lock go on at once. The cache is not one
-- of the effects above: it only holds what MySQL said.
-- MySQL matches a token whatever its case, accents or trailing spaces; each spelling
-- other than the stored one is kept only briefly, as an unknown token is, so one client
-- cannot fill Redis with spellings.
if known_app ~= '' then
  if spelling_ttl and spelling_ttl ~= '' then ttl = spelling_ttl end
  redis.call('SET', app_key, app_id, 'EX', ttl)
end
if known_chat ~= '' then redis.call('SET', chat_key, parent_id, 'EX', ttl) end
if known_app ~= '' or known_chat ~= '' then redis.call('DEL', fill_key) end

-- The keys below belong to the application, named by its id, not by the token the
-- request spelled: MySQL matches tokens without regard to case or trailing spaces, so
-- several spellings reach one application and must share its records and its limit.
-- (An id is digits, so it cannot run into the client's text after it either.)

-- Idempotency: a repeat (same key, same application, same request) gets the first
-- answer and takes nothing; the key is recorded in the same atomic step as the number.
-- The request is identified by what it numbers and the job's arguments, hashed.
local idem_key, fingerprint = '', ''
if idempotency_key ~= '' then
  idem_key = 'chat_service:v1:idem:' .. app_id .. ':' .. idempotency_key
  fingerprint = kind .. ':' .. chat_number .. ':' .. redis.sha1hex(job_args_tail)
  local seen = redis.call('GET', idem_key)
  if seen then
    local bar = string.find(seen, '|', 1, true)
    if bar and string.sub(seen, 1, bar - 1) == fingerprint then
      return {REPLAYED, tonumber(string.sub(seen, bar + 1))}
    end
    return {KEY_REUSED}
  end
end

-- The optional rate limit per application: a fixed one-second window on Redis's own
-- clock, so every Spin instance and node counts in the same window. Only issued numbers
-- count (the INCR is with the other writes below), so a request that comes back after
-- a lookup is not counted twice, and unknown tokens count for nothing.
local rate_key
local limit = tonumber(rate_limit)
if limit > 0 then
  rate_key = 'chat_service:v1:rate:' .. app_id .. ':' .. redis.call('TIME')[1]
  if tonumber(redis.call('GET', rate_key) or '0') >= limit then return {RATE_LIMITED} end
end


local current = redis.call('GET', counter_key)
local base = current
if not base then
  if seed == '' then return {NEED_SEED, tonumber(parent_id)} end
  base = seed
end
-- What INCR accepts: a decimal integer without sign or leading zeros.
if not (base == '0' or string.match(base, '^[1-9]%d*$')) then return {WRONG_TYPE} end
-- A counter behind the numbers MySQL holds (Redis restored from an old snapshot, a
-- failover to a lagging replica) would hand out numbers whose jobs can never be stored.
-- A call that read MAX(number) raises it, in this same step; it never lowers one: the
-- Rails API INCRs the same key, and a number above MAX may be in a job not yet run.
if seed ~= '' and tonumber(seed) > tonumber(base) then base = seed end
if tonumber(base) >= INT_MAX then return {EXHAUSTED} end
local number = tonumber(base) + 1

-- The writes. Only the first two can still fail, on a key that holds another type (Redis
-- checks the type before it changes anything), so they go first and the second's
-- failure undoes the first. (Asking TYPE beforehand cost two more commands a request.)
-- SADD, then LPUSH, as Sidekiq's client does: the worker pops with BRPOP from the other
-- end, so the queue is first in, first out.
local added = redis.pcall('SADD', 'queues', 'default')
if type(added) == 'table' then return {WRONG_TYPE} end
local job = job_head .. '[' .. parent_id .. ',' .. number .. job_args_tail .. ']' .. job_tail
if type(redis.pcall('LPUSH', 'queue:default', job)) == 'table' then
  if added == 1 then redis.call('SREM', 'queues', 'default') end
  return {WRONG_TYPE}
end

-- From here on, nothing can fail.
if base ~= current then redis.call('SET', counter_key, base) end
-- INCR, as the contract has it: the counter ends where `number` said.
redis.call('INCR', counter_key)
if idem_key ~= '' then
  redis.call('SET', idem_key, fingerprint .. '|' .. number, 'EX', idempotency_ttl)
end
-- A chat handed out here is awaited for a while: a message to it before the worker has
-- stored its row is held, then 409; any other number without a row is a plain 404.
if kind == 'chat' then
  redis.call('SET', 'chat_service:v1:new:' .. app_id .. ':' .. number, '1', 'EX', new_chat_ttl)
end
if rate_key then
  redis.call('INCR', rate_key)
  redis.call('EXPIRE', rate_key, 2)
end
return {ISSUED, number, tonumber(parent_id)}
