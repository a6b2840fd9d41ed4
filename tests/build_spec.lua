-- What `make` builds and `make install` installs.
local H = require "helper"

describe("the build", function()
  it("gives the shared library a soname and exports only lupine_* and luaopen_*", function()
    local out = H.sh("readelf -d " .. H.build .. "/liblupine.so")
    assert.matches("SONAME%)%s+Library soname: %[liblupine%.so%.0%]", out)
    out = H.sh("nm -D --defined-only " .. H.build .. "/liblupine.so | awk '{print $3}'")
    local n = 0
    for sym in out:gmatch("[^\n]+") do
      n = n + 1
      assert.truthy(sym:match("^lupine_") or sym:match("^luaopen_"), sym)
    end
    assert.is_true(n >= 8)
  end)

  it("embeds the Lua side: the CLI needs no LUA_PATH", function()
    local out, err, code = H.sh("cd /tmp && LUA_PATH=/nonexistent/?.lua LUPINE_HOME="
      .. H.quote(H.tmpdir()) .. " " .. H.quote(H.cli)
      .. " run " .. H.quote(H.script('print(package.loaded["lupine.client"] ~= nil)')))
    assert.equal(0, code, err)
    assert.equal("true\n", out)
  end)

  it("also loads the Lua side as plain files from lua/", function()
    local probe = H.script([[
      local lupine = require "lupine"
      print(package.searchpath("lupine", package.path), lupine.step ~= nil)
    ]])
    local out, err, code = H.sh("cd " .. H.quote(H.root) .. " && LUA_PATH='lua/?.lua;lua/?/init.lua' "
      .. "LUA_CPATH=" .. H.quote(H.build .. "/?.so") .. " lua5.4 " .. probe, true)
    assert.equal(0, code, err)
    assert.equal("lua/lupine/init.lua\ttrue\n", out)
  end)
end)

describe("make install", function()
  it("installs binary, libraries, header, Lua files and a pkg-config file", function()
    local prefix = H.tmpdir() .. "/prefix"
    local release = H.build:gsub("/asan$", "")
    local _, err, code = H.sh("make -s install BUILD=" .. H.quote(release) .. " PREFIX="
      .. H.quote(prefix))
    assert.equal(0, code, err)
    for _, f in ipairs { "bin/lupine", "lib/liblupine.a", "lib/liblupine.so.0",
        "lib/liblupine.so", "include/lupine.h", "share/lua/5.4/lupine/init.lua",
        "share/lua/5.4/lupine/client.lua", "lib/lua/5.4/lupine.so",
        "lib/pkgconfig/lupine.pc" } do
      assert.truthy(H.read(prefix .. "/" .. f), f)
    end
    local out
    out, err, code = H.sh("PKG_CONFIG_PATH=" .. H.quote(prefix .. "/lib/pkgconfig")
      .. " pkg-config --cflags --libs lupine")
    assert.equal(0, code, err)
    assert.matches("%-I" .. prefix:gsub("%p", "%%%0") .. "/include", out)
    assert.matches("%-llupine", out)
    assert.matches("%-llua5%.4", out)
    out, err, code = H.sh(H.quote(prefix .. "/bin/lupine") .. " --version")
    assert.equal(0, code, err)
  end)
end)
