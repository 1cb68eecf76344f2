-- Shared by the wrk scripts of scripts/bench-http.sh. Each wrk thread gets an id (0, 1, …)
-- so it can use its own slice of users, tokens and seats, and its own output file. With
-- $WRK_NODES (host:port,host:port,…) the threads are spread over those nodes of one service,
-- thread t sending every request to node t mod N.
local threads = 0
local nodes = {}
for hostport in string.gmatch(os.getenv("WRK_NODES") or "", "[^,]+") do
  local host, port = hostport:match("^(.*):(%d+)$")
  nodes[#nodes + 1] = wrk.lookup(host, port)[1]
end
function setup(thread)
  thread:set("id", threads)
  if #nodes > 0 then thread.addr = nodes[(threads % #nodes) + 1] end
  threads = threads + 1
end

function lines_of(path)
  local t = {}
  local f = io.open(path, "r")
  if f then
    for line in f:lines() do t[#t + 1] = line end
    f:close()
  end
  return t
end

json_headers = { ["Content-Type"] = "application/json" }
