-- SPDX-License-Identifier: MIT
-- Shell completion: `lupine __complete` (lupine.complete) and the bash
-- function of runtime/lupine.bash that asks it.
local H = require "helper"
require "lupine"   -- its embedded modules, lupine.complete among them

-- A catalog with an artifact whose name has colons in it, and a named run.
local function catalog()
  local home = H.tmpdir() .. "/home"
  local _, err, code = H.lupine(home, "run " .. H.script([[
    local s = lupine.step { name = "train", outputs = { "trained_model" }, function() return 1 end }
    local t = lupine.step("tune", function(m) return m + 1 end)
    lupine.pipeline { name = "ml", function() t(s()) end }:with_options { run_name = "first run" }()
  ]]))
  assert.equal(0, code, err)
  return home
end

-- The candidates `lupine __complete WORDS...` prints, one string a line.
local function complete(home, words, dir)
  local args = { "__complete" }
  for i, w in ipairs(words) do args[i + 1] = H.quote(w) end
  local out, err, code = H.lupine(home, table.concat(args, " "), dir)
  assert.equal(0, code, err)
  assert.equal("", err)
  return out
end

-- What the bash function _lupine puts in COMPREPLY for the command line
-- `line` (the cursor at its end), split into COMP_WORDS as readline does:
-- at blanks, and around runs of the word-break characters : and =.
local function bash_complete(home, line, dir)
  local words = {}
  for token in line:gmatch("%S+") do
    local i = 1
    while i <= #token do
      local s, e = token:find("^[:=]+", i)
      if not s then s, e = token:find("^[^:=]+", i) end
      words[#words + 1] = token:sub(s, e)
      i = e + 1
    end
  end
  if line:find("%s$") then words[#words + 1] = "" end
  local quoted = {}
  for i, w in ipairs(words) do quoted[i] = H.quote(w) end
  local script = table.concat({
    "set -u",
    "source " .. H.quote(H.root .. "/runtime/lupine.bash"),
    "PATH=" .. H.quote(H.build) .. ":$PATH",
    "COMP_LINE=" .. H.quote(line),
    "COMP_POINT=${#COMP_LINE}",
    "COMP_WORDS=(" .. table.concat(quoted, " ") .. ")",
    "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))",
    "_lupine",
    "printf '%s\\n' \"${COMPREPLY[@]}\"",
  }, "\n")
  local out, err, code = H.sh((dir and ("cd " .. H.quote(dir) .. " && ") or "")
    .. "LUPINE_HOME=" .. H.quote(home) .. " bash -c " .. H.quote(script))
  assert.equal(0, code, err)
  assert.equal("", err)
  return out
end

describe("lupine __complete", function()
  local home = catalog()

  it("offers the commands, then each group's subcommands", function()
    assert.equal("artifact\nartifact-store\ncatalog\nexec\ngc\nhelp\nlineage\norchestrator\n"
      .. "pipeline\nrepl\nrun\nstack\ntag\nui\n", complete(home, { "" }))
    assert.equal("pipeline\n", complete(home, { "pi" }))
    assert.equal("--help\n--manifest\n--spec\n", complete(home, { "exec", "--" }))
    assert.equal("@files\n", complete(home, { "exec", "--spec", "" }))
    assert.equal("describe\nlist\nupdate\n", complete(home, { "artifact", "version", "" }))
    assert.equal("--help\n--version\n", complete(home, { "--" }))
    assert.equal("", complete(home, { "nosuch", "" }))
  end)

  it("offers a command's options, and the values an option takes", function()
    assert.equal("--depth\n--down\n", complete(home, { "lineage", "x", "--d" }))
    assert.equal("--dry-run\n--help\n--json\n--yes\n", complete(home, { "artifact", "prune", "-" }))
    assert.equal("cbor\njson\n", complete(home, { "artifact", "export", "k", "--format", "" }))
    assert.equal("--format=cbor\n", complete(home, { "artifact", "export", "--format=c" }))
    assert.equal("completed\n", complete(home, { "pipeline", "runs", "list", "--status", "comp" }))
    assert.equal("--help\n--jobs\n--json\n--no-cache\n--quiet\n--resume\n--verbose\n",
      complete(home, { "run", "-" }))
    -- after the script, words are the script's: no options of run
    assert.equal("@files\n", complete(home, { "run", "-j", "2", "x.lua", "-" }))
    assert.equal("artifact\nartifact-store\n", complete(home, { "help", "art" }))
    assert.equal("--allowed-host\n--help\n--host\n--port\n", complete(home, { "ui", "--" }))
  end)

  it("offers the names in the catalog where a command takes one", function()
    assert.equal("ml::tune::output\ntrained_model\n",
      complete(home, { "artifact", "version", "describe", "" }))
    assert.equal("trained_model\n", complete(home, { "lineage", "--up", "tr" }))
    assert.equal("first run\n", complete(home, { "pipeline", "runs", "describe", "" }))
    assert.equal("first run\n", complete(home, { "artifact", "version", "list", "--run", "f" }))
    assert.equal("--run=first run\n", complete(home, { "artifact", "version", "list", "--run=" }))
    assert.equal("ml\n", complete(home, { "pipeline", "list", "--name", "" }))
    assert.equal("default\n", complete(home, { "stack", "describe", "" }))
    assert.equal("default\n", complete(home, { "gc", "--store", "" }))
    -- one operand only, and a new name is not completed
    assert.equal("", complete(home, { "lineage", "trained_model", "" }))
    assert.equal("", complete(home, { "stack", "register", "" }))
  end)

  it("offers tag names, but not where a new one is given", function()
    local _, err, code = H.lupine(home, "tag create production --exclusive")
    assert.equal(0, code, err)
    assert.equal("production\n", complete(home, { "tag", "update", "" }))
    assert.equal("production\n", complete(home, { "tag", "delete", "p" }))
    assert.equal("production\n", complete(home, { "tag", "list", "--name", "" }))
    assert.equal("", complete(home, { "tag", "create", "" }))
    assert.equal("", complete(home, { "tag", "update", "production", "--name", "" }))
    assert.equal("--name\n--non-exclusive\n", complete(home, { "tag", "update", "x", "--n" }))
  end)

  it("asks the shell for paths where a command takes a file", function()
    assert.equal("@files\n", complete(home, { "run", "" }))
    assert.equal("@files\n", complete(home, { "artifact", "export", "k", "-o", "" }))
    assert.equal("@dirs\n", complete(home, { "artifact-store", "register", "s", "--path", "" }))
  end)

  it("creates no catalog where there is none #sqlite", function()
    local dir = H.tmpdir()
    assert.equal("", complete(dir .. "/home", { "artifact", "version", "describe", "" }))
    assert.equal("", (H.sh("ls -A " .. H.quote(dir))))
  end)

  it("offers every command's options as the parser knows them (one table for both)", function()
    local cli = require "lupine.cli"
    local function walk(node, path)
      for _, name in ipairs(node.order) do
        local sub, words = node.sub[name], table.move(path, 1, #path, 1, {})
        words[#words + 1] = name
        if sub.sub then walk(sub, words)
        else
          local want = {}
          for _, o in ipairs(cli.options_of(sub)) do want[#want + 1] = o[1] end
          table.sort(want)
          words[#words + 1] = "--"
          assert.equal(table.concat(want, "\n") .. "\n", complete(home, words),
            table.concat(words, " "))
        end
      end
    end
    walk(cli.tree, {})
  end)
end)

describe("the bash completion", function()
  local home = catalog()

  it("completes commands and subcommands", function()
    assert.equal("artifact\nartifact-store\n", bash_complete(home, "lupine art"))
    assert.equal("runs\n", bash_complete(home, "lupine pipeline r"))
  end)

  it("completes the catalog's names, escaping blanks", function()
    assert.equal("trained_model\n", bash_complete(home, "lupine artifact version describe tr"))
    assert.equal("first\\ run\n", bash_complete(home, "lupine pipeline runs describe f"))
  end)

  it("completes after the word breaks ':' and '=' with what follows them", function()
    -- bash replaces only what follows the last break in the word
    assert.equal("tune::output\n", bash_complete(home, "lupine lineage ml::t"))
    assert.equal("cbor\n", bash_complete(home, "lupine artifact export x --format=c"))
    assert.equal("json\n", bash_complete(home, "lupine artifact export x --format j"))
  end)

  it("completes file names for a script", function()
    local dir = H.tmpdir()
    H.write(dir .. "/pipeline.lua", "")
    H.write(dir .. "/other.txt", "")
    assert.equal("pipeline.lua\n", bash_complete(home, "lupine run pi", dir))
  end)

  it("is installed by make install", function()
    local prefix = H.tmpdir()
    local release = H.build:gsub("/asan$", "")
    local _, err, code = H.sh("make -s install-rock BUILD=" .. H.quote(release) .. " PREFIX="
      .. H.quote(prefix))
    assert.equal(0, code, err)
    assert.equal(H.read(H.root .. "/runtime/lupine.bash"),
      H.read(prefix .. "/share/bash-completion/completions/lupine"))
  end)
end)
