-- Shared by the wrk scripts of scripts/bench-http.sh. Each wrk thread gets an id (0, 1, …)
-- so it can use its own slice of users, tokens and seats, and its own output file.
local threads = 0
function setup(thread)
  thread:set("id", threads)
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
