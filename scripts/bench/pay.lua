-- POST /api/pay: request i of thread t pays line i of $OUT/pay-<t>.txt ("token reservationId"),
-- the price being 100.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local n = 0
function init(args)
  jobs = {}
  for _, line in ipairs(lines_of(os.getenv("OUT") .. "/pay-" .. id .. ".txt")) do
    local token, rid = line:match("(%S+) (%d+)")
    jobs[#jobs + 1] = { token, rid }
  end
end
function request()
  n = n + 1
  local job = jobs[((n - 1) % #jobs) + 1]
  return wrk.format("POST", "/api/pay",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. job[1] },
    '{"reservationId":' .. job[2] .. ',"amount":100}')
end
