-- Adaptive traffic shaping: the shipped automation rules, and the helpers that change them.
--
-- The `adaptive` plugin (plugins/adaptive, turned on by listing `adaptive` in
-- config/plugins) reads config/adaptive.lua if it exists, else `defaults()` of this module,
-- at every config load and reload; the engine (core/shaping, docs/adaptive.md) applies
-- the rules. This file is data: it runs in the plugin's loader, which provides the global
-- `rule`, not in a hook.
--
--   rule{ ... }          marks a table as a rule and remembers the FILE:LINE of the call,
--                        so events, kasictl and errors name where the rule is written.
--                        rule(t, 2) names the caller's caller instead (as error(msg, 2)
--                        does): helpers that build rules for their caller use it (not as
--                        `return rule(t, 2)`: a tail call has no frame of its own).
--   M.defaults()         a fresh set of the shipped rules (a new table at every call)
--   M.set(list)          a set made of the rules in `list`
--   s:get(name)          the rule named `name`, or nil
--   s:set(name, fields)  changes a rule: the fields given replace the rule's, `action`
--                        fields are merged into its action, and `false` puts a field back
--                        to its default; the changed rule is re-dated to this call's line
--   s:remove(name)       removes a rule (an error if there is none of that name)
--   s:add(r)             appends rule r (an error if its name is taken)
--   s:names()            the names, in order
--   s:set_breaker(f)     changes the per-tenant circuit breakers' settings, s.breaker (a
--                        method of that name would be hidden by the field): the fields
--                        given replace the breaker's; re-dated to this call's line
--   s:tenant(name, f)    overrides the breaker's thresholds for one tenant (fields not
--                        given inherit the breaker's); merged with an earlier override of
--                        that tenant and re-dated to this call's line; s:tenant(name,
--                        false) removes the override
--   M.breaker_defaults() a fresh table of the shipped breaker settings (every set starts
--                        with one)
--
-- A rule's keys, and the breaker's, are listed in plugins/adaptive/README.md. In short: match on providers,
-- outcomes, classes and a `reply` regex; act when `threshold` matches happen within
-- `window`; the action (rate/connection cuts, messages per connection, suspend, pool,
-- alert) holds for `hold`, then steps back by `recover` every `recover_every`; a trigger
-- while it holds escalates it (`escalate`, up to `max_level`).
--
-- Every rule that matches an outcome counts and acts on its own; where several actions
-- are in force on one pair the strictest of each limit applies. So the catch-all rules
-- at the end (no providers: every provider, known or not) are a floor, and the
-- per-provider rules above them react sooner or harder where a provider's replies say
-- more.
--
-- Sources for the numbers (read 2024-2025):
--   Google   Email sender guidelines, support.google.com/a/answer/81126, and its SMTP
--            error reference, support.google.com/a/answer/3726730: 421 4.7.28 "unusual
--            rate of unsolicited mail ... temporarily rate limited" asks the sender to
--            slow down; 421 4.7.0 "very low reputation of the sending IP/domain"; 550 5.7.1
--            "likely unsolicited mail" / "has been blocked".
--   Microsoft  Outlook.com postmaster, sendersupport.olc.protection.outlook.com/pm: 451
--            4.7.650 "temporarily rate limited due to IP reputation", 451 4.7.500 "Server
--            busy ... (S77714)", 451 4.7.652 "exceeded the maximum number of
--            connections", "exceeded maximum number of messages per connection", 550
--            5.7.606-649 "banned sending IP", S3150 "on our block list".
--   Yahoo    senders.yahooinc.com/smtp-error-codes: [TSS04]/[TS02]/[TS03] "temporarily
--            deferred due to unexpected volume or user complaints", [TSS09] "permanently
--            deferred", [BL21] Spamhaus listing, "Max message per connection reached".
--   Apple    iCloud Mail postmaster, support.apple.com/102322: [HCM1] "Your mail from
--            ... was deferred", [BS02] "Temporary server error", "excessive volume".
--   Comcast  Xfinity postmaster, spa.xfinity.com/postmaster: RL0000xx rate-limit codes,
--            BL0000xx block-list codes, at most 25 simultaneous connections per IP.
--   KumoMTA  assets/policy-extras/shaping.toml (reputation deferrals -> 1 message a
--            minute and 1 connection for 90 minutes; Yahoo TSS04 -> suspend 2 hours;
--            Comcast RL0000 twice an hour -> slower for 2 hours) and
--            assets/community/shaping.toml (Gmail "unusual rate" -> 10/min for 30 minutes,
--            "likely unsolicited" 5/hour -> suspend 1 hour; Outlook "Server busy" ->
--            1/min for 15 minutes, block list -> suspend 2 hours; Apple HCM1 3/hour ->
--            suspend 15 minutes; Yahoo TSS05 -> suspend 4 hours).
-- How Kasi reads these replies (their class) was checked with `kasictl bounce classify`
-- and test/integration/provider_sim.py --classify; where it reads a provider's throttle
-- as another class (Apple [HCM1]: policy; Comcast RL codes: spam_block or
-- remote_system) the rule matches the reply text instead.

