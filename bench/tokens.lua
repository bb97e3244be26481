-- wrk: one request per token of the file named by TOKENS, in turn, so that
-- no check is served from a cache (bench/auth.py writes the file).
local tokens = {}
local i = 0

for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = line
end

request = function()
    i = i % #tokens + 1
    return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
