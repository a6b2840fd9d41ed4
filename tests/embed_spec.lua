-- SPDX-License-Identifier: MIT
-- Embedding from outside: examples/embed/host.c built against the installed
-- library through pkg-config, and again under ASan+UBSan against the
-- sanitized static library; tests/c/test_api.c under ThreadSanitizer.
local H = require "helper"

local release = H.build:gsub("/asan$", "")
local root = H.quote(H.root)

-- make install into a fresh prefix, once for the file; returns the prefix.
local installed
local function install()
  if installed then return installed end
  local prefix = H.tmpdir() .. "/prefix"
  local _, err, code = H.sh("cd " .. root .. " && make -s install BUILD=" .. H.quote(release)
    .. " PREFIX=" .. H.quote(prefix))
  assert.equal(0, code, err)
  installed = prefix
  return prefix
end

-- What host prints for the pipeline it carries.
local expected = table.concat({
  "scaled v1: table, 13 bytes, "
    .. "sha256:08add510fdc15c317536ea6ca98ca40894d2b2a042018c371cff0f1b6545b111",
  "value: 2.5 5 7.5 10",
  "cbor: 84 f9 41 00 f9 45 00 f9 47 80 f9 49 00",
  "run of 'embedded': completed",
  "" }, "\n")

describe("examples/embed/host.c", function()
  local host   -- built against the installed library

  local function run(home, script)
    local prefix = install()
    return H.sh("LD_LIBRARY_PATH=" .. H.quote(prefix .. "/lib") .. " " .. H.quote(host) .. " "
      .. H.quote(home) .. (script and (" " .. H.quote(script)) or ""))
  end

  it("builds against the installed library with pkg-config", function()
    local prefix = install()
    host = H.tmpdir() .. "/host"
    local _, err, code = H.sh("cd " .. root .. " && PKG_CONFIG_PATH=" .. H.quote(prefix
      .. "/lib/pkgconfig") .. " cc -std=c11 -Wall -Wextra -Werror -o " .. H.quote(host)
      .. " examples/embed/host.c $(PKG_CONFIG_PATH=" .. H.quote(prefix .. "/lib/pkgconfig")
      .. " pkg-config --cflags --libs lupine)")
    assert.equal(0, code, err)
    local out = H.sh("LD_LIBRARY_PATH=" .. H.quote(prefix .. "/lib") .. " ldd " .. H.quote(host))
    assert.matches("liblupine%.so%.0 => " .. (prefix .. "/lib/"):gsub("%p", "%%%0"), out)
  end)

  it("runs a pipeline whose step calls the host's C function and reads the result back",
    function()
    assert.truthy(host, "built by the test above")
    local home = H.tmpdir() .. "/home"
    local out, err, code = run(home)
    assert.equal(0, code, err)
    assert.equal(expected, out)
    -- what the step printed reached the host's log callback (on stderr)
    assert.matches("%[scale%] scaled 4 values by 2%.5\n", err)
    -- the content hash is the SHA-256 of the CBOR bytes the host read
    local hex = out:match("cbor: ([%x ]+)\n")
    local bytes = hex:gsub("(%x%x) ?", function(h) return string.char(tonumber(h, 16)) end)
    local sum = H.sh("sha256sum " .. H.quote(H.write(H.tmpdir() .. "/cbor", bytes)))
    assert.equal(out:match("sha256:(%x+)"), sum:match("^(%x+)"))
    -- again in the same catalog: both steps are cache hits, still version 1
    out, err, code = run(home)
    assert.equal(0, code, err)
    assert.matches("^scaled v1: ", out)
    assert.matches("\nrun of 'embedded': completed\nrun of 'embedded': completed\n$", out)
    assert.matches("step 'scale' cached: scaled v1", err)
  end)

  it("runs a script file instead, and says what failed", function()
    assert.truthy(host, "built by the test above")
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
      local lupine = require "lupine"
      lupine.pipeline { name = "tenfold", function()
        lupine.step { name = "scale", outputs = { "scaled" },
          function() return { host.scale(4, 10), host.scale(0.5, 10) } end }()
      end }()
    ]])
    local out, err, code = run(home, script)
    assert.equal(0, code, err)
    assert.matches("^scaled v1: table, %d+ bytes, sha256:%x+\nvalue: 40 5\n", out)
    assert.matches("\nrun of 'tenfold': completed\n$", out)
    script = H.script('lupine.step("broken", function() return host.scale("x", 1) end)()')
    out, err, code = run(home, script)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("host: pipeline run 'broken%-[%d%-]+' failed:\nstep 'broken' %(", err)
    assert.matches("bad argument #1 to 'scale' %(number expected, got string%)", err)
  end)
end)

describe("the embedding API under sanitizers", function()
  it("runs examples/embed/host.c built with -fsanitize=address,undefined", function()
    -- the host against the ASan+UBSan static library (make's asan flavour)
    local host = release .. "/asan/embed_host"
    local _, err, code = H.sh("cd " .. root .. " && make -s BUILD=" .. H.quote(release) .. " "
      .. H.quote(host))
    assert.equal(0, code, err)
    local out
    out, err, code = H.sh(H.quote(host) .. " " .. H.quote(H.tmpdir() .. "/home"))
    assert.equal(0, code, err)
    assert.equal(expected, out)
    assert.is_nil(err:find("Sanitizer", 1, true), err)
    assert.is_nil(err:find("runtime error", 1, true), err)
  end)

  it("passes tests/c/test_api.c, two threads included, under ThreadSanitizer", function()
    local bin = release .. "/tsan/test_api"
    local _, err, code = H.sh("cd " .. root .. " && make -s BUILD=" .. H.quote(release) .. " "
      .. H.quote(bin))
    assert.equal(0, code, err)
    local out
    out, err, code = H.sh(H.quote(bin) .. " 2>&1")
    assert.equal(0, code, out)
    assert.is_nil(out:find("ThreadSanitizer", 1, true), out)
    assert.is_nil(out:find("not ok", 1, true), out)
    assert.matches("\nok %d+ %- thread 2: %d runs on its own handle and catalog, read back\n", out)
    assert.matches("\n1%.%.%d+\n$", out)
  end)
end)
