-- Tenants: each submitting relay or authenticated user is a customer (tenant). The
-- mapping lives in config/tenants.ini ([by_ip] address=tenant, [by_user] user=tenant),
-- read through Kasi's INI reader; a message may name its campaign with X-Campaign.
local M = {}

function M.hook_mail(connection, params)
  local map = kasi.config.ini('tenants.ini')
  local tenant = (map.by_user or {})[connection.auth_user or '']
              or (map.by_ip or {})[connection.remote.ip]
  if tenant then connection.transaction.tenant = tenant end
end

function M.hook_data_post(connection)
  local t = connection.transaction
  local campaign = t:get_header('X-Campaign')
  if campaign then
    t.campaign = campaign:gsub('%s', '')
    t:remove_header('X-Campaign')
  end
end

return M