local M = {}

local Set = {}
Set.__index = Set

local function index_of(set, name)
  for i, r in ipairs(set.rules) do
    if r.name == name then return i end
  end
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- `base` with `fields` applied: false removes a field, `action` is merged key by key.
local function changed(base, fields)
  local out = copy(base)
  for k, v in pairs(fields) do
    if v == false then
      out[k] = nil
    elseif k == 'action' and type(v) == 'table' and type(base.action) == 'table' then
      local a = copy(base.action)
      for ak, av in pairs(v) do
        if av == false then a[ak] = nil else a[ak] = av end
      end
      out.action = a
    else
      out[k] = v
    end
  end
  return out
end

function Set:get(name)
  local i = index_of(self, name)
  return i and self.rules[i] or nil
end

function Set:set(name, fields)
  local i = index_of(self, name)
  if not i then error("adaptive: no rule named '" .. tostring(name) .. "'", 2) end
  if type(fields) ~= 'table' then
    error('adaptive: set(name, fields): fields must be a table', 2)
  end
  self.rules[i] = rule(changed(self.rules[i], fields), 2)
  return self.rules[i]
end

function Set:remove(name)
  local i = index_of(self, name)
  if not i then error("adaptive: no rule named '" .. tostring(name) .. "'", 2) end
  table.remove(self.rules, i)
end

