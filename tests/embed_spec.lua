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
  "the script's run of 'embedded': completed, tags: nightly",
  "step 'load_data': completed out:dataset=dataset v1",
  "step 'scale': completed in:dataset=dataset v1 out:scaled=scaled v1",
  "  printed: scaled 4 values by 2.5",
  "scaled v1: numbers, 13 bytes, "
    .. "sha256:08add510fdc15c317536ea6ca98ca40894d2b2a042018c371cff0f1b6545b111",
  "value: 2.5 5 7.5 10",
  "cbor: 84 f9 41 00 f9 45 00 f9 47 80 f9 49 00",
  "metadata: factor = 2.5",
  "made by step 'scale'",
  "dataset v1 used by: 'scale'",
  "versions with factor > 2: scaled v1",
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
    -- again in the same catalog: both steps are cache hits, still version 1,
    -- used by both runs' step
    out, err, code = run(home)
    assert.equal(0, code, err)
    assert.matches("\nstep 'load_data': cached out:dataset=dataset v1\n"
      .. "step 'scale': cached in:dataset=dataset v1 out:scaled=scaled v1\nscaled v1: ", out)
    assert.matches("\ndataset v1 used by: 'scale' 'scale'\n", out)
    assert.matches("\nrun of 'embedded': completed\nrun of 'embedded': completed\n$", out)
    assert.matches("step 'scale' cached: scaled v1", err)
  end)

  it("runs a script file instead, with its argument, and says what failed", function()
    assert.truthy(host, "built by the test above")
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
      local lupine = require "lupine"
      local factor = tonumber(arg[1])
      lupine.pipeline { name = "tenfold", function()
        lupine.step { name = "scale", outputs = { "scaled" },
          function() return { host.scale(4, 10 * factor), host.scale(0.5, 10) } end }()
      end }()
    ]])
    local out, err, code = run(home, script)
    assert.equal(0, code, err)
    assert.matches("^the script's run of 'tenfold': completed, tags:\n"
      .. "step 'scale': completed out:scaled=scaled v1\n"
      .. "scaled v1: numbers, %d+ bytes, sha256:%x+\nvalue: 100 5\n", out)
    assert.matches("\nrun of 'tenfold': completed\n$", out)
    -- a step that fails: the run failed (exit status 3)
    script = H.script('lupine.step("broken", function() return host.scale("x", 1) end)()')
    out, err, code = run(home, script)
    assert.equal(3, code)
    assert.equal("", out)
    assert.matches("host: pipeline run 'broken%-[%d%-]+' failed:\nstep 'broken' %(", err)
    assert.matches("bad argument #1 to 'scale' %(number expected, got string%)", err)
    -- a script that is broken itself: another failure (exit status 1)
    script = H.script('local t = nil\nprint(t.x)')
    out, err, code = run(home, script)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^host: [^\n]+:2: attempt to index a nil value %(local 't'%)\nstack traceback:",
      err)
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

