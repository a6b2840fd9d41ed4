-- SPDX-License-Identifier: MIT
-- The s3 artifact-store flavor against a real S3 server that checks
-- signatures (tests/s3/server.sh: s3rver), directly and through a proxy
-- that checks every payload hash and injects faults (tests/s3/proxy.js).
local H = require "helper"
local lupine = require "lupine"

local dir, port, proxy, counter = nil, nil, nil, 0

-- The CLI with the server's credentials (and nothing else of AWS's from
-- the environment running the tests), plus extra "NAME=value ..." env.
local function run(home, args, env)
  return H.sh("env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL "
    .. "-u AWS_ENDPOINT_URL_S3 -u AWS_REGION -u AWS_DEFAULT_REGION "
    .. "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER LUPINE_HOME=" .. H.quote(home)
    .. " " .. (env or "") .. " " .. H.quote(H.cli) .. " " .. args)
end

local function ok(home, args, env)
  local out, err, code = run(home, args, env)
  assert(code == 0, "lupine " .. args .. ": " .. err .. out)
  return out, err
end

-- A fresh home whose active stack keeps its artifacts in the bucket under
-- a prefix of its own (through the proxy with via_proxy); returns home, prefix.
local function s3_home(via_proxy)
  counter = counter + 1
  local home = H.tmpdir() .. "/home"
  local prefix = "t" .. counter .. "-" .. home:match("lupine%-test%.(%w+)")
  ok(home, "artifact-store register s3s --flavor s3 --path s3://lupine/" .. prefix
    .. " --endpoint http://127.0.0.1:" .. (via_proxy and proxy or port))
  ok(home, "stack register s3k -a s3s")
  ok(home, "stack set s3k")
  return home, prefix
end

local function requests(which)
  return H.read(dir .. "/" .. (which or "requests") .. ".log") or ""
end

local function reset_logs()
  H.write(dir .. "/requests.log", "")
  H.write(dir .. "/proxy.log", "")
end

local function count(log, pattern)
  local n = 0
  for _ in log:gmatch(pattern) do n = n + 1 end
  return n
end

local function faults(json)
  if json then H.write(dir .. "/faults.json", json) else os.remove(dir .. "/faults.json") end
end

-- What a home's catalog records: name, version, hash, size of each version.
local function versions(home)
  return (H.sqlite(home, "SELECT a.name, v.version, v.content_hash, v.size FROM "
    .. "artifact_versions v JOIN artifacts a ON a.id = v.artifact_id ORDER BY a.name, v.seq"))
end

setup(function()
  dir = H.tmpdir()
  local out, err, code = H.sh("sh tests/s3/server.sh start " .. H.quote(dir))
  assert(code == 0, "the S3 server did not start: " .. err)
  port, proxy = out:match("^(%d+) (%d+)")
  assert(port and proxy, out)
end)

teardown(function()
  H.sh("sh tests/s3/server.sh stop " .. H.quote(dir))
  H.rm(dir)
end)

