-- SPDX-License-Identifier: MIT
-- Stored artifacts are readable without Lupine: Python's cbor2 and
-- zstandard (Debian's python3-cbor2 and python3-zstandard) decode them.
local H = require "helper"
local lupine = require "lupine"

local PY = "/usr/bin/python3"

-- Decode the object at uri in Python, print it as JSON with sorted keys.
local DECODE = [[
import cbor2, json, math, sys, zstandard
with open(sys.argv[1], "rb") as f:
    raw = zstandard.ZstdDecompressor().decompress(f.read())
value = cbor2.loads(raw)
def plain(v):
    if isinstance(v, dict): return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list): return [plain(x) for x in v]
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)): return repr(v)
    if isinstance(v, bytes): return "bytes:" + v.hex()
    return v
print(json.dumps(plain(value), sort_keys=True))
]]

describe("an artifact written by Lupine", function()
  before_each(function() H.fresh(lupine) end)

  it("decodes with Python's cbor2 and zstandard to the same value", function()
    local value = { values = { 1, 2, 3 }, name = "héllo", ratio = 0.25, flag = true,
      nested = { deep = { -7, 1.5, "x" } }, bytes = "\255\0", inf = math.huge, neg = -0.0 }
    local s = lupine.step { name = "emit", outputs = { "interop" }, function() return value end }
    local run = lupine.pipeline { name = "interop", function() s() end } ()
    local av = run.steps.emit.output
    local script = H.write(H.tmpdir() .. "/decode.py", DECODE)
    local out, err, code = H.sh(PY .. " " .. H.quote(script) .. " " .. H.quote(av.uri))
    assert.equal(0, code, err)
    assert.equal('{"bytes": "bytes:ff00", "flag": true, "inf": "inf", "name": "h\\u00e9llo", '
      .. '"neg": -0.0, "nested": {"deep": [-7, 1.5, "x"]}, "ratio": 0.25, "values": [1, 2, 3]}\n',
      out)
  end)

  it("keeps integers and floats apart for Python too", function()
    local s = lupine.step { name = "nums", outputs = { "nums" }, function()
      return { 1, 1.0, 2 ^ 53, math.maxinteger } end }
    local run = lupine.pipeline { name = "nums", function() s() end } ()
    local script = H.write(H.tmpdir() .. "/decode.py", DECODE)
    local out = H.sh(PY .. " " .. H.quote(script) .. " " .. H.quote(run.steps.nums.output.uri))
    assert.equal("[1, 1.0, 9007199254740992.0, 9223372036854775807]\n", out)
  end)
end)
