-- wrk script for the MailPass API.
--
--   wrk ... -s mailpass.lua URL -- post PATH BODIES_FILE API_KEY POST each JSON body of the file,
--                                                                  one a line, to PATH, round robin
--   wrk ... -s mailpass.lua URL -- status IDS_FILE API_KEY [FROM] GET /status/<id>, one id a line,
--                                                                  round robin (FROM: the client
--                                                                  address, as X-Forwarded-For)
--   wrk ... -s mailpass.lua URL -- flood COUNT FROM                GET /status/x with COUNT
--                                                                  random wrong keys, from the
--                                                                  address FROM; stops once COUNT
--                                                                  were answered
--   wrk ... -s mailpass.lua URL -- get PATHS_FILE USER_AGENT      GET each path, one a line, round
--                                                                  robin, as that user agent
--   wrk ... -s mailpass.lua URL -- sendgrid PATH LINES_FILE         POST SendGrid's signed event
--                                                                  batches to a provider's hook:
--                                                                  each line SIGNATURE, TIMESTAMP
--                                                                  and the JSON body, by tabs
--
-- Every request is built once in init(), so request() costs a table lookup: the load generator
-- must not eat the CPU the server needs. done() prints one machine-readable line for the bench.

local requests = {}
local next_request = 0

function init(args)
  local mode = args[1]
  if mode == "post" then
    local path, bodies_file, key = args[2], args[3], args[4]
    local headers = {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
    }
    for body in io.lines(bodies_file) do
      if body ~= "" then
        requests[#requests + 1] = wrk.format("POST", path, headers, body)
      end
    end
  elseif mode == "status" then
    local ids_file, key, from = args[2], args[3], args[4]
    local headers = { ["Authorization"] = "Bearer " .. key }
    if from then
      headers["X-Forwarded-For"] = from
    end
    for id in io.lines(ids_file) do
      if id ~= "" then
        requests[#requests + 1] = wrk.format("GET", "/api/v1/mail/status/" .. id, headers)
      end
    end
  elseif mode == "flood" then
    local count, from = tonumber(args[2]), args[3]
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    math.randomseed(os.time())
    for _ = 1, count do
      local key = {}
      for i = 1, 32 do
        local n = math.random(#alphabet)
        key[i] = alphabet:sub(n, n)
      end
      local headers = {
        ["Authorization"] = "Bearer mp_live_" .. table.concat(key),
        ["X-Forwarded-For"] = from,
      }
      requests[#requests + 1] = wrk.format("GET", "/api/v1/mail/status/x@bench.example", headers)
    end
    local answered = 0
    response = function()
      answered = answered + 1
      if answered >= count then
        wrk.thread:stop()
      end
    end
  elseif mode == "get" then
    local paths_file, user_agent = args[2], args[3]
    local headers = { ["User-Agent"] = user_agent }
    for path in io.lines(paths_file) do
      if path ~= "" then
        requests[#requests + 1] = wrk.format("GET", path, headers)
      end
    end
  elseif mode == "sendgrid" then
    local path, lines_file = args[2], args[3]
    for line in io.lines(lines_file) do
      local signature, timestamp, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
      if body then
        local headers = {
          ["Content-Type"] = "application/json",
          ["X-Twilio-Email-Event-Webhook-Signature"] = signature,
          ["X-Twilio-Email-Event-Webhook-Timestamp"] = timestamp,
        }
        requests[#requests + 1] = wrk.format("POST", path, headers, body)
      end
    end
  else
    error("unknown mode: " .. tostring(mode))
  end
  assert(#requests > 0, "no request to send")
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    "BENCH-WRK requests=%d duration_us=%d status_errors=%d connect_errors=%d read_errors=%d "
      .. "write_errors=%d timeouts=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency.max
  ))
end
