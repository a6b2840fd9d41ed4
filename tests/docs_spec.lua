-- SPDX-License-Identifier: MIT
-- The documentation holds together: README.md stays a short page whose tour
-- and C example run, every link between the Markdown files reaches a file
-- and a heading, and each reference file's contents list names its sections.
local H = require "helper"

local release = H.build:gsub("/asan$", "")
local FILES = { "README.md", "lua/README.md", "runtime/README.md", "tests/README.md",
  "examples/README.md", "examples/embed/README.md" }

-- GitHub's anchor of a heading: lower case, punctuation but - and _ dropped,
-- spaces as -, and -1, -2, ... after a repeated one.
local function anchors(text)
  local set, seen, fence = {}, {}, false
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if line:match("^```") then fence = not fence end
    local hashes, title = line:match("^(#+) (.*)$")
    if title and not fence then
      local a = title:lower():gsub("[^%w%-_ ]", ""):gsub(" ", "-")
      local n = seen[a] or 0
      seen[a] = n + 1
      set[n == 0 and a or (a .. "-" .. n)] = { title = title, depth = #hashes }
    end
  end
  return set
end

-- The text of a fenced block of README.md that follows the line holding intro.
local function block_after(text, intro)
  local at = assert(text:find(intro, 1, true), "README.md no longer says: " .. intro)
  return assert(text:match("```%w*\n(.-)```", at))
end

describe("README.md", function()
  local readme = H.read(H.root .. "/README.md")

  it("is a short page", function()
    local _, lines = readme:gsub("\n", "")
    assert.is_true(lines <= 300, "README.md has " .. lines .. " lines")
  end)

  it("gives the test command CI runs and how its output ends", function()
    assert.truthy(readme:find("`make test`", 1, true))
    assert.truthy(readme:find("`N passed, N failed`", 1, true))
    assert.truthy(H.read(H.root .. "/.ci/run"):find("make test", 1, true))
  end)

  it("has a tour whose pipeline runs, is cached, and runs again once changed", function()
    local dir = H.tmpdir()
    H.write(dir .. "/hello.lua", block_after(readme, "Save this as `hello.lua`"))
    local out, err, code = H.lupine(nil, "run hello.lua", dir)
    assert.equal(0, code, err)
    assert.matches("step 'load_data' completed in [^\n]*: dataset v1\n", out)
    assert.matches("step 'process_data' completed in [^\n]*: processed v1\n", out)
    out = H.lupine(nil, "run hello.lua", dir)
    assert.matches("completed in [^\n]*: 2 cached\n", out)
    -- the edit the tour makes, with the command it shows
    local edit = readme:match("\n%$ (sed %-i [^\n]+ hello%.lua)\n")
    assert.truthy(edit, "the tour's edit")
    assert.equal(0, select(3, H.sh("cd " .. H.quote(dir) .. " && " .. edit)))
    out = H.lupine(nil, "run hello.lua", dir)
    assert.matches("step 'load_data' cached: dataset v1\n", out)
    assert.matches("step 'process_data' completed in [^\n]*: processed v2\n", out)
    out = H.lupine(nil, "artifact export processed", dir)
    assert.equal("[10,20,30,40,50]\n", out)
    assert.truthy(readme:find("\n[10,20,30,40,50]\n", 1, true))
  end)

  it("has a C example that builds and reads the tour's result", function()
    local dir = H.tmpdir()
    H.write(dir .. "/hello.lua", block_after(readme, "Save this as `hello.lua`"))
    H.write(dir .. "/host.c", block_after(readme, "link `liblupine` and include `lupine.h`"))
    local _, err, code = H.sh("cd " .. H.quote(dir) .. " && cc -std=c11 -Wall -Wextra -Werror"
      .. " -I" .. H.quote(H.root .. "/runtime") .. " $(pkg-config --cflags lua5.4) -o host host.c"
      .. " -L" .. H.quote(release) .. " -llupine $(pkg-config --libs lua5.4)")
    assert.equal(0, code, err)
    local out
    out, err, code = H.sh("cd " .. H.quote(dir) .. " && unset LUPINE_HOME && LD_LIBRARY_PATH="
      .. H.quote(release) .. " ./host && " .. H.quote(H.cli) .. " artifact export processed")
    assert.equal(0, code, err)
    assert.equal("", err)
    assert.equal("processed holds 5 values\n[2,4,6,8,10]\n", out)
    assert.truthy(readme:find("# prints: processed holds 5 values\n", 1, true))
  end)
end)

describe("the Markdown files", function()
  it("link only to files and headings that exist", function()
    local broken = {}
    for _, file in ipairs(FILES) do
      local text = assert(H.read(H.root .. "/" .. file), file)
      local dir = file:match("^(.*)/") or "."
      local own = anchors(text)
      for target in text:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^%a+:") then
          local path, anchor = target:match("^([^#]*)#?(.*)$")
          local full = path == "" and (H.root .. "/" .. file) or (H.root .. "/" .. dir .. "/" .. path)
          local body = H.read(full)
          if not body and path ~= "" and not H.read(full .. "/README.md") then
            local ok = os.execute("test -e " .. H.quote(full))
            if not ok then broken[#broken + 1] = file .. ": " .. target end
          elseif anchor ~= "" then
            local set = path == "" and own or anchors(body or H.read(full .. "/README.md"))
            if not set[anchor] then broken[#broken + 1] = file .. ": " .. target end
          end
        end
      end
    end
    assert.same({}, broken)
  end)

  it("list every section in their contents", function()
    local missing = {}
    for _, file in ipairs { "lua/README.md", "runtime/README.md", "tests/README.md" } do
      local text = H.read(H.root .. "/" .. file)
      local contents = assert(text:match("\n## Contents\n(.-)\n## "), file .. ": no contents")
      for a, h in pairs(anchors(text)) do
        if h.depth >= 2 and h.depth <= 3 and h.title ~= "Contents"
          and not contents:find("(#" .. a .. ")", 1, true) then
          missing[#missing + 1] = file .. ": " .. h.title
        end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("use no words a reader cannot know", function()
    local found = {}
    for _, file in ipairs(FILES) do
      local text = H.read(H.root .. "/" .. file):lower()
      for _, word in ipairs { "seed's", "the seed examples", "design card" } do
        if text:find(word, 1, true) then found[#found + 1] = file .. ": " .. word end
      end
    end
    assert.same({}, found)
  end)
end)
