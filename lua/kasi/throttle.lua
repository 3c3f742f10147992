-- Provider throttling as a plugin: queue limits per mailbox provider and per-provider
-- retry intervals, from kasi/providers.lua plus the operator's overrides.
--
-- In DIR/plugins/throttle.lua:
--
--   return require('kasi.throttle').plugin{
--     -- change a provider's limits (fields not named keep the profile's value)
--     overrides = { gmail = { max_message_rate = '60/min' }, yahoo = { max_connections = 2 } },
--     -- add providers of your own (checked before the shipped ones; `provider = NAME`
--     -- matches a provider of rules/providers.tsv, mx_suffixes any host you name)
--     extra = { { name = 'corp', mx_suffixes = { '.mx.corp.example' },
--                 limits = { max_connections = 2 }, retry = { 60, 300 } } },
--     -- retry intervals of a provider, by failures so far (last one repeats)
--     retry = { gmail = { 120, 600, 1800 } },
--     -- back-off rules of a provider (replace the shipped ones; {} turns them off)
--     backoff = { gmail = { { pattern = '4%.7%.28', duration = 600,
--                             limits = { max_message_rate = '20/min' } } } },
--   }
--
-- hook_queue_limits gives each ready queue its provider's limits (set_by = "provider
-- <name>"); destinations of no known provider keep outbound.ini's. hook_deferred makes
-- the next retry of a message deferred by a known provider follow that provider's
-- intervals, and when the deferral matches one of the provider's back-off rules, slows
-- (or pauses) that ready queue for the rule's duration (kasi.queue.set_limits; set_by =
-- "backoff <provider>: <pattern>"). Edits take effect at the next reload.

local providers = require('kasi.providers')

local M = {}

local function merged(base, over)
  local out = {}
  for k, v in pairs(base or {}) do out[k] = v end
  for k, v in pairs(over or {}) do out[k] = v end
  return out
end

-- The provider list with the options applied.
function M.profiles(opts)
  opts = opts or {}
  local list = {}
  for _, p in ipairs(opts.extra or {}) do list[#list + 1] = p end
  for _, p in ipairs(providers.list) do
    local o = (opts.overrides or {})[p.name]
    local r = (opts.retry or {})[p.name]
    local b = (opts.backoff or {})[p.name]
    list[#list + 1] = { name = p.name, provider = p.provider, mx_suffixes = p.mx_suffixes,
                        limits = merged(p.limits, o), retry = r or p.retry,
                        backoff = b or p.backoff }
  end
  return list
end

function M.plugin(opts)
  local list = M.profiles(opts)
  local plugin = {}

  function plugin.hook_queue_limits(q)
    local p = providers.match(q.mx_hosts, list)
    if not p then return end
    local l = merged(p.limits, { set_by = 'provider ' .. p.name })
    return OK, l
  end

  function plugin.hook_deferred(hmail, params)
    local p = providers.match_host(params.host, list)
    if not p then return end
    local said = string.format('%s %s %s', params.code or '', params.enhanced or '',
                               params.err or '')
    for _, rule in ipairs(p.backoff or {}) do
      if params.queue and params.queue ~= '' and said:find(rule.pattern) then
        local l = merged(rule.limits, { set_by = 'backoff ' .. p.name .. ': ' .. rule.pattern })
        kasi.queue.set_limits(params.queue, l, rule.duration or 1800)
        kasi.log.notice('throttle:', params.queue, 'backs off for', rule.duration or 1800,
                        's after', said)
        break
      end
    end
    if not p.retry or #p.retry == 0 then return end
    local n = math.max(1, hmail.num_failures or 1)
    local secs = p.retry[math.min(n, #p.retry)]
    return DENYSOFT, tostring(secs)
  end

  return plugin
end

return M
