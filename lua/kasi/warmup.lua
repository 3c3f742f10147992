-- IP warm-up: a daily cap per egress source (IP) and mailbox provider that grows with the
-- IP's age, as receivers expect from a new IP. With kasi/egress.lua, a source that has
-- reached today's cap for a provider is skipped and the message spills to a warmer
-- source of the same pool; when no source of the pool has room, the message waits
-- (deferred with the reason) until a cap frees up: the next UTC day.
--
--   local warmup = require('kasi.warmup').new{
--     start = 50,        -- messages per provider on the IP's first day
--     factor = 2,        -- each day's cap is the previous day's times this...
--     days = 30,         -- ...until the IP is this many days old: then no cap
--     full = nil,        -- or a cap that stays once reached (e.g. 100000)
--     providers = { gmail = { start = 20 }, yahoo = { start = 20, factor = 1.5 } },
--     pools = { transactional = { start = 200 } },  -- per pool (provider settings win)
--     clock = nil,       -- a function returning epoch seconds (tests); default kasi.now
--   }
--   return require('kasi.egress').plugin{ warmup = warmup }
--
-- An IP's age comes from egress.ini `[source:NAME] warmup_start=YYYY-MM-DD` (day 0); a
-- source without it is warmed (no cap). Counts live in kasi.counter (per source,
-- provider and UTC day), so they survive reloads and restarts. The provider of a
-- destination is found from its MX hosts with kasi/providers.lua; others count as
-- "other". Example: start 50, factor 2 gives 50, 100, 200, ... 51,200 on day 10.

local providers = require('kasi.providers')

local M = {}
M.__index = M

function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, M)
  self.start = opts.start or 50
  self.factor = opts.factor or 2
  self.days = opts.days or 30
  self.full = opts.full
  self.providers = opts.providers or {}
  self.pools = opts.pools or {}
  self.clock = opts.clock or kasi.now
  return self
end

local function epoch_of_day(text)
  local y, m, d = tostring(text):match('^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
  if not y then return nil end
  -- days since 1970-01-01 for a UTC civil date (Howard Hinnant's algorithm)
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400
end

function M:today()
  return os.date('!%Y-%m-%d', math.floor(self.clock()))
end

-- The IP's age in whole days (0 on its first day), or nil when it has no warm-up start.
function M:age(source)
  local first = source and epoch_of_day(source.warmup_start)
  if not first then return nil end
  return math.floor((self.clock() - first) / 86400)
end

-- Today's cap for `source` and `provider` in `pool`; nil = no cap.
function M:cap(source, provider, pool)
  local age = self:age(source)
  if not age then return nil end
  local o = {}
  for k, v in pairs(self.pools[pool or 'default'] or {}) do o[k] = v end
  for k, v in pairs(self.providers[provider] or {}) do o[k] = v end
  local start = o.start or self.start
  local factor = o.factor or self.factor
  local days = o.days or self.days
  local full = o.full or self.full
  if age < 0 then return 0 end  -- not started yet
  if age >= days then return full end
  local cap = math.floor(start * factor ^ age)
  if full and cap > full then cap = full end
  return cap
end

function M:key(source_name, provider)
  return 'warmup:' .. source_name .. ':' .. provider .. ':' .. self:today()
end

function M:used(source_name, provider)
  return kasi.counter.get(self:key(source_name, provider))
end

-- Counts one message for (source, provider) today.
function M:take(source_name, provider)
  return kasi.counter.add(self:key(source_name, provider), 1, 3 * 86400)
end

-- The provider name of `domain` (looks up its MX; yields).
function M:provider_of(domain)
  local mx = kasi.dns.mx(domain)
  if not mx or #mx == 0 then return 'other' end
  local hosts = {}
  for i, r in ipairs(mx) do hosts[i] = r.exchange end
  local p = providers.match(hosts)
  return p and p.name or 'other'
end

-- Keeps the candidates ({source=, weight=}) that have room today; also returns the
-- caps text for the reason when none has.
function M:with_room(candidates, sources, provider, pool)
  local out, full = {}, {}
  for _, m in ipairs(candidates) do
    local cap = self:cap(sources[m.source], provider, pool)
    if not cap or self:used(m.source, provider) < cap then
      out[#out + 1] = m
    else
      full[#full + 1] = m.source .. ' ' .. cap
    end
  end
  return out, table.concat(full, ', ')
end

return M