describe("registering an s3 store", function()
  it("takes s3://bucket/prefix or --bucket and --prefix, with its settings", function()
    local home = H.tmpdir() .. "/home"
    local out = ok(home, "artifact-store register a --flavor=s3 --path=s3://my-bucket/zenml/art/ "
      .. "--endpoint http://127.0.0.1:9000 --region eu-west-3 --path-style")
    assert.equal("registered artifact store 'a' (s3, s3://my-bucket/zenml/art)\n", out)
    ok(home, "artifact-store register b --flavor s3 --bucket my-bucket --prefix other")
    out = ok(home, "artifact-store describe a")
    assert.matches("\npath\ts3://my%-bucket/zenml/art\nbucket\tmy%-bucket\nprefix\tzenml/art\n"
      .. "endpoint\thttp://127%.0%.0%.1:9000\nregion\teu%-west%-3\npath_style\tyes\n", out)
    out = ok(home, "artifact-store describe b")
    assert.matches("\nendpoint\t%(from the environment: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL "
      .. "or AWS's own%)\nregion\t%(from the environment: AWS_REGION, AWS_DEFAULT_REGION or "
      .. "us%-east%-1%)\npath_style\tno\n", out)
    out = ok(home, "artifact-store describe a --json")
    assert.matches('"bucket":"my%-bucket"', out)
    assert.matches('"path_style":true', out)
  end)

  it("works the same from Lua", function()
    H.fresh(lupine)
    local c = lupine.Client()
    local s = c:register_artifact_store("lua_s3", { flavor = "s3", bucket = "lupine",
      prefix = "/x/y/", endpoint = "http://127.0.0.1:1/", region = "r1", path_style = true })
    assert.equal("s3://lupine/x/y", s.path)
    assert.same({ "s3", "lupine", "x/y", "http://127.0.0.1:1", "r1", true },
      { s.flavor, s.bucket, s.prefix, s.endpoint, s.region, s.path_style })
    assert.equal("ArtifactStore(name=lua_s3, flavor=s3, path=s3://lupine/x/y)", tostring(s))
  end)

  it("refuses bad paths, buckets and settings by name", function()
    H.fresh(lupine)
    local c = lupine.Client()
    local function refuse(opts)
      opts.flavor = "s3"
      return H.err(c.register_artifact_store, c, "bad", opts)
    end
    assert.equal("artifact store 'bad': path '/tmp/x' is not s3://bucket/prefix",
      refuse { path = "/tmp/x" })
    assert.equal("artifact store 'bad': bad bucket name 'My_Bucket' (3 to 63 lowercase "
      .. "letters, digits, '.' and '-')", refuse { path = "s3://My_Bucket/p" })
    assert.equal("artifact store 'bad': an s3 store needs a path (s3://bucket/prefix) or a "
      .. "bucket", refuse {})
    assert.equal("artifact store 'bad': give path, or bucket and prefix, not both",
      refuse { path = "s3://abc/p", bucket = "abc" })
    assert.equal("artifact store 'bad': endpoint 'ftp://x' is not http(s)://host[:port]",
      refuse { bucket = "abc", endpoint = "ftp://x" })
    c:register_artifact_store("one", { flavor = "s3", path = "s3://abc/p" })
    assert.equal("artifact store 'bad': path s3://abc/p is the store 'one' already",
      refuse { bucket = "abc", prefix = "p/" })
  end)

  it("keeps no credential in the catalog and prints none", function()
    local home = s3_home()
    local out, err = ok(home, "run examples/quickstart.lua")
    local dump = H.sh("sqlite3 " .. H.quote(home .. "/catalog.db") .. " .dump")
    assert.is_nil(dump:find("S3RVER", 1, true))
    assert.is_nil((out .. err):find("S3RVER", 1, true))
    -- a wrong secret: the server refuses, and the message does not show it
    H.rm(home .. "/cache")   -- (what the bucket holds is asked again)
    local code
    out, err, code = run(home, "run --no-cache examples/quickstart.lua",
      "AWS_SECRET_ACCESS_KEY=not-the-secret")
    assert.is_true(code ~= 0, out .. err)
    assert.matches("access denied", out .. err)
    assert.is_nil((out .. err):find("not-the-secret", 1, true))
  end)
end)

