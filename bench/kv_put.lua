-- wrk: PUT a value to one of 1,000 keys per request.
counter = 0
request = function()
  counter = counter + 1
  local path = "/v1/kv/bench/key" .. (counter % 1000)
  return wrk.format("PUT", path, nil, "value-" .. counter)
end
