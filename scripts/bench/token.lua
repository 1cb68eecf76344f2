-- POST /api/token for a new user each request (thread t: users (t+1)*10^7 + 1, + 2, …).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local n = 0
function init(args) base = (id + 1) * 10000000 end
function request()
  n = n + 1
  return wrk.format("POST", "/api/token", json_headers, '{"userId":' .. (base + n) .. '}')
end