describe("a stack with an s3 store", function()
  it("gives the example pipelines the same versions and values as a local one", function()
    for _, ex in ipairs { "quickstart", "multiple_outputs", "versioning", "loading", "etl",
      "lineage", "promotion" } do
      local here = H.tmpdir() .. "/home"
      local local_out = ok(here, "run examples/" .. ex .. ".lua")
      local home = s3_home()
      local s3_out = ok(home, "run examples/" .. ex .. ".lua")
      assert.equal(versions(here), versions(home), ex)
      -- the lines, sorted (parallel steps end in any order), without times,
      -- durations, ids and run names
      local function values(s)
        s = s:gsub("%d+%.?%d* m?s", "T"):gsub("%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d[%-%d]*", "N")
          :gsub("catalog: [^\n]*", "catalog"):gsub("%x+%-%x+%-%x+%-%x+%-%x+", "ID")
          :gsub("%d%d%d%d%-%d%d%-%d%dT[%d:%.]+Z", "TIME")
        local lines = {}
        for l in s:gmatch("[^\n]+") do lines[#lines + 1] = l end
        table.sort(lines)
        return table.concat(lines, "\n")
      end
      assert.equal(values(local_out), values(s3_out), ex)
    end
  end)

  it("round-trips a value and a 20 MB folder; the objects are the local store's bytes", function()
    local home, prefix = s3_home(true)   -- every payload hash checked by the proxy
    local src = H.tmpdir()
    H.sh("head -c 20000000 /dev/urandom > " .. H.quote(src .. "/big.bin") .. " && mkdir "
      .. H.quote(src .. "/sub") .. " && echo hi > " .. H.quote(src .. "/sub/a.txt"))
    local script = H.script(string.format([[
local lupine = require "lupine"
local s = lupine.step { name = "make", outputs = { "tree", "value" },
  function() return lupine.dir(%q), { a = { 1, 2, 3 }, b = "text" } end }
local r = lupine.pipeline { name = "rt", function() s() end } ()
local c = lupine.Client()
print(c:get_artifact_version("value"):load().b, c:get_artifact_version("tree"):load())
print(c:get_artifact_version("tree").uri)
]], src))
    local out = ok(home, "run " .. H.quote(script))
    -- below LUPINE_S3_MULTIPART_MB (2048): one PUT each, streamed from the cached copy
    assert.is_nil(requests("proxy"):find("?uploads", 1, true))
    assert.equal(2, count(requests("proxy"), "PUT [^\n]+%.zst\n"), requests("proxy"))
    local text, copy = out:match("\n(text)\t(/[^\n]+)\n")
    assert.equal("text", text)
    assert.equal("", (H.sh("diff -r " .. H.quote(src) .. " " .. H.quote(copy))))
    local uri = out:match("\n(s3://[^\n]+)\n")
    assert.matches("^s3://lupine/" .. prefix:gsub("%-", "%%-") .. "/objects/%x%x/%x+%.zst$", uri)
    -- a second home loads both from the bucket alone, through its own cache
    local other = H.tmpdir() .. "/home"
    ok(other, "artifact-store register s3s --flavor s3 --path s3://lupine/" .. prefix
      .. " --endpoint http://127.0.0.1:" .. port)
    local hash = versions(home):match("\ntree|1|(sha256:%x+)")
      or versions(home):match("^tree|1|(sha256:%x+)")
    local key = uri:match("^s3://lupine/(.*)$")
    -- the object is a plain zstd frame of the archive, the same bytes as a local store's
    local local_home = H.tmpdir() .. "/home"
    ok(local_home, "run " .. H.quote(script))
    local local_uri = versions(local_home) and H.sqlite(local_home,
      "SELECT uri FROM artifact_versions WHERE content_hash = '" .. hash .. "'"):match("[^\n]+")
    local got = H.sh("cmp " .. H.quote(local_uri) .. " " .. H.quote(dir .. "/data/lupine/" .. key
      .. "._S3rver_object"))
    assert.equal("", got)
  end)

  it("does not upload bytes the bucket has, and a cached re-run asks once", function()
    local home = s3_home()
    local script = H.script([[
local lupine = require "lupine"
local steps = {}
for i = 1, 200 do
  steps[i] = lupine.step { name = "s" .. i, outputs = { "o" .. i }, function() return { i } end }
end
lupine.pipeline { name = "many", function() for i = 1, 200 do steps[i]() end end } ()
]])
    ok(home, "run " .. H.quote(script))
    reset_logs()
    ok(home, "run " .. H.quote(script))
    local log = requests()
    assert.equal(1, count(log, "[^\n]+\n"), log)
    assert.matches("^GET /lupine%?list%-type=2&prefix=", log)
    -- the listing is kept in the home's index: the next re-run asks nothing
    reset_logs()
    ok(home, "run " .. H.quote(script))
    assert.equal("", requests())
    -- until the listing is older than LUPINE_S3_INDEX_TTL seconds
    H.sh("sleep 2")
    ok(home, "run " .. H.quote(script), "LUPINE_S3_INDEX_TTL=1")
    assert.equal(1, count(requests(), "[^\n]+\n"), requests())
    -- no cache: the steps run again; their objects exist, so nothing is uploaded
    reset_logs()
    local out = ok(home, "run --no-cache " .. H.quote(script))
    assert.matches("200 done", out)
    assert.equal(0, count(requests(), "PUT "), requests())
  end)

  it("signs each upload with its payload's hash, also of bytes its read cache held", function()
    -- a value's frame is hashed in memory, a file's as the cache's copy is
    -- written; a file whose copy the cache holds already (saved to another
    -- store of the home) is hashed from that copy
    local home, prefix = s3_home(true)   -- the proxy checks every payload hash
    ok(home, "artifact-store register s3b --flavor s3 --path s3://lupine/" .. prefix .. "-b"
      .. " --endpoint http://127.0.0.1:" .. proxy)
    ok(home, "stack register s3kb -a s3b")
    local src = H.tmpdir() .. "/f.bin"
    H.sh("head -c 3000000 /dev/urandom > " .. H.quote(src))
    local save = H.script(string.format([[
local lupine = require "lupine"
lupine.pipeline { name = "p", function()
  lupine.step { name = "s", outputs = { "f", "v" },
    function() return lupine.file(%q), string.rep("same bytes ", 100000) end } ()
end } ()
]], src))
    reset_logs()
    ok(home, "run " .. H.quote(save))
    ok(home, "stack set s3kb")
    ok(home, "run --no-cache " .. H.quote(save))
    local log = requests("proxy")
    for _, p in ipairs({ prefix, prefix .. "-b" }) do
      local at = "PUT /lupine/" .. p:gsub("%-", "%%-") .. "/objects/[^\n]+%.zst\n"
      assert(count(log, at) >= 2, log)   -- the file, the value (and their visualizations)
    end
    -- all arrived whole: each store loads them from its bucket
    for _, stack in ipairs({ "s3k", "s3kb" }) do
      ok(home, "stack set " .. stack)
      H.rm(home .. "/cache")
      H.rm(home .. "/files")
      local out = ok(home, "run " .. H.quote(H.script([[
local lupine = require "lupine"
local c = lupine.Client()
local path = c:get_artifact_version("f"):load()
local g = assert(io.open(path, "rb"))
print(#c:get_artifact_version("v"):load(), g:seek("end"))
g:close()
]])))
      assert.equal("1100000\t3000000\n", out)
    end
  end)

  it("writes a value's cached copy as it uploads it, kept only once the upload succeeded", function()
    local home, prefix = s3_home(true)
    local save = H.script([[
local lupine = require "lupine"
lupine.save_artifact(string.rep("a value to upload ", 100000), "v")
]])
    local function cached()
      return (H.sh("find " .. H.quote(home .. "/cache/objects") .. " " .. H.quote(home
        .. "/cache/tmp") .. " -type f | sort"))
    end
    faults('{"fail": ".zst", "method": "PUT", "status": 500}')
    local out, err, code = run(home, "run " .. H.quote(save), "LUPINE_S3_ATTEMPTS=2")
    faults(nil)
    assert.equal(1, code, out .. err)
    assert.matches("the S3 server failed PUT of bucket 'lupine', key '" .. prefix:gsub("%-", "%%-")
      .. "/objects/%x%x/%x+%.zst' %(HTTP 500 %(InternalError", err)
    assert.equal("", cached())
    ok(home, "run " .. H.quote(save))
    local hash = versions(home):match("v|1|(sha256:%x+)")
    local hex = hash:sub(8)
    local copy = home .. "/cache/objects/" .. hex:sub(1, 2) .. "/" .. hex:sub(3) .. ".zst"
    assert.equal(0, select(3, H.sh("cmp " .. H.quote(copy) .. " " .. H.quote(dir
      .. "/data/lupine/" .. prefix .. "/objects/" .. hex:sub(1, 2) .. "/" .. hex:sub(3)
      .. ".zst._S3rver_object"))))
    assert.is_nil(cached():find("/cache/tmp/", 1, true))
  end)

  it("resumes a download cut off midway where it broke off", function()
    local home = s3_home(true)
    local src = H.tmpdir() .. "/f.bin"
    H.sh("head -c 3000000 /dev/urandom > " .. H.quote(src))
    local script = H.script(string.format([[
local lupine = require "lupine"
lupine.pipeline { name = "f", function()
  lupine.step { name = "f", outputs = { "f" }, function() return lupine.file(%q) end } ()
end } ()
]], src))
    ok(home, "run " .. H.quote(script))
    H.rm(home .. "/files")
    reset_logs()
    faults('{"cut": "GET", "after": 1000000}')
    ok(home, "artifact export f -o " .. H.quote(src .. ".out"))
    faults(nil)
    assert.equal(0, select(3, H.sh("cmp " .. H.quote(src) .. " " .. H.quote(src .. ".out"))))
    local log = requests("proxy")
    assert.equal(2, count(log, "GET [^\n]+%.zst\n"), log)
    assert.matches("\nRANGE bytes=%d+%-\n", log)
  end)

  it("stores a large value that does not compress as raw blocks, which every reader reads",
    function()
    local home, prefix = s3_home(true)   -- the proxy checks the payload hash
    local src = H.tmpdir() .. "/v.bin"
    H.sh("head -c 9000000 /dev/urandom > " .. H.quote(src))
    ok(home, "run " .. H.quote(H.script(string.format([[
local lupine = require "lupine"
local f = assert(io.open(%q, "rb"))
lupine.save_artifact(f:read("a"), "v")
f:close()
lupine.save_artifact(string.rep("compressible ", 700000), "c")
]], src))))
    local hash = versions(home):match("v|1|(sha256:%x+)")
    local hex = hash:sub(8)
    local key = prefix .. "/objects/" .. hex:sub(1, 2) .. "/" .. hex:sub(3) .. ".zst"
    local stored = H.read(dir .. "/data/lupine/" .. key .. "._S3rver_object")
    -- the value's CBOR (a byte string: 0x5a, its length), in a frame of raw
    -- blocks of 128 KiB: the header (content size, checksum flag, a window
    -- of 128 KiB), each block's 3-byte header, the checksum
    local content = string.pack(">BI4", 0x5a, 9000000) .. H.read(src)
    local want = { string.pack("<I4BBI4", 0xFD2FB528, 0x84, 0x38, #content) }
    for at = 1, #content, 131072 do
      local block = content:sub(at, at + 131071)
      want[#want + 1] = string.pack("<I3", #block << 3 | (at + 131072 > #content and 1 or 0))
        .. block
    end
    want = table.concat(want)
    assert.equal(#want + 4, #stored)
    assert(stored:sub(1, #want) == want, "the stored object is not the frame of raw blocks")
    local sizes = H.sqlite(home, "SELECT a.name, v.stored_size FROM artifact_versions v "
      .. "JOIN artifacts a ON a.id = v.artifact_id ORDER BY a.name")
    local c_size = tonumber(sizes:match("c|(%d+)"))
    assert.equal(#stored, tonumber(sizes:match("v|(%d+)")))
    assert(c_size < 100000, "the compressible value is compressed: " .. c_size)
    -- read back exactly: from the cache's copy, from the bucket, and checked whole by verify
    local load = H.script(string.format([[
local lupine = require "lupine"
local f = assert(io.open(%q, "rb"))
local want = f:read("a")
f:close()
print(lupine.load_artifact("v") == want, lupine.load_artifact("c") == string.rep("compressible ", 700000))
]], src))
    assert.equal("true\ttrue\n", (ok(home, "run " .. H.quote(load))))
    H.rm(home .. "/cache")
    assert.equal("true\ttrue\n", (ok(home, "run " .. H.quote(load))))
    assert.matches("^%d+ objects checked in 's3s': 0 missing or corrupt\n$",
      (ok(home, "artifact-store verify s3s")))
  end)

  it("decodes a value as it downloads, its cached copy written alongside", function()
    local home, prefix = s3_home(true)
    local src = H.tmpdir() .. "/v.bin"
    H.sh("head -c 3000000 /dev/urandom > " .. H.quote(src))
    local load = H.script(string.format([[
local lupine = require "lupine"
local f = assert(io.open(%q, "rb"))
local want = f:read("a")
f:close()
local c = lupine.Client()
local ok, got = pcall(function() return c:get_artifact_version("v"):load() end)
print(ok and (got == want and "same" or "differs") or got)
]], src))
    ok(home, "run " .. H.quote(H.script(string.format([[
local lupine = require "lupine"
local f = assert(io.open(%q, "rb"))
lupine.save_artifact(f:read("a"), "v")
f:close()
]], src))))
    local hash = versions(home):match("v|1|(sha256:%x+)")
    local hex = hash:sub(8)
    local key = prefix .. "/objects/" .. hex:sub(1, 2) .. "/" .. hex:sub(3) .. ".zst"
    local cached = home .. "/cache/objects/" .. hex:sub(1, 2) .. "/" .. hex:sub(3) .. ".zst"
    local stored = dir .. "/data/lupine/" .. key .. "._S3rver_object"
    -- cut off midway: resumed where it broke off, the copy as whole as the value
    H.rm(home .. "/cache")
    reset_logs()
    faults('{"cut": "GET", "after": 1000000}')
    local out = ok(home, "run " .. H.quote(load))
    faults(nil)
    assert.equal("same\n", out)
    local log = requests("proxy")
    assert.equal(2, count(log, "GET [^\n]+%.zst\n"), log)
    assert.matches("\nRANGE bytes=%d+%-\n", log)
    assert.equal(0, select(3, H.sh("cmp " .. H.quote(cached) .. " " .. H.quote(stored))))
    -- the next load reads the copy: no request
    reset_logs()
    assert.equal("same\n", (ok(home, "run " .. H.quote(load))))
    assert.equal(0, count(requests("proxy"), "GET [^\n]+%.zst\n"), requests("proxy"))
    -- a damaged object is refused, named by its key, and no copy is kept
    H.rm(home .. "/cache")
    H.sh("chmod u+w " .. H.quote(stored) .. " && printf 'XXXX' | dd of=" .. H.quote(stored)
      .. " bs=1 seek=2000000 conv=notrunc 2>/dev/null")
    out = ok(home, "run " .. H.quote(load))
    assert.matches("object " .. hash .. " is corrupt: .* %(artifact store 's3s', bucket "
      .. "'lupine', key '" .. key:gsub("%p", "%%%0") .. "'%)", out)
    assert.is_nil(io.open(cached))
  end)

  it("stores (in parts) and loads a 200 MB file in bounded memory", function()
    local home = s3_home()
    local src = H.tmpdir() .. "/big.bin"
    H.sh("head -c 200000000 /dev/urandom > " .. H.quote(src))
    local script = H.script(string.format([[
local lupine = require "lupine"
lupine.pipeline { name = "big", function()
  lupine.step { name = "big", outputs = { "f" }, function() return lupine.file(%q) end } ()
end } ()
]], src))
    reset_logs()
    local function rss(e) return tonumber(e:match("RSS (%d+)")) end
    local _, err = H.sh("env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER LUPINE_HOME="
      .. H.quote(home) .. " LUPINE_S3_MULTIPART_MB=100 /usr/bin/time -f 'RSS %M' "
      .. H.quote(H.cli) .. " run " .. H.quote(script))
    assert(rss(err) < 64 * 1024, err)
    assert.equal(12, count(requests(), "PUT [^\n]*partNumber="), "parts of 16 MiB")
    assert.equal(1, count(requests(), "POST [^\n]*%?uploadId="), "completed")
    H.rm(home .. "/cache")
    H.rm(home .. "/files")
    _, err = H.sh("env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER LUPINE_HOME="
      .. H.quote(home) .. " /usr/bin/time -f 'RSS %M' " .. H.quote(H.cli) .. " artifact export f -o "
      .. H.quote(src .. ".out"))
    assert(rss(err) < 64 * 1024, err)
    assert.equal(0, select(3, H.sh("cmp " .. H.quote(src) .. " " .. H.quote(src .. ".out"))))
    H.rm(src)
    H.rm(src .. ".out")
  end)

  it("keeps a bounded read cache that serves repeated loads", function()
    local home = s3_home()
    local script = H.script([[
local lupine = require "lupine"
local f = io.open("/dev/urandom", "rb")
for i = 1, 6 do lupine.save_artifact(f:read(400000), "r" .. i) end
f:close()
]])
    ok(home, "run " .. H.quote(script), "LUPINE_S3_CACHE_MB=1")
    local function cached()
      return tonumber((H.sh("du -sbk " .. H.quote(home .. "/cache/objects"))):match("^%d+"))
    end
    assert(cached() <= 1024, "the cache holds at most 1 MiB: " .. cached() .. " KiB")
    reset_logs()
    ok(home, "artifact export r1 -o " .. H.quote(home .. "/r1"), "LUPINE_S3_CACHE_MB=1")
    assert.equal(1, count(requests(), "GET [^\n]*%.zst\n"), requests())
    reset_logs()
    ok(home, "artifact export r1 -o " .. H.quote(home .. "/r1b"), "LUPINE_S3_CACHE_MB=1")
    assert.equal(0, count(requests(), "GET [^\n]*%.zst\n"), requests())
    assert(cached() <= 1024, "still at most 1 MiB: " .. cached() .. " KiB")
  end)

  it("copies versions from a local store to an s3 store and back", function()
    local home = H.tmpdir() .. "/home"
    ok(home, "run examples/quickstart.lua")
    counter = counter + 1
    ok(home, "artifact-store register s3s --flavor s3 --path s3://lupine/copy" .. counter
      .. " --endpoint http://127.0.0.1:" .. port)
    local out = ok(home, "artifact-store copy default s3s")
    assert.equal("moved 2 versions (6 objects copied) from 'default' to 's3s'\n", out)
    H.rm(home .. "/artifacts/objects")
    H.rm(home .. "/cache")
    out = ok(home, "artifact export processed")
    assert.equal("[2,4,6,8,10]\n", out)
    out = ok(home, "artifact-store verify s3s")
    assert.equal("6 objects checked in 's3s': 0 missing or corrupt\n", out)
    ok(home, "artifact-store copy s3s default")
    -- loads need the local store only now: the bucket refuses this secret
    H.rm(home .. "/cache")
    assert.equal("[2,4,6,8,10]\n", (ok(home, "artifact export processed",
      "AWS_SECRET_ACCESS_KEY=wrong")))
  end)
end)

describe("s3 errors", function()
  it("names the store, bucket and key for wrong credentials", function()
    local home = s3_home()
    local _, err, code = run(home, "run examples/quickstart.lua", "AWS_SECRET_ACCESS_KEY=wrong")
    assert.not_equal(0, code)
    assert.matches("step 'load_data' %(examples/quickstart%.lua:%d+%): artifact store 's3s': "
      .. "access denied to bucket 'lupine', key 't%d+%-%w+/objects/%x%x/%x+%.zst' %(HTTP 403%); "
      .. "check the credentials %(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
      .. "and ~/%.aws/credentials%) and the bucket's permissions\n", err)
  end)

  it("says no credentials were found, and reads ~/.aws/credentials for AWS_PROFILE", function()
    local home = s3_home()
    local fake = H.tmpdir()
    local _, err, code = H.sh("env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE "
      .. "HOME=" .. H.quote(fake) .. " LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " run examples/quickstart.lua")
    assert.not_equal(0, code)
    assert.matches("artifact store 's3s': no S3 credentials %(set AWS_ACCESS_KEY_ID and "
      .. "AWS_SECRET_ACCESS_KEY, or put profile 'default' in " .. fake:gsub("%-", "%%-")
      .. "/%.aws/credentials%)", err)
    H.sh("mkdir -p " .. H.quote(fake .. "/.aws"))
    H.write(fake .. "/.aws/credentials", "[default]\naws_access_key_id = nope\n"
      .. "aws_secret_access_key = nope\n\n[test]\naws_access_key_id = S3RVER\n"
      .. "aws_secret_access_key = S3RVER\n")
    local out
    out, err, code = H.sh("env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=test "
      .. "HOME=" .. H.quote(fake) .. " LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " run examples/quickstart.lua")
    assert.equal(0, code, err)
    assert.matches("processed = { 2, 4, 6, 8, 10 }", out)
  end)

  it("says libcurl cannot be loaded, naming the store, when the first s3 store opens", function()
    local home = s3_home()
    -- LUPINE_LIBCURL names the library to load instead of libcurl.so.4
    local _, err, code = run(home, "run examples/quickstart.lua",
      "LUPINE_LIBCURL=libcurl-absent.so.4")
    assert.not_equal(0, code)
    assert.matches("artifact store 's3s': the s3 flavor needs libcurl %(libcurl%-absent%.so%.4: "
      .. "cannot open shared object file: No such file or directory%); install it %(Debian: "
      .. "apt%-get install libcurl4%)\n", err)
    -- a library that is not libcurl
    _, err, code = run(home, "run examples/quickstart.lua", "LUPINE_LIBCURL=libzstd.so.1")
    assert.not_equal(0, code)
    assert.matches("artifact store 's3s': the s3 flavor needs libcurl %(libzstd%.so%.1 lacks a "
      .. "function of libcurl's easy interface%)", err)
  end)

  it("says the server cannot be reached, after bounded retries", function()
    local home = H.tmpdir() .. "/home"
    -- a stopped server: nothing listens on port 1
    ok(home, "artifact-store register gone --flavor s3 --path s3://lupine/x --endpoint "
      .. "http://127.0.0.1:1")
    ok(home, "stack register g -a gone")
    ok(home, "stack set g")
    local _, err, code = run(home, "run examples/quickstart.lua", "LUPINE_S3_ATTEMPTS=3")
    assert.not_equal(0, code)
    assert.matches("artifact store 'gone': cannot reach the S3 server at http://127%.0%.0%.1:1"
      .. "/lupine for bucket 'lupine', key 'x/objects/%x%x/%x+%.zst' %([^)]*, after 3 "
      .. "attempts%); is it running, and is its endpoint right%?", err)
  end)

  it("says a bucket does not exist", function()
    local home = H.tmpdir() .. "/home"
    ok(home, "artifact-store register nb --flavor s3 --path s3://no-such-bucket/x --endpoint "
      .. "http://127.0.0.1:" .. port)
    local _, err = run(home, "artifact-store verify nb")
    -- verify of an empty catalog reads nothing: gc lists, and must say it
    _, err = run(home, "gc --store nb --force --grace 0")
    assert.matches("artifact store 'nb': bucket 'no%-such%-bucket' does not exist at "
      .. "http://127%.0%.0%.1:" .. port .. "/no%-such%-bucket; create it, or register the store "
      .. "with the right bucket and endpoint", err)
  end)

  it("aborts a failed multipart upload and names the part's key", function()
    local home = s3_home(true)
    reset_logs()
    faults('{"fail": "partNumber=2", "status": 500}')
    local src = H.tmpdir()
    H.sh("head -c 20000000 /dev/urandom > " .. H.quote(src .. "/big.bin"))
    local script = H.script(string.format([[
local lupine = require "lupine"
lupine.pipeline { name = "up", function()
  lupine.step { name = "big", outputs = { "f" }, function() return lupine.file(%q) end } ()
end } ()
]], src .. "/big.bin"))
    local _, err, code = run(home, "run " .. H.quote(script),
      "LUPINE_S3_ATTEMPTS=2 LUPINE_S3_MULTIPART_MB=10")
    faults(nil)
    assert.not_equal(0, code)
    assert.matches("artifact store 's3s': the S3 server failed PUT of bucket 'lupine', key "
      .. "'t%d+%-%w+/objects/%x%x/%x+%.zst' %(HTTP 500 %(InternalError: injected by the test "
      .. "proxy%), after 2 attempts%); try again later", err)
    local log = requests("proxy")
    assert.equal(2, count(log, "PUT [^\n]*partNumber=2"), log)
    assert.matches("\nABORT /lupine/t%d+%-%w+/objects/%x%x/%x+%.zst\n", log)
    -- and the same run succeeds once the server does
    reset_logs()
    ok(home, "run " .. H.quote(script), "LUPINE_S3_MULTIPART_MB=10")
    assert.equal(2, count(requests("proxy"), "PUT [^\n]*partNumber="), requests("proxy"))
  end)

  it("times out a request that gets no answer", function()
    local home = s3_home(true)
    ok(home, "run examples/quickstart.lua")
    H.rm(home .. "/cache")
    faults('{"stall": "GET"}')
    local _, err, code = run(home, "artifact export processed",
      "LUPINE_S3_TIMEOUT=1 LUPINE_S3_ATTEMPTS=2")
    faults(nil)
    assert.not_equal(0, code)
    assert.matches("artifact store 's3s': GET of bucket 'lupine', key 't%d+%-%w+/objects/%x%x/"
      .. "%x+%.zst' timed out after 2 attempts %([^)]*%); is the S3 server at "
      .. "http://127%.0%.0%.1:" .. proxy .. "/lupine overloaded or the network down%?", err)
  end)

  it("leaves a consistent catalog when a runner is killed during uploads", function()
    local home = s3_home(true)
    faults('{"stall": "PUT"}')
    local script = H.script([[
local lupine = require "lupine"
lupine.pipeline { name = "k", function()
  local a = lupine.step { name = "a", outputs = { "x" }, function() return { 1 } end } ()
  lupine.step { name = "b", outputs = { "y" }, function(v) return { v[1] + 1 } end } (a)
end } ()
]])
    H.sh("env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER LUPINE_HOME="
      .. H.quote(home) .. " " .. H.quote(H.cli) .. " run " .. H.quote(script)
      .. " > /dev/null 2>&1 & pid=$!; sleep 1; kill -9 $pid; wait $pid")
    faults(nil)
    assert.equal("", versions(home))
    local out = ok(home, "run " .. H.quote(script))
    assert.matches("y%s+v1", out)
    out = ok(home, "artifact-store verify s3s")
    assert.matches("^%d+ objects checked in 's3s': 0 missing or corrupt\n$", out)
  end)
end)

describe("s3 gc", function()
  it("lists more than 1,000 keys and deletes what nothing refers to", function()
    local home = s3_home()
    local script = H.script([[
local lupine = require "lupine"
lupine.pipeline { name = "many", enable_cache = false, function()
  lupine.step { name = "s", outputs = { "keep" }, function() return "kept" end } ()
end } ()
for i = 1, 1050 do lupine.save_artifact({ i }, "junk") end
]])
    ok(home, "run " .. H.quote(script))
    ok(home, "artifact prune --yes")
    local out = ok(home, "gc --store s3s --grace 1h")
    assert.matches("^objects\t0\n", out)
    assert(tonumber(out:match("\nrecent\t(%d+)")) > 1050, out)
    local before = H.sqlite(home, "SELECT count(*) FROM artifact_versions")
    reset_logs()
    out = ok(home, "gc --store s3s --grace 0")
    assert(tonumber(out:match("^objects\t(%d+)")) > 1050, out)
    -- pages of 1,000 keys, each after the last one's continuation token
    assert.equal(3, count(requests(), "GET /lupine%?[^\n]*list%-type=2"), requests())
    assert.equal(2, count(requests(), "GET /lupine%?continuation%-token="), requests())
    out = ok(home, "gc --store s3s --grace 0")
    assert.matches("^objects\t0\n", out)
    assert.equal(before, H.sqlite(home, "SELECT count(*) FROM artifact_versions"))
    assert.equal("\"kept\"\n", (ok(home, "artifact export keep")))
  end)
end)
