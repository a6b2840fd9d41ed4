-- SPDX-License-Identifier: MIT
-- lupine.complete: `lupine __complete WORD...`, what the shell's completion
-- (runtime/lupine.bash) asks for. WORDs are the words after `lupine` up to
-- the cursor, the last one (maybe empty) being completed. Printed: the
-- words that can stand there and start with it, one a line; or "@files" or
-- "@dirs" alone, for the shell to complete paths. Names come from the
-- catalog when there is one; none is created.

local core = require "lupine.core"

local M = {}

-- Every command and option comes from lupine.cli's command tree, the
-- one its parser reads.
local TOP_OPTIONS = { "--help", "--version" }

-- The queries (runtime/catalog.c) that list the names of each kind.
local QUERIES = { artifact = "artifact_names", run = "run_names", pipeline = "pipeline_names",
  stack = "stack_names", store = "artifact_store_names", tag = "tags",
  orchestrator = "orchestrator_names" }

local function catalog_names(kind)
  -- no names where the catalog cannot be located (an empty LUPINE_HOME)
  local ok, _, exists = pcall(core.locate)
  if not ok or not exists then return {} end
  local list = {}
  for i, row in ipairs(core.query(QUERIES[kind])) do list[i] = row.name end
  return list
end

-- What an operand or an option's value names, from its placeholder (as the
-- command's help shows it) and the command path: a kind of catalog name,
-- "@files", "@dirs", or nil (nothing to offer).
local function kind_of(path, placeholder, option)
  local group, command = path[1], path[#path]
  if placeholder == "SCRIPT" or placeholder == "FILE" or placeholder == "ARGS..." then
    return "@files"
  end
  if placeholder == "DIR" then return "@dirs" end
  if placeholder == "RUN" then return "run" end
  if placeholder == "PIPELINE" then return "pipeline" end
  if placeholder == "STORE" or option == "--store" then return "store" end
  if placeholder == "ORCHESTRATOR" then return "orchestrator" end
  if placeholder:find("^NAME%[") then return "artifact" end   -- KEY: NAME[:VERSION]|ID
  if group == "tag" then   -- a tag, but the new name of create and update --name
    if (option == nil and command ~= "create") or (option == "--name" and command == "list") then
      return "tag"
    end
    return nil
  end
  if option == "--name" then return group == "pipeline" and "pipeline" or "artifact" end
  if option == nil and command ~= "register" then
    if group == "stack" then return "stack" end
    if group == "artifact-store" then return "store" end
    if group == "orchestrator" then return "orchestrator" end
  end
  return nil
end

-- The option of list that flag names (long or short), if any.
local function find(list, flag)
  for _, o in ipairs(list) do
    if o[1] == flag or o.short == flag then return o end
  end
end

-- The values that can follow option o.
local function values(path, o)
  if o.choices then return o.choices end
  local kind = kind_of(path, o.arg, o[1])
  if kind == nil or kind:sub(1, 1) == "@" then return kind or {} end
  return catalog_names(kind)
end

-- Candidates for words[n] (the last) after a command's words[1..i-1]: its
-- options, an option's value, or its next operand (after the first
-- operand of a command with `rest`, words are operands only: the script's).
local function command_words(path, cmd, options, words, i)
  local n, cur, args = #words, words[#words], cmd.args
  local j = i
  while cmd.rest and j < n do
    local w = words[j]
    if w == "--" or w == "-" or w:sub(1, 1) ~= "-" then return "@files" end
    local o = find(options, w)
    if o and o.arg then j = j + 1 end   -- its value
    j = j + 1
  end
  local flag = cur:match("^(%-%-[^=]+)=")
  if flag then
    local o = find(options, flag)
    if not o or not o.arg then return {} end
    local list = values(path, o)
    if type(list) == "string" then return {} end
    local out = {}
    for k, v in ipairs(list) do out[k] = flag .. "=" .. v end
    return out
  end
  local prev = n > i and find(options, words[n - 1])
  if prev and prev.arg then return values(path, prev) end
  if cur:sub(1, 1) == "-" then
    local out = {}
    for _, o in ipairs(options) do out[#out + 1] = o[1] end
    return out
  end
  -- the operands before this one: words that are not options or their values
  local count, j, only = 0, i, false
  while j < n do
    local w = words[j]
    if only or w == "-" or w:sub(1, 1) ~= "-" then count = count + 1
    elseif w == "--" then only = true
    else
      local o = find(options, w)
      if o and o.arg then j = j + 1 end
    end
    j = j + 1
  end
  local placeholder = args and args[math.min(count + 1, #args)]
  if not placeholder or (count >= #args and not cmd.rest) then return {} end
  local kind = kind_of(path, placeholder:gsub("^%[(.*)%]$", "%1"), nil)
  if kind == nil or kind:sub(1, 1) == "@" then return kind or {} end
  return catalog_names(kind)
end

-- Options are offered where the word begins with "-" (commands otherwise).
local candidates
function candidates(cli, words)
  local first, dash = words[1], words[#words]:sub(1, 1) == "-"
  if #words == 1 then
    if dash then return TOP_OPTIONS end
    return cli.tree.order
  end
  if first == "help" and not dash then   -- `lupine help COMMAND...`: the commands
    return candidates(cli, table.move(words, 2, #words, 1, {}))
  end
  local node, path, i = cli.tree, {}, 1
  while node.sub do
    if i == #words then   -- a subcommand (or --help) goes here
      return dash and { "--help" } or node.order
    end
    node = node.sub[words[i]]
    if not node then return {} end
    path[#path + 1], i = words[i], i + 1
  end
  return command_words(path, node, cli.options_of(node), words, i)
end

-- main(cli, words): print the candidates; the exit status.
function M.main(cli, words)
  if #words == 0 then words = { "" } end
  local cur = words[#words]
  local list = candidates(cli, words)
  if type(list) == "string" then
    io.write(list, "\n")
    return 0
  end
  local sorted = table.move(list, 1, #list, 1, {})
  table.sort(sorted)
  for _, w in ipairs(sorted) do
    if w:sub(1, #cur) == cur then io.write(w, "\n") end
  end
  return 0
end

return M
