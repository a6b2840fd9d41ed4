-- SPDX-License-Identifier: MIT
-- Materializers: storing class instances and host objects.
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local Matrix = {}
Matrix.__index = Matrix
function Matrix.new(rows, cols, data)
  return setmetatable({ rows = rows, cols = cols, data = data }, Matrix)
end
function Matrix:get(i, j) return self.data[(i - 1) * self.cols + j] end

lupine.register_materializer { type = "Matrix",
  match = function(v) return getmetatable(v) == Matrix end,
  save = function(m) return { rows = m.rows, cols = m.cols, data = m.data } end,
  load = function(t) return Matrix.new(t.rows, t.cols, t.data) end }

local make = step { name = "make", outputs = { "matrix" },
  function() return Matrix.new(2, 2, { 1, 2, 3, 4 }) end }

describe("a materializer", function()
  before_each(function() H.fresh(lupine) end)

  it("stores a class instance and gives it back, also to the next step", function()
    local trace = step { name = "trace", function(m) return m:get(1, 1) + m:get(2, 2) end }
    local run = pipeline { name = "mat", function() trace(make()) end } ()
    local av = run.steps.make.output
    assert.equal("Matrix", av.data_type)
    local m = av:load()
    assert.equal(Matrix, getmetatable(m))
    assert.equal(3, m:get(2, 1))
    assert.equal(5, run.steps.trace.output:load())
  end)

  it("gives the stored plain value with { raw = true }", function()
    local av = pipeline { name = "mat", function() make() end } ().steps.make.output
    local raw = av:load { raw = true }
    assert.is_nil(getmetatable(raw))
    assert.same({ rows = 2, cols = 2, data = { 1, 2, 3, 4 } }, raw)
    assert.equal("load: unknown option 'plain'", H.err(function() av:load { plain = true } end))
  end)

  it("works for values inside tables, and for save_artifact", function()
    local av = lupine.save_artifact({ weights = Matrix.new(1, 2, { 5, 6 }), name = "m" }, "model")
    assert.equal("table", av.data_type)
    local v = av:load()
    assert.equal(Matrix, getmetatable(v.weights))
    assert.equal(6, v.weights:get(1, 2))
  end)

  it("takes userdata too", function()
    lupine.register_materializer { type = "FileName",
      match = function(v) return io.type(v) == "file" end,
      save = function() return "a file handle" end,
      load = function(s) return "was " .. s end }
    local av = lupine.save_artifact(io.stdout, "handle")
    assert.equal("FileName", av.data_type)
    assert.equal("was a file handle", av:load())
  end)

  it("writes plain CBOR: tag 27 around the type name and the plain value", function()
    local av = lupine.save_artifact(Matrix.new(1, 1, { 7 }), "tiny")
    local bytes = require("lupine.core").read(av.id)
    assert.equal("\xd8\x1b\x82\x66Matrix", bytes:sub(1, 10))
    local script = H.write(H.tmpdir() .. "/read.py", [[
import cbor2, sys, zstandard
raw = zstandard.ZstdDecompressor().decompress(open(sys.argv[1], "rb").read())
v = cbor2.loads(raw)
print(v.tag, v.value[0], sorted(v.value[1].items()))
]])
    local out, err, code = H.sh("/usr/bin/python3 " .. H.quote(script) .. " " .. H.quote(av.uri))
    assert.equal(0, code, err)
    assert.equal("27 Matrix [('cols', 1), ('data', [7]), ('rows', 1)]\n", out)
  end)

  it("says how to register it when it is missing", function()
    local home = H.fresh(lupine)
    local av = lupine.save_artifact(Matrix.new(1, 1, { 7 }), "tiny")
    local script = H.script([[
      local av = require("lupine").Client():get_artifact_version("tiny")
      print(pcall(av.load, av))
      print(av:load { raw = true }.rows)
    ]])
    local out = H.lupine(home, "run " .. H.quote(script))
    assert.equal("false\tcannot load artifact 'tiny' version 1 (" .. av.id .. "): its value is "
      .. "of type 'Matrix', which has no materializer here: register one with "
      .. 'lupine.register_materializer { type = "Matrix", match = ..., save = ..., load = ... }, '
      .. "or load the stored plain value with av:load { raw = true }\n1\n", out)
  end)

  it("refuses a bad registration, naming it", function()
    assert.equal("register_materializer 'X': load must be a function (got nil)",
      H.err(function() lupine.register_materializer { type = "X", match = print, save = print } end))
    assert.equal("register_materializer: unknown field 'name'",
      H.err(function() lupine.register_materializer { name = "X" } end))
  end)
end)
