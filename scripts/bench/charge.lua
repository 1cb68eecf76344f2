-- PATCH /api/balance/charge: thread t charges, 1000 each, the users listed in
-- $OUT/users-<t>.txt (the owners of the held reservations, in reservation order), cycling.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local n = 0
function init(args) users = lines_of(os.getenv("OUT") .. "/users-" .. id .. ".txt") end
function request()
  n = n + 1
  return wrk.format("PATCH", "/api/balance/charge", json_headers,
    '{"userId":' .. users[((n - 1) % #users) + 1] .. ',"amount":1000}')
end
