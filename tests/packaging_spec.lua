-- SPDX-License-Identifier: MIT
-- What a packager or a Lua user needs: the licence and its SPDX lines, the
-- LuaRocks rockspec, the man page, the Debian packages each make goal needs.
local H = require "helper"

local release = H.build:gsub("/asan$", "")

-- The files of the repository (as git tracks them; else as they are on disk).
local function repository_files()
  local out, _, code = H.sh("cd " .. H.quote(H.root) .. " && git ls-files 2>/dev/null")
  if code ~= 0 or out == "" then
    out = H.sh("cd " .. H.quote(H.root) .. " && find . -path ./build -prune -o -path ./.git -prune"
      .. " -o -type f -print | sed 's|^\\./||'")
  end
  local list = {}
  for f in out:gmatch("[^\n]+") do list[#list + 1] = f end
  return list
end

describe("the licence", function()
  it("is MIT, the Lupine authors' of 2026", function()
    local text = H.read(H.root .. "/LICENSE")
    assert.matches("^MIT License\n\nCopyright %(c%) 2026 the Lupine authors\n", text)
    assert.matches("Permission is hereby granted, free of charge", text)
  end)

  -- data (fixtures, fuzz inputs) and prose are not source files
  it("is named by an SPDX line at the top of every source file", function()
    local missing = {}
    for _, f in ipairs(repository_files()) do
      if not (f:find("%.md$") or f == "LICENSE" or f == ".gitignore"
          or f:find("^tests/fixtures/") or f:find("^tests/fuzz/corpus/")) then
        local head = (H.read(H.root .. "/" .. f) or ""):sub(1, 400)
        if not head:find("SPDX%-License%-Identifier: MIT") then missing[#missing + 1] = f end
      end
    end
    assert.same({}, missing)
  end)
end)

describe("the rockspec", function()
  it("builds and installs the module and the CLI with `luarocks make`", function()
    local tree = H.tmpdir() .. "/rocks"
    local lr = "luarocks --lua-version=5.4 "
    local out, err, code = H.sh("cd " .. H.quote(H.root) .. " && " .. lr .. "make --tree="
      .. H.quote(tree) .. " lupine-scm-1.rockspec")
    assert.equal(0, code, out .. err)
    -- require "lupine" from that tree alone, and a one-step pipeline
    local probe = H.script([[
      local lupine = require "lupine"
      lupine.set_home(arg[1])
      print(package.searchpath("lupine", package.cpath))
      print(lupine.step("answer", function() return 6 * 7 end)())
    ]])
    local home = H.tmpdir() .. "/home"
    out, err, code = H.sh("cd /tmp && eval \"$(" .. lr .. "path --tree=" .. H.quote(tree) .. ")\" && "
      .. "lua5.4 " .. H.quote(probe) .. " " .. H.quote(home))
    assert.equal(0, code, err)
    assert.equal(tree .. "/lib/lua/5.4/lupine.so\n42\n", out)
    -- the program and its helpers, beside it in the tree's bin/
    out, err, code = H.sh(H.quote(tree .. "/bin/lupine") .. " --version")
    assert.equal(0, code, err)
    assert.matches("^lupine %d+%.%d+%.%d+", out)
    out, err, code = H.sh("echo 'print(1 + 1)' | LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(tree .. "/bin/lupine") .. " repl")
    assert.equal(0, code, err)
    assert.equal("2\n", out)
    -- the man page, the completion and the annotations, in the rock's folder
    local dir = H.sh(lr .. "show --rock-dir --tree=" .. H.quote(tree) .. " lupine"):match("[^\n]+")
    for _, f in ipairs { "share/man/man1/lupine.1", "share/bash-completion/completions/lupine",
        "share/lupine/meta/lupine.lua" } do
      assert.truthy(H.read(dir .. "/" .. f), f)
    end
  end)
end)

describe("the man page", function()
  local page = H.read(H.root .. "/runtime/lupine.1")

  it("renders without a warning", function()
    local out, err, code = H.sh("groff -man -Tutf8 -ww -z " .. H.quote(H.root .. "/runtime/lupine.1"))
    assert.equal(0, code, err)
    assert.equal("", out .. err)
    out, err, code = H.sh("MANWIDTH=80 man --warnings -l " .. H.quote(H.root .. "/runtime/lupine.1"))
    assert.equal(0, code, err)
    assert.equal("", err)
    assert.matches("lupine %- run Lua pipelines", (out:gsub("%s+", " ")))
  end)

  it("describes every command and every option", function()
    require "lupine"   -- its embedded modules
    local cli = require "lupine.cli"
    -- the page as read, in plain text on wide lines
    local text = H.sh("groff -man -Tascii -P-cbou -rLL=200n " .. H.quote(H.root .. "/runtime/lupine.1"))
      :gsub("%s+", " ")
    local missing = {}
    local function want(s) if not text:find(s, 1, true) then missing[#missing + 1] = s end end
    local function options(list)
      for _, o in ipairs(list) do
        want(o[1])
        if o.short then want(o.short .. ", " .. o[1]) end
      end
    end
    local function walk(path, node)
      if node.sub then
        for _, name in ipairs(node.order) do walk(path .. name .. " ", node.sub[name]) end
        return
      end
      want(path:sub(1, -2))
      options(cli.options_of(node))
    end
    walk("", cli.tree)   -- run, repl, ui and help too: one parser, one table
    for _, o in ipairs { "--version", "-V", "LUPINE_HOME" } do want(o) end
    assert.same({}, missing)
  end)

  it("is installed in share/man/man1", function()
    local prefix = H.tmpdir()
    local _, err, code = H.sh("make -s install-rock BUILD=" .. H.quote(release) .. " PREFIX="
      .. H.quote(prefix))
    assert.equal(0, code, err)
    assert.equal(page, H.read(prefix .. "/share/man/man1/lupine.1"))
  end)
end)

describe("the Debian packages of each goal", function()
  -- what make would run (the install step not run: make -n)
  local function plan(goal)
    local out, err, code = H.sh("cd " .. H.quote(H.root) .. " && make -n " .. goal)
    assert.equal(0, code, err)
    return out
  end

  it("make demo installs what the build needs, and nothing for the tests", function()
    local out = plan("demo")
    assert.matches("libsqlite3%-dev", out)
    assert.matches("installing the Debian packages it needs", out)
    assert.is_nil(out:find("chromium", 1, true))
    assert.is_nil(out:find("busted", 1, true))
  end)

  it("make test installs the test tools too", function()
    local out = plan("test")
    for _, p in ipairs { "libsqlite3-dev", "lua-busted", "chromium", "luarocks", "groff-base" } do
      assert.truthy(out:find(p, 1, true), p)
    end
  end)

  it("says that what a goal needs is there", function()
    local out, err, code = H.sh("cd " .. H.quote(H.root) .. " && make -s deps-build")
    assert.equal(0, code, err)
    assert.equal("build: the Debian packages it needs are present\n", out)
  end)
end)
