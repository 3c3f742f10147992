-- Region pinning and IP warm-up (docs/policies.md). acme's mail leaves from EU sources
-- only; eu-new (warmup_start in egress.ini) ramps from 50 a day per provider, doubling.
-- Transactional mail (note pool=transactional, set by your own plugin) never uses it.
local warmup = require('kasi.warmup').new{
  start = 50, factor = 2, days = 30,
  providers = { yahoo = { start = 20 } },
}
return require('kasi.egress').plugin{
  tenant_regions = { acme = 'eu' },
  warmup = warmup,
}
