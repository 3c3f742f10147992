-- Mailbox provider profiles: how to recognise a provider from the MX hosts of a
-- destination, and how hard to push it from one egress source (IP).
--
-- Which provider an MX host belongs to is Kasi's one provider table (rules/providers.tsv),
-- asked through kasi.provider_of(host): the bounce classifier, the metrics and these
-- profiles all name a destination's provider the same way. A profile names its
-- `provider`, and may narrow it to some of that provider's MX hosts with `mx_suffixes`
-- (Microsoft's consumer and Microsoft 365 farms are both "microsoft"); an operator's own
-- profile may give `mx_suffixes` alone.
--
-- A destination belongs to a profile when EVERY one of its MX hosts does (KumoMTA's rule:
-- a vanity setup that mixes in a provider MX is not that provider). Limits are per ready
-- queue, i.e. per (egress source, destination site), and site = the set of MX hosts, so
-- all Google-hosted domains share one queue per source.
--
-- Where the numbers come from. Mailbox providers publish requirements (authentication,
-- complaint rates, what their deferrals mean) but almost never numeric rate limits, so the
-- limits below are common practice, chosen to stay under the point where each provider
-- starts deferring for rate, and meant to be tuned by the operator:
--   [G1] Google, Email sender guidelines: https://support.google.com/a/answer/81126
--   [G2] Google, SMTP errors (421 4.7.28 "unusual rate of unsolicited mail"):
--        https://support.google.com/a/answer/3726730
--   [M1] Microsoft, Outlook.com postmaster / sender support:
--        https://sendersupport.olc.protection.outlook.com/pm/
--   [Y1] Yahoo Sender Hub, best practices: https://senders.yahooinc.com/best-practices/
--   [Y2] Yahoo Sender Hub, SMTP error codes (TS01/TS02/TS03/TSS04 rate deferrals):
--        https://senders.yahooinc.com/smtp-error-codes/
--   [A1] Apple, iCloud Mail postmaster information: https://support.apple.com/en-us/102322
--   [X1] GMX / WEB.DE postmaster: https://postmaster.gmx.net/ https://postmaster.web.de/
--   [K1] KumoMTA's shipped shaping defaults (assets/policy-extras/shaping.toml, Apache-2.0):
--        per-provider connection limits and deliveries per connection used as a baseline
--        by many ESPs (google 5 connections / 50 per connection, yahoo 20 per
--        connection, outlook 5 / 50, apple 10 / 5, comcast 25 / 1000, orange 2 / 100,
--        mimecast 10 / 100).
--   [C1] Common ESP practice for a warmed IP, and Kasi's starting points: Gmail 100/min,
--        Outlook 80/min, Yahoo 50/min.
-- Retry intervals (seconds, by number of failures so far) follow the providers' advice to
-- back off on 4xx rate deferrals rather than retry hot [G2][Y2].
--
-- `backoff` rules react to what a provider says when it defers: a Lua pattern matched
-- against "CODE ENHANCED TEXT" of the deferral, the limits to apply to that ready queue
-- (that IP towards that provider), and for how long. max_connections = 0 pauses the queue.
-- They follow the providers' documented meanings [G2][Y2][M1] and the back-off KumoMTA
-- ships for the same replies [K1].
--
-- Editing: change a number here (or better, override it from your plugin, see
-- kasi/throttle.lua) and the running Kasi picks it up at the next reload.

local M = {}

local backoff = { 300, 600, 1200, 2400, 3600, 7200, 14400, 28800 }
local gentle = { 600, 1200, 3600, 7200, 14400, 28800 }

M.list = {
  { name = 'gmail', provider = 'google',
    -- [G1][G2][K1][C1]
    limits = { max_connections = 5, max_messages_per_connection = 50,
               max_message_rate = '100/min' },
    -- 421 4.7.28 "unusual rate of unsolicited mail" from this IP [G2]
    backoff = { { pattern = '4%.7%.28', duration = 1800,
                  limits = { max_message_rate = '10/min', max_connections = 1 } } },
    retry = backoff },
  { name = 'outlook', provider = 'microsoft', mx_suffixes = { '.olc.protection.outlook.com' },
    -- Microsoft consumer: outlook.com, hotmail.*, live.*, msn.com [M1][K1][C1]
    limits = { max_connections = 5, max_messages_per_connection = 50,
               max_message_rate = '80/min' },
    -- 4.7.650 "temporarily rate limited due to IP reputation" [M1][K1]
    backoff = { { pattern = '4%.7%.650', duration = 5400,
                  limits = { max_message_rate = '1/min', max_connections = 1 } } },
    retry = backoff },
  { name = 'office365', provider = 'microsoft',
    mx_suffixes = { '.mail.protection.outlook.com', '.mx.microsoft' },
    -- Microsoft 365 tenants [M1][K1][C1]
    limits = { max_connections = 5, max_messages_per_connection = 50,
               max_message_rate = '80/min' },
    -- 4.7.650 "temporarily rate limited due to IP reputation" [M1][K1]
    backoff = { { pattern = '4%.7%.650', duration = 5400,
                  limits = { max_message_rate = '1/min', max_connections = 1 } } },
    retry = backoff },
  { name = 'yahoo', provider = 'yahoo',
    -- Yahoo and AOL (both on yahoodns.net MX) [Y1][Y2][K1][C1]
    limits = { max_connections = 5, max_messages_per_connection = 20,
               max_message_rate = '50/min' },
    -- [TS01]-[TS03]: too many messages or connections; [TSS04]/[TSS05]: temporarily
    -- deferred for reputation: pause this IP towards Yahoo [Y2][K1]
    backoff = { { pattern = '%[TSS0[45]%]', duration = 7200, limits = { max_connections = 0 } },
                { pattern = '%[TS0[123]%]', duration = 1800,
                  limits = { max_message_rate = '10/min', max_connections = 1 } } },
    retry = gentle },
  { name = 'apple', provider = 'apple',
    -- iCloud, me.com, mac.com [A1][K1]
    limits = { max_connections = 10, max_messages_per_connection = 5,
               max_message_rate = '60/min' },
    retry = backoff },
  { name = 'gmx', provider = 'gmx',
    -- GMX and WEB.DE (1&1 Mail & Media) [X1]
    limits = { max_connections = 5, max_messages_per_connection = 100,
               max_message_rate = '60/min' },
    retry = backoff },
  { name = 'orange', provider = 'orange',
    -- Orange France [K1]
    limits = { max_connections = 2, max_messages_per_connection = 100,
               max_message_rate = '30/min' },
    retry = gentle },
  { name = 'comcast', provider = 'comcast',
    -- Comcast / Xfinity [K1]
    limits = { max_connections = 25, max_messages_per_connection = 1000,
               max_message_rate = '250/min' },
    retry = backoff },
  { name = 'mimecast', provider = 'mimecast',
    -- Mimecast-filtered companies; each region is a separate farm [K1]
    limits = { max_connections = 10, max_messages_per_connection = 100 },
    retry = backoff },
  { name = 'yandex', provider = 'yandex',
    limits = { max_connections = 5, max_messages_per_connection = 50,
               max_message_rate = '60/min' },
    retry = backoff },
  { name = 'mailru', provider = 'mail.ru',
    limits = { max_connections = 5, max_messages_per_connection = 50,
               max_message_rate = '60/min' },
    retry = backoff },
  { name = 'zoho', provider = 'zoho',
    limits = { max_connections = 5, max_messages_per_connection = 50,
               max_message_rate = '60/min' },
    retry = backoff },
}

local function ends_with(s, suffix)
  return #s >= #suffix and s:sub(-#suffix) == suffix
end

-- Whether one MX host (any case, trailing dot allowed) belongs to profile `p`: the
-- provider table says it is p.provider's (when p names one), and it ends with one of
-- p.mx_suffixes (when p lists any).
local function host_in(p, host)
  local h = (host:lower():gsub('%.$', ''))
  if p.provider and kasi.provider_of(h) ~= p.provider then return false end
  if not p.mx_suffixes or #p.mx_suffixes == 0 then return p.provider ~= nil end
  for _, suf in ipairs(p.mx_suffixes) do
    if ends_with(h, suf) or h == suf:sub(2) then return true end
  end
  return false
end

-- The profile every host of `mx_hosts` belongs to, or nil. `list` defaults to M.list.
function M.match(mx_hosts, list)
  if not mx_hosts or #mx_hosts == 0 then return nil end
  for _, p in ipairs(list or M.list) do
    local all = true
    for _, host in ipairs(mx_hosts) do
      if not host_in(p, host) then all = false break end
    end
    if all then return p end
  end
  return nil
end

-- The profile a single MX host name belongs to (for events that know one host).
function M.match_host(host, list)
  if not host or host == '' then return nil end
  return M.match({ host }, list)
end

return M