function Set:add(r)
  if type(r) ~= 'table' then error('adaptive: add(r): r must be a rule{...}', 2) end
  if r.name ~= nil and index_of(self, r.name) then
    error("adaptive: a rule named '" .. tostring(r.name) .. "' exists already (use set)", 2)
  end
  self.rules[#self.rules + 1] = r
  return r
end

function Set:names()
  local out = {}
  for i, r in ipairs(self.rules) do out[i] = r.name end
  return out
end

-- The breaker: its table is plain data; these helpers change it and, through the loader's
-- rule(t, 2), record the line of the call for the loader's errors (a table that no helper
-- made has no line: its errors name the file's last line).
function Set:set_breaker(fields)
  if type(fields) ~= 'table' then error('adaptive: set_breaker(fields): fields must be a table', 2) end
  local b = copy(self.breaker or M.breaker_defaults())
  for k, v in pairs(fields) do b[k] = v end
  self.breaker = rule(b, 2)
  return self.breaker
end

function Set:tenant(name, fields)
  if type(name) ~= 'string' then error('adaptive: tenant(name, fields): name must be a string', 2) end
  if fields ~= false and type(fields) ~= 'table' then
    error('adaptive: tenant(name, fields): fields must be a table, or false to remove', 2)
  end
  self.breaker = self.breaker or M.breaker_defaults()
  local tenants = self.breaker.tenants or {}
  self.breaker.tenants = tenants
  if fields == false then
    tenants[name] = nil
    return nil
  end
  local t = copy(tenants[name])
  for k, v in pairs(fields) do t[k] = v end
  tenants[name] = rule(t, 2)
  return tenants[name]
end

-- The per-tenant circuit breakers (core/shaping/tenant_breaker.h, docs/adaptive.md): a
-- tenant whose hard-bounce, complaint or block rate over `window` reaches its threshold
-- (once it made `min_attempts` attempts there) is held for `open`, then probed: a share
-- `probe` of its deliveries goes until `probe_attempts` outcomes decide between closing
-- and opening again for twice as long. Where the thresholds come from:
--   complaint_rate 0.003  Gmail's email sender guidelines (support.google.com/a/answer/
--            81126) and Yahoo's sender requirements (senders.yahooinc.com/best-practices)
--            ask bulk senders to keep the spam rate users report under 0.3 % (Gmail: aim
--            under 0.1 %); a sender over 0.3 % is not eligible for Gmail's mitigation. A
--            tenant at that rate is hurting the IPs and domains everyone shares.
--   hard_bounce_rate 0.05  Amazon SES asks for a bounce rate (hard bounces) under 5 %,
--            puts an account under review above it and may pause it at 10 % (SES
--            enforcement FAQ; repost.aws/knowledge-center/ses-resolve-account-review-pause);
--            a shared MTA pauses at the review level, as it cannot wait days for a review.
--   block_rate 0.2, min_attempts 100, window 1h, open 30m, probe 0.1, probe_attempts 20:
--            a judgement, not a published number. One attempt in five refused for the
--            sender's reputation or as spam is a tenant-made block, not one provider's bad
--            day (those are the rules' business); 100 attempts keep a small tenant's first
--            bounces from tripping it; an hour is the longest window the breaker keeps
--            (sixty one-minute buckets); 30 minutes open, then 1 delivery in 10 as a probe,
--            20 outcomes to decide, is about what an operator needs to look, and little
--            mail put at risk while the cause is still there.
function M.breaker_defaults()
  return { enabled = true, window = '1h', min_attempts = 100,
           hard_bounce_rate = 0.05, complaint_rate = 0.003, block_rate = 0.2,
           open = '30m', probe = 0.1, probe_attempts = 20,
           tenants = {} }  -- tenants = { acme = { hard_bounce_rate = 0.1 }, ... }
end

function M.set(list)
  return setmetatable({ rules = list or {}, breaker = M.breaker_defaults() }, Set)
end

-- The shipped rules. Per provider, three families: rate limits (cut the rate and the
-- connections), reputation deferrals (cut harder and pause briefly, longer if it goes on),
-- and reputation or spam refusals that are permanent (pause and alert): a bounce, or a 5xx
-- refusal before any transaction (a greeting that refuses the IP is a `connection`
-- outcome whatever its code, hence reply '^5'). Durations: '90s', '10m', '2h', '1d'.
function M.defaults()
  return M.set{
    -- Google ------------------------------------------------------------------------------
    -- 421 4.7.28 / 4.7.0 "unusual rate of unsolicited mail ... temporarily rate limited".
    -- The reply pattern leaves out 450 4.2.1 "receiving mail at a rate" (one busy
    -- recipient, not the sender: the catch-all counts those, at a higher threshold).
    rule{ name = 'google-rate', providers = { 'google' }, classes = { 'rate_limited' },
          reply = [[4\.7\.28|unusual rate]], threshold = 3, window = '5m',
          action = { rate_factor = 0.7, connections_factor = 0.5 },
          hold = '20m', recover_every = '5m', recover = 1.25 },
    -- 421 4.7.0 "very low reputation of the sending IP", "Try again later, closing
    -- connection": slow down a lot, pause 15 minutes (30, 60, 120 if it goes on).
    rule{ name = 'google-reputation', providers = { 'google' },
          classes = { 'reputation_block' }, threshold = 3, window = '10m',
          action = { rate_factor = 0.5, connections_factor = 0.5, suspend = '15m' },
          hold = '1h', recover_every = '10m', recover = 1.25, escalate = 2, max_level = 4 },
    -- Gmail also judges the sending domain: "low reputation of the sending domain" slows
    -- that domain at Google, whichever IP it leaves from.
    rule{ name = 'google-domain-reputation', scope = 'domain', providers = { 'google' },
          classes = { 'reputation_block' }, reply = 'reputation of the sending domain',
          threshold = 3, window = '10m',
          action = { rate_factor = 0.5, suspend = '30m', alert = true },
          hold = '2h', recover_every = '15m', recover = 1.25, escalate = 2, max_level = 3 },
    -- 550 5.7.1 "likely unsolicited mail" / "has been blocked" (KumoMTA: 5 an hour ->
    -- suspend 1 hour).
    rule{ name = 'google-block', providers = { 'google' },
          outcomes = { 'bounced', 'connection' }, reply = '^5',
          classes = { 'reputation_block', 'spam_block' }, threshold = 5, window = '10m',
          action = { suspend = '1h', alert = true },
          hold = '2h', recover_every = '15m', escalate = 2, max_level = 3 },

    -- Microsoft (Outlook.com, Hotmail, Microsoft 365) -------------------------------------
    -- 451 4.7.500 "Server busy ... (S77714)", 451 4.7.652 too many connections.
    rule{ name = 'microsoft-rate', providers = { 'microsoft' }, classes = { 'rate_limited' },
          threshold = 3, window = '5m',
          action = { rate_factor = 0.7, connections_factor = 0.5 },
          hold = '15m', recover_every = '5m', recover = 1.25 },
    -- 421 4.7.0 "exceeded maximum number of messages per connection".
    rule{ name = 'microsoft-per-connection', providers = { 'microsoft' },
          reply = 'maximum number of messages per connection', threshold = 2, window = '10m',
          action = { messages_per_connection = 20 },
          hold = '1h', recover_every = '15m', recover = 1.5 },
    -- 451 4.7.650 "temporarily rate limited due to IP reputation" (KumoMTA: 1/min, one
    -- connection, 90 minutes).
    rule{ name = 'microsoft-reputation', providers = { 'microsoft' },
          classes = { 'reputation_block' }, threshold = 3, window = '10m',
          action = { rate_factor = 0.3, connections = 1, suspend = '30m' },
          hold = '90m', recover_every = '15m', recover = 1.25, escalate = 2, max_level = 4 },
    -- 550 5.7.606-649 banned sending IP, S3150 block list (KumoMTA: suspend 2 hours).
    rule{ name = 'microsoft-block', providers = { 'microsoft' },
          outcomes = { 'bounced', 'connection' }, reply = '^5',
          classes = { 'reputation_block', 'spam_block' }, threshold = 5, window = '10m',
          action = { suspend = '2h', alert = true },
          hold = '4h', recover_every = '30m', escalate = 2, max_level = 3 },

    -- Yahoo (Yahoo Mail, AOL) -------------------------------------------------------------
    -- 450 "receiving mail too quickly", 421 "Max message per connection reached".
    rule{ name = 'yahoo-rate', providers = { 'yahoo' }, classes = { 'rate_limited' },
          threshold = 3, window = '5m',
          action = { rate_factor = 0.7, connections_factor = 0.5, messages_per_connection = 20 },
          hold = '30m', recover_every = '10m', recover = 1.25 },
    -- 421 4.7.0 [TSS04]/[TS02]/[TS03]: Yahoo asks for a pause; 1 hour, then 2, then 4
    -- (KumoMTA: TSS04 -> 2 hours, TSS05 -> 4 hours).
    rule{ name = 'yahoo-reputation', providers = { 'yahoo' },
          classes = { 'reputation_block' }, threshold = 2, window = '10m',
          action = { rate_factor = 0.5, connections_factor = 0.5, suspend = '1h' },
          hold = '2h', recover_every = '15m', recover = 1.25, escalate = 2, max_level = 3 },
    -- 553 5.7.2 [TSS09] permanently deferred, 553 5.7.1 [BL21] Spamhaus listing.
    rule{ name = 'yahoo-block', providers = { 'yahoo' },
          outcomes = { 'bounced', 'connection' }, reply = '^5',
          classes = { 'reputation_block', 'spam_block' }, threshold = 3, window = '10m',
          action = { suspend = '2h', alert = true },
          hold = '4h', recover_every = '30m', escalate = 2, max_level = 3 },

    -- Apple (iCloud Mail) -----------------------------------------------------------------
    -- 450 "rejected due to excessive volume".
    rule{ name = 'apple-rate', providers = { 'apple' }, classes = { 'rate_limited' },
          threshold = 3, window = '5m',
          action = { rate_factor = 0.7, connections_factor = 0.5 },
          hold = '15m', recover_every = '5m', recover = 1.25 },
    -- 421 [HCM1] "Your mail from ... was deferred" (Kasi reads it as policy; KumoMTA: 3
    -- an hour -> suspend 15 minutes).
    rule{ name = 'apple-deferred', providers = { 'apple' }, reply = '\\[HCM1\\]',
          threshold = 3, window = '1h', action = { suspend = '15m' },
          hold = '30m', recover_every = '10m', escalate = 2, max_level = 3 },
    -- 451 [BS02] "Temporary server error", 421 "Service unavailable - try again later".
    rule{ name = 'apple-reputation', providers = { 'apple' },
          classes = { 'reputation_block' }, threshold = 3, window = '10m',
          action = { rate_factor = 0.5, connections_factor = 0.5, suspend = '15m' },
          hold = '1h', recover_every = '10m', recover = 1.25, escalate = 2, max_level = 4 },
    -- 550 5.7.0 Proofpoint/Spamhaus listings (KumoMTA: Spamhaus DBL -> 4 hours).
    rule{ name = 'apple-block', providers = { 'apple' },
          outcomes = { 'bounced', 'connection' }, reply = '^5',
          classes = { 'reputation_block', 'spam_block' }, threshold = 3, window = '10m',
          action = { suspend = '2h', alert = true },
          hold = '4h', recover_every = '30m', escalate = 2, max_level = 2 },

    -- Comcast (Xfinity) -------------------------------------------------------------------
    rule{ name = 'comcast-rate', providers = { 'comcast' }, classes = { 'rate_limited' },
          threshold = 3, window = '5m',
          action = { rate_factor = 0.7, connections_factor = 0.5 },
          hold = '30m', recover_every = '10m', recover = 1.25 },
    -- RL0000xx rate-limit codes and "Too many sessions opened" (Kasi reads them as other
    -- classes; KumoMTA: RL0000 twice an hour -> slower for 2 hours).
    rule{ name = 'comcast-rl', providers = { 'comcast' },
          reply = [[RL0000|too many sessions]], threshold = 2, window = '1h',
          action = { rate_factor = 0.5, connections_factor = 0.5 },
          hold = '2h', recover_every = '15m', recover = 1.25 },
    rule{ name = 'comcast-reputation', providers = { 'comcast' },
          classes = { 'reputation_block' }, threshold = 3, window = '10m',
          action = { rate_factor = 0.5, connections_factor = 0.5, suspend = '15m' },
          hold = '1h', recover_every = '10m', recover = 1.25, escalate = 2, max_level = 4 },
    -- 554 BL0000xx "Comcast block for spam", block-list listings.
    rule{ name = 'comcast-block', providers = { 'comcast' },
          outcomes = { 'bounced', 'connection' }, reply = '^5',
          classes = { 'reputation_block', 'spam_block' }, threshold = 3, window = '10m',
          action = { suspend = '2h', alert = true },
          hold = '4h', recover_every = '30m', escalate = 2, max_level = 3 },

    -- Every provider (the floor) ----------------------------------------------------------
    rule{ name = 'any-rate', classes = { 'rate_limited' }, threshold = 10, window = '5m',
          action = { rate_factor = 0.8, connections_factor = 0.75 },
          hold = '10m', recover_every = '5m', recover = 1.25 },
    rule{ name = 'any-reputation', classes = { 'reputation_block' }, threshold = 5,
          window = '10m',
          action = { rate_factor = 0.5, connections_factor = 0.5, suspend = '10m' },
          hold = '30m', recover_every = '10m', recover = 1.25, escalate = 2, max_level = 4 },
    rule{ name = 'any-block', outcomes = { 'bounced', 'connection' }, reply = '^5',
          classes = { 'reputation_block', 'spam_block' }, threshold = 10, window = '10m',
          action = { suspend = '30m', alert = true },
          hold = '1h', recover_every = '15m', escalate = 2, max_level = 3 },
  }
end

return M
