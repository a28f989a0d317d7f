-- wrk script for mod_raceq: every request is a POST of
--   {"req_id":"<prefix>-t<thread>-<n>","user_id":"<prefix>-u<k>"}
-- with a req_id unique across threads and k drawn uniformly from 1..USERS.
-- Answers outside 200-299 are counted per status.
--
--   wrk -t2 -c32 -d10s -s bench/wrk-raceq.lua http://127.0.0.1:8080/race -- USERS PREFIX
--
-- USERS defaults to 100, PREFIX to "wrk" (give each run its own prefix:
-- mod_raceq answers 409 to a req_id it has applied before). At the end one
-- line starting with "RACEQ-WRK " holds the run's figures as JSON
-- (latencies in microseconds).

local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("thread_no", #threads)
end

local users = 100
local prefix = "wrk"
local sent = 0
non2xx = 0
statuses = ""
local by_status = {}

function init(args)
    users = tonumber(args[1]) or 100
    prefix = args[2] or "wrk"
    if users < 1 then
        error("USERS must be at least 1")
    end
    math.randomseed(os.time() * 1000 + (thread_no or 0))
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    sent = sent + 1
    local body = string.format('{"req_id":"%s-t%d-%d","user_id":"%s-u%d"}',
                               prefix, thread_no or 0, sent, prefix, math.random(users))
    return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
        by_status[status] = (by_status[status] or 0) + 1
        local parts = {}
        for s, n in pairs(by_status) do
            table.insert(parts, string.format('"%d":%d', s, n))
        end
        statuses = table.concat(parts, ",")
    end
end

function done(summary, latency, requests)
    local bad = 0
    local codes = {}
    for _, t in ipairs(threads) do
        bad = bad + (t:get("non2xx") or 0)
        local s = t:get("statuses")
        if s and s ~= "" then
            table.insert(codes, s)
        end
    end
    local e = summary.errors
    io.write(string.format(
        'RACEQ-WRK {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,' ..
        '"non2xx_by_status":[%s],' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
        summary.requests, summary.duration, summary.bytes, bad,
        #codes > 0 and ("{" .. table.concat(codes, "},{") .. "}") or "",
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
