---@meta lupine.pretty
-- SPDX-License-Identifier: MIT
-- Editor annotations (LuaLS/EmmyLua) of `require "lupine.pretty"`: how the
-- REPL prints values.

---@class lupine.pretty
local pretty = {}

---A value as a Lua table constructor: the array part in order, then the other
---keys sorted; Lupine's objects as their one-line summaries.
---@param value any
---@param options? { depth?: integer, items?: integer, width?: integer } Defaults 3, 20, 80.
---@return string
function pretty.format(value, options) end

---What the REPL prints for a statement's results: each formatted, tab-separated.
---@param ... any
---@return string
function pretty.repl(...) end

return pretty
