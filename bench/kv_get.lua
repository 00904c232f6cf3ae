-- wrk: GET one of 1,000 existing keys per request.
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/kv/bench/key" .. (counter % 1000))
end
