-- Provider throttle profiles (docs/policies.md): the shipped profiles with two changes.
return require('kasi.throttle').plugin{
  overrides = {
    gmail = { max_message_rate = '80/min' },
    yahoo = { max_connections = 3 },
  },
  retry = { gmail = { 300, 900, 1800, 3600 } },
}
