-- wrk script for mod_raceq: every request is a POST of
--   {"req_id":"<prefix>-t<thread>-<n>","user_id":"<prefix>-u<k>"}
-- with a req_id unique across threads and k drawn uniformly from 1..USERS.
-- Answers outside 200-299 are counted per status.
--
--   wrk -t2 -c32 -d10s -s bench/wrk-raceq.lua http://127.0.0.1:8080/race -- USERS PREFIX
--
-- USERS (a whole number, at least 1) defaults to 100. PREFIX defaults to
-- one made for this run from the time and random bytes, shared by all of
-- wrk's threads, so that repeated runs never send a req_id mod_raceq has
-- applied before (it answers 409 to those). At the end one line starting
-- with "RACEQ-WRK " holds the run's figures as JSON (latencies in
-- microseconds).

local USAGE = "usage: wrk ... -s wrk-raceq.lua URL -- [USERS] [PREFIX]"
    .. " (USERS: a whole number >= 1, default 100)"

local threads = {}

-- Random bytes from the kernel; two runs in the same second still differ.
local function random_hex()
    local f = io.open("/dev/urandom", "rb")
    local bytes = f and f:read(6)
    if f then
        f:close()
    end
    if not bytes or #bytes < 6 then
        math.randomseed(os.time() + math.floor(os.clock() * 1e6))
        return string.format("%08x", math.random(0, 0x7fffffff))
    end
    return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- Runs in wrk's main Lua state, once per thread, before that thread's init:
-- every thread gets its number and the one prefix of this run as the
-- globals thread_no and run_prefix of its own state.
local made_prefix
function setup(thread)
    made_prefix = made_prefix or string.format("w%d-%s", os.time(), random_hex())
    table.insert(threads, thread)
    thread:set("thread_no", #threads)
    thread:set("run_prefix", made_prefix)
end

local users = 100
local prefix = "wrk"
local sent = 0
non2xx = 0
statuses = ""
local by_status = {}

function init(args)
    local n = args[1] == nil and 100 or tonumber(args[1])
    if not n or n < 1 or n ~= math.floor(n) then
        io.stderr:write(USAGE .. "\n")
        os.exit(2)
    end
    users = n
    prefix = args[2] or run_prefix
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

-- Each thread keeps its counts per status as a string ("409":3,"503":1),
-- which is what thread:get can hand to done().
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
    local merged = {}
    for _, t in ipairs(threads) do
        bad = bad + (t:get("non2xx") or 0)
        for s, n in string.gmatch(t:get("statuses") or "", '"(%d+)":(%d+)') do
            merged[s] = (merged[s] or 0) + tonumber(n)
        end
    end
    local codes = {}
    for s, n in pairs(merged) do
        table.insert(codes, string.format('"%s":%d', s, n))
    end
    table.sort(codes)
    local e = summary.errors
    io.write(string.format(
        'RACEQ-WRK {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,' ..
        '"non2xx_by_status":{%s},' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
        summary.requests, summary.duration, summary.bytes, bad, table.concat(codes, ","),
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
