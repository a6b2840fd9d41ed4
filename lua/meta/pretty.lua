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

---What the REPL prints for a statement's results: each formatted, tab-separated;
---a Page (`client:list_*`) as a table of its items, then its summary.
---@param ... any
---@return string
function pretty.repl(...) end

---@class lupine.Column
---@field title? string Its title, in the first line (no column with one: no such line).
---@field max? integer Columns a cell takes at most (default 40): a longer one is cut, ending in "…".
---@field right? boolean Aligned to the right (numbers).

---An aligned table: the titles, then a line a row, columns two spaces apart,
---widths counted in terminal columns (CJK characters take two).
---@param columns lupine.Column[]
---@param rows any[][] The cells of each row (tostring'd, control characters written as \xHH; nil is empty).
---@return string
function pretty.columns(columns, rows) end

---The terminal columns a string takes: East Asian wide characters two,
---combining marks and controls none, other characters one.
---@param s string
---@return integer
function pretty.width(s) end

---A string cut to at most width terminal columns, ending in "…" if it was cut.
---@param s string
---@param width integer
---@return string
function pretty.truncate(s, width) end

return pretty
