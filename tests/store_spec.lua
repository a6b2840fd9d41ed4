-- SPDX-License-Identifier: MIT
-- Serialization and the artifact store, seen from Lua.
local H = require "helper"
local lupine = require "lupine"
local core = require "lupine.core"
local step, pipeline = lupine.step, lupine.pipeline

-- Run a one-step pipeline whose step returns value; return its version.
local function save(value, name)
  name = name or "thing"
  local s = step { name = "make", outputs = { name }, function() return value end }
  local run = pipeline { name = "store_test", function() s() end } ()
  return run.steps.make.outputs[name]
end

local function objects(home)
  local out = H.sh("find " .. H.quote(home .. "/artifacts") .. " -type f | sort")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

describe("stored values", function()
  local home
  before_each(function() home = H.fresh(lupine) end)

  it("round-trip integers, floats, strings, booleans and nesting exactly", function()
    local v = { int = 3, float = 3.0, big = math.maxinteger, small = math.mininteger,
      neg_zero = -0.0, inf = math.huge, ninf = -math.huge, tiny = 5e-324,
      text = "héllo", bytes = "\0\1\255\254", yes = true, no = false,
      nested = { { 1, { 2, { 3 } } }, { a = { b = { c = "d" } } } },
      [1.5] = "float key", [true] = "bool key", [{ 1, 2 }] = "table key" }
    local back = save(v):load()
    assert.equal(3, back.int)
    assert.equal("integer", math.type(back.int))
    assert.equal("float", math.type(back.float))
    assert.equal(math.maxinteger, back.big)
    assert.equal(math.mininteger, back.small)
    assert.equal("-0.0", string.format("%.1f", back.neg_zero))
    assert.equal(math.huge, back.inf)
    assert.equal(-math.huge, back.ninf)
    assert.equal(5e-324, back.tiny)
    assert.equal("héllo", back.text)
    assert.equal("\0\1\255\254", back.bytes)
    assert.is_true(back.yes)
    assert.is_false(back.no)
    assert.same(v.nested, back.nested)
    assert.equal("float key", back[1.5])
    assert.equal("bool key", back[true])
    local tk
    for k, val in pairs(back) do if type(k) == "table" then tk = k; assert.equal("table key", val) end end
    assert.same({ 1, 2 }, tk)
  end)

  it("round-trip NaN", function()
    local back = save(0 / 0):load()
    assert.is_true(back ~= back)
  end)

  it("keep shared and cyclic tables shared", function()
    local shared = { 1, 2 }
    local v = { a = shared, b = shared }
    v.self = v
    local back = save(v):load()
    assert.equal(back.a, back.b)
    assert.equal(back, back.self)
    assert.same({ 1, 2 }, back.a)
  end)

  it("encode equal values to equal bytes, whatever the table order", function()
    local a, b = {}, {}
    for i = 1, 200 do a["k" .. i] = i end
    for i = 200, 1, -1 do b["k" .. i] = i end
    b.k7 = nil; b.k7 = 7   -- reinsert: a different internal order
    assert.equal(core.encode(a), core.encode(b))
    assert.equal(save(a, "x").content_hash, save(b, "y").content_hash)
  end)

  it("are stored once per content (content-addressed)", function()
    local v1 = save({ 1, 2, 3 }, "first")
    local v2 = save({ 1, 2, 3 }, "second")
    assert.equal(v1.content_hash, v2.content_hash)
    assert.equal(v1.uri, v2.uri)
    assert.equal(2, #objects(home))        -- the value and its line chart
    save({ 1, 2, 4 }, "third")
    assert.equal(4, #objects(home))
  end)

  it("are zstd frames named by the SHA-256 of their CBOR bytes", function()
    local v = save({ hello = "world" })
    local cbor = core.encode({ hello = "world" })
    local hex = v.content_hash:match("^sha256:(%x+)$")
    assert.equal(home .. "/artifacts/objects/" .. hex:sub(1, 2) .. "/" .. hex:sub(3) .. ".zst",
      v.uri)
    assert.equal("\x28\xb5\x2f\xfd", H.read(v.uri):sub(1, 4))   -- zstd magic
    assert.equal(#cbor, v.size)
    local sum = H.sh("printf " .. H.quote(cbor:gsub(".", function(c)
      return string.format("\\%03o", c:byte()) end)) .. " | sha256sum")
    assert.equal(hex, sum:match("^(%x+)"))
  end)

  it("leave no temporary files behind", function()
    for i = 1, 5 do save({ i }) end
    local tmp = H.sh("ls -A " .. H.quote(home .. "/artifacts/tmp"))
    assert.equal("", tmp)
  end)

  it("refuse a function, naming the path inside the value", function()
    local ok, msg = core.encode({ layers = { 1, 2, { fn = print } } })
    assert.is_nil(ok)
    assert.equal("value.layers[3].fn is a function", msg)
    ok, msg = core.encode({ ["a b"] = { coroutine.create(print) } })
    assert.equal('value["a b"][1] is a thread', msg)
    ok, msg = core.encode(io.stdout)
    assert.equal("value is a userdata", msg)
  end)
end)

describe("loading a damaged store", function()
  local home
  before_each(function() home = H.fresh(lupine) end)

  it("names the artifact and object when the object is missing", function()
    local v = save({ 1, 2, 3 })
    os.remove(v.uri)
    local msg = H.err(function() v:load() end)
    assert.equal(string.format("cannot load artifact 'thing' version 1 (%s): object %s is "
      .. "missing (expected at %s)", v.id, v.content_hash, v.uri), msg)
  end)

  it("detects an object whose content does not match its hash", function()
    local v = save({ 1, 2, 3 })
    local other = save({ 9, 9, 9 }, "other")
    H.sh("cp " .. H.quote(other.uri) .. " " .. H.quote(v.uri))
    local msg = H.err(function() v:load() end)
    assert.matches("^cannot load artifact 'thing' version 1 %(" .. v.id:gsub("%-", "%%-")
      .. "%): object " .. v.content_hash .. " is corrupt", msg)
  end)

  it("fails a step whose input version does not load, naming the artifact", function()
    local v = save({ 1, 2, 3 })
    os.remove(v.uri)
    local line = debug.getinfo(1, "l").currentline + 1
    local use = step { name = "use", enable_cache = false, function(t) return #t end }
    local run = pipeline { name = "uses", function() use(v) end }
      :with_options { raise_on_failure = false } ()
    assert.equal(string.format("step 'use' (tests/store_spec.lua:%d): cannot load artifact "
      .. "'thing' version 1 (%s): object %s is missing (expected at %s)", line, v.id,
      v.content_hash, v.uri),
      (run.steps.use.error:gsub("%(.-tests/store_spec", "(tests/store_spec", 1)))
  end)

  it("detects a damaged frame", function()
    local v = save({ values = { 1, 2, 3, 4, 5 } })
    local bytes = H.read(v.uri)
    H.write(v.uri, bytes:sub(1, #bytes - 3))
    local msg = H.err(function() v:load() end)
    assert.matches("^cannot load artifact 'thing' version 1 .*corrupt", msg)
  end)
end)

-- A damaged object is not trusted because it has the right name: the next
-- save of the same content replaces it, and what refers to it loads again.
describe("a damaged object saved again", function()
  local home
  before_each(function() home = H.fresh(lupine) end)

  it("is replaced when it is a zero-filled file of the right size", function()
    local v1 = lupine.save_artifact({ 1, 2, 3, "zeros" }, "z")
    local size = #H.read(v1.uri)
    os.remove(v1.uri)
    H.write(v1.uri, string.rep("\0", size))
    assert.matches("is corrupt: not a zstd frame %(bad magic number%)$",
      H.err(function() v1:load() end))
    local v2 = lupine.save_artifact({ 1, 2, 3, "zeros" }, "z")
    assert.equal(v1.content_hash, v2.content_hash)
    assert.same({ 1, 2, 3, "zeros" }, v2:load())
    assert.same({ 1, 2, 3, "zeros" }, v1:load())
  end)

  it("with a flipped byte is written again by `lupine run --no-cache`, and said", function()
    local script = H.script([[
      local lupine = require "lupine"
      local make = lupine.step { name = "make", outputs = { "data" }, function()
        local t = {}
        for i = 1, 200 do t[i] = i * i end
        return t
      end }
      local sum = lupine.step { name = "sum", outputs = { "total" }, function(t)
        local s = 0
        for _, x in ipairs(t) do s = s + x end
        return s
      end }
      lupine.pipeline { name = "damaged", function() sum(make()) end } ()
    ]])
    local _, err, code = H.lupine(home, "run -q " .. H.quote(script))
    assert.equal(0, code, err)
    lupine.set_home(home)
    local v1 = lupine.Client():get_artifact_version("data", "1")
    local bytes = H.read(v1.uri)
    local at = #bytes // 2
    os.remove(v1.uri)
    H.write(v1.uri, bytes:sub(1, at - 1) .. string.char(bytes:byte(at) ~ 1) .. bytes:sub(at + 1))
    assert.matches("is corrupt", H.err(function() v1:load() end))
    _, err, code = H.lupine(home, "run -q --no-cache " .. H.quote(script))
    assert.equal(0, code, err)
    assert.matches("^lupine: store '" .. H.quote(home):sub(2, -2):gsub("%p", "%%%0")
      .. "/artifacts': object " .. v1.content_hash .. " is corrupt: [^\n]+; replaced it with "
      .. "the bytes being saved\n$", err)
    local out
    out, err, code = H.lupine(home, "artifact export total:2")
    assert.equal(0, code, err)
    assert.equal("2686700\n", out)
    out, err, code = H.lupine(home, "artifact export data:1")
    assert.equal(0, code, err)
    local squares = {}
    for i = 1, 200 do squares[i] = i * i end
    assert.equal("[" .. table.concat(squares, ",") .. "]\n", out)
    assert.equal(bytes, H.read(v1.uri))
  end)
end)

-- A FIFO where an object belongs: opened without blocking, refused as
-- corrupt. The CLI runs under timeout, so that a regression fails here
-- instead of hanging.
describe("a FIFO at an object's path", function()
  local home
  before_each(function() home = H.fresh(lupine) end)

  local function fifo(path)
    os.remove(path)
    assert.equal(0, select(3, H.sh("mkfifo " .. H.quote(path))))
  end

  it("is refused at once by a load, export and verify, naming the path", function()
    local v = save({ 1, 2, 3 })
    fifo(v.uri)
    local out, err, code = H.sh("timeout 10 env LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " artifact export thing")
    assert.equal(1, code, "124 is a timeout: the load blocked")
    assert.equal(string.format("lupine: cannot load artifact 'thing' version 1 (%s): object %s "
      .. "is corrupt: '%s' is not a regular file\n", v.id, v.content_hash, v.uri), err)
    assert.equal("", out)
    out, err, code = H.sh("timeout 10 env LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " artifact-store verify")
    assert.equal(1, code, err)
    assert.matches("^corrupt\tvalue\t" .. v.content_hash .. "\tthing:1\n", out)
  end)

  it("is refused at once when a file artifact is exported or handed to a step", function()
    local base = H.tmpdir()
    H.write(base .. "/in.txt", "content\n")
    local av = pipeline { name = "files", function()
      step { name = "make", outputs = { "f" }, function()
        return lupine.file(base .. "/in.txt")
      end } ()
    end } ().steps.make.output
    fifo(av.uri)
    local want = string.format("object %s is corrupt: '%s' is not a regular file", av.content_hash,
      av.uri)
    local _, err, code = H.sh("timeout 10 env LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " artifact export f -o " .. H.quote(base .. "/out"))
    assert.equal(1, code, "124 is a timeout: the export blocked")
    assert.equal("lupine: " .. want .. "\n", err)
    local script = H.script([[
      local lupine = require "lupine"
      local use = lupine.step { name = "use", function(path) return path end }
      lupine.pipeline { name = "use_file", function()
        use(lupine.Client():get_artifact_version("f"))
      end } ()
    ]])
    _, err, code = H.sh("timeout 10 env LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " run -q " .. H.quote(script))
    assert.equal(1, code, "124 is a timeout: the hand-off blocked")
    assert.matches(string.format("step 'use' (%s:2): cannot load artifact 'f' version 1 (%s): %s\n",
      script, av.id, want), err, 1, true)
  end)
end)
