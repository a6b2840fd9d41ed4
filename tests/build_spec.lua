-- SPDX-License-Identifier: MIT
-- What `make` builds and `make install` installs.
local H = require "helper"

describe("the build", function()
  it("gives the shared library a soname and exports just what lupine.h declares", function()
    local out = H.sh("readelf -d " .. H.build .. "/liblupine.so")
    assert.matches("SONAME%)%s+Library soname: %[liblupine%.so%.0%]", out)
    local f = assert(io.open(H.root .. "/runtime/lupine.h"))
    local declared, exported = {}, {}
    for name in f:read("a"):gmatch("\nLUPINE_API [^(;]-([%w_]+)%(") do declared[name] = true end
    f:close()
    out = H.sh("nm -D --defined-only " .. H.build .. "/liblupine.so | awk '{print $3}'")
    for sym in out:gmatch("[^\n]+") do exported[sym] = true end
    assert.is_true(declared.lupine_open and declared.luaopen_lupine)
    assert.same(declared, exported)
  end)

  it("links neither libcurl nor libpq: each is loaded when first needed", function()
    -- the s3 store loads libcurl when it first opens, the PostgreSQL catalog libpq
    for _, file in ipairs { "lupine", "liblupine.so", "lupine.so" } do
      local out = H.sh("readelf -d " .. H.build .. "/" .. file)
      assert.matches("NEEDED", out)
      assert.not_matches("libcurl", out, nil, true)
      assert.not_matches("libpq", out, nil, true)
    end
  end)

  it("builds the programs from runtime/programs/ on lupine.h alone of the runtime's headers", function()
    -- what the CLI, the REPL and the dashboard do, a host program can do too
    local internal = {}
    for h in H.sh("cd " .. H.quote(H.root) .. " && ls runtime/*.h"):gmatch("runtime/([^\n]+)") do
      if h ~= "lupine.h" then internal[h] = true end
    end
    assert.is_true(internal["lupine_int.h"])
    local programs, includes = H.sh("cd " .. H.quote(H.root) .. " && ls runtime/programs/*.c"), {}
    assert.equal("runtime/programs/main.c\nruntime/programs/repl.c\nruntime/programs/ui.c\n", programs)
    for file in programs:gmatch("[^\n]+") do
      for name in H.read(H.root .. "/" .. file):gmatch("#%s*include%s*[<\"]([^>\"]+)") do
        local base = name:match("[^/]+$")
        if internal[base] or name:find("..", 1, true) then includes[#includes + 1] = file .. ": " .. name end
        if base == "lupine.h" then includes[file] = true end
      end
      assert.is_true(includes[file], file .. " does not include lupine.h")
    end
    assert.same({}, { table.unpack(includes) })
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

  -- what a distribution's package build does: a staging folder, /usr, the
  -- multiarch library folder
  it("honours DESTDIR, PREFIX and LIBDIR, with the helpers under libexec", function()
    local dest = H.tmpdir()
    local release = H.build:gsub("/asan$", "")
    local _, err, code = H.sh("make -s install BUILD=" .. H.quote(release) .. " DESTDIR="
      .. H.quote(dest) .. " PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu")
    assert.equal(0, code, err)
    local files = H.sh("cd " .. H.quote(dest) .. " && find . ! -type d | sort")
    local lua_files = {}
    for f in H.sh("cd " .. H.quote(H.root) .. " && ls lua/lupine/*.lua lua/meta/*.lua"):gmatch("[^\n]+") do
      local dir, name = f:match("^lua/(%a+)/(.*)$")
      lua_files[#lua_files + 1] = dir == "lupine" and ("./usr/share/lua/5.4/lupine/" .. name)
        or ("./usr/share/lupine/meta/" .. name)
    end
    local want = { "./usr/bin/lupine", "./usr/include/lupine.h",
      "./usr/lib/x86_64-linux-gnu/liblupine.a", "./usr/lib/x86_64-linux-gnu/liblupine.so",
      "./usr/lib/x86_64-linux-gnu/liblupine.so.0", "./usr/lib/x86_64-linux-gnu/lua/5.4/lupine.so",
      "./usr/lib/x86_64-linux-gnu/pkgconfig/lupine.pc", "./usr/libexec/lupine/lupine-repl",
      "./usr/libexec/lupine/lupine-ui", "./usr/share/bash-completion/completions/lupine",
      "./usr/share/man/man1/lupine.1" }
    table.move(lua_files, 1, #lua_files, #want + 1, want)
    table.sort(want)
    assert.equal(table.concat(want, "\n") .. "\n", files)
    local out
    local pc = "PKG_CONFIG_PATH=" .. H.quote(dest .. "/usr/lib/x86_64-linux-gnu/pkgconfig")
      .. " pkg-config "
    assert.equal("/usr/lib/x86_64-linux-gnu\n", (H.sh(pc .. "--variable=libdir lupine")))
    assert.equal("/usr/include\n", (H.sh(pc .. "--variable=includedir lupine")))
    -- the installed program runs its helpers from libexec, wherever the tree is
    local lupine = H.quote(dest .. "/usr/bin/lupine")
    out, err, code = H.sh(lupine .. " repl --help")
    assert.equal(0, code, err)
    assert.matches("^usage: lupine repl ", out)
    out, err, code = H.sh(lupine .. " ui --help")
    assert.equal(0, code, err)
    assert.matches("^usage: lupine ui ", out)
    -- uninstall removes it all, file by file
    local vars = " BUILD=" .. H.quote(release) .. " DESTDIR=" .. H.quote(dest)
      .. " PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu"
    _, err, code = H.sh("make -s uninstall" .. vars)
    assert.equal(0, code, err)
    assert.equal("", (H.sh("cd " .. H.quote(dest) .. " && find . ! -type d")))
    _, err, code = H.sh("make -s install" .. vars)
    assert.equal(0, code, err)
    H.rm(dest .. "/usr/libexec/lupine/lupine-ui")
    out, err, code = H.sh(lupine .. " ui")
    assert.equal(1, code)
    assert.equal("lupine: cannot run lupine-ui: neither " .. dest .. "/usr/bin/../libexec/lupine/"
      .. "lupine-ui nor " .. dest .. "/usr/bin/lupine-ui exists\n", err)
  end)

  it("passes CPPFLAGS and CFLAGS to every compile, CFLAGS and LDFLAGS to every link", function()
    local b = H.tmpdir()
    local targets = { "all", "asan", "tsan", "fuzz" }
    for _, t in ipairs { "embed_host", "test_api", "sqlite_bare", "bench_zstd", "bench_timeit",
        "bench_floor" } do
      targets[#targets + 1] = b .. "/" .. t
    end
    local out, err, code = H.sh("make -n -B BUILD=" .. H.quote(b) .. " CC=cc CPPFLAGS=-DCPP_MARK"
      .. " 'CFLAGS=-O2 -DC_MARK' LDFLAGS=-Wl,--build-id=0xfeed " .. table.concat(targets, " "))
    assert.equal(0, code, err)
    local compiles, links = 0, 0
    for line in out:gmatch("[^\n]+") do
      if line:find("^cc ") or line:find("^clang ") then
        local compile, link = line:find(" %-c ") ~= nil, line:find(" %-c ") == nil
        if compile then compiles = compiles + 1 else links = links + 1 end
        if compile or line:find("%.c ") then   -- a compile (maybe linking in the same step)
          assert.truthy(line:find("-DCPP_MARK", 1, true), line)
          assert.truthy(line:find("-DC_MARK", 1, true), line)
        end
        if link then
          assert.truthy(line:find("-DC_MARK", 1, true), line)
          assert.truthy(line:find("-Wl,--build-id=0xfeed", 1, true), line)
        end
      end
    end
    assert.is_true(compiles >= 30, out)
    assert.is_true(links >= 15, out)
  end)
end)
