-- wrk: register service instances, each request a new one (or one of N, re-registered).
-- KIND=agent: PUT /v1/agent/service/register (the local agent's own service, synced to the
-- catalog by anti-entropy); KIND=catalog: PUT /v1/catalog/register (a node and its service,
-- written through Raft at once). Each wrk thread numbers its requests apart from the others.
local kind = os.getenv("KIND") or "agent"
local spread = tonumber(os.getenv("SPREAD") or "100000")
local counter = 0
local thread_id = 0
local next_id = 0

setup = function(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

request = function()
  counter = counter + 1
  local n = (thread_id * 1000003 + counter) % spread
  local body, path
  if kind == "catalog" then
    path = "/v1/catalog/register"
    body = string.format(
      '{"Node":"bench-node-%d","Address":"10.1.%d.%d","Service":{"ID":"web-%d","Service":"web","Port":%d,"Tags":["v1"]}}',
      n % 1000, math.floor(n / 250) % 250, n % 250 + 1, n, 8000 + n % 1000)
  else
    path = "/v1/agent/service/register"
    body = string.format(
      '{"ID":"web-%d","Name":"web","Port":%d,"Tags":["v1"],"Meta":{"n":"%d"}}',
      n, 8000 + n % 1000, n)
  end
  return wrk.format("PUT", path, {["Content-Type"] = "application/json"}, body)
end
