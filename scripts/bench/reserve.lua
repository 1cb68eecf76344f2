-- POST /api/reserve: request i of thread t (of $THREADS) holds seat t + 1 + THREADS*(i-1),
-- with the i-th token of $OUT/tokens-<t>.txt (one hold per token). Seats are 10,000 per
-- date, dates 1, 2, … (the bench concert is the database's first).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local n = 0
function init(args)
  tokens = lines_of(os.getenv("OUT") .. "/tokens-" .. id .. ".txt")
  nthreads = tonumber(os.getenv("THREADS"))
end
function request()
  n = n + 1
  local seat = id + 1 + nthreads * (n - 1)
  local option = math.floor((seat - 1) / 10000) + 1
  return wrk.format("POST", "/api/reserve", json_headers,
    '{"token":"' .. tokens[((n - 1) % #tokens) + 1] .. '","concertOptionId":' .. option ..
    ',"seatId":' .. seat .. '}')
end