describe("lupine.h", function()
  local pc   -- pkg-config of the installed library
  local function flags()
    local prefix = install()
    pc = "PKG_CONFIG_PATH=" .. H.quote(prefix .. "/lib/pkgconfig") .. " "
    return "$(" .. pc .. "pkg-config --cflags --libs lupine)", prefix
  end

  -- g++ builds tests/c/cxx_host.cpp (with extra, the include flags that go
  -- first) and runs it: it stores 42 through Lua and reads it back.
  local function cxx_host(extra)
    local libs, prefix = flags()
    local bin = H.tmpdir() .. "/cxx_host"
    local _, err, code = H.sh("cd " .. root .. " && g++ -std=c++11 -Wall -Wextra -Werror "
      .. extra .. " -o " .. H.quote(bin) .. " tests/c/cxx_host.cpp " .. libs)
    assert.equal(0, code, err)
    local out
    out, err, code = H.sh("LD_LIBRARY_PATH=" .. H.quote(prefix .. "/lib") .. " " .. H.quote(bin)
      .. " " .. H.quote(H.tmpdir() .. "/home"))
    assert.equal(0, code, err)
    assert.equal("answer: 42\n", out)
  end

  it("links a C++ host with the distribution's Lua headers", function()
    cxx_host("")
  end)

  -- upstream's luaconf.h gives Lua's functions C++ linkage in C++ (Debian's
  -- says extern "C"): lupine.h includes lua.h inside extern "C", as lua.hpp
  it("links a C++ host with upstream Lua's headers", function()
    local dir = H.tmpdir()
    local inc = H.sh("pkg-config --variable=includedir lua5.4"):gsub("\n$", "")
    if inc == "" or not H.read(inc .. "/luaconf.h") then inc = "/usr/include/lua5.4" end
    for _, f in ipairs { "lua.h", "luaconf.h", "lualib.h", "lauxlib.h" } do
      local text = assert(H.read(inc .. "/" .. f), f)
      if f == "luaconf.h" then
        local n
        text, n = text:gsub('#ifdef __cplusplus\n#define LUA_API%s+extern "C"\n#else\n'
          .. '#define LUA_API%s+extern\n#endif', "#define LUA_API extern")
        assert.equal(1, n, "luaconf.h as upstream has it")
      end
      H.write(dir .. "/" .. f, text)
    end
    cxx_host("-I" .. H.quote(dir))
  end)

  it("refuses the lua.h of another Lua", function()
    local dir = H.tmpdir()
    H.write(dir .. "/lua.h", "#define LUA_VERSION_NUM 503\ntypedef struct lua_State lua_State;\n")
    H.write(dir .. "/host.c", "#include \"lupine.h\"\nint main(void) { return 0; }\n")
    local _, err, code = H.sh("cd " .. root .. " && cc -fsyntax-only -I" .. H.quote(dir)
      .. " -Iruntime " .. H.quote(dir .. "/host.c"))
    assert.is_not.equal(0, code)
    assert.matches('#error "lupine.h needs the lua.h of Lua 5.4 %(LUA_VERSION_NUM 504%): check '
      .. 'the include path"', err)
  end)

  it("keeps the names before the rename, deprecated, for one release", function()
    local src = H.write(H.tmpdir() .. "/old.c", [[
#include "lupine.h"
int main(void) {
  lupine_version *v = 0;
  int rc = lupine_version_find(0, "x", 0, &v);
  lupine_version_free(v);
  return rc == LUPINE_RUNFAILED;
}
]])
    local cc = "cd " .. root .. " && LC_ALL=C cc -std=c11 -fsyntax-only -Iruntime "
      .. "$(pkg-config --cflags lua5.4) "
    local _, err, code = H.sh(cc .. H.quote(src))
    assert.equal(0, code, err)
    assert.matches("'lupine_version_find' is deprecated: use lupine_av_find", err)
    assert.matches("'lupine_version' is deprecated: use lupine_artifact_version", err)
    _, err, code = H.sh(cc .. "-DLUPINE_NO_DEPRECATED " .. H.quote(src))
    assert.is_not.equal(0, code)
    assert.matches("lupine_version", err)
  end)
end)

describe("the embedding API under valgrind", function()
  -- The host process, built without sanitizers: valgrind reports what it
  -- reads uninitialized, and what it leaks at exit. (The workers it forks
  -- run under valgrind too, silent: the ASan build checks them.)
  local function valgrind(target, args)
    local bin = release .. "/" .. target
    local _, err, code = H.sh("cd " .. root .. " && make -s BUILD=" .. H.quote(release) .. " "
      .. H.quote(bin))
    assert.equal(0, code, err)
    return H.sh("valgrind -q --error-exitcode=99 --leak-check=full"
      .. " --errors-for-leak-kinds=definite,indirect --child-silent-after-fork=yes "
      .. H.quote(bin) .. " " .. args)
  end

  it("runs examples/embed/host.c with no error and no leak", function()
    local out, err, code = valgrind("embed_host", H.quote(H.tmpdir() .. "/home"))
    assert.equal(0, code, err)
    assert.equal(expected, out)
    assert.is_nil(err:find("==%d+=="), err)
  end)

  it("runs tests/c/test_records.c with no error and no leak", function()
    local out, err, code = valgrind("test_records", "")
    assert.equal(0, code, out .. err)
    assert.is_nil(out:find("not ok", 1, true), out)
    assert.is_nil(err:find("==%d+=="), err)
    assert.matches("\n1%.%.%d+\n$", out)
  end)
end)
