-- Region pinning: a message tagged with a region leaves only from egress sources of that
-- region (egress.ini [source:NAME] region=). With no source in the region it waits
-- (deferred with "no egress source in region R", which kasictl show and the events
-- report) and is never sent from elsewhere.
--
-- In DIR/plugins/region.lua:
--
--   return require('kasi.egress').plugin{
--     header = 'X-Kasi-Region',           -- the tag, removed from the message (default)
--     warmup = require('kasi.warmup').new{ start = 50 },  -- optional: warm-up caps
--     tenant_regions = { acme = 'eu' },   -- the region of a tenant's untagged mail
--     default_region = nil,               -- the region of all other untagged mail
--   }
--
-- A region comes from, in order: the transaction's region (the header, or a plugin
-- that set transaction.region), the tenant's region, default_region. Untagged mail
-- without a default is left to the pools (CONT). Among the sources of the message's pool
-- (note `pool`, else pool "default", else all sources) that are in the region, one is
-- picked by weight.

local M = {}

-- egress.ini as tables: sources[name] = {name, address, ehlo, region};
-- pools[name] = { {source = name, weight = w}, ... } (sorted by source name).
function M.config()
  local ini = kasi.config.ini('egress.ini')
  local sources, pools = {}, {}
  for sect, keys in pairs(ini) do
    local name = sect:match('^source:(.+)$')
    if name then
      sources[name] = { name = name, address = keys.address, ehlo = keys.ehlo,
                        region = keys.region and tostring(keys.region):lower() or nil,
                        warmup_start = keys.warmup_start }
    end
    local pool = sect:match('^pool:(.+)$')
    if pool then
      local members = {}
      for src, w in pairs(keys) do
        members[#members + 1] = { source = src, weight = tonumber(w) or 1 }
      end
      table.sort(members, function(a, b) return a.source < b.source end)
      pools[pool] = members
    end
  end
  return sources, pools
end

-- The members of `pool` (or "default", or every source) that are in `region` (any
-- region when nil).
function M.candidates(region, pool)
  local sources, pools = M.config()
  local members = pools[pool or 'default'] or pools['default']
  if not members then
    members = {}
    for name in pairs(sources) do members[#members + 1] = { source = name, weight = 1 } end
    table.sort(members, function(a, b) return a.source < b.source end)
  end
  local out = {}
  for _, m in ipairs(members) do
    local s = sources[m.source]
    if s and (region == nil or s.region == region) then out[#out + 1] = m end
  end
  return out
end

local function pick(list, ticket)
  local total = 0
  for _, m in ipairs(list) do total = total + m.weight end
  local at = ticket % total
  for _, m in ipairs(list) do
    if at < m.weight then return m.source end
    at = at - m.weight
  end
  return list[#list].source
end

function M.plugin(opts)
  opts = opts or {}
  local header = opts.header or 'X-Kasi-Region'
  local tenant_regions = opts.tenant_regions or {}
  local warmup = opts.warmup
  local plugin = {}
  local ticket = 0

  function plugin.hook_data_post(connection)
    local t = connection.transaction
    local v = t:get_header(header)
    if not v then return end
    t:remove_header(header)
    v = v:lower():gsub('%s', '')
    if v ~= '' then t.region = v end
  end

  function plugin.hook_get_egress(hmail, domain)
    local region = hmail.notes.region or tenant_regions[hmail.tenant] or opts.default_region
    if region == '' then region = nil end
    if not region and not warmup then return end  -- the pools decide, as without a policy
    local pool = hmail.notes.pool
    local list = M.candidates(region, pool)
    if #list == 0 then
      return DENYSOFT, 'no egress source in region ' .. tostring(region)
    end
    local provider
    if warmup then
      local sources = M.config()
      provider = warmup:provider_of(domain)
      local room, full = warmup:with_room(list, sources, provider, pool)
      if #room == 0 then
        return DENYSOFT, string.format('warm-up: every source%s is at its daily cap for %s ' ..
                                       '(%s); waiting for the next UTC day',
                                       region and (' of region ' .. region) or '', provider, full)
      end
      list = room
    end
    ticket = ticket + 1
    local chosen = pick(list, ticket)
    if warmup then warmup:take(chosen, provider) end
    return OK, chosen
  end

  return plugin
end

return M
