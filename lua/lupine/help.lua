-- SPDX-License-Identifier: MIT
-- lupine.help: what a value is, its fields and methods, for the REPL's
-- help(x) and its Tab completion.
--
--   help.text(v) -> string
--       What v is. An object of Lupine's (a run, a version, a step, the
--       module itself...) lists its fields and methods with their types
--       and what each is; a function of Lupine's gives its parameters and
--       results; any other table lists its keys.
--   help.fields(v) -> { [name] = kind }
--       Every field and method v offers: its own keys, those reached
--       through its metatable, the fields computed when first read, and
--       those its class declares. kind is the Lua type of the value when it
--       is known without reading it ("function" for methods), else "field".
--
-- The names come from the objects themselves (their keys, metatables and
-- the getters of lupine.client); what each is comes from the editor
-- annotations (lua/meta/*.lua, embedded as the modules lupine.meta.*),
-- whose agreement with the objects the tests check.

local client = require "lupine.client"
local pretty = require "lupine.pretty"

local help = {}

local getmt = debug and debug.getmetatable or getmetatable

-- ---- the annotations ----

-- The type expression at position i of s (LuaLS syntax: unions, generics,
-- table literals, function types) and the position after it.
local CLOSE = { ["<"] = ">", ["{"] = "}", ["("] = ")", ["["] = "]" }
local function read_type(s, i)
  local stack, j, n = {}, i, #s
  while j <= n do
    local c = s:sub(j, j)
    if c == '"' then
      j = (s:find('"', j + 1, true) or n)
    elseif CLOSE[c] then
      stack[#stack + 1] = CLOSE[c]
    elseif c == stack[#stack] then
      stack[#stack] = nil
    elseif c == " " and #stack == 0 then
      -- a space ends the type, unless it sits inside "a | b" or "fun(): r"
      local before, after = s:sub(1, j - 1):match("(%S)%s*$"), s:match("^%s*(%S)", j)
      if before ~= "|" and before ~= ":" and before ~= "," and after ~= "|" then break end
    end
    j = j + 1
  end
  return (s:sub(i, j - 1):gsub("%s+$", "")), j
end

-- Parse one annotation file into db: classes[name] = { name, doc, parent,
-- fields = { name -> { type, doc, optional } }, field_order, methods =
-- { name -> { call, args, params, returns, doc } }, method_order, internal
-- = { name -> true } }; modules[name] = true for the modules (`---@meta
-- name`). Fields marked `package` are internal: not shown, not completed.
local function parse(text, db)
  local doc, params, returns = {}, {}, {}
  local class, vars, enum = nil, {}, nil
  local function new_class(name, parent)
    local c = { name = name, doc = table.concat(doc, " "), parent = parent, fields = {},
      field_order = {}, methods = {}, method_order = {}, internal = {} }
    db.classes[name] = c
    doc = {}
    return c
  end
  local function add_field(c, name, ftype, fdoc, optional)
    if not c.fields[name] then c.field_order[#c.field_order + 1] = name end
    c.fields[name] = { type = ftype, doc = fdoc, optional = optional }
  end
  for line in (text .. "\n"):gmatch("(.-)\n") do
    local tag, rest = line:match("^%-%-%-@(%a+)%s*(.*)$")
    if tag == "meta" then
      if rest ~= "" then db.modules[rest] = true end
    elseif tag == "class" or tag == "enum" then
      local name, after = rest:match("^([%w_.]+)[^:]*:?%s*(.*)$")
      class = new_class(name, after:match("^[%w_.]+$"))
      enum = nil
    elseif tag == "field" and class then
      local scope, name, opt, after = rest:match("^(%a+)%s+([%w_]+)(%??)%s+(.*)$")
      if scope ~= "private" and scope ~= "package" and scope ~= "protected"
          and scope ~= "public" then
        name, opt, after = rest:match("^([%w_]+)(%??)%s+(.*)$")
        scope = nil
      end
      if name and (scope == "package" or scope == "private") then
        class.internal[name] = true
      elseif name then
        local ftype, j = read_type(after, 1)
        add_field(class, name, ftype, (after:sub(j):gsub("^%s+", "")), opt == "?")
      end
    elseif tag == "param" then
      local name, opt, after = rest:match("^([%w_.]+)(%??)%s+(.*)$")
      if name then
        local ptype, j = read_type(after, 1)
        params[#params + 1] = { name = name, type = ptype, optional = opt == "?",
          doc = (after:sub(j):gsub("^%s+", "")) }
      end
    elseif tag == "return" then
      local rtype, j = read_type(rest, 1)
      returns[#returns + 1] = { type = rtype, doc = (rest:sub(j):gsub("^%s+", "")) }
    elseif tag then
      doc = {}   -- @alias, @overload: nothing help shows
    elseif line:find("^%-%-%-") then
      doc[#doc + 1] = line:sub(4)
    elseif line:find("^local [%w_]+ = {") then
      if class then
        vars[line:match("^local ([%w_]+)")] = class
        enum = line:find("}") == nil and class or nil
      end
      class = nil
    elseif enum and line:find("^  [%w_]+ =") then
      local key, value = line:match("^  ([%w_]+) = (.-),?$")
      add_field(enum, key, value, "", false)
    elseif line:find("^}") then
      enum = nil
    elseif line:find("^function ") then
      local var, call, name, args = line:match("^function ([%w_]+)([.:])([%w_]+)%((.-)%)")
      local c = vars[var]
      if c then
        local optional = {}
        for _, p in ipairs(params) do optional[p.name] = p.optional end
        if not c.methods[name] then c.method_order[#c.method_order + 1] = name end
        c.methods[name] = { call = call, args = args, params = params, returns = returns,
          doc = table.concat(doc, " "), optional = optional }
      end
      doc, params, returns = {}, {}, {}
    elseif line == "" then
      class, doc, params, returns = nil, {}, {}, {}
    end
  end
end

local db
local function annotations()
  if db then return db end
  db = { classes = {}, modules = {} }
  local names = {}
  for name in pairs(package.preload) do
    if name:find("^lupine%.meta%.") then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do parse(require(name), db) end
  return db
end

-- The class c and its parents, nearest first.
local function ancestry(c)
  local list, classes = {}, annotations().classes
  while c and #list < 8 do
    list[#list + 1] = c
    c = c.parent and classes[c.parent]
  end
  return list
end

-- ---- which class a value is of ----

-- The class v is an object of (by its metatable's __name), or the module
-- (or a module's field declared as a class) it is.
local function class_of(v)
  local a = annotations()
  local mt = getmt(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  if type(name) == "string" and a.classes[name] then return a.classes[name] end
  if type(v) ~= "table" then return nil end
  for module in pairs(a.modules) do
    local m, c = package.loaded[module], a.classes[module]
    if m == v and c then return c end
    if type(m) == "table" and c then
      for fname, f in pairs(c.fields) do
        if rawget(m, fname) == v and a.classes[f.type] then return a.classes[f.type] end
      end
    end
  end
  return nil
end

-- The tables whose functions the annotations describe: the modules, by
-- name, and the classes of lupine.client (Client, ArtifactVersion, ...).
local function owners()
  local list = {}
  for module in pairs(annotations().modules) do
    if type(package.loaded[module]) == "table" then
      list[#list + 1] = { name = module, t = package.loaded[module] }
    end
  end
  for _, cls in pairs(client.classes) do
    list[#list + 1] = { name = rawget(cls, "__name"), t = cls }
  end
  table.sort(list, function(x, y) return x.name < y.name end)
  return list
end

-- The class and method name of a function the annotations describe.
local function method_of(fn)
  local classes = annotations().classes
  for _, o in ipairs(owners()) do
    for _, c in ipairs(ancestry(classes[o.name])) do
      for name in pairs(c.methods) do
        if rawget(o.t, name) == fn then return c, name end
      end
    end
  end
  return nil
end

-- ---- fields ----

function help.fields(v)
  local out = {}
  local function add_keys(t, skip_metamethods)
    for k, x in next, t do
      if type(k) == "string" and out[k] == nil
          and not (skip_metamethods and k:sub(1, 2) == "__") then
        out[k] = type(x)
      end
    end
  end
  if type(v) == "table" then add_keys(v) end
  -- through the metatables: an __index table's keys; a class whose __index
  -- is a function (computing fields when first read) offers its own keys
  -- and the names of the fields it computes
  local t = v
  for _ = 1, 8 do
    local mt = getmt(t)
    if type(mt) ~= "table" then break end
    for k in pairs(client.getters[mt] or {}) do out[k] = out[k] or "field" end
    local index = rawget(mt, "__index")
    if type(index) == "table" then t = index
    elseif type(index) == "function" then t = mt
    else break end
    add_keys(t, true)
  end
  local classes = class_of(v) and ancestry(class_of(v)) or {}
  for _, c in ipairs(classes) do
    for name in pairs(c.fields) do out[name] = out[name] or "field" end
    for name in pairs(c.methods) do out[name] = out[name] or "function" end
  end
  -- what the annotations mark internal is left out, wherever it came from
  for _, c in ipairs(classes) do
    for name in pairs(c.internal) do out[name] = nil end
  end
  return out
end

-- ---- text ----

-- Append rows, as an aligned table without titles, two spaces in, to lines.
local function indented(lines, cols, rows)
  if #rows == 0 then return end
  for l in (pretty.columns(cols, rows) .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = "  " .. l
  end
end

local function signature(prefix, name, m)
  local args = {}
  for a in m.args:gmatch("[^,%s]+") do args[#args + 1] = a .. (m.optional[a] and "?" or "") end
  return prefix .. name .. "(" .. table.concat(args, ", ") .. ")"
end

local function returns_of(m)
  local list = {}
  for i, r in ipairs(m.returns) do list[i] = r.type end
  return table.concat(list, ", ")
end

-- The fields and methods of v, of class c, as lines: the fields as a table
-- (name, type, what it is), each method's signature on a line of its own
-- (prefix before its name), what it does under it. What v has that c does
-- not declare comes after, without a description.
local function members(v, c, prefix)
  local lines, seen, fields, methods = {}, {}, {}, {}
  for _, cl in ipairs(ancestry(c)) do
    for _, name in ipairs(cl.field_order) do
      if not seen[name] then
        seen[name] = true
        local f = cl.fields[name]
        fields[#fields + 1] = { name, f.type .. (f.optional and "?" or ""), f.doc }
      end
    end
  end
  for _, cl in ipairs(ancestry(c)) do
    for _, name in ipairs(cl.method_order) do
      if not seen[name] then
        seen[name] = true
        local m = cl.methods[name]
        local sig = signature(prefix .. m.call, name, m)
        methods[#methods + 1] = sig .. (#m.returns > 0 and (" -> " .. returns_of(m)) or "")
        if m.doc ~= "" then methods[#methods + 1] = "    " .. m.doc end
      end
    end
  end
  local extra = {}
  for name, kind in pairs(help.fields(v)) do
    if not seen[name] and name:sub(1, 1) ~= "_" then extra[#extra + 1] = { name, kind } end
  end
  table.sort(extra, function(x, y) return x[1] < y[1] end)
  for _, e in ipairs(extra) do
    if e[2] == "function" then methods[#methods + 1] = prefix .. "." .. e[1] .. "(...)"
    else fields[#fields + 1] = { e[1], e[2], "" } end
  end
  if #fields > 0 then
    lines[1] = "fields:"
    indented(lines, { { max = 30 }, { max = 40 }, { max = 1000 } }, fields)
  end
  if #methods > 0 then
    lines[#lines + 1] = annotations().modules[c.name] and "functions:" or "methods:"
    for _, l in ipairs(methods) do lines[#lines + 1] = "  " .. l end
  end
  return lines
end

local function summary(v)
  local mt = getmt(v)
  if not (type(mt) == "table" and rawget(mt, "__tostring")) then return nil end
  local ok, s = pcall(tostring, v)
  return ok and s or nil
end

-- What a function's name follows in help: the module's name ("lupine.step"),
-- or for a method the class's short name ("Client:get_pipeline_run"), or
-- nothing in the list of an object's methods (":load").
local function short(c)
  if annotations().modules[c.name] then return c.name end
  return (c.name:match("([%w_]+)$"))
end
local function owner_prefix(c)
  return annotations().modules[c.name] and c.name or ""
end

-- The name a function has among the globals ("print"), else in a table
-- there ("string.format"), or nil.
local function global_name(fn)
  local direct, nested
  for k, v in next, _G do
    if type(k) == "string" then
      if v == fn and (not direct or k < direct) then direct = k end
      if type(v) == "table" and k ~= "_G" then
        for k2, v2 in next, v do
          local name = k .. "." .. tostring(k2)
          if v2 == fn and (not nested or name < nested) then nested = name end
        end
      end
    end
  end
  return direct or nested
end

local function function_text(fn)
  local c, name = method_of(fn)
  if c then
    local m = c.methods[name]
    local lines = { signature(short(c) .. m.call, name, m)
      .. (#m.returns > 0 and (" -> " .. returns_of(m)) or "") }
    if m.doc ~= "" then lines[#lines + 1] = m.doc end
    local rows = {}
    for _, p in ipairs(m.params) do
      rows[#rows + 1] = { p.name .. (p.optional and "?" or ""), p.type, p.doc }
    end
    for _, r in ipairs(m.returns) do rows[#rows + 1] = { "returns", r.type, r.doc } end
    indented(lines, { { max = 30 }, { max = 60 }, { max = 1000 } }, rows)
    return table.concat(lines, "\n")
  end
  local info = debug and debug.getinfo(fn, "Su")
  if not info or info.what == "C" then
    local name = global_name(fn)
    return (name and (name .. ": ") or "") .. "a function written in C"
      .. (name and " (the Lua manual tells what it does)" or "")
  end
  local params = {}
  for i = 1, info.nparams do params[i] = debug.getlocal(fn, i) end
  if info.isvararg then params[#params + 1] = "..." end
  return string.format("a function (%s), defined at %s:%d", table.concat(params, ", "),
    info.short_src, info.linedefined)
end

local function describe(v)
  local tv = type(v)
  if tv == "nil" then return "nil: no value" end
  if tv == "string" then
    return string.format("a string of %d byte%s (its methods are string's: help(string))", #v,
      #v == 1 and "" or "s")
  end
  if tv == "number" then return string.format("%s: a number (%s)", v, math.type(v)) end
  if tv == "boolean" then return tostring(v) .. ": a boolean" end
  if tv == "function" then return function_text(v) end
  return nil
end

function help.text(v)
  local simple = describe(v)
  if simple then return simple end
  local c = class_of(v)
  local lines = {}
  if c then
    local s = summary(v)
    lines[1] = c.name .. (s and (" " .. s) or "")
    if c.doc ~= "" then lines[#lines + 1] = c.doc end
    for _, l in ipairs(members(v, c, owner_prefix(c))) do lines[#lines + 1] = l end
    return table.concat(lines, "\n")
  end
  if type(v) ~= "table" then return summary(v) or ("a " .. type(v)) end
  local n, rows = 0, {}
  for k, x in next, v do
    if type(k) == "string" then rows[#rows + 1] = { k, type(x) } else n = n + 1 end
  end
  table.sort(rows, function(x, y) return x[1] < y[1] end)
  lines[1] = string.format("a table with %d field%s%s", #rows, #rows == 1 and "" or "s",
    n > 0 and string.format(" and %d other key%s", n, n == 1 and "" or "s") or "")
  indented(lines, { {}, {} }, rows)
  return table.concat(lines, "\n")
end

return help
