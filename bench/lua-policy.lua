-- The Lua policy bench/delivery-bench.sh --lua runs: typical per-message work on the three
-- hot hooks, answering CONT so that routing and acceptance are the same as without it.
local M = {}

local blocked = { ['blocked.example'] = true }

function M.hook_rcpt(connection, params)
  local rcpt = params[1]
  if blocked[rcpt.host] then return DENY, 'blocked domain' end
  local t = connection.transaction
  t.notes.tenant_hint = rcpt.host
  t.campaign = 'bench'
end

function M.hook_data_post(connection)
  local t = connection.transaction
  local subject = t:get_header('Subject') or ''
  t:add_header('X-Kasi-Policy', 'checked ' .. #subject)
end

function M.hook_get_mx(hmail, domain)
  if hmail.notes.tenant_hint == 'override.example' then
    return OK, 'mx.override.example'
  end
end

return M
